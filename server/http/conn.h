/* conn.h - the downstream HTTP/1.1 server: client connections, request parsing, responses.
 *
 * This layer knows HTTP, not what a request is for. It parses a request (head and body,
 * with the configured limits) and hands it to the worker's handler table (http_handler_t):
 * the proxy layer above serves it, is told when the client goes away or drains, and
 * answers with conn_respond / conn_write. Nothing here includes the proxy.
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
 * Memory: the handler allocates requests (req_new: its own struct, an http_req_t first) and
 * takes them back at their end (end), so it may keep them, cleared, for the next ones.
 *
 * Errors: conn_respond_error writes the error body in the shape of the request's client API
 * (http_req_t.error_json, set by the handler once it knows the API; OpenAI's otherwise).
 *
 * Threads: everything here belongs to the worker's loop.
 */
#ifndef LLMGATE_CONN_H
#define LLMGATE_CONN_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "llhttp.h"
#include "server/http/auth.h"
#include "server/common/buf.h"
#include "server/common/clock.h"
#include "server/common/ltimer.h"
#include "server/common/hdr.h"
#include "server/tls/tls.h"

struct conn_s;
struct http_server_s;

typedef struct hdr_span_s {
    size_t name_off, name_len, value_off, value_len;
} hdr_span_t;

/* Writes an error body for status into buf (at most len - 1 bytes, NUL-terminated); returns
 * its length. The shape of one client API (error_json in errors.h is OpenAI's). */
typedef size_t (*http_error_json_fn)(char *buf, size_t len, int status, const char *message,
                                     const char *code, const char *param);

/* What this layer knows of a request. The handler's own request struct starts with it. */
typedef struct http_req_s {
    struct conn_s *conn;
    uint64_t start_ns; /* monotonic (clock.h), first byte */
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
    buf_t body;
    char request_id[132];          /* sent as x-request-id on every answer of conn_respond */
    int want_drain;                /* the handler waits for the client: call its drain */
    http_error_json_fn error_json; /* NULL: OpenAI's shape */
    int status_sent;               /* status of the response sent (0 = none) */
    uint64_t bytes_out;            /* bytes written to the client */
} http_req_t;

/* The handler table: how the layer above serves requests. Every call on the loop's thread.
 *   req_new  a zeroed request for c (an http_req_t first, conn set), or NULL without memory;
 *   serve    a complete request: answer it now or later, ending with conn_request_done
 *            (conn_respond* do that);
 *   abort    the client is gone (or the connection closes) while r is served: drop its work;
 *   drain    while r->want_drain, the client took bytes; queued is what is still queued;
 *   end      r is finished (answered, or abandoned after abort): account for it and take it
 *            back. r is not used by this layer after it. */
typedef struct http_handler_s {
    http_req_t *(*req_new)(struct conn_s *c);
    void (*serve)(struct conn_s *c, http_req_t *r);
    void (*abort)(http_req_t *r);
    void (*drain)(http_req_t *r, size_t queued);
    void (*end)(struct conn_s *c, http_req_t *r);
} http_handler_t;

/* One worker's server: its connections and what they share. The worker fills the fields
 * above the line and keeps cfg current; the rest is this layer's. */
typedef struct http_server_s {
    int id; /* the worker's, for logs */
    uv_loop_t *loop;
    const cfg_t *cfg;    /* the current configuration (limits) */
    tls_conf_t *tls;     /* client-facing TLS (shared, read-only), NULL = plain */
    loop_clock_t *clock; /* the worker's clock readings */
    const http_handler_t *handler;
    void *ud; /* the handler's (the proxy of this worker) */
    void (*on_conn_closed)(struct http_server_s *srv); /* after nconns went down */
    /* ---- */
    int draining;         /* no new keep-alive: connections close after their response */
    struct conn_s *conns; /* all open connections */
    unsigned nconns;
    /* Output is collected per connection during a loop iteration and sent once, after the
     * poll phase (conn_flush_all from the worker's check); flush_idle keeps poll from
     * blocking meanwhile. */
    uv_idle_t flush_idle;
    struct conn_s *dirty;
    char readbuf[64 * 1024]; /* every read of this loop lands here, then is parsed or kept */
} http_server_t;

typedef struct conn_s {
    uv_tcp_t tcp;
    ltimer_t timer; /* header, body, idle, wait, linger: one at a time (lazy, ltimer.h) */
    http_server_t *srv;
    struct conn_s *prev, *next; /* the server's connection list */
    llhttp_t parser;
    http_req_t *req;   /* the request being parsed or served */
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
    struct conn_s *dirty_next;         /* the server's list of connections with output */
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

/* Set up srv's own handles on srv->loop (the fields above the line filled). 0 or a libuv
 * code. */
int http_server_init(http_server_t *srv);

/* Stop accepting keep-alive: idle connections close now, busy ones after their response. */
void http_server_drain(http_server_t *srv);

/* Close every connection at once (aborting what they serve). */
void http_server_close_all(http_server_t *srv);

/* Close srv's own handles (when it has no connections left). */
void http_server_close(http_server_t *srv);

/* Send every connection's collected output (the worker's check handle calls it). */
void conn_flush_all(http_server_t *srv);

/* Accept one connection from a listener of srv. */
void conn_accept(http_server_t *srv, uv_stream_t *listener);

/* Close at once, aborting any request being served (handler abort, then end). */
void conn_close(conn_t *c);

/* Queue bytes to the client (copied). 0 or a negative libuv code. */
int conn_write(conn_t *c, const char *data, size_t len);

/* Queue a chunk in chunked framing (or raw when !chunked). */
int conn_write_body(conn_t *c, int chunked, const char *data, size_t len);

/* While a request is served, the connection's timer is free: run cb(c) after ms (backoff,
 * waiting for capacity, the client's send timeout). Replaces any wait already set;
 * cancelled by closing. */
void conn_wait(conn_t *c, uint64_t ms, void (*cb)(conn_t *c));

/* Forget the wait set by conn_wait (its callback will not run). */
void conn_wait_cancel(conn_t *c);

/* Bytes queued to the client and not yet written. */
size_t conn_write_queued(const conn_t *c);

/* A complete local response (status, body); then the request is finished. extra_headers:
 * "Name: value\r\n" lines or NULL. */
void conn_respond(conn_t *c, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers);

/* An error response in the request's API shape; then the request is finished. */
void conn_respond_error(conn_t *c, int status, const char *code, const char *param, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));

/* The same with extra header lines ("Name: value\r\n"...). */
void conn_respond_error_hdr(conn_t *c, int status, const char *extra_headers, const char *code,
                            const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The response of the current request is fully queued: end it (handler end), go on with the
 * next pipelined request or close. abort_conn: the response could not be completed. */
void conn_request_done(conn_t *c, int abort_conn);

/* The request's path (without query), for routing. */
static inline const char *http_req_path(const http_req_t *r, size_t *len)
{
    const char *url = r->head.data ? r->head.data + r->url_off : "";
    size_t n = 0;

    while (n < r->url_len && url[n] != '?' && url[n] != '#')
        n++;
    *len = n;
    return url;
}

#endif
