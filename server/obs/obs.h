/* obs.h - observability: Prometheus metrics, health and readiness, the access log and the
 * alert webhook, behind a narrow hook API that the request path calls.
 *
 * Design note
 * -----------
 * Two sources feed /metrics:
 *
 *   - this process's request path, through the hooks below. Each worker owns a shard
 *     (series table, histograms, access-log buffer) guarded by its own mutex, which only
 *     that worker and a scrape ever take: the hot path never waits on another worker. A
 *     scrape locks one shard at a time, merges it into a private table and renders.
 *     Families: llmgate_requests_total, llmgate_request_duration_seconds,
 *     llmgate_time_to_first_byte_seconds, llmgate_gateway_overhead_seconds,
 *     llmgate_retries_total, llmgate_rotations_total, llmgate_tokens_total,
 *     llmgate_cost_usd_total, llmgate_inflight_requests, ... (the list: server/obs/metrics.h).
 *
 *   - the shared store (shm_snapshot, shm_providers) read at scrape time: llmgate_key_*
 *     (status, cooldown left, in-flight, quota used, requests, outcomes, tokens, cost) and
 *     llmgate_provider_* (circuit). These are the numbers llmgatectl shows, for every
 *     process sharing the state dir: with several processes on one store, aggregate them
 *     with max(), not sum().
 *
 * Labels. model is the configured (client-facing) name the requested model or alias
 * resolves to; requests, durations and ttfb are counted under it. Tokens and cost are
 * counted under the model that served (served_model, after fallbacks; the requested one
 * when NULL). provider and key are configured names. A name that is not configured (an
 * unknown model a client asked for) becomes the empty label value, so a client cannot grow
 * the number of series. Key secrets never reach this module: keys are known by name.
 *
 * Readiness (/health/full): every configured model needs at least one key among the keys
 * of its deployments and, transitively, of its fallback models that is admissible by its
 * state now: not orphaned; ACTIVE or HALF_OPEN, or COOLING whose cooldown has passed, or
 * DEPLETED with a reset time that has passed; and its provider's circuit not OPEN. Rate
 * windows (RPM, RPD, TPM, max_inflight) are NOT considered: a full window empties by time
 * alone within a minute, and a readiness probe that flaps with traffic would take every
 * replica out of a load balancer at the busiest moment. 200 {"status":"ready",...} or 503
 * {"status":"not_ready","missing":[...]} naming each model without such a key and why each
 * of its keys is not admissible.
 *
 * Access log: one JSON line per request (fields: server/obs/accesslog.h), formatted on the
 * worker into its shard's buffer; a writer thread writes the buffers every 200 ms (sooner
 * past 64 KiB), so a worker never blocks on the log's file or pipe and lines of different
 * workers never interleave. If the writer cannot keep up, lines beyond 8 MiB per worker
 * are dropped and counted (llmgate_access_log_dropped_lines_total).
 *
 * Alerts: obs_key_event / obs_circuit_event queue an event (a short mutex, no I/O); a
 * thread POSTs the queued events as one JSON to alerts.webhook_url, at most once per
 * alerts.min_interval_ms. The same thread also compares the store once a second with what
 * it saw before, so changes made elsewhere (llmgatectl disable, another process, a cooldown
 * that ends) alert too; changes already reported by a hook are not reported twice. With
 * several processes on one store, each process posts what it sees: configure the webhook
 * on one. Details: server/obs/alerts.h.
 *
 * Threads. obs_init / obs_shutdown / obs_reload / obs_admin_start / obs_admin_stop /
 * obs_access_log_reopen: the main thread. obs_request_done, obs_retry, obs_rotation,
 * obs_inflight_add: the worker worker_id (any thread is safe, a foreign one only costs
 * contention). obs_key_event, obs_circuit_event, obs_render_*: any thread. Every hook is a
 * no-op before obs_init and after obs_shutdown.
 */
#ifndef LLMGATE_OBS_H
#define LLMGATE_OBS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "server/common/buf.h"
#include "server/common/cfgref.h"
#include "shm/shm.h"

/* One finished client request. Strings are read during the call only (copied if kept);
 * NULL means none. */
