/* upstream_test.c - server/upstream/upstream.c against a scripted HTTP(S) server on loopback.
 *
 * The server runs on the same loop as the pool. Each test sets `sc` (the script: what to
 * send for a request, in pieces with delays, and what to do afterwards), starts one or more
 * requests and runs the loop until they finish or a deadline timer fails the test.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "server/tls/tls.h"
#include "server/upstream/upstream.h"
#include "t.h"

static uv_loop_t *loop;
static char certs[1024];

/* ---- the scripted server ---- */

enum { AFTER_KEEP, AFTER_CLOSE, AFTER_RESET };

static struct script {
    const char *pieces[8]; /* NULL-terminated; sent one per delay_ms */
    size_t piece_len[8];   /* 0 = strlen */
    unsigned delay_ms;
    int after;               /* what to do once everything is sent */
    unsigned after_delay_ms; /* ... and how long to wait before doing it */
    int silent;              /* never answer */
    int greet;               /* send the pieces at accept, before any request */
    int drop_reused; /* requests after the first on a connection: AFTER_CLOSE/RESET at once */
} sc;

typedef struct srv_s {
    uv_tcp_t listener;
    int port;
    tls_conf_t *tls;
    int accepted, requests, resumed, peer_closed, handshake_failed;
    char last_req[4096];
} srv_t;

typedef struct sconn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    srv_t *srv;
    tls_conn_t *tls;
    int handshaken, closing, nreq, piece, handles, after_armed;
    char in[65536];
    size_t in_len;
} sconn_t;

static void sconn_closed_cb(uv_handle_t *h)
{
    sconn_t *s = h->data;
    if (--s->handles == 0) {
        tls_conn_free(s->tls);
        free(s);
    }
}

static void sconn_close(sconn_t *s, int reset)
{
    if (s->closing)
        return;
    s->closing = 1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sconn_closed_cb);
    if (reset)
        uv_tcp_close_reset(&s->tcp, sconn_closed_cb);
    else
        uv_close((uv_handle_t *)&s->tcp, sconn_closed_cb);
}

static void swrite_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void sraw_send(sconn_t *s, const char *data, size_t len)
{
    if (s->closing || len == 0)
        return;
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(len);
    memcpy(copy, data, len);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    if (uv_write(w, (uv_stream_t *)&s->tcp, &b, 1, swrite_cb) != 0) {
        free(copy);
        free(w);
    }
}

static void sflush(sconn_t *s)
{
    char *out;
    size_t len;
    tls_conn_take_output(s->tls, &out, &len);
    sraw_send(s, out, len);
    free(out);
}

static void ssend(sconn_t *s, const char *data, size_t len)
{
    if (!s->tls) {
        sraw_send(s, data, len);
        return;
    }
    tls_conn_write(s->tls, data, len);
    sflush(s);
}

static void send_next_piece(sconn_t *s);

static void piece_timer_cb(uv_timer_t *t)
{
    send_next_piece(t->data);
}

static void send_next_piece(sconn_t *s)
{
    while (!s->closing) {
        const char *p = sc.pieces[s->piece];
        if (!p) {
            if (sc.after != AFTER_KEEP && sc.after_delay_ms && !s->after_armed) {
                s->after_armed = 1;
                uv_timer_start(&s->timer, piece_timer_cb, sc.after_delay_ms, 0);
                return;
            }
            if (sc.after != AFTER_KEEP)
                sconn_close(s, sc.after == AFTER_RESET);
            return;
        }
        size_t len = sc.piece_len[s->piece] ? sc.piece_len[s->piece] : strlen(p);
        s->piece++;
        ssend(s, p, len);
        if (sc.delay_ms && sc.pieces[s->piece]) {
            uv_timer_start(&s->timer, piece_timer_cb, sc.delay_ms, 0);
            return;
        }
    }
}

/* A whole request (head + Content-Length body) is in s->in: answer it by the script. */
static void on_request(sconn_t *s)
{
    srv_t *srv = s->srv;
    srv->requests++;
    s->nreq++;
    size_t n = s->in_len < sizeof srv->last_req - 1 ? s->in_len : sizeof srv->last_req - 1;
    memcpy(srv->last_req, s->in, n);
    srv->last_req[n] = 0;
    s->in_len = 0;
    if (sc.drop_reused && s->nreq > 1) {
        sconn_close(s, sc.drop_reused == AFTER_RESET);
        return;
    }
    if (sc.silent)
        return;
    s->piece = 0;
    s->after_armed = 0;
    send_next_piece(s);
}

static void check_request(sconn_t *s)
{
    s->in[s->in_len] = 0;
    char *end = strstr(s->in, "\r\n\r\n");
    if (!end)
        return;
    size_t head = (size_t)(end + 4 - s->in), body = 0;
    char *cl = strcasestr(s->in, "content-length:");
    if (cl && cl < end)
        body = strtoul(cl + 15, NULL, 10);
    if (s->in_len >= head + body)
        on_request(s);
}

