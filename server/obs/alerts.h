/* alerts.h - the alert webhook: key status and provider circuit changes, POSTed as JSON.
 *
 * Design note
 * -----------
 * Events enter a bounded queue (ALERTS_QUEUE events; when full the oldest is dropped and
 * counted) under a mutex held for a copy, never for I/O: alerts_key_event() may be called
 * from a worker in the middle of a request. One thread owns everything else:
 *
 *   - it POSTs the queued events, up to ALERTS_BATCH in one body, at most once per
 *     min_interval_ms: events that arrive meanwhile wait and go together in the next POST
 *     (rate limited, nothing lost below the queue bound). The first event after a quiet
 *     period goes at once. A POST that fails (connect, timeout, a status other than 2xx) is
 *     tried again with the next POST; after ALERTS_TRIES failures its events are dropped.
 *   - with a store, it reads every key's status and every provider's circuit each poll_ms
 *     and compares with the previous reading, so changes the hooks never see (llmgatectl,
 *     another process, a cooldown running out) are alerted too. A hook's event updates that
 *     reading, so the same change is not alerted twice.
 *
 * Which key changes alert: to or from disabled, invalid or depleted; with include_cooling
 * also the routine ones between active, cooling and half_open. Every circuit change alerts.
 *
 * The POST: HTTP/1.1 over a plain socket (http:// only), "Connection: close", the whole
 * exchange bounded by timeout_ms. The body:
 *   {"source":"llmgate","host":"web-1","pid":123,"sent_at":"2026-01-02T03:04:05.678Z",
 *    "dropped":0,"text":"llmgate: key k1 (openai) active -> invalid (auth)",
 *    "events":[{"time":"...","type":"key_status","key":"k1","provider":"openai",
 *               "from":"active","to":"invalid","reason":"auth"},
 *              {"time":"...","type":"circuit","provider":"openai","from":"closed","to":"open"}]}
 * ("text" summarises the events for chat webhooks that show only that field). Keys are
 * named, never their secrets. The webhook URL itself is never logged (it may carry a
 * token): messages name host:port.
 *
 * Threads: alerts_start / alerts_stop on one thread; the rest from any thread.
 */
#ifndef LLMGATE_ALERTS_H
#define LLMGATE_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "shm/shm.h"

#define ALERTS_QUEUE 256
#define ALERTS_BATCH 64
#define ALERTS_TRIES 3

typedef struct alerts_opts_s {
    const char *host; /* webhook host (no brackets), port, path (+ query), Host header */
    uint16_t port;
    const char *path;
    const char *host_header;
    uint32_t min_interval_ms; /* 0 = no rate limit */
    uint32_t timeout_ms;
    int include_cooling;
    shm_t *shm;       /* NULL: only hook events */
    uint32_t poll_ms; /* store reading period; 0 = 1000 */
} alerts_opts_t;

typedef struct alerts_s alerts_t;

/* Copies what it needs of o; starts the thread. 0, or -1 with err. */
int alerts_start(const alerts_opts_t *o, alerts_t **out, char *err, size_t errlen);

/* Stop the thread after one last POST of what is queued (bounded by timeout_ms). NULL ok. */
void alerts_stop(alerts_t *a);

/* enum shm_status values; reason free text (NULL = none). NULL a: no-op. */
void alerts_key_event(alerts_t *a, const char *key, const char *provider, int old_status,
                      int new_status, const char *reason);

/* enum shm_circuit values. */
void alerts_circuit_event(alerts_t *a, const char *provider, int old_state, int new_state);

typedef struct alerts_stats_s {
    uint64_t posts_ok, posts_failed;
    uint64_t events_sent, events_dropped;
    uint64_t polls; /* store readings done */
    unsigned queued;
} alerts_stats_t;

void alerts_stats(alerts_t *a, alerts_stats_t *out);

#endif
