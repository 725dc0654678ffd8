/* conn.c - client connections: llhttp request parsing with limits, timeouts,
 * pipelining and keep-alive, response writing, optional TLS. See conn.h for the design. */
#include "server/http/conn.h"
#include "server/common/errors.h"
#include "server/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes of a following pipelined request kept while one is being served. */
#define PENDING_CAP (256 * 1024)
/* After a response that ends the connection, how long to wait for the client to take it. */
#define LINGER_MS 5000

typedef struct wreq_s {
    uv_write_t w;
    conn_t *c;
    char *owned; /* TLS: ciphertext handed over by tls_conn_take_output, else NULL */
    char data[]; /* plain: the bytes written */
} wreq_t;

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static const cfg_limits_t *limits(const conn_t *c)
{
    return &c->srv->cfg->limits;
}

/* The connection's one timeout (lazy: moving it later costs nothing, see ltimer.h). */
static void timer_set(conn_t *c, uint64_t ms, uv_timer_cb cb)
{
    if (!c->closing && !c->tls_failed) /* a failed TLS stream has its close scheduled */
        ltimer_start(&c->timer, cb, ms);
}

/* ---- closing ---------------------------------------------------------------------- */

static void on_close_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    http_server_t *srv = c->srv;

    /* Two handles (tcp and timer) share the connection; free after the second. */
    if (++c->closing < 3)
        return;
    buf_free(&c->pending);
    buf_free(&c->out);
    tls_conn_free(c->tls);
    auth_cache_clear(&c->auth);
    free(c);
    srv->nconns--;
    if (srv->on_conn_closed)
        srv->on_conn_closed(srv);
}

void conn_close(conn_t *c)
{
    http_server_t *srv = c->srv;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->req) {
        http_req_t *r = c->req;
        c->req = NULL;
        if (c->busy)
            srv->handler->abort(r);
        srv->handler->end(c, r);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close(ltimer_handle(&c->timer), on_close_cb); /* stops it: nothing fires after this */
    uv_close((uv_handle_t *)&c->tcp, on_close_cb);
}

static void on_linger_timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static int tls_flush(conn_t *c);
static int conn_flush(conn_t *c);

static void on_shutdown_cb(uv_shutdown_t *sr, int status)
{
    conn_t *c = sr->data;

    (void)status;
    free(sr);
    conn_close(c);
}

/* Send what is queued, then FIN, then close (bounded by LINGER_MS). */
static void conn_shutdown(conn_t *c)
{
    uv_shutdown_t *sr;

    if (c->closing || c->shutting)
        return;
    c->shutting = 1;
    if (conn_flush(c) != 0) {
        conn_close(c);
        return;
    }
    if (c->tls && c->tls_ready && !c->tls_failed && tls_conn_close_notify(c->tls) == 0)
        tls_flush(c); /* queued before the FIN */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    timer_set(c, LINGER_MS, on_linger_timeout_cb);
    sr = malloc(sizeof(*sr));
    if (!sr) {
        conn_close(c);
        return;
    }
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown_cb) != 0) {
        free(sr);
        conn_close(c);
    }
}

static void on_wait_cb(uv_timer_t *t)
{
    conn_t *c = t->data;
    void (*cb)(conn_t *) = c->wait_cb;

    c->wait_cb = NULL;
    if (cb && !c->closing)
        cb(c);
}

void conn_wait(conn_t *c, uint64_t ms, void (*cb)(conn_t *c))
{
    c->wait_cb = cb;
    timer_set(c, ms, on_wait_cb);
}

void conn_wait_cancel(conn_t *c)
{
    c->wait_cb = NULL;
    if (!c->closing && !c->tls_failed)
        ltimer_stop(&c->timer);
}

/* ---- writing ---------------------------------------------------------------------- */

size_t conn_write_queued(const conn_t *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) + c->out.len;
}

static void on_write_cb(uv_write_t *wr, int status)
{
    wreq_t *q = (wreq_t *)wr;
    conn_t *c = q->c;

    free(q->owned);
    free(q);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!c->closing && c->req && c->req->want_drain)
        c->srv->handler->drain(c->req, conn_write_queued(c));
}

/* Write parts as they are (copied into one allocation). */
static int tls_writev(conn_t *c, const uv_buf_t *parts, unsigned nparts, size_t total);

static void on_flush_idle_cb(uv_idle_t *h)
{
    (void)h; /* only there so that poll does not block while output waits for the check */
}

