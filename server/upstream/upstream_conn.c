/* upstream_conn.c - the connections of the upstream client (design note in upstream.c):
 * resolve, connect (each address in turn), TLS handshake, writing the request, reading and
 * feeding the parser, timers, deferred work from the pool's kick, and going back to the
 * origin's idle list after a complete response.
 */
#include "server/upstream/upstream_int.h"

#include <stdlib.h>
#include <string.h>

#define PLAIN_BUF_SIZE 16384

static int conn_on_plain(conn_t *c, const char *data, size_t len);
static void conn_drain_tls(conn_t *c);
static void conn_on_eof(conn_t *c);
static void conn_transport_error(conn_t *c, int uverr);
static int req_complete(upstream_req_t *r);

/* ---- connections: life cycle ---- */

/* A failure detected where no callback may run yet: reported from the kick. */
static void conn_fail_later(conn_t *c, int uverr, int err)
{
    if (!c->kick_uverr && !c->kick_err) {
        c->kick_uverr = uverr;
        c->kick_err = err;
    }
    upstream__kick_queue(c);
}

static void conn_maybe_free(conn_t *c)
{
    if (c->handles > 0 || c->gai_pending)
        return;
    upstream_pool_t *pool = c->pool;
    if (c->ai)
        uv_freeaddrinfo(c->ai);
    tls_conn_free(c->tls);
    list_remove(&c->link);
    pool->nconns--;
    free(c);
    upstream__pool_maybe_free(pool);
}

static void on_handle_closed_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles--;
    conn_maybe_free(c);
}

static void on_timer_cb(uv_timer_t *t);

/* Lazy (ltimer.h): the deadline moves at every read, nearly always later, at no libuv call. */
void upstream__timer_arm(conn_t *c, unsigned ms)
{
    if (ms)
        ltimer_start(&c->timer, on_timer_cb, ms);
    else
        ltimer_stop(&c->timer);
}

static void conn_flush_tls(conn_t *c);

void upstream__conn_close(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_IDLE) {
        list_remove(&c->idle_link);
        c->origin->nidle--;
        /* Polite: tell the server we are going (best effort, cancelled by the close). */
        if (c->tls && tls_conn_close_notify(c->tls) == 0)
            conn_flush_tls(c);
    }
    if (c->kicked) {
        list_remove(&c->kick_link);
        c->kicked = 0;
    }
    if (c->req) {
        c->req->conn = NULL;
        c->req = NULL;
    }
    c->state = CONN_CLOSING;
    ltimer_stop(&c->timer);
    uv_close(ltimer_handle(&c->timer), on_handle_closed_cb); /* nothing fires after this */
    if (!c->tcp_recycling)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed_cb);
}

/* Back to the origin's idle list after a complete response. */
static void conn_release(conn_t *c, const cfg_provider_t *prov)
{
    origin_t *o = c->origin;
    c->state = CONN_IDLE;
    list_insert_head(&o->idle, &c->idle_link);
    o->nidle++;
    upstream__timer_arm(c, prov->idle_timeout_ms);
    upstream__conn_update_reading(c);
    if (prov->pool_max_idle && o->nidle > prov->pool_max_idle)
        upstream__conn_close(container_of(o->idle.prev, conn_t, idle_link));
}

static void on_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
    if (!c->pool->rbuf_busy) {
        c->pool->rbuf_busy = 1;
        *buf = uv_buf_init(c->pool->rbuf, sizeof c->pool->rbuf);
    } else {
        buf->base = malloc(READ_BUF_SIZE);
        buf->len = buf->base ? READ_BUF_SIZE : 0;
    }
}

static void on_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void upstream__conn_update_reading(conn_t *c)
{
    int want = 0;
    upstream_req_t *r = c->req;
    if (c->state == CONN_HANDSHAKING || c->state == CONN_IDLE)
        want = 1;
    else if (c->state == CONN_ACTIVE)
        want = r && !r->paused && !r->held_len && !r->complete;
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc_cb, on_read_cb);
        if (rc == 0)
            c->reading = 1;
        else
            conn_fail_later(c, rc, 0);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- connections: resolve, connect, handshake ---- */

static void on_connect_cb(uv_connect_t *req, int status);

