/* accesslog_test.c - unit tests of server/obs/accesslog.c: the JSON line (escaping, UTF-8
 * repair, nulls, cut strings), lines from several threads never interleave or get lost,
 * reopen after a rename (logrotate), a failing output counts dropped lines. */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs_tutil.h"
#include "server/obs/accesslog.h"
#include "server/obs/prom.h"
#include "t.h"

#define NFIELDS 23

/* One JSON object of NFIELDS members with scalar values, valid UTF-8, no raw control
 * character. */
static int line_ok(const char *line, size_t len)
{
    jsmn_parser p;
    jsmntok_t tok[64];
    int n;

    for (size_t i = 0; i < len;) {
        size_t k = prom_utf8_seq((const unsigned char *)line + i, len - i);
        if (k == 0 || (unsigned char)line[i] < 0x20)
            return 0;
        i += k;
    }
    jsmn_init(&p);
    n = jsmn_parse(&p, line, len, tok, 64);
    if (n != 1 + 2 * NFIELDS || tok[0].type != JSMN_OBJECT || tok[0].size != NFIELDS ||
        tok[0].start != 0 || (size_t)tok[0].end != len)
        return 0;
    for (int i = 1; i < n; i += 2)
        if (tok[i].type != JSMN_STRING || tok[i + 1].type == JSMN_OBJECT ||
            tok[i + 1].type == JSMN_ARRAY)
            return 0;
    return 1;
}

static obs_record_t rec(void)
{
    obs_record_t r;

    memset(&r, 0, sizeof(r));
    r.start_ms = 1767323045678LL; /* 2026-01-02T03:04:05.678Z */
    r.request_id = "req-1";
    r.client = "app-a";
    r.model = "mini";
    r.served_model = "gpt-4o-mini";
    r.provider = "openai";
    r.key = "oai-1";
    r.attempts = 2;
    r.status = 200;
    r.upstream_status = 200;
    r.ttfb_s = 0.0123456;
    r.duration_s = 1.5;
    r.upstream_s = 1.25;
    r.prompt_tokens = 12;
    r.completion_tokens = 34;
    r.cost_usd = 0.0000123;
    r.bytes_in = 300;
    r.bytes_out = 900;
    r.stream = 1;
    return r;
}

static void test_format(void)
{
    buf_t b = {0};
    obs_record_t r = rec();
    char longid[1000];

    accesslog_format(&b, &r);
    T_EQ_STR(b.data,
             "{\"time\":\"2026-01-02T03:04:05.678Z\",\"request_id\":\"req-1\",\"client\":\"app-a\","
             "\"model\":\"mini\",\"served_model\":\"gpt-4o-mini\",\"provider\":\"openai\","
             "\"key\":\"oai-1\",\"attempts\":2,\"status\":200,\"upstream_status\":200,"
             "\"ttfb_ms\":12.346,\"duration_ms\":1500.000,\"upstream_ms\":1250.000,"
             "\"prompt_tokens\":12,\"completion_tokens\":34,\"cached_tokens\":0,"
             "\"reasoning_tokens\":0,\"tokens_estimated\":false,"
             "\"cost_usd\":1.23e-05,\"bytes_in\":300,\"bytes_out\":900,\"stream\":true,"
             "\"api\":null}\n",
             "a complete line, fields in the documented order");
    T_OK(line_ok(b.data, b.len - 1), "it parses as one JSON object of %d members", NFIELDS);

    buf_reset(&b);
    memset(&r, 0, sizeof(r));
    r.status = 404;
    r.ttfb_s = -1;
    r.model = "no\"such\\model\n\x01\x7f";
    accesslog_format(&b, &r);
    T_OK(strstr(b.data, "\"request_id\":null,\"client\":null,") &&
             strstr(b.data, "\"upstream_status\":null,\"ttfb_ms\":null,\"duration_ms\":0.000,"
                            "\"upstream_ms\":null"),
         "missing values are null (upstream_ms null without attempts)");
    T_OK(strstr(b.data, "\"model\":\"no\\\"such\\\\model\\u000a\\u0001\\u007f\""),
         "quotes, backslashes and control characters escaped");
    T_OK(line_ok(b.data, b.len - 1), "... and the line parses");

    buf_reset(&b);
    r = rec();
    r.request_id = "bad-\xff\xfe-utf8-\xc3";
    r.client = "caf\xc3\xa9";
    accesslog_format(&b, &r);
    T_OK(strstr(b.data, "\"request_id\":\"bad-\\ufffd\\ufffd-utf8-\\ufffd\"") &&
             strstr(b.data, "\"client\":\"caf\xc3\xa9\""),
         "invalid UTF-8 becomes \\ufffd, valid UTF-8 is kept");
    T_OK(line_ok(b.data, b.len - 1), "... and the line parses");

    buf_reset(&b);
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    longid[ACCESSLOG_STR_MAX - 1] = '\xc3'; /* a sequence cut by the limit */
    r.request_id = longid;
    accesslog_format(&b, &r);
    T_OK(strstr(b.data, "xxx\\ufffd\",\"client\"") && b.len < 1000,
         "long strings are cut at %d bytes, a cut sequence repaired", ACCESSLOG_STR_MAX);
    T_OK(line_ok(b.data, b.len - 1), "... and the line parses");
    buf_free(&b);
}

