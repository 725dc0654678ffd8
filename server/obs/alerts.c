/* alerts.c - the alert queue, the store watcher and the webhook POST. See alerts.h. */
#include "server/obs/alerts.h"
#include "server/common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "server/common/buf.h"
#include "server/common/errors.h"
#include "server/common/log.h"

enum ev_type { EV_KEY = 1, EV_CIRCUIT };

typedef struct ev_s {
    uint64_t seq;  /* order of arrival, to pop exactly what a POST carried */
    int64_t ts_ms; /* wall clock */
    int type;
    int from, to;
    char key[SHM_NAME_MAX + 1];
    char provider[SHM_NAME_MAX + 1];
    char reason[32];
} ev_t;

/* What the watcher last saw of one key or provider. */
typedef struct seen_s {
    char name[SHM_NAME_MAX + 1];
    int state;
    uint64_t hook_ms; /* monotonic time a hook last set state, 0 = never */
} seen_t;

struct alerts_s {
    alerts_opts_t o;
    char *host, *path, *host_header;
    char hostname[64];
    uv_thread_t thread;
    uv_mutex_t lock; /* guards everything below */
    uv_cond_t cond;
    int stop;
    ev_t q[ALERTS_QUEUE];
    unsigned head, count;
    uint64_t next_seq;
    unsigned tries; /* failed POSTs of the events at the head */
    seen_t *keys, *provs;
    unsigned nkeys, nprovs;
    int have_baseline;
    alerts_stats_t st;
};

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void copy_name(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* ---- the queue (a->lock held) ------------------------------------------------------------ */

static void push(alerts_t *a, const ev_t *e)
{
    if (a->count == ALERTS_QUEUE) { /* drop the oldest */
        a->head = (a->head + 1) % ALERTS_QUEUE;
        a->count--;
        a->tries = 0;
        a->st.events_dropped++;
    }
    a->q[(a->head + a->count) % ALERTS_QUEUE] = *e;
    a->q[(a->head + a->count) % ALERTS_QUEUE].seq = ++a->next_seq;
    a->count++;
    uv_cond_signal(&a->cond);
}

/* Remove the events up to seq (those a POST carried; some may have been dropped meanwhile).
 * Returns how many were removed. */
static unsigned pop_through(alerts_t *a, uint64_t seq)
{
    unsigned n = 0;

    while (a->count && a->q[a->head].seq <= seq) {
        a->head = (a->head + 1) % ALERTS_QUEUE;
        a->count--;
        n++;
    }
    a->tries = 0;
    return n;
}

static int serious(int st)
{
    return st == SHM_ST_DISABLED || st == SHM_ST_INVALID || st == SHM_ST_DEPLETED;
}

static int key_alerts(const alerts_t *a, int from, int to)
{
    return from != to && (serious(from) || serious(to) || a->o.include_cooling);
}

static seen_t *seen_find(seen_t *v, unsigned n, const char *name)
{
    unsigned lo = 0, hi = n;

    while (lo < hi) { /* v is sorted by name (snapshots come sorted) */
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(v[mid].name, name);
        if (c == 0)
            return &v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void alerts_key_event(alerts_t *a, const char *key, const char *provider, int old_status,
                      int new_status, const char *reason)
{
    ev_t e;
    seen_t *s;

    if (!a || !key)
        return;
    memset(&e, 0, sizeof(e));
    e.ts_ms = clock_wall_ms();
    e.type = EV_KEY;
    e.from = old_status;
    e.to = new_status;
    copy_name(e.key, sizeof(e.key), key);
    copy_name(e.provider, sizeof(e.provider), provider);
    copy_name(e.reason, sizeof(e.reason), reason);
    uv_mutex_lock(&a->lock);
    if ((s = seen_find(a->keys, a->nkeys, key)) != NULL) {
        s->state = new_status;
        s->hook_ms = mono_ms();
    }
    if (key_alerts(a, old_status, new_status))
        push(a, &e);
    uv_mutex_unlock(&a->lock);
}

void alerts_circuit_event(alerts_t *a, const char *provider, int old_state, int new_state)
{
    ev_t e;
    seen_t *s;

    if (!a || !provider || old_state == new_state)
        return;
    memset(&e, 0, sizeof(e));
    e.ts_ms = clock_wall_ms();
    e.type = EV_CIRCUIT;
    e.from = old_state;
    e.to = new_state;
    copy_name(e.provider, sizeof(e.provider), provider);
    uv_mutex_lock(&a->lock);
    if ((s = seen_find(a->provs, a->nprovs, provider)) != NULL) {
        s->state = new_state;
        s->hook_ms = mono_ms();
    }
    push(a, &e);
    uv_mutex_unlock(&a->lock);
}

void alerts_stats(alerts_t *a, alerts_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!a)
        return;
    uv_mutex_lock(&a->lock);
    *out = a->st;
    out->queued = a->count;
    uv_mutex_unlock(&a->lock);
}

/* ---- the store watcher ------------------------------------------------------------------- */

/* The state llmgatectl shows: a COOLING key whose cooldown has passed is half-open. */
static int key_state(const shm_key_t *k, int64_t now)
{
    if (k->status == SHM_ST_COOLING && k->cooldown_until_ms <= now)
        return SHM_ST_HALF_OPEN;
    return k->status;
}

/* Compare a new reading with the last one (a->lock held); old entries a hook set after the
 * reading started (hook_ms >= since) are newer than the reading and win. */
static void diff_keys(alerts_t *a, seen_t *now, unsigned n, const shm_key_t *k, uint64_t since)
{
    for (unsigned i = 0; i < n; i++) {
        seen_t *old = seen_find(a->keys, a->nkeys, now[i].name);
        ev_t e;

        if (!old)
            continue; /* a new key: nothing changed */
        if (old->hook_ms >= since) {
            now[i] = *old;
            continue;
        }
        if (!key_alerts(a, old->state, now[i].state))
            continue;
        memset(&e, 0, sizeof(e));
        e.ts_ms = clock_wall_ms();
        e.type = EV_KEY;
        e.from = old->state;
        e.to = now[i].state;
        copy_name(e.key, sizeof(e.key), k[i].name);
        copy_name(e.provider, sizeof(e.provider), k[i].provider);
        copy_name(e.reason, sizeof(e.reason), shm_reason_name(k[i].reason));
        push(a, &e);
    }
}

static void diff_provs(alerts_t *a, seen_t *now, unsigned n, uint64_t since)
{
    for (unsigned i = 0; i < n; i++) {
        seen_t *old = seen_find(a->provs, a->nprovs, now[i].name);
        ev_t e;

        if (!old)
            continue;
        if (old->hook_ms >= since) {
            now[i] = *old;
            continue;
        }
        if (old->state == now[i].state)
            continue;
        memset(&e, 0, sizeof(e));
        e.ts_ms = clock_wall_ms();
        e.type = EV_CIRCUIT;
        e.from = old->state;
        e.to = now[i].state;
        copy_name(e.provider, sizeof(e.provider), now[i].name);
        push(a, &e);
    }
}

static void poll_store(alerts_t *a)
{
    uint64_t since = mono_ms();
    int64_t now = clock_wall_ms();
    shm_key_t *k = NULL;
    shm_provider_t *p = NULL;
    seen_t *sk = NULL, *sp = NULL;
    unsigned nk = 0, np = 0;

    if (shm_snapshot(a->o.shm, now, &k, &nk) != 0 || shm_providers(a->o.shm, &p, &np) != 0)
        goto out;
    sk = calloc(nk ? nk : 1, sizeof(*sk));
    sp = calloc(np ? np : 1, sizeof(*sp));
    if (!sk || !sp)
        goto out;
    for (unsigned i = 0; i < nk; i++) {
        copy_name(sk[i].name, sizeof(sk[i].name), k[i].name);
        sk[i].state = key_state(&k[i], now);
    }
    for (unsigned i = 0; i < np; i++) {
        copy_name(sp[i].name, sizeof(sp[i].name), p[i].name);
        sp[i].state = p[i].circuit;
    }
    uv_mutex_lock(&a->lock);
    if (a->have_baseline) {
        diff_keys(a, sk, nk, k, since);
        diff_provs(a, sp, np, since);
    }
    a->have_baseline = 1;
    a->st.polls++;
    free(a->keys);
    free(a->provs);
    a->keys = sk;
    a->provs = sp;
    a->nkeys = nk;
    a->nprovs = np;
    sk = sp = NULL;
    uv_mutex_unlock(&a->lock);
out:
    free(sk);
    free(sp);
    shm_snapshot_free(k);
    shm_snapshot_free(p);
}

/* ---- the POST ---------------------------------------------------------------------------- */

static void iso_time(char *buf, size_t len, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static const char *state_name(const ev_t *e, int st)
{
    return e->type == EV_KEY ? shm_status_name(st) : shm_circuit_name(st);
}

static int put_str(buf_t *b, const char *s)
{
    char esc[4096]; /* names, reasons and the summary: at most 6 bytes per byte of 600 */

    json_escape(esc, sizeof(esc), s, strlen(s));
    return buf_printf(b, "\"%s\"", esc);
}

static void summary(const ev_t *e, char *buf, size_t len)
{
    if (e->type == EV_KEY)
        snprintf(buf, len, "key %s (%s) %s -> %s%s%s%s", e->key, e->provider,
                 shm_status_name(e->from), shm_status_name(e->to), *e->reason ? " (" : "",
                 e->reason, *e->reason ? ")" : "");
    else
        snprintf(buf, len, "provider %s circuit %s -> %s", e->provider, shm_circuit_name(e->from),
                 shm_circuit_name(e->to));
}

static int format_body(alerts_t *a, const ev_t *ev, unsigned n, uint64_t dropped, buf_t *b)
{
    char t[64], text[512];
    size_t o;
    int rc;

    iso_time(t, sizeof(t), clock_wall_ms());
    rc = buf_appends(b, "{\"source\":\"llmgate\",\"host\":");
    rc |= put_str(b, a->hostname);
    rc |= buf_printf(b, ",\"pid\":%d,\"sent_at\":\"%s\",\"dropped\":%llu,\"text\":", (int)getpid(),
                     t, (unsigned long long)dropped);
    o = (size_t)snprintf(text, sizeof(text), "llmgate: ");
    summary(&ev[0], text + o, sizeof(text) - o);
    if (n > 1) {
        o = strlen(text);
        snprintf(text + o, sizeof(text) - o, "; and %u more", n - 1);
    }
    rc |= put_str(b, text);
    rc |= buf_appends(b, ",\"events\":[");
    for (unsigned i = 0; i < n; i++) {
        const ev_t *e = &ev[i];
        iso_time(t, sizeof(t), e->ts_ms);
        rc |= buf_printf(b, "%s{\"time\":\"%s\",\"type\":\"%s\"", i ? "," : "", t,
                         e->type == EV_KEY ? "key_status" : "circuit");
        if (e->type == EV_KEY) {
            rc |= buf_appends(b, ",\"key\":");
            rc |= put_str(b, e->key);
        }
        rc |= buf_appends(b, ",\"provider\":");
        rc |= put_str(b, e->provider);
        rc |= buf_printf(b, ",\"from\":\"%s\",\"to\":\"%s\"", state_name(e, e->from),
                         state_name(e, e->to));
        if (e->type == EV_KEY) {
            rc |= buf_appends(b, ",\"reason\":");
            rc |= *e->reason ? put_str(b, e->reason) : buf_appends(b, "null");
        }
        rc |= buf_append(b, "}", 1);
    }
    rc |= buf_appends(b, "]}");
    return rc;
}

/* Wait for fd to be ready for events until deadline (monotonic ms). 0, or -1 (timeout). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ms();
        struct pollfd pfd = {fd, events, 0};
        int r;
        if (now >= deadline)
            return -1;
        r = poll(&pfd, 1, (int)(deadline - now));
        if (r > 0)
            return 0;
        if (r == 0 || errno != EINTR)
            return -1;
    }
}

static int connect_to(const alerts_t *a, uint64_t deadline, const char **why)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", a->o.port);
    if (getaddrinfo(a->host, port, &hints, &res) != 0) {
        *why = "cannot resolve the host";
        return -1;
    }
    *why = "cannot connect";
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        int err = 0;
        socklen_t el = sizeof(err);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            break;
        if (mono_ms() >= deadline)
            *why = "connect timed out";
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* POST body; 0 on a 2xx answer, else -1 with *why. */
static int post(const alerts_t *a, const buf_t *body, const char **why, int *status)
{
    uint64_t deadline = mono_ms() + a->o.timeout_ms;
    char resp[512];
    size_t got = 0;
    buf_t req = {0};
    int fd, rc = -1;

    *status = 0;
    fd = connect_to(a, deadline, why);
    if (fd < 0)
        return -1;
    if (buf_printf(&req,
                   "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: llmgate\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   a->path, a->host_header, body->len) != 0 ||
        buf_append(&req, body->data, body->len) != 0) {
        *why = "out of memory";
        goto out;
    }
    *why = "send failed";
    for (size_t off = 0; off < req.len;) {
        ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            goto out;
        if (wait_fd(fd, POLLOUT, deadline) != 0) {
            *why = "timed out sending";
            goto out;
        }
    }
    *why = "no answer";
    while (got < sizeof(resp) - 1 && !memchr(resp, '\n', got)) {
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            goto out;
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            *why = "timed out waiting for the answer";
            goto out;
        }
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", status) != 1) {
        *why = "not an HTTP answer";
        goto out;
    }
    *why = "answered with a status other than 2xx";
    rc = *status >= 200 && *status < 300 ? 0 : -1;
out:
    buf_free(&req);
    close(fd);
    return rc;
}

/* POST up to ALERTS_BATCH events from the head of the queue (a->lock held; released during
 * the POST). */
static void send_batch(alerts_t *a)
{
    ev_t ev[ALERTS_BATCH];
    unsigned n = a->count < ALERTS_BATCH ? a->count : ALERTS_BATCH;
    uint64_t dropped = a->st.events_dropped;
    buf_t body = {0};
    const char *why = "out of memory";
    int status = 0, rc = -1;

    for (unsigned i = 0; i < n; i++)
        ev[i] = a->q[(a->head + i) % ALERTS_QUEUE];
    uv_mutex_unlock(&a->lock);
    if (format_body(a, ev, n, dropped, &body) == 0)
        rc = post(a, &body, &why, &status);
    buf_free(&body);
    if (rc != 0) {
        if (status)
            log_warn("alerts: webhook POST to %s:%u failed: %s (%d)", a->host, a->o.port, why,
                     status);
        else
            log_warn("alerts: webhook POST to %s:%u failed: %s", a->host, a->o.port, why);
    }
    uv_mutex_lock(&a->lock);
    /* meanwhile the queue may have grown at its tail or lost its oldest (full): pop by seq */
    if (rc == 0) {
        a->st.posts_ok++;
        a->st.events_sent += n;
        pop_through(a, ev[n - 1].seq);
    } else {
        a->st.posts_failed++;
        if (++a->tries >= ALERTS_TRIES)
            a->st.events_dropped += pop_through(a, ev[n - 1].seq);
    }
}

static void thread_main(void *arg)
{
    alerts_t *a = arg;
    uint64_t poll_ms = a->o.poll_ms ? a->o.poll_ms : 1000;
    uint64_t next_poll = 0, next_post = 0;

    uv_mutex_lock(&a->lock);
    while (!a->stop) {
        uint64_t now = mono_ms(), wake = a->o.shm ? next_poll : now + 60000;

        if (a->count && next_post < wake)
            wake = next_post;
        if (wake > now) {
            uv_cond_timedwait(&a->cond, &a->lock, (wake - now) * 1000000);
            continue; /* re-evaluate: woken by an event, a stop or the time */
        }
        if (a->o.shm && now >= next_poll) {
            uv_mutex_unlock(&a->lock);
            poll_store(a);
            uv_mutex_lock(&a->lock);
            next_poll = now + poll_ms;
        }
        if (a->count && mono_ms() >= next_post) {
            send_batch(a);
            next_post = mono_ms() + a->o.min_interval_ms;
        }
    }
    if (a->count) /* one last try, bounded by timeout_ms */
        send_batch(a);
    uv_mutex_unlock(&a->lock);
}

int alerts_start(const alerts_opts_t *o, alerts_t **out, char *err, size_t errlen)
{
    alerts_t *a = calloc(1, sizeof(*a));

    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "alerts: out of memory");
        return -1;
    }
    a->o = *o;
    a->host = strdup(o->host ? o->host : "");
    a->path = strdup(o->path && *o->path ? o->path : "/");
    a->host_header = strdup(o->host_header ? o->host_header : a->host ? a->host : "");
    if (gethostname(a->hostname, sizeof(a->hostname)) != 0)
        snprintf(a->hostname, sizeof(a->hostname), "unknown");
    a->hostname[sizeof(a->hostname) - 1] = '\0';
    uv_mutex_init(&a->lock);
    uv_cond_init(&a->cond);
    if (!a->host || !a->path || !a->host_header ||
        uv_thread_create(&a->thread, thread_main, a) != 0) {
        snprintf(err, errlen, "alerts: cannot start the webhook thread");
        uv_cond_destroy(&a->cond);
        uv_mutex_destroy(&a->lock);
        free(a->host);
        free(a->path);
        free(a->host_header);
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void alerts_stop(alerts_t *a)
{
    if (!a)
        return;
    uv_mutex_lock(&a->lock);
    a->stop = 1;
    uv_cond_signal(&a->cond);
    uv_mutex_unlock(&a->lock);
    uv_thread_join(&a->thread);
    uv_cond_destroy(&a->cond);
    uv_mutex_destroy(&a->lock);
    free(a->keys);
    free(a->provs);
    free(a->host);
    free(a->path);
    free(a->host_header);
    free(a);
}