static void salloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(n);
    b->len = n;
}

static void sread_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    sconn_t *s = st->data;
    if (nread < 0) {
        s->srv->peer_closed++;
        sconn_close(s, 0);
    } else if (nread > 0 && !s->closing) {
        if (!s->tls) {
            if (s->in_len + (size_t)nread < sizeof s->in) {
                memcpy(s->in + s->in_len, b->base, (size_t)nread);
                s->in_len += (size_t)nread;
                check_request(s);
            }
        } else {
            tls_conn_feed(s->tls, b->base, (size_t)nread);
            if (!s->handshaken) {
                int rc = tls_conn_handshake(s->tls);
                sflush(s);
                if (rc == 0) {
                    s->handshaken = 1;
                    s->srv->resumed += tls_conn_resumed(s->tls);
                } else if (rc != TLS_WANT) {
                    s->srv->handshake_failed++;
                    sconn_close(s, 0);
                }
            }
            while (s->handshaken && !s->closing) {
                int k = tls_conn_read(s->tls, s->in + s->in_len, sizeof s->in - 1 - s->in_len);
                if (k <= 0)
                    break;
                s->in_len += (size_t)k;
                check_request(s);
            }
        }
    }
    free(b->base);
}

static void accept_cb(uv_stream_t *l, int status)
{
    srv_t *srv = l->data;
    if (status != 0)
        return;
    sconn_t *s = calloc(1, sizeof *s);
    s->srv = srv;
    uv_tcp_init(loop, &s->tcp);
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles = 2;
    if (uv_accept(l, (uv_stream_t *)&s->tcp) != 0) {
        sconn_close(s, 0);
        return;
    }
    srv->accepted++;
    if (srv->tls)
        tls_conn_new(&s->tls, srv->tls, NULL);
    uv_read_start((uv_stream_t *)&s->tcp, salloc_cb, sread_cb);
    if (sc.greet) {
        s->piece = 0;
        send_next_piece(s);
    }
}

static void srv_start(srv_t *srv, const char *crt, const char *key)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    memset(srv, 0, sizeof *srv);
    if (crt) {
        char c[1200], k[1200], err[256];
        snprintf(c, sizeof c, "%s/%s", certs, crt);
        snprintf(k, sizeof k, "%s/%s", certs, key);
        if (tls_conf_server_new(&srv->tls, c, k, err, sizeof err) != 0)
            printf("# server tls: %s\n", err);
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&srv->listener, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&srv->listener, 64, accept_cb);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &len);
    srv->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
}

static void srv_stop(srv_t *srv)
{
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* ---- the client side ---- */

typedef struct result_s {
    int done, err, status, nresp, nbody, ndone, reused, nhdrs;
    char hdrs[512]; /* "name=value;" for every header */
    long long cl;
    char *body;
    size_t body_len;
    char xtest[256];
    int pause_each; /* pause after every body callback, resume from a timer */
    int pause_in_response;
    int paused, body_while_paused;
    int abort_in_response, abort_in_body, close_pool_in_response;
    upstream_pool_t *pool;
    upstream_req_t *req;
    struct result_s *chain; /* a request started from on_done_cb */
    const cfg_provider_t *chain_prov;
} result_t;

static uv_timer_t resume_timer;

static void resume_cb(uv_timer_t *t)
{
    result_t *res = t->data;
    res->paused = 0;
    upstream_req_resume(res->req);
}

static void on_response(upstream_req_t *req, int status, const http_hdr_t *h, size_t n,
                        long long cl, void *ud)
{
    result_t *res = ud;
    res->nresp++;
    res->status = status;
    res->cl = cl;
    res->nhdrs = (int)n;
    res->hdrs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(res->hdrs);
        snprintf(res->hdrs + used, sizeof res->hdrs - used, "%.*s=%.*s;", (int)h[i].name_len,
                 h[i].name, (int)h[i].value_len, h[i].value);
    }
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 6 && strncasecmp(h[i].name, "x-test", 6) == 0)
            snprintf(res->xtest, sizeof res->xtest, "%.*s", (int)h[i].value_len, h[i].value);
    if (res->abort_in_response)
        upstream_req_abort(req);
    if (res->pause_in_response) {
        upstream_req_pause(req);
        res->paused = 1;
    }
    if (res->close_pool_in_response)
        upstream_pool_close(res->pool);
}