static void conn_try_connect(conn_t *c)
{
    struct sockaddr_storage ss;
    if (c->has_literal) {
        ss = c->literal;
    } else {
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, c->ai_cur->ai_addr, c->ai_cur->ai_addrlen);
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->origin->port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons(c->origin->port);
    }
    c->state = CONN_CONNECTING;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&ss, on_connect_cb);
    if (rc != 0)
        conn_fail_later(c, rc, 0);
}

static void on_resolved_cb(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    conn_t *c = container_of(gai, conn_t, gai);
    c->gai_pending = 0;
    if (c->state == CONN_CLOSING) {
        if (res)
            uv_freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    if (status != 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        conn_transport_error(c, status ? status : UV_EAI_NONAME);
        return;
    }
    c->ai = c->ai_cur = res;
    conn_try_connect(c);
}

static void on_tcp_recycled_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->tcp_recycling = 0;
    if (c->state == CONN_CLOSING) {
        on_handle_closed_cb(h);
        return;
    }
    uv_tcp_init(c->pool->loop, &c->tcp);
    c->tcp.data = c;
    conn_try_connect(c);
}

/* A connection attempt failed: the next address, or the end. */
static void conn_connect_failed(conn_t *c, int uverr)
{
    if (c->ai_cur && c->ai_cur->ai_next && c->state == CONN_CONNECTING) {
        c->ai_cur = c->ai_cur->ai_next;
        /* A socket whose connect failed cannot be reused for another address. */
        c->tcp_recycling = 1;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_recycled_cb);
        return;
    }
    if (c->req)
        upstream__req_finish(c->req, UPSTREAM_ECONNECT);
    else
        upstream__conn_close(c);
    (void)uverr;
}

static int tls_to_upstream(int trc)
{
    if (trc == TLS_EVERIFY)
        return UPSTREAM_ETLS_VERIFY;
    if (trc == TLS_ENOMEM)
        return UPSTREAM_ENOMEM;
    return UPSTREAM_ETLS;
}

/* Advances the handshake; 0 once done (the request then goes out), 1 if it must wait for
 * more input or failed (the conn is then closed). */
static int conn_handshake(conn_t *c)
{
    int rc = tls_conn_handshake(c->tls);
    conn_flush_tls(c); /* ClientHello, Finished, or an alert */
    if (rc == TLS_WANT)
        return 1;
    if (rc != 0) {
        upstream__req_finish(c->req, tls_to_upstream(rc));
        return 1;
    }
    tls_session_t *s = tls_conn_save_session(c->tls);
    if (s) {
        tls_session_free(c->origin->session);
        c->origin->session = s;
    }
    upstream__conn_send(c);
    return 0;
}

static void on_connect_cb(uv_connect_t *req, int status)
{
    conn_t *c = container_of(req, conn_t, connect);
    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status != 0) {
        conn_connect_failed(c, status);
        return;
    }
    if (c->ai) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_cur = NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (!c->origin->tls) {
        upstream__conn_send(c);
        return;
    }
    int trc = tls_conn_new(&c->tls, c->origin->tls_conf, c->origin->host);
    if (trc != 0) {
        upstream__req_finish(c->req, tls_to_upstream(trc));
        return;
    }
    if (c->origin->session)
        tls_conn_set_session(c->tls, c->origin->session);
    c->state = CONN_HANDSHAKING;
    upstream__conn_update_reading(c);
    conn_handshake(c);
}

