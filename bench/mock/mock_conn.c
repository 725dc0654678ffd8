/* mock_conn.c - one client connection of the mock upstream.
 *
 * Reading, llhttp parsing (strict) with in-order pipelining, output assembly and flushing,
 * graceful close and reset. The parser pauses after each complete request; the request is
 * handed to mock_api_handle() and parsing continues only once its response is done. While a
 * response is in progress (delayed or streaming) the connection stops reading and keeps any
 * bytes of later requests in `pending`.
 */

#include "mock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINGER_MS          2000 /* after our FIN, wait this long for the client's before closing */
#define READ_PAUSE_BACKLOG (1u << 20) /* stop reading while this much output is queued */

typedef struct mock_wreq_s {
    uv_write_t req;
    char *owned; /* freed when the write completes */
    size_t len;  /* bytes queued by this write */
} mock_wreq_t;

static void on_close_cb(uv_handle_t *h);
static void on_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* ---- parser callbacks ------------------------------------------------------------------ */

static int arena_add(mock_conn_t *c, const char *at, size_t n)
{
    if (c->harena.len + n > MOCK_MAX_HEADER) {
        c->err_status = 431;
        return -1;
    }
    mock_buf_append(&c->harena, at, n);
    return 0;
}

static int on_message_begin_cb(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    c->harena.len = 0;
    c->nhdrs = 0;
    c->url_len = 0;
    c->body.len = 0;
    c->xheaders.len = 0;
    c->in_field = 0;
    c->err_status = 0;
    c->budget = -1;
    return 0;
}

static int on_url_cb(llhttp_t *p, const char *at, size_t n)
{
    mock_conn_t *c = p->data;
    c->url_len += n;
    return arena_add(c, at, n);
}

static int on_header_field_cb(llhttp_t *p, const char *at, size_t n)
{
    mock_conn_t *c = p->data;
    if (!c->in_field) {
        if (c->nhdrs == MOCK_MAX_HEADERS) {
            c->err_status = 431;
            return -1;
        }
        if (c->nhdrs == c->hdrs_cap) {
            c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
            c->hdrs = mock_xrealloc(c->hdrs, (size_t)c->hdrs_cap * sizeof *c->hdrs);
        }
        mock_hdr_t *h = &c->hdrs[c->nhdrs++];
        memset(h, 0, sizeof *h);
        h->name_off = (uint32_t)c->harena.len;
        c->in_field = 1;
    }
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
    return arena_add(c, at, n);
}

static int on_header_field_complete_cb(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    c->in_field = 0;
    c->hdrs[c->nhdrs - 1].val_off = (uint32_t)c->harena.len;
    return 0;
}

static int on_header_value_cb(llhttp_t *p, const char *at, size_t n)
{
    mock_conn_t *c = p->data;
    c->hdrs[c->nhdrs - 1].val_len += (uint32_t)n;
    return arena_add(c, at, n);
}

static int on_headers_complete_cb(llhttp_t *p)
{
    mock_conn_t *c = p->data;
    c->req.method = llhttp_get_method(p);
    c->req.http_minor = llhttp_get_http_major(p) == 1 ? llhttp_get_http_minor(p) : 0;
    c->req.keep_alive = llhttp_should_keep_alive(p);
    c->req.expect_continue = 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > MOCK_MAX_BODY) {
        c->err_status = 413;
        return -1;
    }
    for (int i = 0; i < c->nhdrs; i++) {
        const mock_hdr_t *h = &c->hdrs[i];
        const char *v = c->harena.p + h->val_off;
        if (h->name_len == 6 && strncasecmp(c->harena.p + h->name_off, "expect", 6) == 0 &&
            h->val_len == 12 && strncasecmp(v, "100-continue", 12) == 0)
            c->req.expect_continue = 1;
    }
    if (c->req.expect_continue && c->req.http_minor == 1) {
        /* Answer at once, behind any earlier pipelined responses still unsent. */
        mock_out_ref(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        mock_flush(c);
    }
    return 0;
}

static int on_body_cb(llhttp_t *p, const char *at, size_t n)
{
    mock_conn_t *c = p->data;
    if (c->body.len + n > MOCK_MAX_BODY) {
        c->err_status = 413;
        return -1;
    }
    mock_buf_append(&c->body, at, n);
    return 0;
}

static int on_message_complete_cb(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* one request at a time: see mock_conn_input */
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin_cb,
    .on_url = on_url_cb,
    .on_header_field = on_header_field_cb,
    .on_header_field_complete = on_header_field_complete_cb,
    .on_header_value = on_header_value_cb,
    .on_headers_complete = on_headers_complete_cb,
    .on_body = on_body_cb,
    .on_message_complete = on_message_complete_cb,
};

/* ---- closing ------------------------------------------------------------------------- */

