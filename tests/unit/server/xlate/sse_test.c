/* sse_test.c - the SSE reader: events across any cut, CRLF, comments, multi-line data, the
 * bound on one event, the end of a stream. */
#include <stdlib.h>
#include <string.h>

#include "server/xlate/sse.h"
#include "t.h"

typedef struct got_s {
    buf_t out; /* "name|data\n" per event */
    int n, stop_at;
} got_t;

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    got_t *g = ud;
    g->n++;
    buf_appends(&g->out, event);
    buf_append(&g->out, "|", 1);
    buf_append(&g->out, data, len);
    buf_append(&g->out, "\n", 1);
    return g->stop_at && g->n == g->stop_at ? 7 : 0;
}

/* Feeds s in pieces of step bytes (0 = whole) and finishes; the events as text. */
static char *run(const char *s, size_t step, int *rc_out)
{
    sse_reader_t r;
    got_t g = {{0}, 0, 0};
    size_t len = strlen(s), off = 0;
    int rc = 0;

    sse_reader_init(&r);
    while (rc == 0 && off < len) {
        size_t n = step && len - off > step ? step : len - off;
        rc = sse_feed(&r, s + off, n, on_event, &g);
        off += n;
    }
    if (rc == 0)
        rc = sse_finish(&r, on_event, &g);
    sse_reader_free(&r);
    *rc_out = rc;
    buf_append(&g.out, "", 0);
    char *out = strdup(g.out.data ? g.out.data : "");
    buf_free(&g.out);
    return out;
}

int main(void)
{
    static const char stream[] = "event: message_start\n"
                                 "data: {\"type\":\"message_start\"}\n"
                                 "\n"
                                 ": a comment, and a retry field\r\n"
                                 "retry: 100\r\n"
                                 "data: line one\r\n"
                                 "data: line two\r\n"
                                 "\r\n"
                                 "event: ping\n"
                                 "\n" /* an event without data is not dispatched */
                                 "data:no space\n"
                                 "id: 7\n"
                                 "\n"
                                 "data: [DONE]\n"
                                 "\n";
    static const char want[] = "message_start|{\"type\":\"message_start\"}\n"
                               "|line one\nline two\n"
                               "|no space\n"
                               "|[DONE]\n";
    int rc, bad = 0;

    char *whole = run(stream, 0, &rc);
    T_EQ_STR(whole, want, "events of a whole stream");
    T_EQ_INT(rc, 0, "  ... and no error");
    for (size_t step = 1; step < sizeof(stream); step++) {
        char *cut = run(stream, step, &rc);
        bad += strcmp(cut, want) != 0 || rc != 0;
        free(cut);
    }
    T_EQ_INT(bad, 0, "the same events whatever the cut (every piece size)");
    free(whole);

    char *last = run("event: message_stop\ndata: {}", 3, &rc);
    T_EQ_STR(last, "message_stop|{}\n",
             "the end of the stream delivers an event without its blank line");
    free(last);

    {
        sse_reader_t r;
        got_t g = {{0}, 0, 2};
        sse_reader_init(&r);
        rc = sse_feed(&r, "data: a\n\ndata: b\n\ndata: c\n\n", 27, on_event, &g);
        T_OK(rc == 7 && g.n == 2, "a callback's non-zero result stops the feed (%d, %d)", rc, g.n);
        sse_reader_free(&r);
        buf_free(&g.out);
    }
    {
        sse_reader_t r;
        got_t g = {{0}, 0, 0};
        char *big = malloc(SSE_EVENT_MAX + 16);
        memcpy(big, "data: ", 6);
        memset(big + 6, 'x', SSE_EVENT_MAX);
        sse_reader_init(&r);
        rc = 0;
        for (size_t off = 0; rc == 0 && off < SSE_EVENT_MAX + 6; off += 4096) {
            size_t n = SSE_EVENT_MAX + 6 - off < 4096 ? SSE_EVENT_MAX + 6 - off : 4096;
            rc = sse_feed(&r, big + off, n, on_event, &g);
        }
        T_EQ_INT(rc, -1, "a line past SSE_EVENT_MAX fails");
        T_EQ_INT(g.n, 0, "  ... delivering nothing");
        sse_reader_free(&r);
        sse_reader_init(&r);
        memcpy(big, "data: ", 6);
        memset(big + 6, 'y', 1000);
        big[1006] = '\n';
        rc = 0;
        for (int i = 0; rc == 0 && i < 2000; i++)
            rc = sse_feed(&r, big, 1007, on_event, &g);
        T_EQ_INT(rc, -1, "an event of many lines past SSE_EVENT_MAX fails");
        sse_reader_free(&r);
        free(big);
        buf_free(&g.out);
    }
    return t_done();
}
