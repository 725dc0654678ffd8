/* mock_frame.c - how the mock upstream's responses go out, for every endpoint: the status
 * line and headers, complete bodies, SSE events, the streaming loop, and the generated text.
 *
 * Every response goes through out_head() and either out_full() (a complete body) or the
 * streaming loop stream_step(), which asks the endpoint's emit function for one event after
 * another. Both honour the fault set of the request: truncation, bad chunk framing, reset
 * after N bytes, Connection: close; the loop also paces the stream (x-mock-chunk-delay-ms),
 * waits for a slow reader and yields to other connections now and then.
 *
 * The generated text (mock_text_t) is never built as a whole: words are copied where they
 * are needed, whole five-word cycles at once, and the x-mock-content-bytes filler is a
 * reference to one static pattern. The generated tool calls (x-mock-tool-call, or a
 * tool_choice naming a tool) are small and fixed, and formatted where they are written.
 */

#include "mock.h"
#include "server/common/errors.h"

#include <stdio.h>
#include <string.h>

#define HIGH_WATER (1u << 20) /* streaming waits for the socket above this backlog */
#define BURST      64         /* streaming events before yielding to the loop */

#define LIT(s) s, sizeof(s) - 1

/* The pieces of the generated text; piece i > 0 is words[i % 5] with its space. Five
 * pieces from a multiple of 5 on are one cycle. */
static const char words[MOCK_DEFAULT_WORDS][12] = {" Hello", " from", " the", " mock",
                                                   " upstream."};
static const unsigned char word_len[MOCK_DEFAULT_WORDS] = {6, 5, 4, 5, 10};
static const char cycle[] = " Hello from the mock upstream.";
#define CYCLE_LEN (sizeof cycle - 1)

/* Filler for x-mock-content-bytes: "mock " repeated; its size is a multiple of 5 so that
 * consecutive references continue the pattern. Written once before the workers start. */
static char pattern[65535];

void mock_frame_init(void)
{
    for (size_t i = 0; i < sizeof pattern; i += 5)
        memcpy(pattern + i, "mock ", 5);
}

/* ---- headers and complete bodies ------------------------------------------------------- */

int mock_resp_how(const mock_conn_t *c)
{
    if (c->resp.fault.reset_after >= 0)
        return MOCK_DONE_RESET;
    return c->resp.keep_alive ? MOCK_DONE_KEEP : MOCK_DONE_CLOSE;
}

/* Status line and headers. clen >= 0: Content-Length; otherwise chunked if resp.chunked,
 * else no length (the body ends with the connection). */
static void out_head(mock_conn_t *c, int status, const char *ctype, long clen)
{
    mock_resp_t *s = &c->resp;
    s->status = status;
    if (clen >= 0)
        mock_outf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %ld\r\n", status,
                  http_reason(status), ctype, clen);
    else
        mock_outf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s", status, http_reason(status), ctype,
                  s->chunked ? "Transfer-Encoding: chunked\r\n" : "");
    if (s->stream)
        mock_out_ref(c, LIT("Cache-Control: no-cache\r\n"));
    if (s->fault.retry_after >= 0 && s->family != MOCK_FAM_GEMINI) /* Gemini: in the body */
        mock_outf(c, "Retry-After: %d\r\n", s->fault.retry_after);
    if (s->family == MOCK_FAM_RESPONSES)
        mock_outf(c, "x-request-id: %s\r\n", c->req_id);
    else if (s->family == MOCK_FAM_ANTHROPIC)
        mock_outf(c, "request-id: %s\r\n", c->req_id);
    if (c->xheaders.len > 0)
        mock_out(c, c->xheaders.p, c->xheaders.len);
    if (!s->keep_alive)
        mock_out_ref(c, LIT("Connection: close\r\n"));
    else if (c->req.http_minor == 0)
        mock_out_ref(c, LIT("Connection: keep-alive\r\n"));
    mock_out_ref(c, LIT("\r\n"));
    if (c->w->verbose)
        fprintf(stderr, "mock-upstream[%d]: %s %.*s -> %d%s\n", c->w->id,
                llhttp_method_name((llhttp_method_t)c->req.method), (int)c->req.path_len,
                c->req.path, status, s->stream ? " (stream)" : "");
}