/* ---- the line against its printf formats -------------------------------------------------- */

/* The line as accesslog_format built it with buf_printf before it was made printf-free:
 * the new one must give the same bytes for every record. */
static void ref_str(buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, run = 0;

    if (!s) {
        buf_appends(b, "null");
        return;
    }
    n = strnlen(s, ACCESSLOG_STR_MAX);
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = prom_utf8_seq(p + i, n - i);

        if (k != 0 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] != 0x7f) {
            run += k;
            i += k;
            continue;
        }
        buf_append(b, p + i - run, run);
        run = 0;
        if (k == 0)
            buf_appends(b, "\\ufffd");
        else if (p[i] == '"' || p[i] == '\\')
            buf_printf(b, "\\%c", p[i]);
        else
            buf_printf(b, "\\u%04x", p[i]);
        i += k ? k : 1;
    }
    buf_append(b, p + n - run, run);
    buf_append(b, "\"", 1);
}

static void ref_ms(buf_t *b, double s)
{
    if (!(s >= 0))
        buf_appends(b, "null");
    else
        buf_printf(b, "%.3f", s * 1000.0);
}

static void ref_format(buf_t *b, const obs_record_t *r)
{
    time_t secs = (time_t)(r->start_ms / 1000);
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    gmtime_r(&secs, &tm);
    buf_printf(
        b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"request_id\":", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(r->start_ms % 1000));
    ref_str(b, r->request_id);
    buf_appends(b, ",\"client\":");
    ref_str(b, r->client);
    buf_appends(b, ",\"model\":");
    ref_str(b, r->model);
    buf_appends(b, ",\"served_model\":");
    ref_str(b, r->served_model);
    buf_appends(b, ",\"provider\":");
    ref_str(b, r->provider);
    buf_appends(b, ",\"key\":");
    ref_str(b, r->key);
    buf_printf(b, ",\"attempts\":%d,\"status\":%d,\"upstream_status\":", r->attempts, r->status);
    if (r->upstream_status)
        buf_printf(b, "%d", r->upstream_status);
    else
        buf_appends(b, "null");
    buf_appends(b, ",\"ttfb_ms\":");
    ref_ms(b, r->ttfb_s);
    buf_appends(b, ",\"duration_ms\":");
    ref_ms(b, r->duration_s);
    buf_appends(b, ",\"upstream_ms\":");
    ref_ms(b, r->attempts ? r->upstream_s : -1);
    buf_printf(b,
               ",\"prompt_tokens\":%u,\"completion_tokens\":%u,\"cached_tokens\":%u,"
               "\"reasoning_tokens\":%u,\"tokens_estimated\":%s,"
               "\"cost_usd\":%.10g,\"bytes_in\":%llu,\"bytes_out\":%llu,\"stream\":%s,\"api\":",
               r->prompt_tokens, r->completion_tokens, r->cached_tokens, r->reasoning_tokens,
               r->tokens_estimated ? "true" : "false", r->cost_usd > 0 ? r->cost_usd : 0.0,
               (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
               r->stream ? "true" : "false");
    ref_str(b, r->api);
    buf_appends(b, "}\n");
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random string of up to max bytes into s: mostly plain, sometimes bytes to escape,
 * UTF-8 (valid and cut), or NULL. */
static const char *rand_str(char *s, size_t max)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "-",
                                         "_",
                                         ".",
                                         " ",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xc3",
                                         "\xff",
                                         "/",
                                         "0",
                                         "~"};
    size_t n = 0, want = next_rand() % max;
    int plain = next_rand() % 4 != 0;

    if (next_rand() % 10 == 0)
        return NULL;
    while (n < want) {
        const char *p = pieces[plain ? next_rand() % 5 : next_rand() % 20];
        size_t l = strlen(p);
        if (n + l > max - 1)
            break;
        memcpy(s + n, p, l);
        n += l;
    }
    s[n] = '\0';
    return s;
}

/* A duration in seconds: usually a plausible one, sometimes an edge. */
static double rand_secs(void)
{
    static const double edge[] = {0.0,       -0.0, -1.0,       0.0000004999, 0.0000005,
                                  0.0000015, 1e-9, 123456.789, 1e12,         0.0000625};
    uint64_t r = next_rand();

    if (r % 8 == 0)
        return edge[(r >> 8) % (sizeof(edge) / sizeof(edge[0]))];
    if (r % 8 == 1)
        return 0.0 / 0.0; /* NaN */
    return (double)(r >> 11) / 9007199254740992.0 * (r % 8 == 2 ? 1000.0 : 3.0);
}

