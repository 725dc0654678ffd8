/* shm_stats.h - history: per-minute, per-hour and per-day aggregates per key and per model.
 *
 * Design note
 * -----------
 * Every recorded outcome (shm_key_record, its batches, shm_key_note) adds to the rows of its
 * key and of its request's client-facing model (shm_admit_req_t.model; probes have none) for
 * the minute, the hour and the UTC day of the recording, in the same write transaction:
 * outcomes by class, prompt and completion tokens, cost, and two latency histograms (total
 * and time to first byte, successes with a latency only). A transaction folds its outcomes
 * first, so a worker's batch of plain successes writes each row once. No per-request rows:
 * a series holds at most SHM_STATS_KEEP_* rows per resolution whatever the traffic, and only
 * minutes (hours, days) with outcomes have one.
 *
 * What a row counts are upstream attempts, as the keys see them: a request retried on
 * another key counts once per attempt (the model's row has each of them, each key's row its
 * own). Requests the gateway refused or could not place (429 by a client's limits, 503 no
 * capacity) have no outcome and are not here (the metrics and the access log have them).
 *
 * Retention: rows older than SHM_STATS_KEEP_MINUTES minutes (hours, days) are removed by
 * shm_stats_prune, which the server runs from its maintenance. Sizes: a row is 376 bytes in
 * the store, so a series is at most about 1 MiB of minutes, 0.8 MiB of hours and 0.15 MiB of
 * days; a key or model that is idle costs nothing.
 *
 * Key: resolution byte ('m', 'h', 'd'), scope byte ('k' key, 'M' model), the name (1 to
 * SHM_NAME_MAX bytes), a NUL, the index (minutes, hours or days since the epoch, UTC) as a
 * big-endian uint32. So one series is one range in time order, and a query is a seek per
 * series. Value: shm_srec_t (shm_int.h; fixed layout, versioned, checked before it is read).
 *
 * Latency histograms: SHM_STATS_BUCKETS buckets with the upper bounds shm_stats_le_ms (ms,
 * inclusive), the last one open; quantiles are interpolated inside a bucket and capped at the
 * largest sample seen, so they are exact to within one bucket (about a third of its bound).
 *
 * Schema: an addition like "client_usage" (see shm_obj.h): a read-only open of a store
 * without the "stats" database sees no history. Threads: any; one transaction per call.
 */
#ifndef LLMGATE_SHM_STATS_H
#define LLMGATE_SHM_STATS_H

#include <stdint.h>

#include "shm/shm.h"

#define SHM_STATS_BUCKETS      32
#define SHM_STATS_KEEP_MINUTES 2880 /* 48 h */
#define SHM_STATS_KEEP_HOURS   2160 /* 90 days */
#define SHM_STATS_KEEP_DAYS    400

enum shm_stats_res { SHM_SR_MINUTE = 0, SHM_SR_HOUR, SHM_SR_DAY, SHM_SR_COUNT };
enum shm_stats_scope { SHM_SS_KEY = 0, SHM_SS_MODEL, SHM_SS_COUNT };

/* Upper bounds of the histogram buckets, ms (inclusive); bucket SHM_STATS_BUCKETS-1 has none. */
extern const uint32_t shm_stats_le_ms[SHM_STATS_BUCKETS - 1];

/* The bucket of a latency. Pure. */
unsigned shm_stats_bucket(uint32_t ms);

/* One resolution's step in ms (60000, 3600000, 86400000), and the index of wall-clock ms. */
int64_t shm_stats_step_ms(int res);
int64_t shm_stats_index(int res, int64_t ms);

/* An aggregate: a row, or several merged. */
typedef struct shm_stats_s {
    uint64_t by_class[SHM_CL_COUNT]; /* outcomes by enum shm_class */
    uint64_t prompt_tokens, completion_tokens, cost_micro_usd;
    uint64_t lat[SHM_STATS_BUCKETS], ttfb[SHM_STATS_BUCKETS];
    uint64_t lat_sum_ms, ttfb_sum_ms;
    uint32_t lat_max_ms, ttfb_max_ms;
} shm_stats_t;

typedef struct shm_stats_row_s {
    char name[SHM_NAME_MAX + 1];
    int64_t index; /* minutes, hours or days since the epoch */
    shm_stats_t v;
} shm_stats_row_t;

/* Add x into *into (saturating). Pure. */
void shm_stats_merge(shm_stats_t *into, const shm_stats_t *x);
/* Outcomes of every class; those of an error class (429, 5xx, timeout, connect, auth);
 * latency samples. Pure. */
uint64_t shm_stats_outcomes(const shm_stats_t *v);
uint64_t shm_stats_errors(const shm_stats_t *v);
uint64_t shm_stats_samples(const shm_stats_t *v);
/* The q-quantile (0 < q <= 1, nearest rank, interpolated in its bucket, at most max_ms) of a
 * histogram; 0 without samples. Pure. */
uint32_t shm_stats_quantile(const uint64_t hist[SHM_STATS_BUCKETS], uint32_t max_ms, double q);

/* The rows of res and scope with from <= index <= to, of the series name (NULL: every series
 * of the scope), sorted by name then index, in one read transaction. *out is malloc'ed (free
 * with shm_snapshot_free), *n may be 0. 0, SHM_EINVAL, SHM_ENOMEM, SHM_ECORRUPT. */
int shm_stats(shm_t *s, int res, int scope, const char *name, int64_t from, int64_t to,
              shm_stats_row_t **out, unsigned *n);

/* The names of the series of scope that have a row of res at index from or later, sorted;
 * *out malloc'ed as an array of SHM_NAME_MAX + 1 byte names. 0, SHM_EINVAL, SHM_ENOMEM. */
int shm_stats_names(shm_t *s, int res, int scope, int64_t from, char (**out)[SHM_NAME_MAX + 1],
                    unsigned *n);

/* Remove the rows past their retention as of now_ms. *pruned (may be NULL) = how many.
 * 0, SHM_ERDONLY, SHM_EFULL. */
int shm_stats_prune(shm_t *s, int64_t now_ms, unsigned *pruned);

#endif