static void on_body(upstream_req_t *req, const char *data, size_t len, void *ud)
{
    result_t *res = ud;
    if (res->paused)
        res->body_while_paused++;
    res->nbody++;
    res->body = realloc(res->body, res->body_len + len + 1);
    memcpy(res->body + res->body_len, data, len);
    res->body_len += len;
    res->body[res->body_len] = 0;
    if (res->abort_in_body) {
        upstream_req_abort(req);
        return;
    }
    if (res->pause_each) {
        upstream_req_pause(req);
        res->paused = 1;
        resume_timer.data = res;
        uv_timer_start(&resume_timer, resume_cb, 1, 0);
    }
}

static const upstream_cbs_t cbs;

static void on_done(upstream_req_t *req, int err, void *ud)
{
    result_t *res = ud;
    res->ndone++;
    res->done = 1;
    res->err = err;
    res->reused = upstream_req_reused(req);
    if (res->pause_each)
        uv_timer_stop(&resume_timer); /* the request is gone after this callback */
    if (res->chain) {
        if (upstream_request(res->pool, res->chain_prov, "GET /chained HTTP/1.1\r\n\r\n", 25, NULL,
                             0, 0, &cbs, res->chain, &res->chain->req) != 0)
            res->chain->done = -1;
    }
}

static const upstream_cbs_t cbs = {on_response, on_body, on_done};

static int deadline_hit;
static uv_timer_t deadline;

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    deadline_hit = 1;
}

/* Runs the loop until *flag is non-zero or ms pass; returns 1 if the flag came first. */
static int run_until(const int *flag, unsigned ms)
{
    deadline_hit = 0;
    uv_timer_start(&deadline, deadline_cb, ms, 0);
    while (!(flag && *flag) && !deadline_hit)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline);
    return flag && *flag;
}

/* Runs the loop until *v > above or ms pass. */
static int wait_above(const int *v, int above, unsigned ms)
{
    deadline_hit = 0;
    uv_timer_start(&deadline, deadline_cb, ms, 0);
    while (*v <= above && !deadline_hit)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline);
    return *v > above;
}

/* Lets the loop run for ms (for "nothing else happens" checks and server-side effects). */
static void run_for(unsigned ms)
{
    run_until(NULL, ms);
}

static void result_reset(result_t *res, upstream_pool_t *pool)
{
    free(res->body);
    memset(res, 0, sizeof *res);
    res->pool = pool;
}

static int start(upstream_pool_t *pool, const cfg_provider_t *p, result_t *res, unsigned fb_ms)
{
    static const char body[] = "{\"model\":\"m\"}";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     p->host_header, sizeof body - 1);
    res->pool = pool;
    return upstream_request(pool, p, head, (size_t)n, body, sizeof body - 1, fb_ms, &cbs, res,
                            &res->req);
}

/* One request to completion (or the deadline). */
static int do_request(upstream_pool_t *pool, const cfg_provider_t *p, result_t *res)
{
    result_reset(res, pool);
    int rc = start(pool, p, res, 0);
    if (rc != 0)
        return rc;
    if (!run_until(&res->done, 5000))
        return -1000;
    return 0;
}

static void script(const char *p0, const char *p1, const char *p2, const char *p3, unsigned delay,
                   int after)
{
    memset(&sc, 0, sizeof sc);
    sc.pieces[0] = p0;
    sc.pieces[1] = p0 ? p1 : NULL;
    sc.pieces[2] = p0 && p1 ? p2 : NULL;
    sc.pieces[3] = p0 && p1 && p2 ? p3 : NULL;
    sc.delay_ms = delay;
    sc.after = after;
}

static cfg_provider_t provider(const char *host, int port, int tls, const char *ca)
{
    static char hh[64][128];
    static int n;
    cfg_provider_t p;
    memset(&p, 0, sizeof p);
    p.name = "test";
    p.host = (char *)host;
    p.port = (uint16_t)port;
    p.tls = tls;
    p.ca_file = (char *)ca;
    snprintf(hh[n % 64], sizeof hh[0], "%s:%d", host, port);
    p.host_header = hh[n++ % 64];
    p.connect_timeout_ms = 2000;
    p.first_byte_timeout_ms = 2000;
    p.idle_timeout_ms = 2000;
    p.pool_max_idle = 8;
    return p;
}

#define OK_CL5 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a\r\n\r\nhello"