/* Write parts: as they are, or encrypted on a TLS connection. */
static int conn_writev(conn_t *c, const uv_buf_t *parts, unsigned nparts)
{
    size_t total = 0;
    http_server_t *srv = c->srv;

    if (c->closing)
        return UV_ECANCELED;
    for (unsigned i = 0; i < nparts; i++)
        total += parts[i].len;
    if (c->req) {
        /* the status of the response (not of an interim 100 Continue), for the access log */
        if (!c->req->status_sent && parts[0].len > 12 && memcmp(parts[0].base, "HTTP/1.", 7) == 0 &&
            atoi(parts[0].base + 9) >= 200)
            c->req->status_sent = atoi(parts[0].base + 9);
        c->req->bytes_out += total;
    }
    /* Collected, and sent once at the end of this loop iteration: a response head and its
     * body, or the SSE events of one upstream read, leave in one write. */
    if (buf_reserve(&c->out, total) != 0)
        return UV_ENOMEM;
    for (unsigned i = 0; i < nparts; i++)
        buf_append(&c->out, parts[i].base, parts[i].len);
    if (!c->dirty) {
        c->dirty = 1;
        c->dirty_next = srv->dirty;
        if (!srv->dirty)
            uv_idle_start(&srv->flush_idle, on_flush_idle_cb);
        srv->dirty = c;
    }
    return 0;
}

/* Send what c collected as it is: as much as the socket takes at once, the rest queued. */
static int flush_plain(conn_t *c)
{
    size_t len = c->out.len;
    int rc;

    if (len == 0 || c->closing)
        return 0;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len) {
            buf_reset(&c->out); /* the buffer is kept for the next response */
            return 0;
        }
        if (n < 0 && n != UV_EAGAIN)
            return n;
        if (n > 0) {
            memmove(c->out.data, c->out.data + n, len - (size_t)n);
            c->out.len = len - (size_t)n;
        }
    }
    {
        /* the buffer itself goes to the write request: no copy */
        wreq_t *q = malloc(sizeof(*q));
        uv_buf_t b;
        if (!q)
            return UV_ENOMEM;
        q->c = c;
        q->owned = c->out.data;
        b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        c->out.data = NULL;
        c->out.len = c->out.cap = 0;
        rc = uv_write(&q->w, (uv_stream_t *)&c->tcp, &b, 1, on_write_cb);
        if (rc != 0) {
            free(q->owned);
            free(q);
        }
        return rc;
    }
}

/* Send what c collected (encrypted on a TLS connection). */
static int conn_flush(conn_t *c)
{
    if (c->tls && c->out.len && !c->closing) {
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        int rc = tls_writev(c, &b, 1, c->out.len);
        buf_reset(&c->out);
        return rc;
    }
    return flush_plain(c);
}

void conn_flush_all(http_server_t *srv)
{
    conn_t *c = srv->dirty;

    srv->dirty = NULL;
    uv_idle_stop(&srv->flush_idle);
    while (c) {
        conn_t *next = c->dirty_next;
        c->dirty = 0;
        c->dirty_next = NULL;
        if (!c->closing && conn_flush(c) != 0)
            conn_close(c);
        /* a flush that the socket took whole has no write callback: resume from here too */
        if (!c->closing && c->req && c->req->want_drain)
            srv->handler->drain(c->req, conn_write_queued(c));
        c = next;
    }
}

int conn_write(conn_t *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return conn_writev(c, &b, 1);
}

int conn_write_body(conn_t *c, int chunked, const char *data, size_t len)
{
    char size_line[24], *end = size_line + sizeof(size_line) - 2, *p;
    uv_buf_t parts[3];

    if (len == 0)
        return 0;
    if (!chunked)
        return conn_write(c, data, len);
    /* "%zx\r\n" without printf: one per streamed chunk */
    end[0] = '\r';
    end[1] = '\n';
    p = u64_hex_digits(end, len);
    parts[0] = uv_buf_init(p, (unsigned)(end + 2 - p));
    parts[1] = uv_buf_init((char *)data, (unsigned)len);
    parts[2] = uv_buf_init("\r\n", 2);
    return conn_writev(c, parts, 3);
}

