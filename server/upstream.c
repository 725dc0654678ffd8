/* upstream.c - HTTP/1.1 client to providers with a per-loop keep-alive pool (see upstream.h).
 *
 * Objects
 * -------
 * pool     one per loop; owns origins, connections and requests in flight.
 * origin   (host, port, tls, ca_file): its idle connections, newest first, and the last TLS
 *          session, offered to every new connection of that origin.
 * conn     a TCP handle, one timer (connect, first byte, idle between reads, or idle in the
 *          pool: the state says which), optionally a tls_conn_t, and an llhttp parser.
 * req      what the caller holds: a copy of head + body (refcounted, because a socket write
 *          may still reference it when the request moves to a retry connection), the response
 *          headers as they accumulate, and body bytes held back while paused.
 *
 * Reentrancy
 * ----------
 * Callbacks may call abort, pause, resume, upstream_request and upstream_pool_close. While
 * our code is on the stack for a request (req->busy > 0), abort and cancellation only mark
 * it; the code that called out checks the marks when the callback returns and finishes the
 * request there. Parsing never delivers a result from inside llhttp: on_message_complete
 * pauses the parser and completion runs after llhttp_execute returned, so on_done_cb may
 * start a new request that picks up this very connection from the pool.
 *
 * Anything that would have to report a failure synchronously from inside upstream_request()
 * (a socket call failing at once) is deferred to the pool's idle handle ("kick"), which also
 * carries resumptions: resume() never calls back into the caller directly, and reading
 * restarts only after the body held back during the pause has been delivered, in order.
 */
#include "server/upstream.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "server/tls.h"

#define READ_BUF_SIZE         65536
#define PLAIN_BUF_SIZE        16384
#define MAX_RESP_HEADERS      256
#define MAX_RESP_HEADER_BYTES 65536

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct link_s {
    struct link_s *prev, *next;
} link_t;

static void list_init(link_t *h)
{
    h->prev = h->next = h;
}

static int list_empty(const link_t *h)
{
    return h->next == h;
}

static void list_insert_head(link_t *h, link_t *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static void list_insert_tail(link_t *h, link_t *n)
{
    list_insert_head(h->prev, n);
}

static void list_remove(link_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- process-wide TLS client configurations, one per CA bundle ---- */

typedef struct tls_entry_s {
    struct tls_entry_s *next;
    char *ca_file; /* NULL = system bundle */
    tls_conf_t *conf;
} tls_entry_t;

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static tls_entry_t *tls_entries;

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The shared configuration for ca_file, created on first use. */
static int tls_conf_for(const char *ca_file, tls_conf_t **out, char *err, size_t errlen)
{
    int rc = 0;
    tls_entry_t *e;

    pthread_mutex_lock(&tls_lock);
    for (e = tls_entries; e; e = e->next)
        if (same_str(e->ca_file, ca_file))
            break;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || (ca_file && !(e->ca_file = strdup(ca_file)))) {
            rc = UPSTREAM_ENOMEM;
            goto fail;
        }
        int trc = tls_conf_client_new(&e->conf, ca_file, err, errlen);
        if (trc != 0) {
            rc = trc == TLS_ENOMEM ? UPSTREAM_ENOMEM : UPSTREAM_ETLS;
            goto fail;
        }
        e->next = tls_entries;
        tls_entries = e;
    }
    *out = e->conf;
    pthread_mutex_unlock(&tls_lock);
    return 0;
fail:
    if (e)
        free(e->ca_file);
    free(e);
    pthread_mutex_unlock(&tls_lock);
    return rc;
}