static void test_plain(upstream_pool_t *pool, srv_t *srv)
{
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t r = {0};

    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    T_EQ_INT(do_request(pool, &p, &r), 0, "content-length: request runs");
    T_EQ_INT(r.err, 0, "content-length: completes");
    T_EQ_INT(r.status, 200, "content-length: status");
    T_EQ_INT(r.cl, 5, "content-length: reported");
    T_EQ_STR(r.xtest, "a", "content-length: header delivered");
    T_EQ_STR(r.body, "hello", "content-length: body");
    T_EQ_INT(r.reused, 0, "content-length: fresh connection");
    T_OK(strstr(srv->last_req, "\r\n\r\n{\"model\":\"m\"}") != NULL, "server got head and body");

    int accepted = srv->accepted;
    T_EQ_INT(do_request(pool, &p, &r), 0, "keep-alive: second request");
    T_EQ_INT(r.err, 0, "keep-alive: completes");
    T_EQ_INT(r.reused, 1, "keep-alive: reused the pooled connection");
    T_EQ_INT(srv->accepted, accepted, "keep-alive: no new connection");

    /* Chunked, with a header and chunks split across pieces. */
    script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Te", "st: split-val",
           "ue\r\n\r\n5\r\nhel", "lo\r\n6\r\n world\r\n0\r\n\r\n", 5, AFTER_KEEP);
    T_EQ_INT(do_request(pool, &p, &r), 0, "chunked: request runs");
    T_EQ_INT(r.err, 0, "chunked: completes");
    T_EQ_INT(r.cl, -1, "chunked: no content length");
    T_EQ_STR(r.xtest, "split-value", "chunked: header value accumulated across pieces");
    T_EQ_STR(r.body, "hello world", "chunked: de-chunked body");
    T_OK(r.nbody >= 2, "chunked: body arrived in several calls (%d)", r.nbody);
    T_EQ_STR(r.hdrs, "Transfer-Encoding=chunked;X-Test=split-value;", "chunked: header list");

    /* Empty values, names split across reads, a value ending at a read boundary. */
    script("HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Sp", "lit:", " v1\r\nX-Last: v2",
           "\r\nContent-Length: 0\r\n\r\n", 5, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_STR(r.hdrs, "X-Empty=;X-Split=v1;X-Last=v2;Content-Length=0;",
             "headers in pieces and empty values: %s", r.hdrs);
    T_EQ_INT(r.reused, 1, "chunked: still the same connection");

    /* 100 Continue before the real response. */
    script("HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", NULL,
           NULL, 5, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.status == 200 && r.nresp == 1 && strcmp(r.body, "ok") == 0,
         "100 Continue is skipped, the 200 is the response");

    /* 204 and a Connection: close response. */
    script("HTTP/1.1 204 No Content\r\n\r\n", NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.status == 204 && r.nbody == 0 && r.cl == 0, "204: no body");
    script("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", NULL, NULL, NULL,
           0, AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && strcmp(r.body, "x") == 0, "Connection: close response completes");
    accepted = srv->accepted;
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 0 && srv->accepted == accepted + 1,
         "after Connection: close a new connection is opened");

    /* Close-delimited body. */
    script("HTTP/1.1 200 OK\r\n\r\nabc", "def", NULL, NULL, 5, AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, 0, "close-delimited: EOF ends the body successfully");
    T_EQ_STR(r.body, "abcdef", "close-delimited: body");
    T_EQ_INT(r.cl, -1, "close-delimited: no content length");

    /* Bytes beyond the response: the connection must not be pooled. */
    accepted = srv->accepted;
    script(OK_CL5 "HTTP/1.1 200 OK\r\n", NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && strcmp(r.body, "hello") == 0, "response followed by junk completes");
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 0, "the connection with junk was not pooled");
    free(r.body);
}

static void test_stale_and_retry(upstream_pool_t *pool, srv_t *srv)
{
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t r = {0};

    /* The server closes the idle connection: the pool notices and opens a new one. */
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, 0, "stale: first response");
    run_for(50);
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 0, "stale: a connection the server closed is not reused");

    /* The server drops a reused connection when the request arrives: one silent retry. */
    int requests = srv->requests, accepted = srv->accepted;
    sc.drop_reused = AFTER_CLOSE;
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, 0, "retry after EOF: succeeds");
    T_EQ_INT(r.nresp, 1, "retry after EOF: one response");
    T_EQ_INT(r.reused, 0, "retry after EOF: answered on a fresh connection");
    T_EQ_INT(srv->requests, requests + 2, "retry after EOF: the server saw the request twice");
    T_EQ_INT(srv->accepted, accepted + 1, "retry after EOF: one new connection");

    sc.drop_reused = AFTER_RESET;
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 0, "retry after RST: succeeds on a fresh connection (%s)",
         upstream_strerror(r.err));

    /* A fresh connection closed without a response is not retried. */
    cfg_provider_t fresh = provider("localhost", srv->port, 0, NULL); /* another origin */
    script(NULL, NULL, NULL, NULL, 0, AFTER_CLOSE);
    requests = srv->requests;
    do_request(pool, &fresh, &r);
    T_EQ_INT(r.err, UPSTREAM_ERESET, "closed without a response on a fresh connection: ERESET");
    T_EQ_INT(srv->requests, requests + 1, "and not retried");
    free(r.body);
}

