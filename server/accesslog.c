/* accesslog.c - JSON access log lines, per-worker buffers, the writer thread. See
 * accesslog.h for the design. */
#include "server/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "server/log.h"
#include "server/prom.h"

typedef struct alshard_s {
    uv_mutex_t lock;
    buf_t buf;
} alshard_t;

struct accesslog_s {
    int fd;
    int own_fd; /* 1 if fd is ours to close (a file) */
    char *path;
    alshard_t **shards;
    unsigned nshards;
    uv_thread_t thread;
    uv_mutex_t lock; /* guards the fields below */
    uv_cond_t cond;
    int stop;
    uint64_t flush_req, flush_done; /* accesslog_flush generations */
    atomic_int reopen;
    atomic_int kick;
    atomic_ullong dropped;
};

/* ---- the line ------------------------------------------------------------------------- */

static int json_str(buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, run = 0;
    int rc;

    if (!s)
        return buf_appends(b, "null");
    n = strnlen(s, ACCESSLOG_STR_MAX);
    rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = prom_utf8_seq(p + i, n - i);
        char esc[8];

        if (k != 0 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] != 0x7f) {
            run += k;
            i += k;
            continue;
        }
        rc |= buf_append(b, p + i - run, run);
        run = 0;
        if (k == 0)
            rc |= buf_appends(b, "\\ufffd");
        else if (p[i] == '"' || p[i] == '\\')
            rc |= buf_printf(b, "\\%c", p[i]);
        else {
            snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
            rc |= buf_appends(b, esc);
        }
        i += k ? k : 1;
    }
    rc |= buf_append(b, p + n - run, run);
    rc |= buf_append(b, "\"", 1);
    return rc;
}

static int json_ms(buf_t *b, double s)
{
    if (!(s >= 0)) /* negative or NaN: none */
        return buf_appends(b, "null");
    return buf_printf(b, "%.3f", s * 1000.0);
}

int accesslog_format(buf_t *b, const obs_record_t *r)
{
    time_t secs = (time_t)(r->start_ms / 1000);
    struct tm tm;
    int rc;

    gmtime_r(&secs, &tm);
    rc = buf_printf(
        b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"request_id\":", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(r->start_ms % 1000));
    rc |= json_str(b, r->request_id);
    rc |= buf_appends(b, ",\"client\":");
    rc |= json_str(b, r->client);
    rc |= buf_appends(b, ",\"model\":");
    rc |= json_str(b, r->model);
    rc |= buf_appends(b, ",\"served_model\":");
    rc |= json_str(b, r->served_model);
    rc |= buf_appends(b, ",\"provider\":");
    rc |= json_str(b, r->provider);
    rc |= buf_appends(b, ",\"key\":");
    rc |= json_str(b, r->key);
    rc |= buf_printf(b, ",\"attempts\":%d,\"status\":%d,\"upstream_status\":", r->attempts,
                     r->status);
    rc |= r->upstream_status ? buf_printf(b, "%d", r->upstream_status) : buf_appends(b, "null");
    rc |= buf_appends(b, ",\"ttfb_ms\":");
    rc |= json_ms(b, r->ttfb_s);
    rc |= buf_appends(b, ",\"duration_ms\":");
    rc |= json_ms(b, r->duration_s);
    rc |= buf_appends(b, ",\"upstream_ms\":");
    rc |= json_ms(b, r->attempts ? r->upstream_s : -1);
    rc |= buf_printf(b,
                     ",\"prompt_tokens\":%u,\"completion_tokens\":%u,\"tokens_estimated\":%s,"
                     "\"cost_usd\":%.10g,\"bytes_in\":%llu,\"bytes_out\":%llu,\"stream\":%s}\n",
                     r->prompt_tokens, r->completion_tokens, r->tokens_estimated ? "true" : "false",
                     r->cost_usd > 0 ? r->cost_usd : 0.0, (unsigned long long)r->bytes_in,
                     (unsigned long long)r->bytes_out, r->stream ? "true" : "false");
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------- */

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;

    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    return lines;
}