int upstream_tls_init(const cfg_t *cfg, char *err, size_t errlen)
{
    for (unsigned i = 0; cfg && i < cfg->providers_count; i++) {
        const cfg_provider_t *p = &cfg->providers[i];
        char why[384] = "";
        tls_conf_t *conf;
        if (!p->tls)
            continue;
        int rc = tls_conf_for(p->ca_file, &conf, why, sizeof why);
        if (rc != 0) {
            if (err && errlen)
                snprintf(err, errlen, "upstream: provider %s: %s", p->name ? p->name : "?",
                         rc == UPSTREAM_ENOMEM ? "out of memory" : why);
            return rc;
        }
    }
    return 0;
}

void upstream_tls_cleanup(void)
{
    pthread_mutex_lock(&tls_lock);
    while (tls_entries) {
        tls_entry_t *e = tls_entries;
        tls_entries = e->next;
        tls_conf_free(e->conf);
        free(e->ca_file);
        free(e);
    }
    pthread_mutex_unlock(&tls_lock);
}

/* ---- objects ---- */

enum conn_state {
    CONN_RESOLVING,
    CONN_CONNECTING,
    CONN_HANDSHAKING,
    CONN_ACTIVE, /* request written or being written, response being read */
    CONN_IDLE,   /* in its origin's idle list */
    CONN_CLOSING,
};

typedef struct origin_s {
    link_t link; /* pool->origins */
    char *host;
    uint16_t port;
    int tls;
    char *ca_file;
    tls_conf_t *tls_conf;
    tls_session_t *session; /* last one seen, offered to new connections */
    link_t idle;            /* conn_t.idle_link, newest first */
    unsigned nidle;
} origin_t;

typedef struct payload_s {
    unsigned refs;
    size_t head_len, body_len;
    char data[]; /* head then body */
} payload_t;

typedef struct conn_s {
    link_t link;      /* pool->conns */
    link_t idle_link; /* origin->idle while CONN_IDLE */
    link_t kick_link; /* pool->kicks while kicked */
    upstream_pool_t *pool;
    origin_t *origin;
    upstream_req_t *req;
    enum conn_state state;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    struct addrinfo *ai, *ai_cur; /* resolved addresses, tried in order */
    struct sockaddr_storage literal;
    int has_literal;
    int handles;       /* open libuv handles (tcp, timer) */
    int gai_pending;   /* uv_getaddrinfo in flight: the conn must outlive it */
    int tcp_recycling; /* tcp handle closing to try the next address */
    int reading;
    int writes;   /* uv_write requests in flight */
    int reusable; /* cleared by anything that forbids going back to the pool */
    int kicked;
    int kick_uverr; /* deferred transport failure (libuv code) */
    int kick_err;   /* deferred failure (UPSTREAM_E*) */
    tls_conn_t *tls;
    llhttp_t parser;
} conn_t;

typedef struct hspan_s {
    uint32_t name_off, name_len, val_off, val_len;
} hspan_t;

struct upstream_req_s {
    link_t link; /* pool->reqs */
    upstream_pool_t *pool;
    const cfg_provider_t *prov;
    origin_t *origin;
    upstream_cbs_t cbs;
    void *ud;
    payload_t *payload;
    unsigned first_byte_ms;
    conn_t *conn;
    int busy;        /* our code is on the stack for this request */
    int pending_err; /* finish with this once no longer busy */
    int proto_err;   /* reason a parser callback failed */
    unsigned is_head : 1, reused : 1, retried : 1, got_byte : 1, interim : 1, complete : 1,
        keep_alive : 1, paused : 1, aborted : 1, done : 1, field_ended : 1, in_value : 1;
    char *hbuf; /* header names and values of the response being parsed */
    size_t hlen, hcap;
    hspan_t *hs;
    size_t nh, hs_cap;
    char *held; /* body bytes parsed while paused, delivered on resume */
    size_t held_len, held_cap;
};

struct upstream_pool_s {
    uv_loop_t *loop;
    const cfg_t *cfg;
    link_t origins, conns, reqs, kicks;
    unsigned nconns;
    uv_idle_t kick;
    int closing, kick_closed;
    int rbuf_busy;
    char rbuf[READ_BUF_SIZE];
};