static void conn_unlink(mock_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void on_close_cb(uv_handle_t *h)
{
    mock_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    if (c->tls)
        tls_conn_free(c->tls);
    mock_buf_free(&c->harena);
    mock_buf_free(&c->body);
    mock_buf_free(&c->pending);
    mock_buf_free(&c->pending2);
    mock_buf_free(&c->xheaders);
    mock_buf_free(&c->obuf);
    free(c->hdrs);
    free(c->segs);
    free(c);
    mock_admin_conn_closed();
}

void mock_conn_close(mock_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_close_cb);
    uv_close((uv_handle_t *)&c->timer, on_close_cb);
}

/* RST instead of FIN: SO_LINGER 0 and close (x-mock-reset-after-bytes). */
static void conn_reset(mock_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    conn_unlink(c);
    if (uv_tcp_close_reset(&c->tcp, on_close_cb) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_close_cb);
    uv_close((uv_handle_t *)&c->timer, on_close_cb);
}

static void on_linger_expired(mock_conn_t *c)
{
    mock_conn_close(c);
}

static void on_shutdown_cb(uv_shutdown_t *req, int status)
{
    mock_conn_t *c = req->data;
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        mock_conn_close(c);
        return;
    }
    /* Our FIN is out. Drain what the client still sends until its FIN: closing with unread
     * input would make the kernel answer with RST and could destroy our last response. */
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc_cb, on_read_cb) == 0)
        c->reading = 1;
    mock_conn_after(c, LINGER_MS, on_linger_expired);
}

/* Close after everything queued has been written. */
static void conn_graceful(mock_conn_t *c)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = 1;
    uv_timer_stop(&c->timer);
    if (c->tls && c->handshake_done)
        mock_tls_close_notify(c);
    if (c->closing)
        return;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown_cb) != 0)
        mock_conn_close(c);
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_write_cb(uv_write_t *req, int status)
{
    mock_wreq_t *wr = (mock_wreq_t *)req;
    mock_conn_t *c = req->handle->data;
    if (status == 0)
        mock_admin_bytes_sent(wr->len);
    free(wr->owned);
    free(wr);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        mock_conn_close(c);
        return;
    }
    if (c->writes > 0)
        return;
    if (c->reset_on_drain) {
        conn_reset(c);
        return;
    }
    if (c->drain_cb) {
        mock_conn_fn fn = c->drain_cb;
        c->drain_cb = NULL;
        fn(c);
    }
}

/* Write bufs (total bytes); what the kernel does not take at once is queued with uv_write.
 * owned, if not NULL, is malloc'd memory the bufs point into: freed once written. donor, if
 * not NULL, is a buffer the bufs point into that is taken over (and later freed) only if a
 * write has to be queued, so that the common case allocates nothing. 0, or -1 (closed). */
static int conn_write(mock_conn_t *c, uv_buf_t *bufs, unsigned n, size_t total, char *owned,
                      mock_buf_t *donor)
{
    size_t done = 0;
    if (c->writes == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r >= 0) {
            done = (size_t)r;
            mock_admin_bytes_sent(done);
        } else if (r != UV_EAGAIN) {
            free(owned);
            mock_conn_close(c);
            return -1;
        }
    }
    if (done == total) {
        free(owned);
        return 0;
    }
    if (donor != NULL) {
        owned = donor->p;
        donor->p = NULL;
        donor->len = donor->cap = 0;
    }
    size_t queued = total - done;
    unsigned i = 0;
    while (done >= bufs[i].len) {
        done -= bufs[i].len;
        i++;
    }
    bufs[i].base += done;
    bufs[i].len -= done;
    mock_wreq_t *wr = mock_xrealloc(NULL, sizeof *wr);
    wr->owned = owned;
    wr->len = queued;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, bufs + i, n - i, on_write_cb) != 0) {
        free(owned);
        free(wr);
        mock_conn_close(c);
        return -1;
    }
    c->writes++;
    return 0;
}

int mock_conn_write_owned(mock_conn_t *c, char *buf, size_t len)
{
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    return conn_write(c, &b, 1, len, buf, NULL);
}

/* Send everything assembled so far: one writev for all segments. */
void mock_flush(mock_conn_t *c)
{
    if (c->nsegs == 0)
        return;
    if (c->closing) {
        c->nsegs = 0;
        c->obuf.len = 0;
        return;
    }
    mock_worker_t *w = c->w;
    if ((size_t)c->nsegs > w->iov_cap) {
        w->iov_cap = (size_t)c->nsegs * 2;
        w->iov = mock_xrealloc(w->iov, w->iov_cap * sizeof *w->iov);
    }
    size_t total = 0;
    int uses_obuf = 0;
    for (int i = 0; i < c->nsegs; i++) {
        const mock_seg_t *s = &c->segs[i];
        char *base = s->ref ? (char *)s->ref : c->obuf.p + s->off;
        w->iov[i] = uv_buf_init(base, (unsigned)s->len);
        total += s->len;
        uses_obuf |= s->ref == NULL;
    }
    unsigned n = (unsigned)c->nsegs;
    c->nsegs = 0;
    if (c->tls) {
        if (mock_tls_write(c, w->iov, n) != 0)
            mock_conn_close(c);
    } else {
        conn_write(c, w->iov, n, total, NULL, uses_obuf ? &c->obuf : NULL);
    }
    c->obuf.len = 0;
}