/* A new connection for r; never calls back (failures are deferred). */
int upstream__conn_open(upstream_req_t *r)
{
    upstream_pool_t *pool = r->pool;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return UPSTREAM_ENOMEM;
    c->pool = pool;
    c->origin = r->origin;
    c->state = CONN_RESOLVING;
    list_init(&c->idle_link);
    list_init(&c->kick_link);
    uv_tcp_init(pool->loop, &c->tcp);
    ltimer_init(pool->loop, &c->timer, c);
    c->tcp.data = c;
    c->handles = 2;
    list_insert_tail(&pool->conns, &c->link);
    pool->nconns++;
    c->req = r;
    r->conn = c;
    upstream__timer_arm(c, r->prov->connect_timeout_ms);

    const char *host = c->origin->host;
    if (uv_ip4_addr(host, c->origin->port, (struct sockaddr_in *)&c->literal) == 0 ||
        uv_ip6_addr(host, c->origin->port, (struct sockaddr_in6 *)&c->literal) == 0) {
        c->has_literal = 1;
        conn_try_connect(c);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    int rc = uv_getaddrinfo(pool->loop, &c->gai, on_resolved_cb, host, NULL, &hints);
    if (rc == 0)
        c->gai_pending = 1;
    else
        conn_fail_later(c, rc, 0);
    return 0;
}

/* ---- connections: writing ---- */

static void on_write_cb(uv_write_t *w, int status)
{
    wreq_t *wr = container_of(w, wreq_t, w);
    conn_t *c = wr->conn;
    free(wr->owned);
    payload_unref(wr->payload);
    free(wr);
    c->writes--;
    if (c->state == CONN_CLOSING || status == UV_ECANCELED)
        return;
    if (status != 0) {
        conn_transport_error(c, status);
        return;
    }
    /* The first-byte timeout counts from the request having been written. */
    upstream_req_t *r = c->req;
    if (c->state == CONN_ACTIVE && r && !r->got_byte && !r->paused && c->writes == 0)
        upstream__timer_arm(c, r->first_byte_ms);
}

/* Writes bufs (owned: freed once written). With nothing queued, the socket is tried at once:
 * a request head and body that fit in the send buffer cost one writev and no write request
 * (uv_write would also re-arm the poll watcher after the write). Only a remainder is
 * queued with uv_write. */
static int conn_write(conn_t *c, uv_buf_t *bufs, unsigned n, char *owned, payload_t *payload)
{
    if (c->writes == 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (w > 0) {
            size_t left = (size_t)w;
            while (n && left >= bufs->len) {
                left -= bufs->len;
                bufs++;
                n--;
            }
            if (n) {
                bufs->base += left;
                bufs->len -= left;
            }
        }
        /* an error other than EAGAIN: uv_write below reports it the usual way */
        if (n == 0) {
            free(owned);
            return 0;
        }
    }
    wreq_t *wr = malloc(sizeof *wr);
    if (!wr) {
        free(owned);
        return UV_ENOMEM;
    }
    wr->conn = c;
    wr->owned = owned;
    wr->payload = payload;
    if (payload)
        payload->refs++;
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, n, on_write_cb);
    if (rc != 0) {
        free(owned);
        payload_unref(payload);
        free(wr);
        return rc;
    }
    c->writes++;
    return 0;
}

/* Sends whatever ciphertext the TLS layer produced. */
static void conn_flush_tls(conn_t *c)
{
    char *out;
    size_t len;
    tls_conn_take_output(c->tls, &out, &len);
    if (!out)
        return;
    uv_buf_t b = uv_buf_init(out, (unsigned)len);
    int rc = conn_write(c, &b, 1, out, NULL);
    if (rc != 0 && c->state != CONN_CLOSING)
        conn_fail_later(c, rc, 0);
}

/* Writes the request of c->req (fresh or reused connection) and waits for the response. */
void upstream__conn_send(conn_t *c)
{
    upstream_req_t *r = c->req;
    payload_t *p = r->payload;

    c->state = CONN_ACTIVE;
    c->reusable = 1;
    llhttp_init(&c->parser, HTTP_RESPONSE, &upstream__parser_settings);
    c->parser.data = c;
    upstream__timer_arm(c, r->paused ? 0 : r->first_byte_ms);
    if (c->tls) {
        int trc = tls_conn_write(c->tls, p->data, p->head_len);
        if (trc == 0 && p->body_len)
            trc = tls_conn_write(c->tls, p->data + p->head_len, p->body_len);
        if (trc != 0) {
            conn_fail_later(c, 0, tls_to_upstream(trc));
            return;
        }
        conn_flush_tls(c);
    } else {
        /* Written by the kick, with every other request of this loop iteration: on a shared
         * CPU each write wakes the upstream, which would otherwise preempt this worker once
         * per request (measured under bench/run.sh: 0.52 -> 0.28 context switches a request). */
        c->send_pending = 1;
        upstream__kick_queue(c);
    }
    upstream__conn_update_reading(c);
}