typedef struct wreq_s {
    uv_write_t w;
    conn_t *conn;
    char *owned;        /* TLS ciphertext */
    payload_t *payload; /* plain: the request's head + body */
} wreq_t;

static const llhttp_settings_t parser_settings;

static int conn_open(upstream_req_t *r);
static void conn_close(conn_t *c);
static void conn_send(conn_t *c);
static void conn_update_reading(conn_t *c);
static int conn_on_plain(conn_t *c, const char *data, size_t len);
static void conn_drain_tls(conn_t *c);
static void conn_on_eof(conn_t *c);
static void conn_transport_error(conn_t *c, int uverr);
static void req_finish(upstream_req_t *r, int err);
static int req_complete(upstream_req_t *r);

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static void payload_unref(payload_t *p)
{
    if (p && --p->refs == 0)
        free(p);
}

/* ---- pool and origins ---- */

static void pool_maybe_free(upstream_pool_t *pool)
{
    if (!pool->closing || !pool->kick_closed || pool->nconns || !list_empty(&pool->reqs))
        return;
    while (!list_empty(&pool->origins)) {
        origin_t *o = container_of(pool->origins.next, origin_t, link);
        list_remove(&o->link);
        tls_session_free(o->session);
        free(o->host);
        free(o->ca_file);
        free(o);
    }
    free(pool);
}

static void on_kick_closed_cb(uv_handle_t *h)
{
    upstream_pool_t *pool = h->data;
    pool->kick_closed = 1;
    pool_maybe_free(pool);
}

static void conn_kick(conn_t *c);

static void on_kick_cb(uv_idle_t *h)
{
    upstream_pool_t *pool = h->data;
    link_t batch;

    /* Work queued while this batch runs waits for the next loop iteration. */
    list_init(&batch);
    if (!list_empty(&pool->kicks)) {
        batch.next = pool->kicks.next;
        batch.prev = pool->kicks.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        list_init(&pool->kicks);
    }
    while (!list_empty(&batch)) {
        conn_t *c = container_of(batch.next, conn_t, kick_link);
        list_remove(&c->kick_link);
        c->kicked = 0;
        conn_kick(c);
    }
    if (list_empty(&pool->kicks) && !pool->closing)
        uv_idle_stop(&pool->kick);
}

static void kick_queue(conn_t *c)
{
    upstream_pool_t *pool = c->pool;
    if (c->kicked || pool->closing || c->state == CONN_CLOSING)
        return;
    c->kicked = 1;
    list_insert_tail(&pool->kicks, &c->kick_link);
    uv_idle_start(&pool->kick, on_kick_cb);
}

/* A failure detected where no callback may run yet: reported from the kick. */
static void conn_fail_later(conn_t *c, int uverr, int err)
{
    if (!c->kick_uverr && !c->kick_err) {
        c->kick_uverr = uverr;
        c->kick_err = err;
    }
    kick_queue(c);
}

int upstream_pool_new(upstream_pool_t **out, uv_loop_t *loop, const cfg_t *cfg)
{
    *out = NULL;
    /* Load the CA bundles now, so a bad one fails the worker at start and not its first
     * request (a no-op when upstream_tls_init already did it). */
    for (unsigned i = 0; cfg && i < cfg->providers_count; i++) {
        tls_conf_t *conf;
        char err[8];
        if (cfg->providers[i].tls) {
            int rc = tls_conf_for(cfg->providers[i].ca_file, &conf, err, sizeof err);
            if (rc != 0)
                return rc;
        }
    }
    upstream_pool_t *pool = malloc(sizeof *pool);
    if (!pool)
        return UPSTREAM_ENOMEM;
    memset(pool, 0, offsetof(upstream_pool_t, rbuf));
    pool->loop = loop;
    pool->cfg = cfg;
    list_init(&pool->origins);
    list_init(&pool->conns);
    list_init(&pool->reqs);
    list_init(&pool->kicks);
    uv_idle_init(loop, &pool->kick);
    pool->kick.data = pool;
    *out = pool;
    return 0;
}