size_t mock_conn_backlog(const mock_conn_t *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

/* ---- output assembly ----------------------------------------------------------------- */

static size_t out_clip(mock_conn_t *c, size_t n)
{
    if (c->budget < 0)
        return n;
    if ((long)n > c->budget)
        n = (size_t)c->budget;
    c->budget -= (long)n;
    return n;
}

static void out_seg(mock_conn_t *c, const char *ref, size_t off, size_t n)
{
    if (n == 0)
        return;
    if (ref == NULL && c->nsegs > 0) {
        mock_seg_t *last = &c->segs[c->nsegs - 1];
        if (last->ref == NULL && last->off + last->len == off) {
            last->len += n;
            return;
        }
    }
    if (c->nsegs == c->segs_cap) {
        c->segs_cap = c->segs_cap ? c->segs_cap * 2 : 16;
        c->segs = mock_xrealloc(c->segs, (size_t)c->segs_cap * sizeof *c->segs);
    }
    c->segs[c->nsegs++] = (mock_seg_t){ref, off, n};
}

void mock_out(mock_conn_t *c, const void *p, size_t n)
{
    n = out_clip(c, n);
    size_t off = c->obuf.len;
    mock_buf_append(&c->obuf, p, n);
    out_seg(c, NULL, off, n);
}

void mock_out_ref(mock_conn_t *c, const void *p, size_t n)
{
    n = out_clip(c, n);
    out_seg(c, p, 0, n);
}

void mock_outf(mock_conn_t *c, const char *fmt, ...)
{
    size_t off = c->obuf.len;
    va_list ap;
    mock_buf_reserve(&c->obuf, 256);
    va_start(ap, fmt);
    int n = vsnprintf(c->obuf.p + off, c->obuf.cap - off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= c->obuf.cap - off) {
        mock_buf_reserve(&c->obuf, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(c->obuf.p + off, c->obuf.cap - off, fmt, ap);
        va_end(ap);
    }
    size_t k = out_clip(c, (size_t)n);
    c->obuf.len = off + k;
    out_seg(c, NULL, off, k);
}

void mock_out_budget(mock_conn_t *c, long bytes)
{
    c->budget = bytes;
}

int mock_out_exhausted(const mock_conn_t *c)
{
    return c->budget == 0;
}

/* ---- request flow -------------------------------------------------------------------- */

static void on_timer_cb(uv_timer_t *t)
{
    mock_conn_t *c = t->data;
    mock_conn_fn fn = c->timer_cb;
    c->timer_cb = NULL;
    if (fn && !c->closing)
        fn(c);
}

void mock_conn_after(mock_conn_t *c, uint64_t ms, mock_conn_fn fn)
{
    c->timer_cb = fn;
    uv_timer_start(&c->timer, on_timer_cb, ms, 0);
}

void mock_conn_on_drain(mock_conn_t *c, mock_conn_fn fn)
{
    if (c->writes == 0)
        mock_conn_after(c, 0, fn);
    else
        c->drain_cb = fn;
}

static void conn_dispatch(mock_conn_t *c)
{
    mock_req_t *r = &c->req;
    mock_buf_reserve(&c->harena, 1); /* never NULL below */
    const char *url = c->harena.p;
    const char *q = memchr(url, '?', c->url_len);
    r->path = url;
    r->path_len = q ? (size_t)(q - url) : c->url_len;
    r->url_len = c->url_len;
    r->hbase = c->harena.p;
    r->hbase_len = c->harena.len;
    r->hdrs = c->hdrs;
    r->nhdrs = c->nhdrs;
    r->body = c->body.p ? c->body.p : "";
    r->body_len = c->body.len;
    r->xheaders = &c->xheaders;
    r->key = NULL;
    r->key_len = 0;
    c->busy = 1;
    c->in_dispatch = 1;
    c->done_how = MOCK_DONE_KEEP;
    c->budget = -1;
    mock_api_handle(c, r);
    c->in_dispatch = 0;
}

static void conn_parse_error(mock_conn_t *c, enum llhttp_errno e)
{
    int status = c->err_status ? c->err_status : 400;
    char msg[160];
    if (status == 413)
        snprintf(msg, sizeof msg, "request body larger than %d bytes", MOCK_MAX_BODY);
    else if (status == 431)
        snprintf(msg, sizeof msg, "request headers too large (max %d bytes, %d headers)",
                 MOCK_MAX_HEADER, MOCK_MAX_HEADERS);
    else
        snprintf(msg, sizeof msg, "malformed HTTP request: %s (%s)", llhttp_errno_name(e),
                 llhttp_get_error_reason(&c->parser));
    c->req.keep_alive = 0;
    c->xheaders.len = 0;
    memset(&c->resp, 0, sizeof c->resp);
    mock_fault_init(&c->resp.fault);
    c->busy = 1;
    mock_api_error(c, status, "invalid_request_error", NULL, msg, MOCK_DONE_CLOSE);
}

int mock_conn_input(mock_conn_t *c, const char *data, size_t len)
{
    while (len > 0) {
        if (c->closing || c->shutting || c->done_how != MOCK_DONE_KEEP)
            return -1;
        if (c->busy) {
            mock_buf_append(&c->pending, data, len);
            return 0;
        }
        enum llhttp_errno e = llhttp_execute(&c->parser, data, len);
        if (e == HPE_OK)
            return 0;
        if (e != HPE_PAUSED) {
            conn_parse_error(c, e);
            return -1;
        }
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        llhttp_resume(&c->parser);
        data += used;
        len -= used;
        conn_dispatch(c);
    }
    return 0;
}

/* The response to the paused request is complete: go on with what the client sent next. */
static void conn_resume(mock_conn_t *c)
{
    if (c->pending.len > 0) {
        mock_buf_t held = c->pending;
        c->pending = c->pending2;
        c->pending.len = 0;
        int r = mock_conn_input(c, held.p, held.len);
        held.len = 0;
        c->pending2 = held;
        if (r < 0)
            return;
    }
    if (!c->busy && c->tls && mock_tls_drain(c) < 0)
        return;
    if (c->closing || c->shutting)
        return;
    mock_flush(c);
    if (c->closing || c->busy)
        return;
    if (c->peer_eof) {
        conn_graceful(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc_cb, on_read_cb) == 0)
        c->reading = 1;
}

void mock_conn_done(mock_conn_t *c, int how)
{
    if (how == MOCK_DONE_KEEP && !c->req.keep_alive)
        how = MOCK_DONE_CLOSE;
    c->busy = 0;
    c->done_how = how;
    if (c->closing)
        return;
    if (how == MOCK_DONE_RESET) {
        mock_flush(c);
        if (c->closing)
            return;
        if (c->writes == 0)
            conn_reset(c);
        else
            c->reset_on_drain = 1;
        return;
    }
    if (how == MOCK_DONE_CLOSE) {
        mock_flush(c);
        conn_graceful(c);
        return;
    }
    if (!c->in_dispatch)
        conn_resume(c); /* else mock_conn_input's loop goes on, and its caller flushes */
}

/* ---- reading ------------------------------------------------------------------------- */

static void on_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    mock_conn_t *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->w->rbuf, sizeof c->w->rbuf);
}

