/* accesslog_test.c - unit tests of server/accesslog.c: the JSON line (escaping, UTF-8
 * repair, nulls, cut strings), lines from several threads never interleave or get lost,
 * reopen after a rename (logrotate), a failing output counts dropped lines. */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include <stdlib.h>
#include <string.h>

#include "obs_tutil.h"
#include "server/accesslog.h"
#include "server/prom.h"
#include "t.h"

#define NFIELDS 20

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
             "\"prompt_tokens\":12,\"completion_tokens\":34,\"tokens_estimated\":false,"
             "\"cost_usd\":1.23e-05,\"bytes_in\":300,\"bytes_out\":900,\"stream\":true}\n",
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
    test_threads_and_reopen();
    test_failing_output();
    return t_done();
}