static void test_format_same_as_printf(void)
{
    static const int ints[] = {0, 1, -1, 200, 404, 499, 599, INT_MAX, INT_MIN};
    static const int64_t starts[] = {0,
                                     999,
                                     1000,
                                     1767323045678LL,
                                     1767323045999LL,
                                     1767323046000LL,
                                     253402300799999LL, /* 9999-12-31 */
                                     253402300800000LL,
                                     400000000000000LL,
                                     500,
                                     -500,
                                     -1,
                                     -86400001LL};
    buf_t b = {0}, want = {0};
    char strs[6][ACCESSLOG_STR_MAX + 64];
    int bad = 0, shown = 0;
    obs_record_t r;

    for (int i = 0; i < 20000; i++) {
        uint64_t x = next_rand();

        memset(&r, 0, sizeof(r));
        if (i < (int)(sizeof(starts) / sizeof(starts[0])))
            r.start_ms = starts[i];
        else if (x % 16 == 0)
            r.start_ms = starts[(x >> 8) % (sizeof(starts) / sizeof(starts[0]))];
        else
            r.start_ms = 1767323045678LL + i * 137 + (int64_t)(x % 3); /* seconds repeat */
        r.request_id = rand_str(strs[0], sizeof(strs[0]));
        r.client = rand_str(strs[1], 40);
        r.model = rand_str(strs[2], 40);
        r.served_model = rand_str(strs[3], 40);
        r.provider = rand_str(strs[4], 20);
        r.key = rand_str(strs[5], 20);
        x = next_rand();
        r.attempts = x % 3 == 0 ? ints[(x >> 4) % 9] : (int)(x >> 60);
        r.status = x % 5 == 0 ? ints[(x >> 8) % 9] : 200 + (int)((x >> 16) % 400);
        r.upstream_status = x % 7 == 0 ? ints[(x >> 12) % 9] : (x % 2 ? 200 : 0);
        r.ttfb_s = rand_secs();
        r.duration_s = rand_secs();
        r.upstream_s = rand_secs();
        x = next_rand();
        r.prompt_tokens = x % 4 == 0 ? UINT32_MAX : (uint32_t)(x >> 40);
        r.completion_tokens = (uint32_t)(x >> 17) % (x % 2 ? 100000 : 10);
        r.tokens_estimated = (int)(x >> 5) & 1;
        r.cost_usd = x % 5 == 0 ? 0.0 : x % 5 == 1 ? -1e-6 : (double)(x >> 30) * 1e-13;
        r.bytes_in = x % 11 == 0 ? UINT64_MAX : next_rand() >> (x % 64);
        r.bytes_out = next_rand() >> (x % 64);
        r.stream = (int)(x >> 7) & 1;

        buf_reset(&b);
        buf_reset(&want);
        accesslog_format(&b, &r);
        ref_format(&want, &r);
        if (b.len != want.len || strcmp(b.data, want.data) != 0) {
            bad++;
            if (shown++ < 3)
                printf("#   got  %s#   want %s", b.data, want.data);
        }
    }
    T_EQ_INT(bad, 0, "20000 varied records: the line is byte for byte the printf-built one");

    /* the millisecond fields alone, for the values the brief names */
    {
        static const double ms[] = {0.0,    0.0000004999, 0.0000005, 0.0000015, 0.0004999,
                                    0.0005, 0.0123456,    1.5,       3600.0,    86400.123456,
                                    1e9,    -0.0,         -1.0};
        bad = 0;
        for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
            r = rec();
            r.ttfb_s = ms[i];
            r.duration_s = ms[i] * 3;
            r.upstream_s = ms[i] / 7;
            buf_reset(&b);
            buf_reset(&want);
            accesslog_format(&b, &r);
            ref_format(&want, &r);
            bad += strcmp(b.data, want.data) != 0;
        }
        T_EQ_INT(bad, 0, "ms fields: 0, 0.0004999 ms, 0.0005 ms, rounding boundaries, large");
    }
    r = rec();
    r.ttfb_s = 0.0 / 0.0;
    r.duration_s = -0.5;
    r.upstream_s = -1e-300;
    buf_reset(&b);
    accesslog_format(&b, &r);
    T_OK(strstr(b.data, "\"ttfb_ms\":null,\"duration_ms\":null,\"upstream_ms\":null,"),
         "NaN and negative durations are null");
    buf_free(&b);
    buf_free(&want);
}

/* ---- the writer ------------------------------------------------------------------------- */

#define THREADS 4
#define PER     5000

