/* conn.h - a client connection and the request it is serving (server-internal).
 *
 * Design note
 * -----------
 * A connection serves one request at a time, in order (HTTP/1.1 pipelining): llhttp is
 * paused at the end of each message, bytes that arrive meanwhile are kept unparsed in
 * `pending` (up to a cap, then reading stops: backpressure on the client), and parsing
 * resumes once the response is fully queued. Reading continues while a request is served
 * so that a client that goes away is noticed at once and its upstream request aborted.
 *
 * Timers: while waiting for a new request, the keep-alive idle timeout (close silently);
 * from the first byte of a request to its last header, the header timeout (408); then to
 * the end of the body, the body timeout (408). Upstream timeouts belong to upstream.c. The
 * one timer is lazy (ltimer.h): each step moves the deadline, nearly always later, and only
 * an earlier deadline touches libuv's timer heap.
 *
 * TLS (tls: in the config): each connection then owns a tls_conn_t. Ciphertext read is fed to
 * it, the handshake is driven (within header_timeout_ms of the accept), and all plaintext is
 * appended to `pending` exactly as a plaintext read would be; every write is encrypted at
 * once and its ciphertext queued on the same stream, so the write-queue accounting holds.
 * A close_notify precedes the FIN. Without TLS, `tls` is NULL and nothing else changes.
 *
 * Memory: when its response is complete, a req_t is cleared and kept in the worker's small
 * cache with its small buffers (req_recycle), or freed (req_free). Nothing of a request's
 * content survives it: lengths are zeroed and every other field is reset.
 *
 * Threads: everything here belongs to the worker's loop.
 */
#ifndef LLMGATE_CONN_H
#define LLMGATE_CONN_H

#include <stdint.h>
#include <uv.h>

#include "llhttp.h"
#include "server/auth.h"
#include "server/buf.h"
#include "server/cfgref.h"
#include "server/ltimer.h"
#include "server/rewrite.h"
#include "server/route.h"
#include "server/scan.h"
#include "server/tls.h"
#include "server/upstream.h"
#include "server/usage.h"
#include "shm/shm.h"

struct worker_s;

typedef struct hdr_span_s {
    size_t name_off, name_len, value_off, value_len;
} hdr_span_t;

