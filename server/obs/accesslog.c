/* accesslog.c - JSON access log lines, per-worker buffers, the writer thread. See
 * accesslog.h for the design. */
#include "server/obs/accesslog.h"

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
#include "server/common/log.h"
#include "server/obs/prom.h"

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

/* Lines are built from plain appends and the printf-free number appenders of buf.h, cost_usd
 * included (buf_append_g10): the line is written once per request on a worker, and
 * vsnprintf cost more than everything else of it together. Only values no request has (a
 * time before 1970 or after 9999, a cost under 2^-59 or from 1e10 dollars up) still go
 * through printf. The output is byte for byte what the printf formats in the comments give
 * (tests/unit/obs/accesslog_test.c compares them). */

#define APPEND_LIT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/* 1 if byte c goes into a JSON string as it is (printable ASCII, not '"' or '\'). */
static inline int json_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static int json_str(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n, run, i;
    int rc;

    if (!s)
        return APPEND_LIT(b, "null");
    for (i = 0; i < ACCESSLOG_STR_MAX && p[i] && json_plain(p[i]); i++)
        ;
    n = i < ACCESSLOG_STR_MAX && p[i] ? i + strnlen(s + i, ACCESSLOG_STR_MAX - i) : i;
    if (buf_reserve(b, n + 2) != 0)
        return -1;
    if (i == n) { /* the common case: nothing to escape, one copy into the reserved room */
        char *w = b->data + b->len;

        w[0] = '"';
        memcpy(w + 1, s, n);
        w[n + 1] = '"';
        w[n + 2] = '\0';
        b->len += n + 2;
        return 0;
    }
    rc = APPEND_LIT(b, "\"");
    for (run = i; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : prom_utf8_seq(p + i, n - i);
        char esc[6];

        if (k != 0 && (p[i] >= 0x80 || json_plain(p[i]))) {
            run += k;
            i += k;
            continue;
        }
        rc |= buf_append(b, p + i - run, run);
        run = 0;
        if (k == 0) {
            rc |= APPEND_LIT(b, "\\ufffd");
        } else if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)p[i];
            rc |= buf_append(b, esc, 2);
        } else { /* "\\u%04x": a control character or DEL */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[p[i] >> 4];
            esc[5] = hex[p[i] & 0xf];
            rc |= buf_append(b, esc, 6);
        }
        i += k ? k : 1;
    }
    rc |= buf_append(b, p + n - run, run);
    rc |= APPEND_LIT(b, "\"");
    return rc;
}

/* "%.3f" of s in milliseconds, or null. */
static int json_ms(buf_t *b, double s)
{
    if (!(s >= 0)) /* negative or NaN: none */
        return APPEND_LIT(b, "null");
    return buf_append_fixed3(b, s * 1000.0);
}

/* Two digits of v (0..99) at p. */
static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* The time of the line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" of start_ms in UTC. A
 * worker logs many lines in the same second: the date and time up to the second are kept
 * per thread and gmtime_r runs only when the second changes. */
static int put_time(buf_t *b, int64_t start_ms)
{
    static _Thread_local struct {
        int64_t secs;
        int valid;
        char text[19]; /* YYYY-MM-DDTHH:MM:SS */
    } cache;
    int64_t secs = start_ms / 1000;
    int ms = (int)(start_ms % 1000);
    char tail[5];
    struct tm tm;
    int rc;

    if (start_ms < 0 || !cache.valid || cache.secs != secs) {
        time_t t = (time_t)secs;
        int year, ok;

        memset(&tm, 0, sizeof(tm));
        ok = gmtime_r(&t, &tm) != NULL;
        year = tm.tm_year + 1900;
        if (start_ms < 0 || !ok || year > 9999) {
            /* outside what the cache formats: the printf the line always had */
            char text[96];

            snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
            return buf_appends(b, text);
        }
        put2(cache.text, year / 100);
        put2(cache.text + 2, year % 100);
        cache.text[4] = '-';
        put2(cache.text + 5, tm.tm_mon + 1);
        cache.text[7] = '-';
        put2(cache.text + 8, tm.tm_mday);
        cache.text[10] = 'T';
        put2(cache.text + 11, tm.tm_hour);
        cache.text[13] = ':';
        put2(cache.text + 14, tm.tm_min);
        cache.text[16] = ':';
        put2(cache.text + 17, tm.tm_sec);
        cache.secs = secs;
        cache.valid = 1;
    }
    tail[0] = '.';
    tail[1] = (char)('0' + ms / 100);
    put2(tail + 2, ms % 100);
    tail[4] = 'Z';
    rc = buf_append(b, cache.text, sizeof(cache.text));
    rc |= buf_append(b, tail, sizeof(tail));
    return rc;
}