void conn_respond(conn_t *c, int status, const char *content_type, const char *body, size_t len,
                  const char *extra_headers)
{
    http_req_t *r = c->req;
    /* A request the parser refused has close_after set; a well-formed one refused by its
     * handler (a 400 about its body) leaves the connection open. */
    int keep = r && r->keep_alive && !c->close_after && !c->srv->draining && status != 408 &&
               status != 413 && status != 414 && status != 431;
    char head[512];
    uv_buf_t parts[2];
    int n;

    if (!keep)
        c->close_after = 1;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
                 status, http_reason(status), content_type, len, extra_headers ? extra_headers : "",
                 r && r->request_id[0] ? "x-request-id: " : "",
                 r && r->request_id[0] ? r->request_id : "", r && r->request_id[0] ? "\r\n" : "",
                 keep ? "" : "Connection: close\r\n");
    parts[0] = uv_buf_init(head, (unsigned)n);
    parts[1] = uv_buf_init((char *)body, (unsigned)len);
    conn_writev(c, parts, 2);
    conn_request_done(c, 0);
}

static void respond_error_v(conn_t *c, int status, const char *extra, const char *code,
                            const char *param, const char *fmt, va_list ap)
{
    char msg[512], body[1024];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (c->req && c->req->error_json)
        n = c->req->error_json(body, sizeof(body), status, msg, code, param);
    else
        n = error_json(body, sizeof(body), msg, error_type_for(status), param, code);
    conn_respond(c, status, "application/json", body, n, extra);
}

void conn_respond_error(conn_t *c, int status, const char *code, const char *param, const char *fmt,
                        ...)
{
    va_list ap;

    va_start(ap, fmt);
    respond_error_v(c, status, NULL, code, param, fmt, ap);
    va_end(ap);
}

void conn_respond_error_hdr(conn_t *c, int status, const char *extra_headers, const char *code,
                            const char *param, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    respond_error_v(c, status, extra_headers, code, param, fmt, ap);
    va_end(ap);
}

/* ---- parsing ---------------------------------------------------------------------- */

static void on_header_timeout_cb(uv_timer_t *t);

static int reject(conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1; /* llhttp: HPE_USER */
}

static int on_message_begin_cb(llhttp_t *p)
{
    conn_t *c = p->data;
    http_req_t *r = c->srv->handler->req_new(c);

    if (!r)
        return reject(c, 500, "out of memory");
    r->start_ns = loop_clock_ns(c->srv->clock);
    c->req = r;
    c->head_bytes = 0;
    c->in_header_value = 0;
    timer_set(c, limits(c)->header_timeout_ms, on_header_timeout_cb);
    return 0;
}

static int count_head(conn_t *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > limits(c)->max_header_bytes)
        return reject(c, 431, "request header fields too large");
    return 0;
}

static int on_url_cb(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    http_req_t *r = c->req;

    if (r->url_len == 0)
        r->url_off = r->head.len;
    r->url_len += len;
    if (r->url_len > limits(c)->max_url_bytes)
        return reject(c, 414, "request URI too long");
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500, "out of memory");
    return count_head(c, len);
}

static int on_header_field_cb(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    http_req_t *r = c->req;
    hdr_span_t *s;

    if (r->nhdrs == 0 || c->in_header_value) {
        if (r->nhdrs >= limits(c)->max_headers)
            return reject(c, 431, "too many request header fields");
        if (r->nhdrs == r->spans_cap) {
            size_t cap = r->spans_cap ? r->spans_cap * 2 : 16;
            hdr_span_t *ns = realloc(r->spans, cap * sizeof(*ns));
            if (!ns)
                return reject(c, 500, "out of memory");
            r->spans = ns;
            r->spans_cap = cap;
        }
        s = &r->spans[r->nhdrs++];
        memset(s, 0, sizeof(*s));
        s->name_off = r->head.len;
        s->value_off = r->head.len;
        c->in_header_value = 0;
    }
    s = &r->spans[r->nhdrs - 1];
    s->name_len += len;
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500, "out of memory");
    return count_head(c, len);
}

static int on_header_value_cb(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    http_req_t *r = c->req;
    hdr_span_t *s = &r->spans[r->nhdrs - 1];

    if (!c->in_header_value) {
        s->value_off = r->head.len;
        c->in_header_value = 1;
    } else if (c->value_cut_inside) {
        /* llhttp unfolds obs-fold (a header continued on the next line) into a second span
         * of the same value; a value split by a read ends at the end of the input instead.
         * RFC 9112 lets a server refuse obs-fold, and a proxy should: the provider could
         * read the header differently. */
        return reject(c, 400, "obsolete header line folding is not allowed");
    }
    c->value_cut_inside = at + len != c->exec_end;
    s->value_len += len;
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500, "out of memory");
    return count_head(c, len);
}