static void write_all(accesslog_t *a, const char *p, size_t n)
{
    static atomic_llong last_error_s;

    while (n > 0) {
        ssize_t w = write(a->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            long long now = (long long)time(NULL);
            /* one message a minute at most: a full disk must not flood stderr */
            if (now - atomic_exchange(&last_error_s, now) >= 60)
                log_error("access_log: write to %s failed: %s (lines are dropped)",
                          a->path ? a->path : "stdout", w < 0 ? strerror(errno) : "no progress");
            atomic_fetch_add(&a->dropped, count_lines(p, n));
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static void do_reopen(accesslog_t *a)
{
    int fd;

    if (!a->own_fd)
        return;
    fd = open_path(a->path);
    if (fd < 0) {
        log_error("access_log: cannot reopen \"%s\": %s (still writing to the old file)", a->path,
                  strerror(errno));
        return;
    }
    close(a->fd);
    a->fd = fd;
    log_info("access_log: reopened %s", a->path);
}

/* Swap each shard's buffer with spare and write it. */
static void drain(accesslog_t *a, buf_t *spare)
{
    for (unsigned i = 0; i < a->nshards; i++) {
        alshard_t *s = a->shards[i];
        buf_t t;

        uv_mutex_lock(&s->lock);
        t = s->buf;
        s->buf = *spare;
        uv_mutex_unlock(&s->lock);
        *spare = t;
        if (spare->len)
            write_all(a, spare->data, spare->len);
        buf_reset(spare);
    }
}

static void writer_main(void *arg)
{
    accesslog_t *a = arg;
    buf_t spare = {0};
    int stop;
    uint64_t req;

    uv_mutex_lock(&a->lock);
    for (;;) {
        if (!a->stop && a->flush_req == a->flush_done && !atomic_load(&a->kick) &&
            !atomic_load(&a->reopen))
            uv_cond_timedwait(&a->cond, &a->lock, (uint64_t)ACCESSLOG_FLUSH_MS * 1000000);
        stop = a->stop;
        req = a->flush_req;
        uv_mutex_unlock(&a->lock);

        atomic_store(&a->kick, 0);
        if (atomic_exchange(&a->reopen, 0))
            do_reopen(a);
        drain(a, &spare);

        uv_mutex_lock(&a->lock);
        a->flush_done = req;
        uv_cond_broadcast(&a->cond);
        if (stop)
            break;
    }
    uv_mutex_unlock(&a->lock);
    buf_free(&spare);
}

/* Everything of a, whatever was set up (a may be half built). */
static void free_all(accesslog_t *a)
{
    for (unsigned i = 0; a->shards && i < a->nshards; i++) {
        if (!a->shards[i])
            continue;
        uv_mutex_destroy(&a->shards[i]->lock);
        buf_free(&a->shards[i]->buf);
        free(a->shards[i]);
    }
    uv_cond_destroy(&a->cond);
    uv_mutex_destroy(&a->lock);
    if (a->own_fd)
        close(a->fd);
    free(a->shards);
    free(a->path);
    free(a);
}

int accesslog_open(int mode, const char *path, unsigned nshards, accesslog_t **out, char *err,
                   size_t errlen)
{
    accesslog_t *a;

    *out = NULL;
    if (mode == CFG_ACCESS_LOG_OFF)
        return 0;
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "access_log: out of memory");
        return -1;
    }
    uv_mutex_init(&a->lock);
    uv_cond_init(&a->cond);
    a->fd = STDOUT_FILENO;
    a->nshards = nshards ? nshards : 1;
    a->shards = calloc(a->nshards, sizeof(*a->shards));
    if (!a->shards)
        goto oom;
    for (unsigned i = 0; i < a->nshards; i++) {
        a->shards[i] = calloc(1, sizeof(alshard_t));
        if (!a->shards[i])
            goto oom;
        uv_mutex_init(&a->shards[i]->lock);
    }
    if (mode == CFG_ACCESS_LOG_FILE) {
        a->path = strdup(path);
        if (!a->path)
            goto oom;
        a->fd = open_path(path);
        if (a->fd < 0) {
            snprintf(err, errlen, "access_log: cannot open \"%s\": %s", path, strerror(errno));
            goto fail;
        }
        a->own_fd = 1;
    }
    if (uv_thread_create(&a->thread, writer_main, a) != 0) {
        snprintf(err, errlen, "access_log: cannot start the writer thread");
        goto fail;
    }
    *out = a;
    return 0;
oom:
    snprintf(err, errlen, "access_log: out of memory");
fail:
    free_all(a);
    return -1;
}

void accesslog_close(accesslog_t *a)
{
    if (!a)
        return;
    uv_mutex_lock(&a->lock);
    a->stop = 1;
    a->flush_req++;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->lock);
    uv_thread_join(&a->thread);
    free_all(a);
}

void accesslog_write(accesslog_t *a, unsigned shard, const obs_record_t *r)
{
    alshard_t *s;
    size_t before;
    int kick;

    if (!a)
        return;
    s = a->shards[shard < a->nshards ? shard : a->nshards - 1];
    uv_mutex_lock(&s->lock);
    before = s->buf.len;
    if (before > ACCESSLOG_CAP_BYTES || accesslog_format(&s->buf, r) != 0) {
        s->buf.len = before; /* never half a line */
        if (s->buf.data)
            s->buf.data[before] = '\0';
        atomic_fetch_add(&a->dropped, 1);
    }
    kick = s->buf.len >= ACCESSLOG_KICK_BYTES;
    uv_mutex_unlock(&s->lock);
    if (kick && !atomic_exchange(&a->kick, 1))
        uv_cond_signal(&a->cond); /* a lost wake-up only waits for the next tick */
}

void accesslog_reopen(accesslog_t *a)
{
    if (!a || !a->own_fd)
        return;
    atomic_store(&a->reopen, 1);
    uv_cond_signal(&a->cond);
}

void accesslog_flush(accesslog_t *a)
{
    uint64_t want;

    if (!a)
        return;
    uv_mutex_lock(&a->lock);
    want = ++a->flush_req;
    uv_cond_broadcast(&a->cond);
    while (a->flush_done < want && !a->stop)
        uv_cond_wait(&a->cond, &a->lock);
    uv_mutex_unlock(&a->lock);
}

uint64_t accesslog_dropped(const accesslog_t *a)
{
    return a ? atomic_load(&((accesslog_t *)a)->dropped) : 0;
}