static void test_failures(upstream_pool_t *pool, srv_t *srv)
{
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t r = {0};

    /* Connection refused: a port that was just free. */
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_init(loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    int closed_port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    cfg_provider_t refused = provider("127.0.0.1", closed_port, 0, NULL);
    do_request(pool, &refused, &r);
    T_EQ_INT(r.err, UPSTREAM_ECONNECT, "refused: UPSTREAM_ECONNECT");
    T_EQ_INT(r.nresp, 0, "refused: no response callback");
    cfg_provider_t unresolvable = provider("no-such-host.invalid", 80, 0, NULL);
    do_request(pool, &unresolvable, &r);
    T_EQ_INT(r.err, UPSTREAM_ECONNECT, "unresolvable host: UPSTREAM_ECONNECT");

    /* First-byte timeout, the provider's and a per-request override. */
    script(NULL, NULL, NULL, NULL, 0, AFTER_KEEP);
    sc.silent = 1;
    p.first_byte_timeout_ms = 100;
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_ETIMEDOUT_FIRSTBYTE, "silent server: first-byte timeout");
    T_EQ_INT(r.nresp, 0, "first-byte timeout: no response callback");
    p.first_byte_timeout_ms = 60000;
    result_reset(&r, pool);
    uint64_t t0 = uv_now(loop);
    start(pool, &p, &r, 80);
    run_until(&r.done, 5000);
    T_OK(r.err == UPSTREAM_ETIMEDOUT_FIRSTBYTE && uv_now(loop) - t0 < 2000,
         "per-request first-byte timeout overrides the provider's");
    sc.silent = 0;

    /* Idle timeout mid-body. */
    p.idle_timeout_ms = 100;
    script("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_ETIMEDOUT_IDLE, "stalled body: idle timeout");
    T_OK(r.nresp == 1 && strcmp(r.body, "part") == 0, "idle timeout: headers and part came first");
    p.idle_timeout_ms = 2000;

    /* Truncated bodies. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", NULL, NULL, NULL, 0, AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_EPROTO, "EOF before content-length: EPROTO");
    script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", NULL, NULL, NULL, 0,
           AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_EPROTO, "EOF mid-chunk: EPROTO");
    /* (A reset that arrives together with the data is reported by libuv as EOF; give the
     * data a head start so that the reset is seen as one.) */
    script("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", NULL, NULL, NULL, 0, AFTER_RESET);
    sc.after_delay_ms = 30;
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_ERESET, "reset mid-body: ERESET");
    T_EQ_STR(r.body, "hello", "reset mid-body: the bytes before it were delivered");
    script("HTTP/1.1 200 OK\r\nContent-Le", NULL, NULL, NULL, 0, AFTER_CLOSE);
    do_request(pool, &p, &r);
    T_OK(r.err == UPSTREAM_EPROTO && r.nresp == 0, "EOF inside the head: EPROTO, no response");

    /* Bad framing. */
    script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", NULL, NULL, NULL,
           0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_EPROTO, "bad chunk size: EPROTO");
    script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelxx\r\n", NULL, NULL, NULL,
           0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_EPROTO, "chunk longer than announced: EPROTO");
    script("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", NULL, NULL,
           NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, UPSTREAM_EPROTO, "Content-Length with chunked: EPROTO (strict)");
    script("SMTP ready\r\n\r\n", NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_OK(r.err == UPSTREAM_EPROTO && r.nresp == 0, "not HTTP: EPROTO");
    free(r.body);
}