static int origin_get(upstream_pool_t *pool, const cfg_provider_t *prov, origin_t **out)
{
    origin_t *o;
    for (link_t *l = pool->origins.next; l != &pool->origins; l = l->next) {
        o = container_of(l, origin_t, link);
        if (o->port == prov->port && o->tls == !!prov->tls && strcmp(o->host, prov->host) == 0 &&
            (!o->tls || same_str(o->ca_file, prov->ca_file))) {
            *out = o;
            return 0;
        }
    }
    o = calloc(1, sizeof *o);
    if (!o)
        return UPSTREAM_ENOMEM;
    o->port = prov->port;
    o->tls = !!prov->tls;
    list_init(&o->idle);
    if (!(o->host = strdup(prov->host)) ||
        (o->tls && prov->ca_file && !(o->ca_file = strdup(prov->ca_file)))) {
        free(o->host);
        free(o);
        return UPSTREAM_ENOMEM;
    }
    if (o->tls) {
        char err[8];
        int rc = tls_conf_for(prov->ca_file, &o->tls_conf, err, sizeof err);
        if (rc != 0) {
            free(o->host);
            free(o->ca_file);
            free(o);
            return rc;
        }
    }
    list_insert_tail(&pool->origins, &o->link);
    *out = o;
    return 0;
}

/* ---- requests ---- */

static void req_free(upstream_req_t *r)
{
    list_remove(&r->link);
    payload_unref(r->payload);
    free(r->hbuf);
    free(r->hs);
    free(r->held);
    free(r);
}

/* Detaches r from its connection, which is closed. */
static void req_detach_close(upstream_req_t *r)
{
    conn_t *c = r->conn;
    if (!c)
        return;
    c->req = NULL;
    r->conn = NULL;
    conn_close(c);
}

/* The end of a request: on_done_cb (unless aborted), then free. Never while busy. */
static void req_finish(upstream_req_t *r, int err)
{
    req_detach_close(r);
    if (!r->aborted && !r->done) {
        r->done = 1;
        r->busy++;
        if (r->cbs.on_done_cb)
            r->cbs.on_done_cb(r, err, r->ud);
        r->busy--;
    }
    req_free(r);
}

/* After our code called out for r: 1 (and r is gone) if the callback aborted or cancelled. */
static int req_unwind(upstream_req_t *r)
{
    if (r->busy)
        return 0;
    if (r->aborted || r->pending_err) {
        req_finish(r, r->pending_err);
        return 1;
    }
    return 0;
}