static void on_body_timeout_cb(uv_timer_t *t);

static int on_headers_complete_cb(llhttp_t *p)
{
    conn_t *c = p->data;
    http_req_t *r = c->req;

    r->method = llhttp_get_method(p);
    r->http11 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > limits(c)->max_body_bytes)
        return reject(c, 413, "request body too large");
    /* The head will not grow any more: resolve spans into header views. */
    if (r->nhdrs > r->hdrs_cap || !r->hdrs_mem) {
        size_t cap = r->nhdrs > 16 ? r->nhdrs : 16;
        http_hdr_t *nh = malloc(cap * sizeof(*nh));
        if (!nh)
            return reject(c, 500, "out of memory");
        free(r->hdrs_mem);
        r->hdrs_mem = nh;
        r->hdrs_cap = cap;
    }
    r->hdrs = r->hdrs_mem;
    for (size_t i = 0; i < r->nhdrs; i++) {
        r->hdrs[i].name = r->head.data + r->spans[i].name_off;
        r->hdrs[i].name_len = r->spans[i].name_len;
        r->hdrs[i].value = r->head.data + r->spans[i].value_off;
        r->hdrs[i].value_len = r->spans[i].value_len;
    }
    if (r->http11 && (p->flags & (F_CONTENT_LENGTH | F_CHUNKED))) {
        size_t vlen;
        const char *v = hdr_find(r->hdrs, r->nhdrs, "expect", &vlen);
        if (v && vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
            conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    timer_set(c, limits(c)->body_timeout_ms, on_body_timeout_cb);
    return 0;
}

static int on_body_cb(llhttp_t *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    http_req_t *r = c->req;

    if (r->body.len + len > limits(c)->max_body_bytes)
        return reject(c, 413, "request body too large");
    if (buf_append(&r->body, at, len) != 0)
        return reject(c, 500, "out of memory");
    return 0;
}

static int on_message_complete_cb(llhttp_t *p)
{
    conn_t *c = p->data;

    c->req->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED; /* one request at a time: resume after the response */
}

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin_cb;
    settings.on_url = on_url_cb;
    settings.on_header_field = on_header_field_cb;
    settings.on_header_value = on_header_value_cb;
    settings.on_headers_complete = on_headers_complete_cb;
    settings.on_body = on_body_cb;
    settings.on_message_complete = on_message_complete_cb;
}

/* ---- timeouts --------------------------------------------------------------------- */

static void request_timeout(conn_t *c, const char *what)
{
    if (c->busy || c->closing)
        return;
    if (!c->req) {
        /* keep-alive idle: nothing was asked, close quietly */
        conn_close(c);
        return;
    }
    c->close_after = 1;
    conn_respond_error(c, 408, "request_timeout", NULL, "%s", what);
}

static void on_idle_timeout_cb(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (!c->req)
        conn_close(c);
}

static void on_header_timeout_cb(uv_timer_t *t)
{
    request_timeout(t->data, "timed out waiting for the request headers");
}

static void on_body_timeout_cb(uv_timer_t *t)
{
    request_timeout(t->data, "timed out waiting for the request body");
}

/* ---- TLS ------------------------------------------------------------------------------ */

/* Largest TLS record payload: the parts of one write up to this size go out as one record. */
#define TLS_RECORD_MAX 16384

static void on_tls_failed_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

/* The TLS stream cannot go on (a record could not be made or queued). Close on the next loop
 * turn rather than here: the caller may be inside a request that conn_close would free. */
static void tls_fail(conn_t *c)
{
    if (c->closing || c->tls_failed)
        return;
    ltimer_start(&c->timer, on_tls_failed_cb, 0);
    c->tls_failed = 1; /* after the start: timer_set ignores every later timer */
}

/* Queue the ciphertext the TLS layer produced (handshake, records, alerts). 0 or a libuv
 * code; on failure the stream is lost (tls_fail). */
static int tls_flush(conn_t *c)
{
    wreq_t *q;
    char *out;
    size_t len;
    uv_buf_t b;
    int rc;

    tls_conn_take_output(c->tls, &out, &len);
    if (!out)
        return 0;
    q = malloc(sizeof(*q));
    if (!q) {
        free(out);
        tls_fail(c);
        return UV_ENOMEM;
    }
    q->c = c;
    q->owned = out;
    b = uv_buf_init(out, (unsigned)len);
    rc = uv_write(&q->w, (uv_stream_t *)&c->tcp, &b, 1, on_write_cb);
    if (rc != 0) {
        free(out);
        free(q);
        tls_fail(c);
    }
    return rc;
}