static void test_pause_abort(upstream_pool_t *pool, srv_t *srv)
{
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t r = {0};

    /* 300 KB in three pieces; the client pauses after every body callback. */
    size_t big_len = 300000;
    char *big = malloc(big_len + 100);
    int hl = sprintf(big, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big_len);
    for (size_t i = 0; i < big_len; i++)
        big[hl + i] = (char)('a' + i % 23);
    memset(&sc, 0, sizeof sc);
    sc.pieces[0] = big;
    sc.piece_len[0] = (size_t)hl + 100000;
    sc.pieces[1] = big + hl + 100000;
    sc.piece_len[1] = 100000;
    sc.pieces[2] = big + hl + 200000;
    sc.piece_len[2] = 100000;
    sc.delay_ms = 2;
    result_reset(&r, pool);
    r.pause_each = 1;
    start(pool, &p, &r, 0);
    run_until(&r.done, 10000);
    T_EQ_INT(r.err, 0, "pause/resume: completes");
    T_OK(r.body_len == big_len && memcmp(r.body, big + hl, big_len) == 0,
         "pause/resume: every byte in order (%zu)", r.body_len);
    T_EQ_INT(r.body_while_paused, 0, "pause/resume: no body callback while paused");
    T_OK(r.nbody > 3, "pause/resume: many pause points (%d)", r.nbody);

    /* Abort from on_response_cb: nothing more, and the connection is closed. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "0123456789", NULL, NULL, 20,
           AFTER_KEEP);
    int closed = srv->peer_closed;
    result_reset(&r, pool);
    r.abort_in_response = 1;
    start(pool, &p, &r, 0);
    T_OK(wait_above(&srv->peer_closed, closed, 5000), "abort in on_response_cb: connection closed");
    run_for(60);
    T_OK(r.nresp == 1 && r.nbody == 0 && r.ndone == 0,
         "abort in on_response_cb: no callback after");

    /* Abort from on_body_cb, and abort from outside before any response. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", "56789", NULL, NULL, 20,
           AFTER_KEEP);
    result_reset(&r, pool);
    r.abort_in_body = 1;
    start(pool, &p, &r, 0);
    run_for(100);
    T_OK(r.nbody == 1 && r.ndone == 0, "abort in on_body_cb: no callback after");
    script(NULL, NULL, NULL, NULL, 0, AFTER_KEEP);
    sc.silent = 1;
    result_reset(&r, pool);
    start(pool, &p, &r, 0);
    upstream_req_abort(r.req);
    run_for(50);
    T_OK(r.nresp == 0 && r.ndone == 0, "abort right after start: no callback at all");
    sc.silent = 0;

    /* A request started from on_done_cb takes the connection just released. */
    result_t chained = {0};
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    result_reset(&r, pool);
    r.chain = &chained;
    r.chain_prov = &p;
    chained.pool = pool;
    start(pool, &p, &r, 0);
    run_until(&chained.done, 5000);
    T_OK(r.err == 0 && chained.err == 0 && chained.reused == 1 &&
             strcmp(chained.body, "hello") == 0,
         "request started from on_done_cb reuses the released connection");
    free(chained.body);
    free(big);
    free(r.body);
}

/* Servers outlive their test: pooled connections to them close only with the pool. */
static srv_t good, wrong, untrusted, plain;

static void test_https(upstream_pool_t *pool)
{
    char ca[1200], other[1200];
    result_t r = {0};
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    snprintf(other, sizeof other, "%s/other-ca.crt", certs);
    srv_start(&good, "server.crt", "server.key");
    srv_start(&wrong, "wrongname.crt", "wrongname.key");
    srv_start(&untrusted, "untrusted.crt", "untrusted.key");

    cfg_provider_t p = provider("localhost", good.port, 1, ca);
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &r);
    T_EQ_INT(r.err, 0, "https: completes (%s)", upstream_strerror(r.err));
    T_EQ_STR(r.body, "hello", "https: body");
    T_EQ_INT(good.resumed, 0, "https: first connection is a full handshake");
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 1, "https: keep-alive reuse");

    /* The server closes after each response: the next connection resumes the session. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", NULL, NULL, NULL,
           0, AFTER_CLOSE);
    do_request(pool, &p, &r);
    int accepted = good.accepted;
    do_request(pool, &p, &r);
    T_OK(r.err == 0 && r.reused == 0 && good.accepted == accepted + 1,
         "https: second connection opened");
    T_OK(good.resumed >= 1, "https: the new connection resumed the TLS session (%d)", good.resumed);

    /* Pause/resume with plaintext already buffered inside the TLS layer. */
    size_t big_len = 120000;
    char *big = malloc(big_len + 100);
    int hl = sprintf(big, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big_len);
    for (size_t i = 0; i < big_len; i++)
        big[hl + i] = (char)('A' + i % 19);
    memset(&sc, 0, sizeof sc);
    sc.pieces[0] = big;
    sc.piece_len[0] = (size_t)hl + big_len;
    result_reset(&r, pool);
    r.pause_each = 1;
    start(pool, &p, &r, 0);
    run_until(&r.done, 10000);
    T_OK(r.err == 0 && r.body_len == big_len && memcmp(r.body, big + hl, big_len) == 0 &&
             r.body_while_paused == 0,
         "https pause/resume: every byte in order (%zu, %d calls)", r.body_len, r.nbody);
    free(big);

    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    cfg_provider_t pw = provider("localhost", wrong.port, 1, ca);
    do_request(pool, &pw, &r);
    T_EQ_INT(r.err, UPSTREAM_ETLS_VERIFY, "https wrong host name: ETLS_VERIFY");
    T_EQ_INT(wrong.requests, 0, "https wrong host name: no request sent");
    cfg_provider_t pu = provider("localhost", untrusted.port, 1, ca);
    do_request(pool, &pu, &r);
    T_EQ_INT(r.err, UPSTREAM_ETLS_VERIFY, "https untrusted CA: ETLS_VERIFY");
    cfg_provider_t pu2 = provider("localhost", untrusted.port, 1, other);
    do_request(pool, &pu2, &r);
    T_EQ_INT(r.err, 0, "https with that CA as ca_file: completes");

    /* TLS to a server that never answers the handshake: the connect timeout covers it. */
    srv_start(&plain, NULL, NULL);
    cfg_provider_t ps = provider("127.0.0.1", plain.port, 1, ca);
    ps.connect_timeout_ms = 150;
    script(NULL, NULL, NULL, NULL, 0, AFTER_KEEP);
    sc.silent = 1;
    do_request(pool, &ps, &r);
    T_EQ_INT(r.err, UPSTREAM_ETIMEDOUT_CONNECT, "https, silent server: connect timeout");
    /* TLS to a plain HTTP server that talks first: a TLS failure. */
    script("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", NULL, NULL, NULL, 0,
           AFTER_KEEP);
    sc.greet = 1;
    do_request(pool, &ps, &r);
    T_EQ_INT(r.err, UPSTREAM_ETLS, "https to a plain HTTP server: ETLS");
    sc.greet = 0;

    free(r.body);
}