static void conn_send_plain(conn_t *c)
{
    payload_t *p = c->req->payload;
    uv_buf_t b[2] = {uv_buf_init(p->data, (unsigned)p->head_len),
                     uv_buf_init(p->data + p->head_len, (unsigned)p->body_len)};
    int rc = conn_write(c, b, p->body_len ? 2 : 1, NULL, p);
    if (rc != 0)
        conn_fail_later(c, rc, 0);
}

/* ---- connections: reading ---- */

static int retryable(const upstream_req_t *r, int uverr)
{
    if (!r->reused || r->retried || r->got_byte)
        return 0;
    return uverr == UV_EOF || uverr == UV_ECONNRESET || uverr == UV_EPIPE ||
           uverr == UV_ECONNABORTED;
}

/* The request goes out again on a fresh connection. */
static void req_retry(upstream_req_t *r)
{
    upstream__req_detach_close(r);
    r->retried = 1;
    r->reused = 0;
    int rc = upstream__conn_open(r);
    if (rc != 0)
        upstream__req_finish(r, rc);
}

/* A socket error or failed write (EOF goes to conn_on_eof). */
static void conn_transport_error(conn_t *c, int uverr)
{
    upstream_req_t *r = c->req;
    if (!r) {
        upstream__conn_close(c);
        return;
    }
    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        conn_connect_failed(c, uverr);
        return;
    case CONN_HANDSHAKING:
        upstream__req_finish(r, UPSTREAM_ETLS);
        return;
    default:
        break;
    }
    if (retryable(r, uverr))
        req_retry(r);
    else
        upstream__req_finish(r, UPSTREAM_ERESET);
}

static void conn_on_eof(conn_t *c)
{
    upstream_req_t *r = c->req;
    if (!r) {
        upstream__conn_close(c);
        return;
    }
    if (c->state != CONN_ACTIVE) {
        conn_transport_error(c, UV_EOF);
        return;
    }
    if (!r->got_byte) {
        if (retryable(r, UV_EOF))
            req_retry(r);
        else
            upstream__req_finish(r, UPSTREAM_ERESET); /* closed without a response */
        return;
    }
    /* A close-delimited body ends here; anything else is truncated. */
    c->reusable = 0;
    if (!r->complete) {
        r->busy++;
        llhttp_finish(&c->parser);
        r->busy--;
        if (upstream__req_unwind(r))
            return;
    }
    if (r->complete)
        req_complete(r);
    else
        upstream__req_finish(r, UPSTREAM_EPROTO);
}

static void on_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    upstream_pool_t *pool = c->pool;

    if (nread == 0 || c->state == CONN_CLOSING)
        goto out;
    if (nread == UV_EOF) {
        conn_on_eof(c);
        goto out;
    }
    if (nread < 0) {
        conn_transport_error(c, (int)nread);
        goto out;
    }
    if (c->state == CONN_ACTIVE && c->req && c->req->got_byte && !c->req->paused)
        upstream__timer_arm(c, c->req->prov->idle_timeout_ms);
    if (!c->tls) {
        conn_on_plain(c, buf->base, (size_t)nread);
        goto out;
    }
    if (tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
        if (c->req)
            upstream__req_finish(c->req, UPSTREAM_ENOMEM);
        else
            upstream__conn_close(c);
        goto out;
    }
    if (c->state == CONN_HANDSHAKING && conn_handshake(c) != 0)
        goto out;
    conn_drain_tls(c);
out:
    if (buf->base == pool->rbuf)
        pool->rbuf_busy = 0;
    else
        free(buf->base);
}

/* Decrypts and parses what the TLS layer holds, unless paused. */
static void conn_drain_tls(conn_t *c)
{
    char plain[PLAIN_BUF_SIZE];
    for (;;) {
        if (c->state == CONN_CLOSING || (c->req && (c->req->paused || c->req->complete)))
            return;
        int n = tls_conn_read(c->tls, plain, sizeof plain);
        if (n > 0) {
            if (conn_on_plain(c, plain, (size_t)n) != 0)
                return;
            continue;
        }
        conn_flush_tls(c); /* e.g. an alert */
        if (n == TLS_WANT)
            return;
        if (n == TLS_CLOSED) {
            conn_on_eof(c);
        } else if (c->req) {
            if (c->state == CONN_ACTIVE && !c->req->got_byte && retryable(c->req, UV_ECONNRESET))
                req_retry(c->req);
            else
                upstream__req_finish(c->req, tls_to_upstream(n));
        } else {
            upstream__conn_close(c);
        }
        return;
    }
}

