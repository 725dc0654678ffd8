/* metrics.h - this process's request metrics: one shard per worker, merged at scrape.
 *
 * Design note
 * -----------
 * A shard holds a small open-addressing table from a series id (the metric and its label
 * values as configuration indices, packed in 64 bits) to its values, plus fixed arrays for
 * the families without configured labels. Only its worker writes a shard, under the
 * shard's own mutex, which a scrape takes for the time of one merge: workers never wait
 * for each other, and a worker waits for a scrape at most one merge (microseconds).
 *
 * Label values come from the configuration only (models by canonical name, providers,
 * keys): a name that is not configured is counted under "" (see obs.h). So the number of
 * series is bounded by the configuration, whatever clients send. Across reloads the names
 * accumulate (a removed key keeps its series until restart).
 *
 * Families rendered by metrics_render (all names prefixed llmgate_):
 *   requests_total{model,provider,key,status_class}             counter
 *   request_duration_seconds{model,provider}                     histogram (latency buckets)
 *   time_to_first_byte_seconds{model,provider}                   histogram (latency buckets)
 *   gateway_overhead_seconds                                     histogram (overhead buckets)
 *   retries_total{reason}, rotations_total{reason}               counter (every reason, 0 too)
 *   tokens_total{model,type="prompt"|"completion"}               counter
 *   cost_usd_total{model}                                        counter
 *   estimated_usage_requests_total{model}                        counter
 *   received_bytes_total, sent_bytes_total                       counter
 *   inflight_requests                                            gauge
 * status_class is "1xx".."5xx", or "other" for a status outside 100..599.
 *
 * Threads: metrics_create/destroy on one thread while no other call runs; the rest from
 * any thread (shard i is meant for worker i).
 */
#ifndef LLMGATE_METRICS_H
#define LLMGATE_METRICS_H

#include "config/config.h"
#include "server/common/buf.h"
#include "server/obs/obs.h"

/* Request duration and time to first byte, seconds: 5 ms to 2 min (LLM answers). */
#define METRICS_LATENCY_NBOUNDS 15
extern const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS];
/* Time spent in llmgate itself, seconds: 100 us to 100 ms. */
#define METRICS_OVERHEAD_NBOUNDS 10
extern const double metrics_overhead_bounds[METRICS_OVERHEAD_NBOUNDS];

/* Retry and rotation reasons, in label order; the last is "other". */
#define METRICS_NREASONS 8
extern const char *const metrics_reasons[METRICS_NREASONS];

typedef struct metrics_s metrics_t;

/* nshards >= 1 shards; label names copied from cfg. 0 or -1 (no memory). */
int metrics_create(const cfg_t *cfg, unsigned nshards, metrics_t **out);
void metrics_destroy(metrics_t *m);

/* A new configuration (SIGHUP): its names are added; names of the old one keep their
 * series (an unconfigured name still counts under "" only if it was never configured).
 * Waits for a scrape in progress and for each shard once. 0, or -1 (no memory: the old
 * names stay). Any thread, one at a time. */
int metrics_reload(metrics_t *m, const cfg_t *cfg);

/* Count one finished request into shard (an out-of-range shard uses the last one). */
void metrics_request(metrics_t *m, unsigned shard, const obs_record_t *r);

/* A rotation (rotation 1) or a retry (0) for reason (see metrics_reasons). */
void metrics_retry(metrics_t *m, unsigned shard, int rotation, const char *reason);

void metrics_inflight(metrics_t *m, unsigned shard, int delta);

/* Index of reason in metrics_reasons (unknown or NULL: the last, "other"). */
unsigned metrics_reason_index(const char *reason);

/* The canonical model name that name (a model name or alias) resolves to, or NULL. Not
 * safe against a concurrent metrics_reload (tests). */
const char *metrics_model_name(metrics_t *m, const char *name);

/* Merge every shard and append the families above. 0, or -1 if memory ran out. */
int metrics_render(metrics_t *m, buf_t *out);

#endif