static void test_pool_management(upstream_pool_t *pool, srv_t *srv)
{
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t a = {0}, b = {0};

    /* HEAD: Content-Length describes a body that does not come. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", NULL, NULL, NULL, 0, AFTER_KEEP);
    result_reset(&a, pool);
    static const char head[] = "HEAD /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    upstream_request(pool, &p, head, sizeof head - 1, NULL, 0, 0, &cbs, &a, &a.req);
    run_until(&a.done, 5000);
    T_OK(a.err == 0 && a.status == 200 && a.nbody == 0 && a.cl == 0, "HEAD: no body expected");
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &a);
    T_OK(a.err == 0 && a.reused == 1, "HEAD: the connection stays usable");

    /* pool_max_idle: two connections at once, only one is kept afterwards. */
    cfg_provider_t one = provider("localhost", srv->port, 0, NULL);
    one.pool_max_idle = 1;
    script(OK_CL5, NULL, NULL, NULL, 20, AFTER_KEEP);
    sc.pieces[0] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    sc.pieces[1] = "hello";
    result_reset(&a, pool);
    result_reset(&b, pool);
    int accepted = srv->accepted, closed = srv->peer_closed;
    start(pool, &one, &a, 0);
    start(pool, &one, &b, 0);
    run_until(&a.done, 5000);
    run_until(&b.done, 5000);
    T_OK(a.err == 0 && b.err == 0 && srv->accepted == accepted + 2, "two requests, two conns");
    T_OK(wait_above(&srv->peer_closed, closed, 2000) && srv->peer_closed == closed + 1,
         "pool_max_idle 1: the second idle connection is closed");

    /* The provider's idle timeout closes pooled connections. */
    one.idle_timeout_ms = 50;
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &one, &a);
    closed = srv->peer_closed;
    T_OK(a.err == 0 && wait_above(&srv->peer_closed, closed, 2000),
         "idle pooled connections close after the idle timeout");

    /* Paused from on_response_cb, then aborted from outside with body held back. */
    script("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", NULL, NULL, NULL, 0,
           AFTER_KEEP);
    result_reset(&a, pool);
    a.pause_in_response = 1;
    start(pool, &p, &a, 0);
    run_until(&a.nresp, 5000);
    run_for(30);
    T_OK(a.nresp == 1 && a.nbody == 0 && a.ndone == 0, "paused in on_response_cb: body held");
    upstream_req_resume(a.req);
    T_EQ_INT(a.nbody, 0, "resume does not call back synchronously");
    run_until(&a.done, 5000);
    T_OK(a.err == 0 && strcmp(a.body, "0123456789") == 0, "resumed: held body, then done");
    result_reset(&a, pool);
    a.pause_in_response = 1;
    start(pool, &p, &a, 0);
    run_until(&a.nresp, 5000);
    run_for(20);
    upstream_req_abort(a.req);
    run_for(30);
    T_OK(a.nbody == 0 && a.ndone == 0, "aborted while paused: no callback");
    free(a.body);
    free(b.body);
}

/* Worker pools on their own threads and loops share the process-wide TLS configuration (run
 * this under TSan). The server stays on the main loop. */
struct worker {
    pthread_t th;
    const cfg_provider_t *prov;
    uv_async_t *wake;
    int ok;
};

static int workers_done;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uv_loop_t l;
    upstream_pool_t *pool;
    uv_loop_init(&l);
    if (upstream_pool_new(&pool, &l, NULL) == 0) {
        for (int i = 0; i < 4; i++) {
            result_t r = {0};
            if (start(pool, w->prov, &r, 0) == 0) {
                while (!r.done && uv_run(&l, UV_RUN_ONCE))
                    ;
                w->ok += r.done && r.err == 0 && r.body && strcmp(r.body, "hello") == 0;
            }
            free(r.body);
        }
        upstream_pool_close(pool);
        uv_run(&l, UV_RUN_DEFAULT);
    }
    uv_loop_close(&l);
    __atomic_add_fetch(&workers_done, 1, __ATOMIC_SEQ_CST);
    uv_async_send(w->wake);
    return NULL;
}