static int tls_writev(conn_t *c, const uv_buf_t *parts, unsigned nparts, size_t total)
{
    char joined[TLS_RECORD_MAX];
    int rc = 0;

    if (!c->tls_ready || c->tls_failed)
        return UV_ENOTCONN;
    if (nparts > 1 && total <= sizeof(joined)) {
        /* one record for a small response or an SSE chunk with its framing, not one per part */
        size_t o = 0;
        for (unsigned i = 0; i < nparts; i++) {
            memcpy(joined + o, parts[i].base, parts[i].len);
            o += parts[i].len;
        }
        rc = tls_conn_write(c->tls, joined, total);
    } else {
        for (unsigned i = 0; i < nparts && rc == 0; i++)
            if (parts[i].len > 0)
                rc = tls_conn_write(c->tls, parts[i].base, parts[i].len);
    }
    if (rc != 0) {
        log_debug("worker %d: TLS write failed: %s", c->srv->id, tls_strerror(rc));
        tls_fail(c);
        return UV_EPROTO;
    }
    return tls_flush(c);
}

static void on_handshake_timeout_cb(uv_timer_t *t)
{
    conn_t *c = t->data;

    log_debug("worker %d: TLS handshake not complete after %u ms, closing", c->srv->id,
              limits(c)->header_timeout_ms);
    conn_close(c);
}

/* Plain HTTP sent to the TLS port: say so in plain text (as nginx does), then close. */
static void tls_refuse_plain(conn_t *c)
{
    char body[512], head[256];
    size_t n = error_json(body, sizeof(body), "this port speaks HTTPS only: use https://",
                          error_type_for(400), NULL, "https_required");
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      n);

    log_debug("worker %d: plain HTTP on the TLS port, refused", c->srv->id);
    /* not through conn_writev: this answer is not encrypted */
    buf_append(&c->out, head, (size_t)hn);
    buf_append(&c->out, body, n);
    flush_plain(c);
    conn_shutdown(c);
}

/* Ciphertext read: drive the handshake, then move all plaintext to `pending`. Returns 1 if
 * plaintext was added (the caller goes on as after a plaintext read), else 0. */
static int tls_input(conn_t *c, const char *data, size_t len)
{
    size_t before = c->pending.len;
    int n;

    if (!c->tls_started) {
        c->tls_started = 1;
        if (data[0] >= 'A' && data[0] <= 'Z') { /* a TLS record starts with 20..24 */
            tls_refuse_plain(c);
            return 0;
        }
    }
    if (tls_conn_feed(c->tls, data, len) != 0) {
        conn_close(c);
        return 0;
    }
    if (!c->tls_ready) {
        n = tls_conn_handshake(c->tls);
        if (tls_flush(c) != 0)
            return 0;
        if (n == TLS_WANT)
            return 0;
        if (n != 0) {
            log_debug("worker %d: TLS handshake failed: %s", c->srv->id, tls_strerror(n));
            conn_shutdown(c); /* the alert, if any, goes out before the FIN */
            return 0;
        }
        c->tls_ready = 1;
        timer_set(c, limits(c)->idle_timeout_ms, on_idle_timeout_cb);
    }
    /* data is the worker's read buffer: fed (copied) already, so it takes the plaintext */
    for (;;) {
        n = tls_conn_read(c->tls, c->srv->readbuf, sizeof(c->srv->readbuf));
        if (n == TLS_WANT)
            break;
        if (n <= 0) {
            /* close_notify or a broken record: like EOF on a plain connection, gone */
            if (n != TLS_CLOSED)
                log_debug("worker %d: TLS read failed: %s", c->srv->id, tls_strerror(n));
            conn_close(c);
            return 0;
        }
        if (buf_append(&c->pending, c->srv->readbuf, (size_t)n) != 0) {
            conn_close(c);
            return 0;
        }
    }
    if (tls_flush(c) != 0) /* a warning alert a record may have provoked */
        return 0;
    return c->pending.len > before;
}

/* ---- the read loop ---------------------------------------------------------------- */

static void conn_process(conn_t *c);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;

    (void)suggested;
    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void start_reading(conn_t *c);