/* Parses response bytes. 0: go on reading; 1: stop (request over or connection gone). */
static int conn_on_plain(conn_t *c, const char *data, size_t len)
{
    upstream_req_t *r = c->req;
    if (!r || c->state != CONN_ACTIVE) {
        upstream__conn_close(c); /* bytes nobody asked for: the connection is out of step */
        return 1;
    }
    if (r->complete) { /* bytes after a response that waits for resume */
        c->reusable = 0;
        return req_complete(r);
    }
    if (!r->got_byte) {
        r->got_byte = 1;
        if (!r->paused)
            upstream__timer_arm(c, r->prov->idle_timeout_ms);
    }
    r->busy++;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    r->busy--;
    if (upstream__req_unwind(r))
        return 1;
    if (e == HPE_PAUSED && r->complete) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        if (pos && pos < data + len)
            c->reusable = 0; /* bytes beyond the response */
        return req_complete(r);
    }
    if (e != HPE_OK) {
        upstream__req_finish(r, r->proto_err ? r->proto_err : UPSTREAM_EPROTO);
        return 1;
    }
    return 0;
}

/* The response was parsed to its end: deliver it once nothing is held back. Returns 1. */
static int req_complete(upstream_req_t *r)
{
    conn_t *c = r->conn;
    if (r->held_len) {
        upstream__conn_update_reading(c);
        return 1; /* the kick finishes it after resume */
    }
    int keep = r->keep_alive && c->reusable && c->writes == 0 && !r->pool->closing;
    if (keep && c->tls) {
        char probe[1];
        keep = tls_conn_read(c->tls, probe, sizeof probe) == TLS_WANT;
    }
    c->req = NULL;
    r->conn = NULL;
    if (keep)
        conn_release(c, r->prov);
    else
        upstream__conn_close(c);
    upstream__req_finish(r, 0);
    return 1;
}

/* Deferred work for c: a failure, or what a resume needs. */
void upstream__conn_kick(conn_t *c)
{
    upstream_req_t *r = c->req;
    if (c->state == CONN_CLOSING)
        return;
    if (c->kick_err || c->kick_uverr) {
        int err = c->kick_err, uverr = c->kick_uverr;
        c->kick_err = c->kick_uverr = 0;
        if (err && r)
            upstream__req_finish(r, err);
        else if (err)
            upstream__conn_close(c);
        else
            conn_transport_error(c, uverr);
        return;
    }
    if (c->send_pending) {
        c->send_pending = 0;
        if (r && c->state == CONN_ACTIVE)
            conn_send_plain(c);
        if (c->state == CONN_CLOSING || c->kick_err || c->kick_uverr)
            return;
    }
    if (!r || c->state != CONN_ACTIVE || r->paused)
        return;
    if (r->held_len) {
        r->busy++;
        if (r->cbs.on_body_cb)
            r->cbs.on_body_cb(r, r->held, r->held_len, r->ud);
        r->busy--;
        r->held_len = 0;
        if (upstream__req_unwind(r) || r->paused)
            return;
    }
    if (r->complete) {
        req_complete(r);
        return;
    }
    if (c->tls)
        conn_drain_tls(c);
    if (c->state != CONN_CLOSING)
        upstream__conn_update_reading(c);
}

static void on_timer_cb(uv_timer_t *t)
{
    conn_t *c = t->data;
    upstream_req_t *r = c->req;
    switch (c->state) {
    case CONN_IDLE:
        upstream__conn_close(c);
        break;
    case CONN_RESOLVING:
    case CONN_CONNECTING:
    case CONN_HANDSHAKING:
        upstream__req_finish(r, UPSTREAM_ETIMEDOUT_CONNECT);
        break;
    case CONN_ACTIVE:
        upstream__req_finish(r,
                             r->got_byte ? UPSTREAM_ETIMEDOUT_IDLE : UPSTREAM_ETIMEDOUT_FIRSTBYTE);
        break;
    case CONN_CLOSING:
        break;
    }
}
