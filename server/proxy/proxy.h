/* proxy.h - the proxy layer: what a client request becomes.
 *
 * Design note
 * -----------
 * Each worker has one proxy_t. It is the downstream server's handler (proxy_handler): a
 * complete request is authenticated, scanned and resolved to a model by proxy.c, then run
 * through the key policy by attempt.c (attempt.h): admission in the store, the upstream
 * request, judging the answer, retries, rotation and fallbacks, streaming back, recording.
 * A local answer (/health, /v1/models, errors) ends it at once.
 *
 * A request (req_t) starts with the http layer's part (http_req_t h); the rest is this
 * layer's. Requests come from the proxy's small cache of finished ones (their small buffers
 * are reused, so a request costs no allocation in the common case) and go back to it at
 * their end (the handler's end: access log and metrics once, then recycled). Nothing of a
 * request's content survives it: lengths are zeroed and every other field is reset.
 *
 * Threads: a proxy_t and its requests belong to the worker's loop.
 */
#ifndef LLMGATE_PROXY_H
#define LLMGATE_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "server/api/api.h"
#include "server/common/cfgref.h"
#include "server/common/clock.h"
#include "server/http/auth_store.h"
#include "server/http/conn.h"
#include "server/policy/route.h"
#include "server/api/scan.h"
#include "server/upstream/upstream.h"
#include "server/api/usage.h"
#include "shm/shm.h"
#include "shm/shm_obj.h"
#include "server/xlate/xlate.h"

#define PROXY_HELD_MAX 32 /* held-back successes per worker (attempt.c) */
#define PROXY_OBJ_MAX  64 /* objects created, not yet recorded, per worker (attempt.c) */

struct req_s;

/* A stored object a response created, recorded at the end of the loop iteration with the
 * others (attempt.c). Its data is its own: r may end meanwhile (then r is NULL). */
typedef struct proxy_obj_s {
    struct req_s *r;
    char id[SCAN_ID_MAX + 1];
    shm_obj_t o;
} proxy_obj_t;

typedef struct proxy_s {
    /* filled by the worker; cfg/cfgref kept current on reload */
    int id;
    const cfg_t *cfg;  /* cfgref->cfg */
    cfg_ref_t *cfgref; /* the worker's reference (a request takes its own) */
    shm_t *shm;        /* the process's store, shared by all workers */
    upstream_pool_t *pool;
    loop_clock_t *clock;
    http_server_t *http; /* the worker's downstream server (for draining) */
    /* ---- this layer's */
    route_state_t route;
    int finishing; /* the loop is closing: no check will come */
    /* Plain successes not yet recorded (attempt.c): recorded with the next admission or at
     * the end of the loop iteration; held_idle keeps poll from blocking meanwhile. */
    shm_resv_t held_resv[PROXY_HELD_MAX];
    shm_outcome_t held_o[PROXY_HELD_MAX];
    unsigned nheld;
    uv_idle_t held_idle;
    /* New objects (attempt.c): their affinities are written in one transaction at the
     * check; until then the response bytes that name one are held (proxy_obj_t.r). */
    proxy_obj_t objq[PROXY_OBJ_MAX];
    unsigned nobjq;
    /* Requests waiting for admission (attempt.c): admitted together at the check. */
    struct req_s *admit_head, *admit_tail;
    /* Finished requests kept for the next ones (proxy.c). */
    struct req_s *req_cache;
    unsigned nreq_cache;
} proxy_t;