int upstream_request(upstream_pool_t *pool, const cfg_provider_t *prov, const char *head,
                     size_t head_len, const char *body, size_t body_len,
                     unsigned first_byte_timeout_ms, const upstream_cbs_t *cbs, void *ud,
                     upstream_req_t **out)
{
    origin_t *o;
    int rc;

    *out = NULL;
    if (pool->closing)
        return UPSTREAM_ECANCELED;
    if ((rc = origin_get(pool, prov, &o)) != 0)
        return rc;
    upstream_req_t *r = calloc(1, sizeof *r);
    payload_t *p = malloc(sizeof *p + head_len + body_len);
    if (!r || !p) {
        free(r);
        free(p);
        return UPSTREAM_ENOMEM;
    }
    p->refs = 1;
    p->head_len = head_len;
    p->body_len = body_len;
    memcpy(p->data, head, head_len);
    if (body_len)
        memcpy(p->data + head_len, body, body_len);
    r->pool = pool;
    r->prov = prov;
    r->origin = o;
    r->cbs = *cbs;
    r->ud = ud;
    r->payload = p;
    r->first_byte_ms = first_byte_timeout_ms ? first_byte_timeout_ms : prov->first_byte_timeout_ms;
    r->is_head = head_len >= 5 && memcmp(head, "HEAD ", 5) == 0;
    list_insert_tail(&pool->reqs, &r->link);

    if (!list_empty(&o->idle)) {
        conn_t *c = container_of(o->idle.next, conn_t, idle_link);
        list_remove(&c->idle_link);
        o->nidle--;
        c->req = r;
        r->conn = c;
        r->reused = 1;
        conn_send(c);
    } else if ((rc = conn_open(r)) != 0) {
        req_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void upstream_req_abort(upstream_req_t *r)
{
    if (!r || r->done || r->aborted)
        return;
    r->aborted = 1;
    if (!r->busy)
        req_finish(r, UPSTREAM_ECANCELED);
}

static void timer_arm(conn_t *c, unsigned ms);

void upstream_req_pause(upstream_req_t *r)
{
    if (!r || r->done || r->aborted || r->paused)
        return;
    r->paused = 1;
    if (r->conn && r->conn->state == CONN_ACTIVE) {
        uv_timer_stop(&r->conn->timer);
        conn_update_reading(r->conn);
    }
}

void upstream_req_resume(upstream_req_t *r)
{
    if (!r || r->done || r->aborted || !r->paused)
        return;
    r->paused = 0;
    conn_t *c = r->conn;
    if (c && c->state == CONN_ACTIVE) {
        timer_arm(c, r->got_byte ? r->prov->idle_timeout_ms : r->first_byte_ms);
        /* Held body, buffered TLS plaintext and reading restart from the kick, in order. */
        kick_queue(c);
    }
}

int upstream_req_reused(const upstream_req_t *r)
{
    return r->reused;
}

void upstream_pool_close(upstream_pool_t *pool)
{
    if (pool->closing)
        return;
    pool->closing = 1;
    uv_close((uv_handle_t *)&pool->kick, on_kick_closed_cb);
    while (!list_empty(&pool->kicks)) {
        conn_t *c = container_of(pool->kicks.next, conn_t, kick_link);
        list_remove(&c->kick_link);
        c->kicked = 0;
    }

    /* Requests our code is inside of finish when they unwind; the rest finish now. A
     * callback may abort or finish other requests, so rescan after each one. */
    for (link_t *l = pool->reqs.next; l != &pool->reqs; l = l->next) {
        upstream_req_t *r = container_of(l, upstream_req_t, link);
        if (r->busy && !r->done && !r->pending_err)
            r->pending_err = UPSTREAM_ECANCELED;
    }
    for (;;) {
        upstream_req_t *victim = NULL;
        for (link_t *l = pool->reqs.next; l != &pool->reqs; l = l->next) {
            upstream_req_t *r = container_of(l, upstream_req_t, link);
            if (!r->busy && !r->done) {
                victim = r;
                break;
            }
        }
        if (!victim)
            break;
        req_finish(victim, UPSTREAM_ECANCELED);
    }
    for (link_t *l = pool->conns.next; l != &pool->conns;) {
        conn_t *c = container_of(l, conn_t, link);
        l = l->next;
        if (!c->req || !c->req->busy)
            conn_close(c);
    }
}

/* ---- connections: life cycle ---- */

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
    pool_maybe_free(pool);
}

static void on_handle_closed_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles--;
    conn_maybe_free(c);
}

static void on_timer_cb(uv_timer_t *t);