static void on_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: the client is gone (a half-closed HTTP client is treated as gone,
         * which is what every proxy in practice does for a request in flight). */
        conn_close(c);
        return;
    }
    if (c->tls) {
        if (!tls_input(c, buf->base, (size_t)nread))
            return;
    } else if (buf_append(&c->pending, buf->base, (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    if (c->busy) {
        if (c->pending.len >= PENDING_CAP) {
            uv_read_stop(s);
            c->reading = 0;
        }
        return;
    }
    conn_process(c);
}

static void start_reading(conn_t *c)
{
    if (!c->reading && !c->closing && !c->shutting) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read_cb) == 0)
            c->reading = 1;
    }
}

/* Parse pending bytes while no request is being served. */
static void conn_process(conn_t *c)
{
    if (c->processing)
        return;
    c->processing = 1;
    while (!c->busy && !c->closing && !c->shutting && c->pending.len > 0) {
        enum llhttp_errno e;
        size_t used;

        c->exec_end = c->pending.data + c->pending.len;
        e = llhttp_execute(&c->parser, c->pending.data, c->pending.len);
        if (e == HPE_OK) {
            buf_reset(&c->pending);
            break;
        }
        if (e == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - c->pending.data);
            memmove(c->pending.data, c->pending.data + used, c->pending.len - used);
            c->pending.len -= used;
            llhttp_resume(&c->parser);
            c->busy = 1;
            ltimer_stop(&c->timer);
            c->srv->handler->serve(c, c->req);
            continue;
        }
        /* A malformed or refused request: answer and close (the parser cannot go on). */
        buf_reset(&c->pending);
        c->close_after = 1;
        if (!c->req) {
            c->req = c->srv->handler->req_new(c);
            if (!c->req) {
                conn_close(c);
                break;
            }
        }
        c->busy = 1;
        ltimer_stop(&c->timer);
        if (c->err_status) {
            int st = c->err_status;
            conn_respond_error(c, st, st == 413 ? "request_too_large" : NULL, NULL, "%s",
                               c->err_msg);
        } else {
            conn_respond_error(c, 400, "invalid_request", NULL, "malformed HTTP request: %s",
                               llhttp_get_error_reason(&c->parser));
        }
        break;
    }
    c->processing = 0;
    if (c->closing)
        return;
    if (!c->busy && !c->shutting) {
        start_reading(c);
        if (!c->req)
            timer_set(c, limits(c)->idle_timeout_ms, on_idle_timeout_cb);
    }
}

void conn_request_done(conn_t *c, int abort_conn)
{
    if (c->req) {
        http_req_t *r = c->req;
        c->req = NULL;
        c->srv->handler->end(c, r);
    }
    c->busy = 0;
    if (c->closing)
        return;
    if (abort_conn || c->close_after || c->srv->draining) {
        conn_shutdown(c);
        return;
    }
    start_reading(c);
    if (!c->processing) {
        if (c->pending.len)
            conn_process(c);
        else
            timer_set(c, limits(c)->idle_timeout_ms, on_idle_timeout_cb);
    }
}

static void conn_drain(conn_t *c)
{
    if (!c->busy && !c->req)
        conn_close(c);
    else
        c->close_after = 1;
}

int http_server_init(http_server_t *srv)
{
    uv_once(&settings_once, settings_init);
    srv->flush_idle.data = srv;
    return uv_idle_init(srv->loop, &srv->flush_idle);
}

void http_server_drain(http_server_t *srv)
{
    conn_t *c, *next;

    srv->draining = 1;
    for (c = srv->conns; c; c = next) {
        next = c->next;
        conn_drain(c);
    }
}

void http_server_close_all(http_server_t *srv)
{
    conn_t *c, *next;

    for (c = srv->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

void http_server_close(http_server_t *srv)
{
    uv_close((uv_handle_t *)&srv->flush_idle, NULL);
}

void conn_accept(http_server_t *srv, uv_stream_t *listener)
{
    conn_t *c;

    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    ltimer_init(srv->loop, &c->timer, c);
    c->tcp.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (srv->nconns > limits(c)->max_connections) {
        log_warn("worker %d: connection limit %u reached, refusing a connection", srv->id,
                 limits(c)->max_connections);
        conn_close(c);
        return;
    }
    if (srv->tls && tls_conn_new(&c->tls, srv->tls, NULL) != 0) {
        log_warn("worker %d: cannot set up TLS for a connection (out of memory?)", srv->id);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    start_reading(c);
    if (c->tls) /* the handshake is part of the head: it has header_timeout_ms */
        timer_set(c, limits(c)->header_timeout_ms, on_handshake_timeout_cb);
    else
        timer_set(c, limits(c)->idle_timeout_ms, on_idle_timeout_cb);
}
