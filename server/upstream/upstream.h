/* upstream.h - HTTP/1.1 client to providers, with a per-worker keep-alive pool.
 *
 * Design note
 * -----------
 * Each worker owns one upstream_pool_t on its own loop. A request names a provider; the
 * pool reuses an idle connection to that origin (host, port, tls) or opens a new one
 * (TCP_NODELAY, TLS through tls.h with the provider's CA bundle and the host name checked,
 * resuming the last session of that origin). The caller gives the complete request head
 * (already rewritten: method, path, Host, credential, Content-Length) and body; the
 * pool sends them and parses the response with llhttp.
 *
 * Callbacks, in order: on_response_cb once (status and headers), on_body_cb zero or more
 * times with de-chunked body bytes as they arrive, then on_done_cb exactly once - unless
 * the caller aborted the request, after which no callback runs. The upstream_req_t is
 * freed right after on_done_cb returns; the caller must not use it afterwards.
 *
 * Failures before any response byte arrived are reported through on_done_cb with no
 * on_response_cb: UPSTREAM_ECONNECT, UPSTREAM_ETIMEDOUT_CONNECT, UPSTREAM_ETLS_VERIFY,
 * UPSTREAM_ETLS, UPSTREAM_ETIMEDOUT_FIRSTBYTE, UPSTREAM_EPROTO. A pooled connection that
 * turns out closed by the peer before any response byte is retried once, transparently,
 * on a fresh connection. Failures after on_response_cb (UPSTREAM_ETIMEDOUT_IDLE,
 * UPSTREAM_ERESET, UPSTREAM_EPROTO for bad chunking or a truncated body) also come through
 * on_done_cb; the caller then knows the body is incomplete.
 *
 * Timeouts come from the provider: connect (TCP connect + TLS handshake), first byte (from
 * the request written to the first response byte; the caller may override it per request),
 * idle (between two reads of the body).
 *
 * A connection goes back to the pool only when the response completed, keep-alive was
 * allowed by both sides, and nothing is left unread; idle connections are closed after
 * the provider's idle timeout or when pool_max_idle is exceeded.
 *
 * Threads: everything here belongs to the loop the pool was created on.
 */
#ifndef LLMGATE_UPSTREAM_H
#define LLMGATE_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "server/common/hdr.h"

#define UPSTREAM_ECONNECT            (-1) /* refused, unreachable, reset during connect */
#define UPSTREAM_ETIMEDOUT_CONNECT   (-2)
#define UPSTREAM_ETLS_VERIFY         (-3) /* certificate not trusted or wrong host name */
#define UPSTREAM_ETLS                (-4) /* other TLS failure */
#define UPSTREAM_ETIMEDOUT_FIRSTBYTE (-5)
#define UPSTREAM_ETIMEDOUT_IDLE      (-6)
#define UPSTREAM_ERESET              (-7) /* connection closed or reset mid-response */
#define UPSTREAM_EPROTO              (-8) /* unparseable response, bad chunking, truncated */
#define UPSTREAM_ENOMEM              (-9)
#define UPSTREAM_ECANCELED           (-10) /* pool closing */

typedef struct upstream_pool_s upstream_pool_t;
typedef struct upstream_req_s upstream_req_t;

typedef struct upstream_cbs_s {
    /* Status line and headers have arrived. hdrs are valid only during the call.
     * content_length is -1 when the response has none (chunked or close-delimited). */
    void (*on_response_cb)(upstream_req_t *req, int status, const http_hdr_t *hdrs, size_t nhdrs,
                           long long content_length, void *ud);
    /* De-chunked body bytes, valid only during the call. */
    void (*on_body_cb)(upstream_req_t *req, const char *data, size_t len, void *ud);
    /* The end: err 0 when the response completed, else an UPSTREAM_E* code. */
    void (*on_done_cb)(upstream_req_t *req, int err, void *ud);
} upstream_cbs_t;

/* Creates the pool; TLS client configurations are built once per provider from cfg
 * (shared by all pools through tls_conf_t, see upstream_tls_init). */
int upstream_pool_new(upstream_pool_t **out, uv_loop_t *loop, const cfg_t *cfg);

/* Aborts requests in flight (on_done_cb with UPSTREAM_ECANCELED), closes idle connections,
 * and frees the pool once every handle is closed (the loop must run until then). */
void upstream_pool_close(upstream_pool_t *pool);

/* Process-wide TLS set-up for every https provider in cfg (loads CA bundles once).
 * Call from the main thread before the workers start; err gets the reason on failure. */
int upstream_tls_init(const cfg_t *cfg, char *err, size_t errlen);
void upstream_tls_cleanup(void);

/* Start a request. head: the full request head ending in "\r\n\r\n"; body may be empty.
 * Both are copied. first_byte_timeout_ms 0 = the provider's. On success *out is the
 * request handle (valid until on_done_cb returns or upstream_req_abort is called). */
int upstream_request(upstream_pool_t *pool, const cfg_provider_t *prov, const char *head,
                     size_t head_len, const char *body, size_t body_len,
                     unsigned first_byte_timeout_ms, const upstream_cbs_t *cbs, void *ud,
                     upstream_req_t **out);

/* Backpressure: stop / restart reading the response (the idle timer is suspended while
 * paused). */
void upstream_req_pause(upstream_req_t *req);
void upstream_req_resume(upstream_req_t *req);

/* Cancel: no callback runs after this; the connection is closed (never pooled). */
void upstream_req_abort(upstream_req_t *req);

/* Whether the request went out on a pooled (reused) connection; for tests and metrics. */
int upstream_req_reused(const upstream_req_t *req);

const char *upstream_strerror(int err);

#endif