static void timer_arm(conn_t *c, unsigned ms)
{
    if (ms)
        uv_timer_start(&c->timer, on_timer_cb, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void conn_flush_tls(conn_t *c);

static void conn_close(conn_t *c)
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
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed_cb);
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
    timer_arm(c, prov->idle_timeout_ms);
    conn_update_reading(c);
    if (prov->pool_max_idle && o->nidle > prov->pool_max_idle)
        conn_close(container_of(o->idle.prev, conn_t, idle_link));
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

static void conn_update_reading(conn_t *c)
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
        req_finish(c->req, UPSTREAM_ECONNECT);
    else
        conn_close(c);
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
        req_finish(c->req, tls_to_upstream(rc));
        return 1;
    }
    tls_session_t *s = tls_conn_save_session(c->tls);
    if (s) {
        tls_session_free(c->origin->session);
        c->origin->session = s;
    }
    conn_send(c);
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
        conn_send(c);
        return;
    }
    int trc = tls_conn_new(&c->tls, c->origin->tls_conf, c->origin->host);
    if (trc != 0) {
        req_finish(c->req, tls_to_upstream(trc));
        return;
    }
    if (c->origin->session)
        tls_conn_set_session(c->tls, c->origin->session);
    c->state = CONN_HANDSHAKING;
    conn_update_reading(c);
    conn_handshake(c);
}

/* A new connection for r; never calls back (failures are deferred). */
static int conn_open(upstream_req_t *r)
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
    uv_timer_init(pool->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    list_insert_tail(&pool->conns, &c->link);
    pool->nconns++;
    c->req = r;
    r->conn = c;
    timer_arm(c, r->prov->connect_timeout_ms);

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
        timer_arm(c, r->first_byte_ms);
}

static int conn_write(conn_t *c, uv_buf_t *bufs, unsigned n, char *owned, payload_t *payload)
{
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
static void conn_send(conn_t *c)
{
    upstream_req_t *r = c->req;
    payload_t *p = r->payload;

    c->state = CONN_ACTIVE;
    c->reusable = 1;
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    timer_arm(c, r->paused ? 0 : r->first_byte_ms);
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
        uv_buf_t b[2] = {uv_buf_init(p->data, (unsigned)p->head_len),
                         uv_buf_init(p->data + p->head_len, (unsigned)p->body_len)};
        int rc = conn_write(c, b, p->body_len ? 2 : 1, NULL, p);
        if (rc != 0) {
            conn_fail_later(c, rc, 0);
            return;
        }
    }
    conn_update_reading(c);
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
    req_detach_close(r);
    r->retried = 1;
    r->reused = 0;
    int rc = conn_open(r);
    if (rc != 0)
        req_finish(r, rc);
}

/* A socket error or failed write (EOF goes to conn_on_eof). */
static void conn_transport_error(conn_t *c, int uverr)
{
    upstream_req_t *r = c->req;
    if (!r) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        conn_connect_failed(c, uverr);
        return;
    case CONN_HANDSHAKING:
        req_finish(r, UPSTREAM_ETLS);
        return;
    default:
        break;
    }
    if (retryable(r, uverr))
        req_retry(r);
    else
        req_finish(r, UPSTREAM_ERESET);
}

static void conn_on_eof(conn_t *c)
{
    upstream_req_t *r = c->req;
    if (!r) {
        conn_close(c);
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
            req_finish(r, UPSTREAM_ERESET); /* closed without a response */
        return;
    }
    /* A close-delimited body ends here; anything else is truncated. */
    c->reusable = 0;
    if (!r->complete) {
        r->busy++;
        llhttp_finish(&c->parser);
        r->busy--;
        if (req_unwind(r))
            return;
    }
    if (r->complete)
        req_complete(r);
    else
        req_finish(r, UPSTREAM_EPROTO);
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
        timer_arm(c, c->req->prov->idle_timeout_ms);
    if (!c->tls) {
        conn_on_plain(c, buf->base, (size_t)nread);
        goto out;
    }
    if (tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
        if (c->req)
            req_finish(c->req, UPSTREAM_ENOMEM);
        else
            conn_close(c);
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
                req_finish(c->req, tls_to_upstream(n));
        } else {
            conn_close(c);
        }
        return;
    }
}

