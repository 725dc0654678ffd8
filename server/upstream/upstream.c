/* upstream.c - HTTP/1.1 client to providers with a per-loop keep-alive pool (see upstream.h).
 *
 * Objects
 * -------
 * pool     one per loop; owns origins, connections and requests in flight.
 * origin   (host, port, tls, ca_file): its idle connections, newest first, and the last TLS
 *          session, offered to every new connection of that origin.
 * conn     a TCP handle, one lazy timer (connect, first byte, idle between reads, or idle in
 *          the pool: the state says which; see ltimer.h), optionally a tls_conn_t, and an
 *          llhttp parser.
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
 *
 * Files
 * -----
 * upstream.c       the public calls: TLS configurations, pool and origins, requests.
 * upstream_conn.c  connections: resolve, connect, TLS handshake, writing, reading, timers,
 *                  the deferred work of the kick, going back to the idle list.
 * upstream_resp.c  the llhttp callbacks: response headers collected, body delivered or held.
 * upstream_int.h   the objects above and the calls between these files.
 */
#include "server/upstream/upstream_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- pool and origins ---- */

void upstream__pool_maybe_free(upstream_pool_t *pool)
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
    upstream__pool_maybe_free(pool);
}

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
        upstream__conn_kick(c);
    }
    if (list_empty(&pool->kicks) && !pool->closing)
        uv_idle_stop(&pool->kick);
}

void upstream__kick_queue(conn_t *c)
{
    upstream_pool_t *pool = c->pool;
    if (c->kicked || pool->closing || c->state == CONN_CLOSING)
        return;
    c->kicked = 1;
    list_insert_tail(&pool->kicks, &c->kick_link);
    uv_idle_start(&pool->kick, on_kick_cb);
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
void upstream__req_detach_close(upstream_req_t *r)
{
    conn_t *c = r->conn;
    if (!c)
        return;
    c->req = NULL;
    r->conn = NULL;
    upstream__conn_close(c);
}

/* The end of a request: on_done_cb (unless aborted), then free. Never while busy. */
void upstream__req_finish(upstream_req_t *r, int err)
{
    upstream__req_detach_close(r);
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
int upstream__req_unwind(upstream_req_t *r)
{
    if (r->busy)
        return 0;
    if (r->aborted || r->pending_err) {
        upstream__req_finish(r, r->pending_err);
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
        upstream__conn_send(c);
    } else if ((rc = upstream__conn_open(r)) != 0) {
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
        upstream__req_finish(r, UPSTREAM_ECANCELED);
}

void upstream_req_pause(upstream_req_t *r)
{
    if (!r || r->done || r->aborted || r->paused)
        return;
    r->paused = 1;
    if (r->conn && r->conn->state == CONN_ACTIVE) {
        ltimer_stop(&r->conn->timer);
        upstream__conn_update_reading(r->conn);
    }
}

void upstream_req_resume(upstream_req_t *r)
{
    if (!r || r->done || r->aborted || !r->paused)
        return;
    r->paused = 0;
    conn_t *c = r->conn;
    if (c && c->state == CONN_ACTIVE) {
        upstream__timer_arm(c, r->got_byte ? r->prov->idle_timeout_ms : r->first_byte_ms);
        /* Held body, buffered TLS plaintext and reading restart from the kick, in order. */
        upstream__kick_queue(c);
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
        upstream__req_finish(victim, UPSTREAM_ECANCELED);
    }
    for (link_t *l = pool->conns.next; l != &pool->conns;) {
        conn_t *c = container_of(l, conn_t, link);
        l = l->next;
        if (!c->req || !c->req->busy)
            upstream__conn_close(c);
    }
}

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