typedef struct req_s {
    http_req_t h; /* first: the http layer's part (conn, head, body, ...) */
    proxy_t *px;
    struct req_s *cache_next; /* in the proxy's cache of finished requests */
    int admit_queued;         /* on the admission queue (attempt.c) */
    struct req_s *admit_q_prev, *admit_q_next;

    cfg_ref_t *cfgref;        /* the configuration this request is routed with (held to its end) */
    const api_adapter_t *api; /* the client API (api.h) */
    const api_op_t *op;       /* its operation */
    route_filter_t filter;    /* providers of that API; the stored object's key or group */
    char up_path[1024];       /* the operation's provider path after the base path, and the query */
    size_t up_path_len;
    char object_id[SCAN_ID_MAX + 1]; /* the stored object the request names, "" if none */
    shm_obj_t object;                /* what the store knows of it (object_id set) */
    int object_seen;                 /* a 2xx of API_OP_CREATES: its id is recorded */
    unsigned obj_slot;               /* 1 + its place in px->objq while that is unwritten */
    buf_t obj_held;                  /* the body bytes from the id on, until it is written */
    int obj_done, obj_done_err;      /* the upstream ended meanwhile (the error it ended with) */
    scan_result_t scan;
    const cfg_model_t *model;
    route_tried_t tried;
    route_cand_t pick;        /* the admitted (deployment, key) of the current attempt */
    shm_resv_t resv;          /* its reservation in the store */
    int admitted;             /* resv is live: exactly one record/release finishes it */
    uint32_t tokens_estimate; /* TPM reservation: prompt bytes / 4 + max_tokens */
    uint64_t attempt_ns;      /* monotonic start of the current attempt */
    uint64_t ttfb_ns;         /* monotonic time of the response head, 0 before */
    int up_status;            /* upstream HTTP status of the current attempt */
    usage_tail_t usage;
    /* The attempt's translation (translated.h), NULL when the provider speaks the client's
     * API: its pair, a stream's state, a JSON answer gathered; fail_xpair: of the attempt
     * whose answer fail_* holds. */
    const xlate_pair_t *xpair, *fail_xpair;
    void *xstate;
    buf_t xbody;
    int x_bad;           /* the provider's answer did not translate: the response ends as cut */
    int x_include_usage; /* the client's own stream_options.include_usage (a translated chat) */
    char x_path[512];    /* the provider path of a pair's upstream_path_of (Gemini's) */
    char *up_body;       /* body with the upstream model name spliced in (or NULL) */
    size_t up_body_len;
    buf_t up_head;
    upstream_req_t *up;
    int attempts;
    int response_started;  /* a byte of the response went to the client */
    int chunked;           /* response framed with chunked encoding to the client */
    int up_paused;         /* the upstream read waits for the client (h.want_drain too) */
    uint32_t send_wait_ms; /* while up_paused: how long the client may take nothing */
    /* accounting (access log, metrics) */
    const cfg_client_t *client; /* the authenticated client key, NULL when unauthenticated */
    auth_store_t store_client;  /* a store client's own copy (client points here then) */
    shm_budget_t budget;        /* with has_budget: the client's budgets at the last admission */
    int has_budget;
    int request_id_generated;
    uint64_t upstream_ns; /* time spent in finished upstream attempts */
    uint32_t sse_events;  /* "data:" events streamed, to estimate tokens of a cut stream */
    int strip_usage;      /* we asked for the usage chunk: the client does not get it */
    buf_t sse_held;       /* with strip_usage: the start of an event not yet complete */
    int obs_done;

    /* key policy (attempt.c) */
    shm_outcome_t ok_outcome; /* judged at the head of a 2xx, recorded at its end */
    int buffering;            /* a non-2xx answer is held back until it is judged */
    long long up_content_length;
    buf_t fail_head; /* the held (or last failed) answer: "Name: value\r\n"... */
    buf_t fail_body;
    int fail_status; /* its status, 0 = none; fail_err: transport error instead */
    int fail_err;
    const cfg_provider_t *fail_prov; /* who gave it */
    const cfg_key_t *fail_key;
    unsigned retries;          /* transient failures retried so far */
    uint64_t deadline_ns;      /* policy.request_timeout_ms after the request arrived */
    uint64_t wait_deadline_ns; /* wait_for_capacity_ms after the first refusal, 0 before */
} req_t;

/* The handler table the worker gives its http_server_t (ud = the worker's proxy_t). */
extern const http_handler_t proxy_handler;

/* Set up p's own handles on loop (the fields above the line filled). 0 or a libuv code. */
int proxy_init(proxy_t *p, uv_loop_t *loop);

/* The worker's check, after poll: admissions and held outcomes (attempt.c). */
void proxy_check(proxy_t *p);

/* The worker's loop is closing: record what is held, close p's handles. */
void proxy_close(proxy_t *p);

/* After the loop ended: free the request cache. */
void proxy_free(proxy_t *p);

/* The usage the response of r reported, read by its API's adapter; 1 if found. A stream
 * cut before its output count (u->partial) is given about a token per event streamed. */
static inline int req_usage(const req_t *r, usage_t *u)
{
    /* a translated attempt's usage is read from the provider's own bytes */
    if (!(r->xpair ? r->xpair->upstream : r->api)->usage(&r->usage, r->scan.stream, u))
        return 0;
    if (u->partial && r->sse_events > u->output)
        u->output = r->sse_events;
    return 1;
}

/* The proxy serving connection c. */
static inline proxy_t *conn_px(const conn_t *c)
{
    return (proxy_t *)c->srv->ud;
}

#endif