static void wake_cb(uv_async_t *a)
{
    (void)a;
}

static void test_threads(void)
{
    char ca[1200];
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    cfg_provider_t p = provider("localhost", good.port, 1, ca);
    struct worker w[2];
    static uv_async_t wake; /* closed by the loop after this returns */
    uv_async_init(loop, &wake, wake_cb);
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){.prov = &p, .wake = &wake};
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    deadline_hit = 0;
    uv_timer_start(&deadline, deadline_cb, 20000, 0);
    while (__atomic_load_n(&workers_done, __ATOMIC_SEQ_CST) < 2 && !deadline_hit)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].th, NULL);
    T_EQ_INT(w[0].ok + w[1].ok, 8, "two worker threads, 8 https requests, shared TLS conf");
    uv_close((uv_handle_t *)&wake, NULL);
}

static void test_pool_close(const cfg_t *cfg, srv_t *srv)
{
    upstream_pool_t *pool;
    cfg_provider_t p = provider("127.0.0.1", srv->port, 0, NULL);
    result_t idle = {0}, a = {0}, b = {0};

    T_EQ_INT(upstream_pool_new(&pool, loop, cfg), 0, "second pool");
    script(OK_CL5, NULL, NULL, NULL, 0, AFTER_KEEP);
    do_request(pool, &p, &idle); /* leaves an idle connection */
    script(NULL, NULL, NULL, NULL, 0, AFTER_KEEP);
    sc.silent = 1;
    result_reset(&a, pool);
    start(pool, &p, &a, 0);
    run_for(30);
    upstream_pool_close(pool);
    T_OK(a.done && a.err == UPSTREAM_ECANCELED, "pool close: in-flight request gets ECANCELED");
    result_reset(&b, pool);
    T_EQ_INT(start(pool, &p, &b, 0), UPSTREAM_ECANCELED, "closing pool refuses new requests");
    run_for(30);

    /* Closing the pool from inside a callback of one of its requests. */
    T_EQ_INT(upstream_pool_new(&pool, loop, cfg), 0, "third pool");
    sc.silent = 0;
    script("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", "lo", NULL, NULL, 20, AFTER_KEEP);
    result_reset(&a, pool);
    a.close_pool_in_response = 1;
    start(pool, &p, &a, 0);
    run_until(&a.done, 5000);
    T_OK(a.ndone == 1 && a.err == UPSTREAM_ECANCELED,
         "pool closed in on_response_cb: ECANCELED once the callback returns");
    run_for(30);
    free(idle.body);
    free(a.body);
    free(b.body);
}

int main(void)
{
    const char *env = getenv("CERTS");
    snprintf(certs, sizeof certs, "%s", env ? env : "tests/certs");
    loop = uv_default_loop();
    uv_timer_init(loop, &deadline);
    uv_timer_init(loop, &resume_timer);

    char ca[1200], err[512] = "";
    snprintf(ca, sizeof ca, "%s/ca.crt", certs);
    cfg_provider_t provs[2];
    provs[0] = provider("localhost", 1, 1, ca);
    provs[1] = provider("localhost", 1, 0, NULL);
    cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.providers = provs;
    cfg.providers_count = 2;
    T_EQ_INT(upstream_tls_init(&cfg, err, sizeof err), 0, "upstream_tls_init %s", err);
    cfg_provider_t bad = provider("localhost", 1, 1, "/nonexistent/bundle.pem");
    bad.name = "broken";
    cfg_t badcfg = cfg;
    badcfg.providers = &bad;
    badcfg.providers_count = 1;
    T_EQ_INT(upstream_tls_init(&badcfg, err, sizeof err), UPSTREAM_ETLS,
             "upstream_tls_init with an unreadable bundle fails");
    T_OK(strstr(err, "provider broken") && strstr(err, "/nonexistent/bundle.pem"),
         "and says which provider and file: %s", err);

    upstream_pool_t *pool;
    T_EQ_INT(upstream_pool_new(&pool, loop, &cfg), 0, "pool");
    srv_t srv;
    srv_start(&srv, NULL, NULL);

    test_plain(pool, &srv);
    test_stale_and_retry(pool, &srv);
    test_failures(pool, &srv);
    test_pause_abort(pool, &srv);
    test_https(pool);
    test_pool_management(pool, &srv);
    test_threads();
    test_pool_close(&cfg, &srv);

    upstream_pool_close(pool);
    srv_stop(&srv);
    srv_stop(&good);
    srv_stop(&wrong);
    srv_stop(&untrusted);
    srv_stop(&plain);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&resume_timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(loop), 0, "every handle closed, the pool is gone");
    tls_conf_free(good.tls);
    tls_conf_free(wrong.tls);
    tls_conf_free(untrusted.tls);
    upstream_tls_cleanup();
    return t_done();
}