typedef struct obs_record_s {
    int64_t start_ms;         /* wall clock, ms since the epoch, first byte of the request */
    const char *request_id;   /* x-request-id as sent upstream */
    const char *client;       /* client key name, or NULL */
    const char *model;        /* as requested (a name, an alias or anything a client sent) */
    const char *served_model; /* the configured model that served (after fallbacks) */
    const char *provider;     /* of the last attempt, or NULL if none was made */
    const char *key;          /* of the last attempt (its name), or NULL */
    int attempts;             /* upstream attempts, 0 if answered locally */
    int status;               /* to the client; 499 if it went away before a status */
    int upstream_status;      /* of the last attempt, 0 if none */
    double ttfb_s;            /* request start to first response byte to the client, <0 none */
    double duration_s;        /* request start to the last byte queued to the client */
    double upstream_s;        /* time spent waiting on upstreams (connect to last byte,
                                 backoffs excluded); duration_s - upstream_s is overhead */
    uint32_t prompt_tokens, completion_tokens;
    uint32_t cached_tokens;    /* of prompt_tokens: read from a prompt cache */
    uint32_t reasoning_tokens; /* of completion_tokens */
    const char *api;           /* the client API ("chat", "responses", ...), NULL if none */
    int tokens_estimated;      /* 1 if the counts are an estimate (no usage seen) */
    double cost_usd;           /* obs_cost_usd() of the served model */
    uint64_t bytes_in;         /* request bytes from the client (head + body) */
    uint64_t bytes_out;        /* response bytes to the client */
    int stream;                /* the client asked for a stream */
} obs_record_t;

/* Set up metrics shards for nworkers workers (worker ids 0..nworkers-1), open the access log
 * (ref->cfg->access_log), start the access-log writer and, with alerts.webhook_url, the alert
 * thread. obs keeps its own reference to ref until obs_shutdown(); shm must outlive
 * obs_shutdown(). Nothing here blocks on the network. Returns 0, or -1 with a readable
 * message in err (e.g. the access log cannot be opened). */
int obs_init(cfg_ref_t *ref, shm_t *shm, unsigned nworkers, char *err, size_t errlen);

/* SIGHUP: switch to a new configuration (obs takes its own reference and drops the old
 * one). Its model, provider and key names become labels; readiness follows its models. The
 * access log, alerts and metrics.listen keep their start-up settings (a warning is logged if
 * they changed). Main thread. */
void obs_reload(cfg_ref_t *ref);

/* Flush the access log, send pending alerts (bounded by alerts.timeout_ms), stop the
 * threads, free everything. Call after the workers have stopped. */
void obs_shutdown(void);

/* Once per client request, when its response is complete (or abandoned), on its worker. */
void obs_request_done(unsigned worker_id, const obs_record_t *r);

/* A failed attempt followed by another key (rotation) or by the same route after a backoff
 * (retry). reason: "rate_limited", "server_error", "timeout", "connect", "auth", "quota",
 * "model_not_found"; anything else (or NULL) counts as "other". */
void obs_rotation(unsigned worker_id, const char *reason);
void obs_retry(unsigned worker_id, const char *reason);

/* The reason to pass for a failed attempt's outcome (shm_outcome_t .cls and .reason):
 * "quota" for SHM_RS_QUOTA, else by class: "rate_limited" (429), "server_error" (5xx),
 * "timeout", "connect", "auth"; anything else "other". A deployment skipped for a model the
 * provider does not serve is "model_not_found" (the caller knows that case). */
const char *obs_outcome_reason(int shm_class, int shm_reason);

/* Requests in flight on this worker: +1 when one starts, -1 when it is done. */
void obs_inflight_add(unsigned worker_id, int delta);

/* A key's status changed (enum shm_status values), reason as shm_reason_name() or free
 * text. Any thread; never blocks on I/O. */
void obs_key_event(const char *key, const char *provider, int old_status, int new_status,
                   const char *reason);

/* A provider's circuit changed (enum shm_circuit values). Any thread. */
void obs_circuit_event(const char *provider, int old_state, int new_state);

/* Cost in USD of tokens at the model's configured prices (USD per million tokens). */
double obs_cost_usd(const cfg_model_t *model, uint32_t prompt_tokens, uint32_t completion_tokens);

/* The Prometheus text exposition (format 0.0.4) into out (appended). Returns 0, or -1 if
 * out of memory. Content-Type: OBS_METRICS_CONTENT_TYPE. Any thread. */
#define OBS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
int obs_render_metrics(buf_t *out);

/* The readiness JSON into out (appended); returns the HTTP status, 200 or 503. Any thread. */
int obs_render_readiness(buf_t *out);

/* The liveness JSON ({"status":"ok"}) into out; returns 200. */
int obs_render_liveness(buf_t *out);

/* SIGUSR1: reopen the access log file (after logrotate moved it). No-op for stdout/off. */
void obs_access_log_reopen(void);

/* With metrics.listen "host:port", serve GET /metrics, /health and /health/full there on
 * main_loop (one request per connection). A bind failure is an error (-1, err) when the
 * address was configured, a warning in the log when it is the default one. Other modes: 0,
 * nothing started. Logs "admin http on ADDR (port N): /metrics /health /health/full". */
int obs_admin_start(uv_loop_t *main_loop, char *err, size_t errlen);

/* Close the admin listener and its connections (their close callbacks run on the loop).
 * Call it when shutdown begins: an open listener keeps the main loop running. */
void obs_admin_stop(void);

/* The admin listener's bound port, 0 if none. */
int obs_admin_port(void);

#endif