typedef struct targ_s {
    accesslog_t *a;
    unsigned id;
} targ_t;

static void writer(void *arg)
{
    targ_t *t = arg;

    for (int i = 0; i < PER; i++) {
        char id[32];
        obs_record_t r = rec();
        snprintf(id, sizeof(id), "t%u-%d", t->id, i);
        r.request_id = id;
        accesslog_write(t->a, t->id, &r);
    }
}

/* Lines of text that parse; *ids gets a count per "tN-M" request id. */
static int check_lines(const char *text, int *nlines, unsigned char *ids)
{
    int bad = 0;

    *nlines = 0;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        const char *id;
        unsigned t;
        int i;
        if (!eol) {
            bad++;
            break;
        }
        if (!line_ok(p, (size_t)(eol - p)))
            bad++;
        id = strstr(p, "\"request_id\":\"t");
        if (id && id < eol && sscanf(id + 15, "%u-%d", &t, &i) == 2 && t < THREADS && i < PER)
            ids[t * PER + i]++;
        (*nlines)++;
        p = eol + 1;
    }
    return bad;
}

static void test_threads_and_reopen(void)
{
    char dir[64], path[128], rotated[160], err[256];
    accesslog_t *a = NULL;
    uv_thread_t th[THREADS];
    targ_t args[THREADS];
    unsigned char *ids = calloc(THREADS * PER, 1);
    char *text;
    int n = 0, bad, once = 1;
    obs_record_t r = rec();

    tu_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/access.log.1", dir);
    T_EQ_INT(accesslog_open(CFG_ACCESS_LOG_FILE, path, THREADS, &a, err, sizeof(err)), 0,
             "open a file");
    if (!a)
        return;
    for (unsigned i = 0; i < THREADS; i++) {
        args[i].a = a;
        args[i].id = i;
        uv_thread_create(&th[i], writer, &args[i]);
    }
    for (unsigned i = 0; i < THREADS; i++)
        uv_thread_join(&th[i]);
    accesslog_flush(a);
    text = tu_read_file(path);
    bad = text ? check_lines(text, &n, ids) : -1;
    T_EQ_INT(bad, 0, "every line from %d threads parses (no interleaving)", THREADS);
    T_EQ_INT(n, THREADS * PER, "every line written");
    for (int i = 0; i < THREADS * PER; i++)
        once &= ids[i] == 1;
    T_OK(once, "each request exactly once");
    free(text);

    /* logrotate: rename, then SIGUSR1 (reopen); later lines go to a new file */
    T_EQ_INT(rename(path, rotated), 0, "rename the log");
    r.request_id = "after-rename";
    accesslog_reopen(a);
    accesslog_write(a, 0, &r);
    accesslog_flush(a);
    text = tu_read_file(path);
    T_OK(text && strstr(text, "after-rename") && check_lines(text, &n, ids) == 0 && n == 1,
         "after reopen the line is in a new file at the path");
    free(text);
    text = tu_read_file(rotated);
    T_OK(text && !strstr(text, "after-rename") && check_lines(text, &n, ids) == 0 &&
             n == THREADS * PER,
         "the rotated file keeps the old lines only");
    free(text);
    T_EQ_INT(accesslog_dropped(a), 0, "nothing dropped");
    accesslog_close(a);
    tu_rmtree(dir);
    free(ids);
}

static void test_failing_output(void)
{
    accesslog_t *a = NULL;
    char err[256];
    obs_record_t r = rec();

    T_EQ_INT(accesslog_open(CFG_ACCESS_LOG_FILE, "/nonexistent-dir/a.log", 1, &a, err, sizeof(err)),
             -1, "open in a missing directory fails");
    T_OK(strstr(err, "access_log: cannot open \"/nonexistent-dir/a.log\": No such file"),
         "... saying what and why: %s", err);
    T_EQ_INT(accesslog_open(CFG_ACCESS_LOG_OFF, NULL, 1, &a, err, sizeof(err)), 0, "off: ok");
    T_OK(a == NULL, "off: no log object, and every call accepts NULL");
    accesslog_write(a, 0, &r);
    accesslog_reopen(a);
    accesslog_flush(a);
    accesslog_close(a);

    if (accesslog_open(CFG_ACCESS_LOG_FILE, "/dev/full", 2, &a, err, sizeof(err)) != 0) {
        T_OK(1, "# SKIP /dev/full not available");
        return;
    }
    for (int i = 0; i < 5; i++)
        accesslog_write(a, (unsigned)i, &r);
    accesslog_flush(a);
    T_EQ_INT(accesslog_dropped(a), 5, "lines that could not be written are counted as dropped");
    accesslog_close(a);
}

int main(void)
{
    test_format();
    test_format_same_as_printf();
    test_threads_and_reopen();
    test_failing_output();
    return t_done();
}