int accesslog_format(buf_t *b, const obs_record_t *r)
{
    int rc;

    /* room for a typical line at once; the appends still grow the buffer as needed */
    if (buf_reserve(b, 512) != 0)
        return -1;
    rc = APPEND_LIT(b, "{\"time\":\"");
    rc |= put_time(b, r->start_ms);
    rc |= APPEND_LIT(b, "\",\"request_id\":");
    rc |= json_str(b, r->request_id);
    rc |= APPEND_LIT(b, ",\"client\":");
    rc |= json_str(b, r->client);
    rc |= APPEND_LIT(b, ",\"model\":");
    rc |= json_str(b, r->model);
    rc |= APPEND_LIT(b, ",\"served_model\":");
    rc |= json_str(b, r->served_model);
    rc |= APPEND_LIT(b, ",\"provider\":");
    rc |= json_str(b, r->provider);
    rc |= APPEND_LIT(b, ",\"key\":");
    rc |= json_str(b, r->key);
    rc |= APPEND_LIT(b, ",\"attempts\":");
    rc |= buf_append_i64(b, r->attempts);
    rc |= APPEND_LIT(b, ",\"status\":");
    rc |= buf_append_i64(b, r->status);
    rc |= APPEND_LIT(b, ",\"upstream_status\":");
    rc |= r->upstream_status ? buf_append_i64(b, r->upstream_status) : APPEND_LIT(b, "null");
    rc |= APPEND_LIT(b, ",\"ttfb_ms\":");
    rc |= json_ms(b, r->ttfb_s);
    rc |= APPEND_LIT(b, ",\"duration_ms\":");
    rc |= json_ms(b, r->duration_s);
    rc |= APPEND_LIT(b, ",\"upstream_ms\":");
    rc |= json_ms(b, r->attempts ? r->upstream_s : -1);
    rc |= APPEND_LIT(b, ",\"prompt_tokens\":");
    rc |= buf_append_u64(b, r->prompt_tokens);
    rc |= APPEND_LIT(b, ",\"completion_tokens\":");
    rc |= buf_append_u64(b, r->completion_tokens);
    rc |= APPEND_LIT(b, ",\"cached_tokens\":");
    rc |= buf_append_u64(b, r->cached_tokens);
    rc |= APPEND_LIT(b, ",\"reasoning_tokens\":");
    rc |= buf_append_u64(b, r->reasoning_tokens);
    rc |= r->tokens_estimated ? APPEND_LIT(b, ",\"tokens_estimated\":true,\"cost_usd\":")
                              : APPEND_LIT(b, ",\"tokens_estimated\":false,\"cost_usd\":");
    /* "%.10g"; 0 for no cost, a negative one and NaN */
    rc |= r->cost_usd > 0 ? buf_append_g10(b, r->cost_usd) : APPEND_LIT(b, "0");
    rc |= APPEND_LIT(b, ",\"bytes_in\":");
    rc |= buf_append_u64(b, r->bytes_in);
    rc |= APPEND_LIT(b, ",\"bytes_out\":");
    rc |= buf_append_u64(b, r->bytes_out);
    rc |= r->stream ? APPEND_LIT(b, ",\"stream\":true,\"api\":")
                    : APPEND_LIT(b, ",\"stream\":false,\"api\":");
    rc |= json_str(b, r->api);
    rc |= APPEND_LIT(b, "}\n");
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