static void on_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mock_conn_t *c = s->data;
    if (c->closing)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->reading = 0;
        c->peer_eof = 1;
        if (nread != UV_EOF || c->shutting)
            mock_conn_close(c);
        else if (!c->busy)
            conn_graceful(c);
        return;
    }
    if (nread == 0 || c->shutting)
        return; /* after our FIN, input is discarded */
    if (c->tls)
        mock_tls_on_read(c, buf->base, (size_t)nread);
    else
        mock_conn_input(c, buf->base, (size_t)nread);
    if (c->closing || c->shutting)
        return;
    mock_flush(c);
    if (c->closing || !c->reading)
        return;
    if (c->busy) {
        uv_read_stop(s);
        c->reading = 0;
    } else if (c->writes > 0 && mock_conn_backlog(c) > READ_PAUSE_BACKLOG) {
        /* A pipelining client that does not read its responses: stop taking requests
         * until the kernel has taken what we owe it. */
        uv_read_stop(s);
        c->reading = 0;
        mock_conn_on_drain(c, conn_resume);
    }
}

void mock_conn_accept_cb(uv_stream_t *server, int status)
{
    mock_worker_t *w = server->data;
    if (status < 0)
        return;
    mock_conn_t *c = mock_xrealloc(NULL, sizeof *c);
    memset(c, 0, sizeof *c);
    c->w = w;
    c->budget = -1;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    mock_admin_conn_opened();
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        mock_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    if (w->tls && mock_tls_start(c) != 0) {
        mock_conn_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc_cb, on_read_cb) != 0) {
        mock_conn_close(c);
        return;
    }
    c->reading = 1;
}