static void out_pattern(mock_conn_t *c, size_t n)
{
    while (n > 0) {
        size_t k = n < sizeof pattern ? n : sizeof pattern;
        mock_out_ref(c, pattern, k);
        n -= k;
    }
}

/* ---- the generated text ----------------------------------------------------------------- */

size_t mock_text_len(const mock_text_t *t)
{
    if (t->pat >= 0)
        return (size_t)t->n * (size_t)t->pat;
    size_t len = 0;
    int i = t->first, end = t->first + t->n;
    for (; i < end && i % MOCK_DEFAULT_WORDS; i++)
        len += word_len[i % MOCK_DEFAULT_WORDS];
    len += (size_t)((end - i) / MOCK_DEFAULT_WORDS) * CYCLE_LEN;
    for (i += (end - i) / MOCK_DEFAULT_WORDS * MOCK_DEFAULT_WORDS; i < end; i++)
        len += word_len[i % MOCK_DEFAULT_WORDS];
    return t->first == 0 && t->n > 0 ? len - 1 : len; /* no space before piece 0 */
}

long mock_text_tokens(const mock_text_t *t)
{
    return t->pat >= 0 ? (long)t->n * ((t->pat + 4) / 5) : t->n;
}

/* Words are copied (they are short, and copies coalesce into one segment), whole cycles
 * at once; filler is referenced. */
void mock_out_text(mock_conn_t *c, const mock_text_t *t)
{
    int i = t->first, end = t->first + t->n;
    while (i < end) {
        int w = i % MOCK_DEFAULT_WORDS, first = i == 0;
        if (t->pat >= 0) {
            out_pattern(c, (size_t)t->pat);
            i++;
        } else if (w == 0 && end - i >= MOCK_DEFAULT_WORDS) {
            mock_out(c, cycle + first, CYCLE_LEN - (size_t)first);
            i += MOCK_DEFAULT_WORDS;
        } else {
            mock_out(c, words[w] + first, word_len[w] - (size_t)first);
            i++;
        }
    }
}

void mock_text_json(const mock_conn_t *c, mock_text_t *t)
{
    long pat = c->resp.fault.content_bytes;
    *t = (mock_text_t){0, pat >= 0 ? 1 : MOCK_DEFAULT_WORDS, pat};
}

/* ---- the generated tool calls ----------------------------------------------------------- */

static const char *const cities[MOCK_MAX_TOOLS] = {"Paris", "Rome", "Berlin", "Madrid"};
_Static_assert(sizeof((mock_fault_t *)0)->tool_name == MOCK_TOOL_NAME, "tool name size");

void mock_tool_setup(mock_conn_t *c, const char *choice)
{
    mock_resp_t *s = &c->resp;
    mock_fault_t *f = &s->fault;
    if (f->tool_name[0] == '\0' && choice[0] != '\0')
        memcpy(f->tool_name, choice, strlen(choice) + 1); /* the scanner keeps it short */
    s->tools = f->tool_name[0] == '\0' ? 0 : f->tool_calls > 0 ? f->tool_calls : 1;
    s->tool_text = s->tools > 0 && f->tool_text == 1;
}

void mock_tool_args(mock_buf_t *b, int i, int piece)
{
    char args[64];
    int n = snprintf(args, sizeof args, "{\"city\":\"%s\",\"unit\":\"celsius\"}",
                     cities[i % MOCK_MAX_TOOLS]);
    size_t len = (size_t)n, from = 0, to = len;
    if (piece < 0) {
        mock_buf_append(b, args, len);
        return;
    }
    if (piece < MOCK_TOOL_PIECES) { /* equal slices: they cut keys and values apart */
        from = len * (size_t)piece / MOCK_TOOL_PIECES;
        to = len * (size_t)(piece + 1) / MOCK_TOOL_PIECES;
    }
    mock_buf_json_escape(b, args + from, to - from);
}

void mock_tool_name(mock_buf_t *b, const mock_conn_t *c)
{
    const char *name = c->resp.fault.tool_name;
    mock_buf_json_escape(b, name, strlen(name));
}