typedef struct req_s {
    struct conn_s *conn;
    uint64_t start_ns; /* monotonic (worker_now_ns, as every *_ns here), first byte */
    int method;        /* llhttp_method_t */
    int http11;        /* 1 for HTTP/1.1, 0 for 1.0 */
    int keep_alive;    /* the client wants (and may have) keep-alive */
    size_t url_off, url_len;
    buf_t head; /* url and header bytes as received */
    hdr_span_t *spans;
    size_t nhdrs, spans_cap;
    http_hdr_t *hdrs;     /* built from spans at dispatch (head no longer moves) */
    http_hdr_t *hdrs_mem; /* storage of hdrs, kept when the request is recycled */
    size_t hdrs_cap;
    struct req_s *cache_next; /* in the worker's cache of finished requests */
    int admit_queued;         /* on the worker's admission queue (attempt.c) */
    struct req_s *admit_q_prev, *admit_q_next;
    buf_t body;

    /* proxying */
    cfg_ref_t *cfgref; /* the configuration this request is routed with (held to its end) */
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
    const char *suffix; /* upstream path suffix, e.g. "/chat/completions" */
    char *up_body;      /* body with the upstream model name spliced in (or NULL) */
    size_t up_body_len;
    buf_t up_head;
    upstream_req_t *up;
    int attempts;
    int response_started; /* a byte of the response went to the client */
    int chunked;          /* response framed with chunked encoding to the client */
    int up_paused;
    uint32_t send_wait_ms; /* while up_paused: how long the client may take nothing */
    /* accounting (access log, metrics) */
    const cfg_client_t *client; /* the authenticated client key, NULL when unauthenticated */
    char request_id[132];       /* the client's x-request-id if usable, else generated */
    int request_id_generated;
    int obs_status;         /* status of the response sent (0 = none: 499 in the log) */
    uint64_t obs_bytes_out; /* bytes written to the client */
    uint64_t upstream_ns;   /* time spent in finished upstream attempts */
    uint32_t sse_events;    /* "data:" events streamed, to estimate tokens of a cut stream */
    int strip_usage;        /* we asked for the usage chunk: the client does not get it */
    buf_t sse_held;         /* with strip_usage: the start of an event not yet complete */
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

typedef struct conn_s {
    uv_tcp_t tcp;
    ltimer_t timer; /* header, body, idle, wait, linger: one at a time (lazy, ltimer.h) */
    struct worker_s *w;
    struct conn_s *prev, *next; /* the worker's connection list */
    llhttp_t parser;
    req_t *req;        /* the request being parsed or served */
    int busy;          /* a complete request is being served */
    buf_t pending;     /* bytes read while busy, not yet parsed */
    size_t head_bytes; /* url + header bytes of the request being parsed */
    int err_status;    /* set by a parser callback that rejects the request */
    const char *err_msg;
    int closing;                       /* uv_close issued */
    int close_after;                   /* close once the current response is written */
    int shutting;                      /* FIN queued: no more reading or parsing */
    int processing;                    /* inside conn_process (re-entrancy guard) */
    void (*wait_cb)(struct conn_s *c); /* conn_wait: what the timer calls while busy */
    buf_t out;                         /* written this loop iteration, sent by conn_flush_all */
    struct conn_s *dirty_next;         /* the worker's list of connections with output */
    int dirty;
    int reading;
    int in_header_value;  /* parser state for header spans */
    int value_cut_inside; /* the last value span ended before the end of the input */
    const char *exec_end; /* end of the bytes given to llhttp_execute */
    tls_conn_t *tls;      /* client-facing TLS, or NULL for plain HTTP */
    int tls_started;      /* a first byte arrived (plain HTTP on the TLS port is told so) */
    int tls_ready;        /* handshake complete: plaintext may flow */
    int tls_failed;       /* encryption failed: the stream is unusable, close is scheduled */
    auth_cache_t auth;    /* the last client key that authenticated here (auth.h) */
} conn_t;

/* Send every connection's collected output (the worker's check handle calls it). */
void conn_flush_all(struct worker_s *w);

/* Accept one connection from server (a listener of w). */
void conn_accept(struct worker_s *w, uv_stream_t *server);

/* Graceful shutdown: close now if idle, else after the current response. */
void conn_drain(conn_t *c);

/* Close at once, aborting any upstream request. */
void conn_close(conn_t *c);

/* Queue bytes to the client (copied). 0 or a negative libuv code. */
int conn_write(conn_t *c, const char *data, size_t len);

/* Queue a chunk in chunked framing (or raw when !chunked). */
int conn_write_body(conn_t *c, int chunked, const char *data, size_t len);

/* While a request is served, the connection's timer is free: run cb(c) after ms (backoff,
 * waiting for capacity). Replaces any wait already set; cancelled by closing. */
void conn_wait(conn_t *c, uint64_t ms, void (*cb)(conn_t *c));

/* Forget the wait set by conn_wait (its callback will not run). */
void conn_wait_cancel(conn_t *c);

/* Bytes queued to the client and not yet written. */
size_t conn_write_queued(const conn_t *c);

/* A complete local response (status, JSON body); then the request is finished. */
void conn_respond(conn_t *c, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers);

/* An OpenAI-shaped error response; then the request is finished. */
void conn_respond_error(conn_t *c, int status, const char *code, const char *param, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));

/* The same with extra header lines ("Name: value\r\n"...). */
void conn_respond_error_hdr(conn_t *c, int status, const char *extra_headers, const char *code,
                            const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The response of the current request is fully queued: free it, go on with the next
 * pipelined request or close. abort_conn: the response could not be completed. */
void conn_request_done(conn_t *c, int abort_conn);

/* From proxy.c: serve a complete request. */
void proxy_handle(conn_t *c, req_t *r);
/* From proxy.c: the client is gone or the connection closes; drop upstream work. */
void proxy_abort(req_t *r);
/* From proxy.c: while the upstream is paused for r, the client took bytes; queued is what
 * is still queued to it (resumes the upstream below the low watermark). */
void proxy_on_drain(req_t *r, size_t queued);

void req_free(req_t *r);
/* A zeroed request for c, from the worker's cache when it has one; NULL without memory. */
req_t *req_new(conn_t *c);
/* End of a request: release what it holds and keep it (cleared) in the worker's cache, or
 * free it when the cache is full. */
void req_recycle(struct worker_s *w, req_t *r);
/* Free the worker's cache (at the worker's exit). */
void req_cache_free(struct worker_s *w);
/* From proxy.c: the request's access-log line and metrics, once, when it ends. */
void proxy_obs_finish(conn_t *c, req_t *r);
/* From proxy.c: take the client's x-request-id or make one (r->request_id). */
void proxy_request_id(conn_t *c, req_t *r);

#endif