/* Parses response bytes. 0: go on reading; 1: stop (request over or connection gone). */
static int conn_on_plain(conn_t *c, const char *data, size_t len)
{
    upstream_req_t *r = c->req;
    if (!r || c->state != CONN_ACTIVE) {
        conn_close(c); /* bytes nobody asked for: the connection is out of step */
        return 1;
    }
    if (r->complete) { /* bytes after a response that waits for resume */
        c->reusable = 0;
        return req_complete(r);
    }
    if (!r->got_byte) {
        r->got_byte = 1;
        if (!r->paused)
            timer_arm(c, r->prov->idle_timeout_ms);
    }
    r->busy++;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    r->busy--;
    if (req_unwind(r))
        return 1;
    if (e == HPE_PAUSED && r->complete) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        if (pos && pos < data + len)
            c->reusable = 0; /* bytes beyond the response */
        return req_complete(r);
    }
    if (e != HPE_OK) {
        req_finish(r, r->proto_err ? r->proto_err : UPSTREAM_EPROTO);
        return 1;
    }
    return 0;
}

/* The response was parsed to its end: deliver it once nothing is held back. Returns 1. */
static int req_complete(upstream_req_t *r)
{
    conn_t *c = r->conn;
    if (r->held_len) {
        conn_update_reading(c);
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
        conn_close(c);
    req_finish(r, 0);
    return 1;
}

/* Deferred work for c: a failure, or what a resume needs. */
static void conn_kick(conn_t *c)
{
    upstream_req_t *r = c->req;
    if (c->state == CONN_CLOSING)
        return;
    if (c->kick_err || c->kick_uverr) {
        int err = c->kick_err, uverr = c->kick_uverr;
        c->kick_err = c->kick_uverr = 0;
        if (err && r)
            req_finish(r, err);
        else if (err)
            conn_close(c);
        else
            conn_transport_error(c, uverr);
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
        if (req_unwind(r) || r->paused)
            return;
    }
    if (r->complete) {
        req_complete(r);
        return;
    }
    if (c->tls)
        conn_drain_tls(c);
    if (c->state != CONN_CLOSING)
        conn_update_reading(c);
}

static void on_timer_cb(uv_timer_t *t)
{
    conn_t *c = t->data;
    upstream_req_t *r = c->req;
    switch (c->state) {
    case CONN_IDLE:
        conn_close(c);
        break;
    case CONN_RESOLVING:
    case CONN_CONNECTING:
    case CONN_HANDSHAKING:
        req_finish(r, UPSTREAM_ETIMEDOUT_CONNECT);
        break;
    case CONN_ACTIVE:
        req_finish(r, r->got_byte ? UPSTREAM_ETIMEDOUT_IDLE : UPSTREAM_ETIMEDOUT_FIRSTBYTE);
        break;
    case CONN_CLOSING:
        break;
    }
}

/* ---- llhttp callbacks ---- */

static upstream_req_t *parser_req(llhttp_t *p)
{
    return ((conn_t *)p->data)->req;
}

static int parse_fail(upstream_req_t *r, int err)
{
    r->proto_err = err;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    r->hlen = r->nh = 0;
    r->field_ended = 1;
    return 0;
}

static int hdr_append(upstream_req_t *r, const char *at, size_t len)
{
    if (r->hlen + len > MAX_RESP_HEADER_BYTES)
        return parse_fail(r, UPSTREAM_EPROTO);
    if (grow(&r->hbuf, &r->hcap, r->hlen + len) != 0)
        return parse_fail(r, UPSTREAM_ENOMEM);
    memcpy(r->hbuf + r->hlen, at, len);
    r->hlen += len;
    return 0;
}

/* Names and values may arrive in several spans (across reads), an empty value as none at all:
 * a header starts with the first name span after the previous name ended. */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    if (r->field_ended) {
        if (r->nh == MAX_RESP_HEADERS)
            return parse_fail(r, UPSTREAM_EPROTO);
        if (r->nh == r->hs_cap) {
            size_t ncap = r->hs_cap ? r->hs_cap * 2 : 16;
            hspan_t *nhs = realloc(r->hs, ncap * sizeof *nhs);
            if (!nhs)
                return parse_fail(r, UPSTREAM_ENOMEM);
            r->hs = nhs;
            r->hs_cap = ncap;
        }
        r->hs[r->nh++] = (hspan_t){(uint32_t)r->hlen, 0, (uint32_t)r->hlen, 0};
        r->field_ended = 0;
        r->in_value = 0;
    }
    if (hdr_append(r, at, len) != 0)
        return -1;
    hspan_t *h = &r->hs[r->nh - 1];
    h->name_len += (uint32_t)len;
    h->val_off = (uint32_t)r->hlen;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    parser_req(p)->field_ended = 1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    hspan_t *h = &r->hs[r->nh - 1];
    if (!r->in_value) {
        r->in_value = 1;
        h->val_off = (uint32_t)r->hlen;
    }
    if (hdr_append(r, at, len) != 0)
        return -1;
    h->val_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    int status = p->status_code;

    if (status >= 100 && status < 200) {
        if (status == 101) /* we never ask to switch protocols */
            return parse_fail(r, UPSTREAM_EPROTO);
        r->interim = 1; /* 100 Continue, 103 Early Hints: the real response follows */
        return 1;
    }
    r->interim = 0;
    int no_body = r->is_head || status == 204 || status == 304;
    long long cl = -1;
    if (no_body)
        cl = 0;
    else if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED))
        cl = (long long)p->content_length;
    upstream_hdr_t *hdrs = NULL;
    if (r->nh && !(hdrs = malloc(r->nh * sizeof *hdrs)))
        return parse_fail(r, UPSTREAM_ENOMEM);
    for (size_t i = 0; i < r->nh; i++) {
        hdrs[i].name = r->hbuf + r->hs[i].name_off;
        hdrs[i].name_len = r->hs[i].name_len;
        hdrs[i].value = r->hbuf + r->hs[i].val_off;
        hdrs[i].value_len = r->hs[i].val_len;
    }
    if (r->cbs.on_response_cb)
        r->cbs.on_response_cb(r, status, hdrs, r->nh, cl, r->ud);
    free(hdrs);
    if (r->aborted || r->pending_err)
        return -1;
    return no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    if (r->paused || r->held_len) {
        if (grow(&r->held, &r->held_cap, r->held_len + len) != 0)
            return parse_fail(r, UPSTREAM_ENOMEM);
        memcpy(r->held + r->held_len, at, len);
        r->held_len += len;
        return 0;
    }
    if (r->cbs.on_body_cb)
        r->cbs.on_body_cb(r, at, len, r->ud);
    return r->aborted || r->pending_err ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    if (r->interim) {
        r->interim = 0;
        return 0;
    }
    r->complete = 1;
    r->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
    return HPE_PAUSED; /* completion runs after llhttp_execute returns */
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

const char *upstream_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case UPSTREAM_ECONNECT:
        return "cannot connect to the provider (refused, unreachable or unresolvable)";
    case UPSTREAM_ETIMEDOUT_CONNECT:
        return "timed out connecting to the provider (TCP connect and TLS handshake)";
    case UPSTREAM_ETLS_VERIFY:
        return "provider certificate not trusted or not valid for its host name";
    case UPSTREAM_ETLS:
        return "TLS failure with the provider";
    case UPSTREAM_ETIMEDOUT_FIRSTBYTE:
        return "timed out waiting for the provider's response";
    case UPSTREAM_ETIMEDOUT_IDLE:
        return "provider response stalled (idle timeout between reads)";
    case UPSTREAM_ERESET:
        return "provider closed or reset the connection before the response ended";
    case UPSTREAM_EPROTO:
        return "malformed or truncated response from the provider";
    case UPSTREAM_ENOMEM:
        return "out of memory";
    case UPSTREAM_ECANCELED:
        return "request cancelled (upstream pool closing)";
    default:
        return "unknown upstream error";
    }
}