/* A complete response: pre, then the text t, then suf. */
static void out_full(mock_conn_t *c, int status, const char *pre, size_t pre_len, int pre_static,
                     const mock_text_t *t, const char *suf, size_t suf_len)
{
    mock_resp_t *s = &c->resp;
    size_t total = pre_len + (t ? mock_text_len(t) : 0) + suf_len;
    int bad = s->fault.bad_chunking == 1 && c->req.http_minor == 1;
    if (status == 204 || status == 304) {
        out_head(c, status, "application/json", -1);
        mock_conn_done(c, mock_resp_how(c));
        return;
    }
    s->chunked = bad;
    if (bad) {
        out_head(c, status, "application/json", -1);
        mock_out_ref(c, LIT("zz\r\n")); /* not a hexadecimal chunk size */
    } else {
        out_head(c, status, "application/json", (long)total + (s->fault.truncate == 1 ? 64 : 0));
    }
    if (pre_static)
        mock_out_ref(c, pre, pre_len);
    else
        mock_out(c, pre, pre_len);
    if (t)
        mock_out_text(c, t);
    mock_out(c, suf, suf_len);
    if (bad)
        mock_out_ref(c, LIT("\r\n0\r\n\r\n"));
    mock_conn_done(c, mock_resp_how(c));
}

void mock_out_full(mock_conn_t *c, int status, const char *pre, size_t pre_len,
                   const mock_text_t *t, const char *suf, size_t suf_len)
{
    out_full(c, status, pre, pre_len, 0, t, suf, suf_len);
}

void mock_out_static(mock_conn_t *c, int status, const char *body, size_t len)
{
    out_full(c, status, body, len, 1, NULL, "", 0);
}

/* ---- streaming ------------------------------------------------------------------------- */

void mock_out_event(mock_conn_t *c, const char *pre, size_t pre_len, const mock_text_t *t,
                    const char *suf, size_t suf_len, int bad)
{
    size_t n = pre_len + (t ? mock_text_len(t) : 0) + suf_len;
    if (c->resp.chunked) {
        if (bad)
            mock_out_ref(c, LIT("zz\r\n"));
        else
            mock_outf(c, "%zx\r\n", n);
    }
    mock_out(c, pre, pre_len);
    if (t)
        mock_out_text(c, t);
    mock_out(c, suf, suf_len);
    if (c->resp.chunked)
        mock_out_ref(c, LIT("\r\n"));
}

/* Send what a stream has so far; -1 when the stream is over (closed, or its
 * x-mock-reset-after-bytes budget spent: then reset), else 0. */
static int flush_stream(mock_conn_t *c)
{
    mock_flush(c);
    if (c->closing)
        return -1;
    if (mock_out_exhausted(c)) {
        mock_conn_done(c, MOCK_DONE_RESET);
        return -1;
    }
    return 0;
}

static void stream_step(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    const mock_fault_t *f = &s->fault;
    for (;;) {
        int bad = f->bad_chunking == 1 && s->pieces == 1;
        int end = s->emit(c, bad);
        if (end && s->chunked && !bad)
            mock_out_ref(c, LIT("0\r\n\r\n"));
        s->pieces++;
        if (flush_stream(c) != 0)
            return;
        if (bad || (f->truncate == 1 && s->pieces == s->truncate_at)) {
            mock_conn_done(c, f->reset_after >= 0 ? MOCK_DONE_RESET : MOCK_DONE_CLOSE);
            return;
        }
        if (end) {
            mock_conn_done(c, mock_resp_how(c));
            return;
        }
        if (f->chunk_delay_ms > 0) {
            mock_conn_after(c, (uint64_t)f->chunk_delay_ms, stream_step);
            return;
        }
        if (mock_conn_backlog(c) > HIGH_WATER) {
            mock_conn_on_drain(c, stream_step);
            return;
        }
        if (++s->burst >= BURST) {
            s->burst = 0;
            mock_conn_after(c, 0, stream_step); /* let other connections run */
            return;
        }
    }
}

void mock_stream_start(mock_conn_t *c, mock_emit_fn emit, int lead)
{
    mock_resp_t *s = &c->resp;
    s->chunked = c->req.http_minor >= 1;
    s->n_chunks = s->fault.chunks >= 0 ? s->fault.chunks : MOCK_DEFAULT_CHUNKS;
    if (s->truncate_at <= 0)
        s->truncate_at = lead + (s->n_chunks / 2 > 0 ? s->n_chunks / 2 : 1);
    s->emit = emit;
    out_head(c, s->status, "text/event-stream", -1);
    if (flush_stream(c) == 0)
        stream_step(c);
}
