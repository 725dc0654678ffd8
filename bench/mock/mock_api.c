/* mock_api.c - the fake OpenAI API: routing, authentication, scripted faults, and the
 * deterministic responses of /v1/models, /v1/chat/completions, /v1/completions and
 * /v1/embeddings, streaming included.
 *
 * Every response goes through out_head() and either out_full() (a complete body) or the
 * streaming state machine stream_step(); both honour the fault set of the request
 * (truncation, bad chunk framing, reset after N bytes, Connection: close).
 */

#include "mock.h"
#include "server/errors.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CREATED         1700000000
#define DEFAULT_MODEL   "mock-model"
#define DEFAULT_CONTENT "Hello from the mock upstream."
#define DEFAULT_WORDS   5
#define DEFAULT_CHUNKS  8
#define EMBED_DIM       8
#define MAX_INPUTS      2048
#define HIGH_WATER      (1u << 20) /* streaming waits for the socket above this backlog */
#define BURST           64         /* streaming events before yielding to the loop */

#define LIT(s) s, sizeof(s) - 1

enum { PH_CONTENT, PH_USAGE, PH_DONE, PH_END };

static const char *const stream_words[DEFAULT_WORDS] = {"Hello", "from", "the", "mock",
                                                        "upstream."};

static const char models_body[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"mock-model\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-model-large\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-model-mini\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-embedding\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"}]}";

/* Filler for x-mock-content-bytes: "mock " repeated; its size is a multiple of 5 so that
 * consecutive references continue the pattern. Written once before the workers start. */
static char pattern[65535];

void mock_api_init(void)
{
    for (size_t i = 0; i < sizeof pattern; i += 5)
        memcpy(pattern + i, "mock ", 5);
}

/* ---- request headers ----------------------------------------------------------------- */

static int name_is(const char *n, size_t nl, const char *lit, size_t ll)
{
    return nl == ll && strncasecmp(n, lit, ll) == 0;
}

static int parse_long(const char *v, size_t n, long lo, long hi, long *out)
{
    long x = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_int(const char *v, size_t n, long lo, long hi, int *out)
{
    long x;
    if (parse_long(v, n, lo, hi, &x) != 0)
        return -1;
    *out = (int)x;
    return 0;
}

static int parse_bool(const char *v, size_t n)
{
    if (name_is(v, n, LIT("1")) || name_is(v, n, LIT("true")) || name_is(v, n, LIT("yes")))
        return 1;
    if (name_is(v, n, LIT("0")) || name_is(v, n, LIT("false")) || name_is(v, n, LIT("no")))
        return 0;
    return -1;
}

/* One x-mock-* request header (name without the prefix). Invalid values are ignored. */
static void fault_header(mock_req_t *r, const char *n, size_t nl, const char *v, size_t vl)
{
    mock_fault_t *f = &r->fault;
    int b;
    if (name_is(n, nl, LIT("status")))
        parse_int(v, vl, 100, 599, &f->status);
    else if (name_is(n, nl, LIT("error-code"))) {
        size_t k = vl < sizeof f->error_code - 1 ? vl : sizeof f->error_code - 1;
        memcpy(f->error_code, v, k);
        f->error_code[k] = '\0';
    } else if (name_is(n, nl, LIT("retry-after")))
        parse_int(v, vl, 0, INT_MAX, &f->retry_after);
    else if (name_is(n, nl, LIT("delay-ms")))
        parse_int(v, vl, 0, MOCK_MAX_DELAY_MS, &f->delay_ms);
    else if (name_is(n, nl, LIT("chunk-delay-ms")))
        parse_int(v, vl, 0, MOCK_MAX_DELAY_MS, &f->chunk_delay_ms);
    else if (name_is(n, nl, LIT("chunks")))
        parse_int(v, vl, 0, MOCK_MAX_CHUNKS, &f->chunks);
    else if (name_is(n, nl, LIT("content-bytes")))
        parse_long(v, vl, 0, MOCK_MAX_CONTENT, &f->content_bytes);
    else if (name_is(n, nl, LIT("reset-after-bytes")))
        parse_long(v, vl, 0, LONG_MAX / 2, &f->reset_after);
    else if (name_is(n, nl, LIT("truncate"))) {
        if ((b = parse_bool(v, vl)) >= 0)
            f->truncate = b;
    } else if (name_is(n, nl, LIT("bad-chunking"))) {
        if ((b = parse_bool(v, vl)) >= 0)
            f->bad_chunking = b;
    } else if (name_is(n, nl, LIT("close"))) {
        if ((b = parse_bool(v, vl)) >= 0)
            f->close = b;
    } else if (nl > 10 && strncasecmp(n, "ratelimit-", 10) == 0) {
        mock_buf_append(r->xheaders, LIT("x-"));
        mock_buf_append(r->xheaders, n, nl);
        mock_buf_append(r->xheaders, LIT(": "));
        mock_buf_append(r->xheaders, v, vl);
        mock_buf_append(r->xheaders, LIT("\r\n"));
    }
}

/* One pass over the headers: the credential and the x-mock-* faults. */
static void classify_headers(mock_req_t *r)
{
    const char *bearer = NULL, *xkey = NULL, *akey = NULL;
    size_t bearer_len = 0, xkey_len = 0, akey_len = 0;
    mock_fault_init(&r->fault);
    for (int i = 0; i < r->nhdrs; i++) {
        const mock_hdr_t *h = &r->hdrs[i];
        const char *n = r->hbase + h->name_off, *v = r->hbase + h->val_off;
        size_t nl = h->name_len, vl = h->val_len;
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (nl > 7 && strncasecmp(n, "x-mock-", 7) == 0)
            fault_header(r, n + 7, nl - 7, v, vl);
        else if (name_is(n, nl, LIT("authorization"))) {
            if (vl > 7 && strncasecmp(v, "bearer ", 7) == 0) {
                bearer = v + 7;
                bearer_len = vl - 7;
                while (bearer_len > 0 && *bearer == ' ') {
                    bearer++;
                    bearer_len--;
                }
            }
        } else if (name_is(n, nl, LIT("x-api-key"))) {
            xkey = v;
            xkey_len = vl;
        } else if (name_is(n, nl, LIT("api-key"))) {
            akey = v;
            akey_len = vl;
        }
    }
    if (bearer_len > 0) {
        r->key = bearer;
        r->key_len = bearer_len;
    } else if (xkey_len > 0) {
        r->key = xkey;
        r->key_len = xkey_len;
    } else if (akey_len > 0) {
        r->key = akey;
        r->key_len = akey_len;
    }
}

/* ---- response framing ---------------------------------------------------------------- */

static int resp_how(const mock_conn_t *c)
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
    if (s->fault.retry_after >= 0)
        mock_outf(c, "Retry-After: %d\r\n", s->fault.retry_after);
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

/* A complete response: pre, then content (or pat bytes of filler), then suf. */
static void out_full(mock_conn_t *c, int status, const char *pre, size_t pre_len, int pre_static,
                     const char *content, size_t content_len, size_t pat, const char *suf,
                     size_t suf_len)
{
    mock_resp_t *s = &c->resp;
    size_t total = pre_len + (content ? content_len : pat) + suf_len;
    int bad = s->fault.bad_chunking == 1 && c->req.http_minor == 1;
    if (status == 204 || status == 304) {
        out_head(c, status, "application/json", -1);
        mock_conn_done(c, resp_how(c));
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
    if (content)
        mock_out(c, content, content_len);
    else
        out_pattern(c, pat);
    mock_out(c, suf, suf_len);
    if (bad)
        mock_out_ref(c, LIT("\r\n0\r\n\r\n"));
    mock_conn_done(c, resp_how(c));
}

void mock_api_reply(mock_conn_t *c, int status, const char *body, size_t len)
{
    out_full(c, status, body, len, 0, NULL, 0, 0, "", 0);
}

void mock_api_error(mock_conn_t *c, int status, const char *type, const char *code, const char *msg,
                    int how)
{
    mock_buf_t *b = &c->w->scratch;
    b->len = 0;
    mock_buf_append(b, LIT("{\"error\":{\"message\":\""));
    mock_buf_json_escape(b, msg, strlen(msg));
    mock_buf_printf(b, "\",\"type\":\"%s\",\"code\":", type);
    if (code) {
        mock_buf_append(b, LIT("\""));
        mock_buf_json_escape(b, code, strlen(code));
        mock_buf_append(b, LIT("\"}}"));
    } else {
        mock_buf_append(b, LIT("null}}"));
    }
    if (how != MOCK_DONE_KEEP)
        c->resp.keep_alive = 0;
    out_full(c, status, b->p, b->len, 0, NULL, 0, 0, "", 0);
}

/* x-mock-status >= 400 or a script's status. */
static void scripted_error(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    int st = s->fault.status;
    const char *code = s->fault.error_code[0] ? s->fault.error_code : NULL;
    const char *type = "invalid_request_error";
    char msg[200];
    if (code == NULL)
        code = st == 401   ? "invalid_api_key"
               : st == 404 ? "model_not_found"
               : st == 429 ? "rate_limit_exceeded"
                           : NULL;
    if (code && strcmp(code, "insufficient_quota") == 0) {
        type = "insufficient_quota";
        snprintf(msg, sizeof msg, "You exceeded your current quota (mock, status %d).", st);
    } else if (st == 429) {
        type = "requests";
        snprintf(msg, sizeof msg, "Rate limit reached for requests (mock, status 429).");
    } else if (st == 404) {
        snprintf(msg, sizeof msg, "The model `%.*s` does not exist (mock, status 404).",
                 (int)(s->model_len < 100 ? s->model_len : 100), s->model);
    } else if (st >= 500) {
        type = "server_error";
        snprintf(msg, sizeof msg, "The server had an error (mock, status %d).", st);
    } else {
        snprintf(msg, sizeof msg, "Scripted mock error (status %d).", st);
    }
    mock_api_error(c, st, type, code, msg, MOCK_DONE_KEEP);
}

/* ---- non-streaming bodies ------------------------------------------------------------ */

static void respond_text(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    const char *content = DEFAULT_CONTENT;
    size_t content_len = sizeof DEFAULT_CONTENT - 1, pat = 0;
    long words = DEFAULT_WORDS;
    if (s->fault.content_bytes >= 0) {
        content = NULL;
        pat = (size_t)s->fault.content_bytes;
        words = (long)((pat + 4) / 5);
    }
    a->len = b->len = 0;
    if (s->kind == MOCK_EP_CHAT) {
        mock_buf_printf(a,
                        "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":%d,"
                        "\"model\":\"%.*s\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                        "\"assistant\",\"content\":\"",
                        CREATED, (int)s->model_len, s->model);
        mock_buf_printf(b,
                        "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%ld,"
                        "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
                        s->prompt_tokens, words, s->prompt_tokens + words);
    } else {
        mock_buf_printf(a,
                        "{\"id\":\"cmpl-mock\",\"object\":\"text_completion\",\"created\":%d,"
                        "\"model\":\"%.*s\",\"choices\":[{\"text\":\"",
                        CREATED, (int)s->model_len, s->model);
        mock_buf_printf(b,
                        "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                        "\"total_tokens\":%ld}}",
                        s->prompt_tokens, words, s->prompt_tokens + words);
    }
    out_full(c, s->status, a->p, a->len, 0, content, content_len, pat, b->p, b->len);
}

static void respond_embeddings(mock_conn_t *c, int n_inputs)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    a->len = 0;
    mock_buf_append(a, LIT("{\"object\":\"list\",\"data\":["));
    for (int i = 0; i < n_inputs; i++) {
        mock_buf_printf(a, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":[", i ? "," : "",
                        i);
        for (int j = 0; j < EMBED_DIM; j++) /* deterministic, distinct per input */
            mock_buf_printf(a, "%s%.4f", j ? "," : "", (double)((i * 7 + j * 3) % 17 + 1) / 17.0);
        mock_buf_append(a, LIT("]}"));
    }
    mock_buf_printf(a,
                    "],\"model\":\"%.*s\",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}",
                    (int)s->model_len, s->model, s->prompt_tokens, s->prompt_tokens);
    out_full(c, s->status, a->p, a->len, 0, "", 0, 0, "", 0);
}

/* ---- streaming ------------------------------------------------------------------------- */

/* One SSE event "data: ...\n\n" made of pre, a text (or pat bytes of filler) and suf, as
 * one HTTP chunk; bad = an invalid chunk-size line instead of the real one. */
static void out_event(mock_conn_t *c, const mock_buf_t *pre, const char *text, size_t text_len,
                      size_t pat, const char *suf, size_t suf_len, int bad)
{
    size_t n = pre->len + (text ? text_len : pat) + suf_len;
    if (c->resp.chunked) {
        if (bad)
            mock_out_ref(c, LIT("zz\r\n"));
        else
            mock_outf(c, "%zx\r\n", n);
    }
    mock_out(c, pre->p, pre->len);
    if (text)
        mock_out(c, text, text_len);
    else
        out_pattern(c, pat);
    mock_out(c, suf, suf_len);
    if (c->resp.chunked)
        mock_out_ref(c, LIT("\r\n"));
}

static void stream_content(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    int i = s->index, last = i == s->n_chunks - 1;
    char word[16];
    const char *text = NULL;
    size_t text_len = 0, pat = 0;
    if (s->fault.content_bytes >= 0) {
        pat = (size_t)s->fault.content_bytes;
    } else {
        text = word;
        text_len = (size_t)snprintf(word, sizeof word, "%s%s", i ? " " : "",
                                    stream_words[i % DEFAULT_WORDS]);
    }
    a->len = 0;
    if (s->kind == MOCK_EP_CHAT) {
        mock_buf_printf(a,
                        "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\","
                        "\"created\":%d,\"model\":\"%.*s\",\"choices\":[{\"index\":0,\"delta\":{"
                        "%s\"content\":\"",
                        CREATED, (int)s->model_len, s->model, i ? "" : "\"role\":\"assistant\",");
        if (last)
            out_event(c, a, text, text_len, pat, LIT("\"},\"finish_reason\":\"stop\"}]}\n\n"), bad);
        else
            out_event(c, a, text, text_len, pat, LIT("\"},\"finish_reason\":null}]}\n\n"), bad);
    } else {
        mock_buf_printf(a,
                        "data: {\"id\":\"cmpl-mock\",\"object\":\"text_completion\",\"created\":%d,"
                        "\"model\":\"%.*s\",\"choices\":[{\"text\":\"",
                        CREATED, (int)s->model_len, s->model);
        if (last)
            out_event(c, a, text, text_len, pat,
                      LIT("\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"),
                      bad);
        else
            out_event(c, a, text, text_len, pat,
                      LIT("\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n"), bad);
    }
}

static void stream_usage(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    long per = s->fault.content_bytes >= 0 ? (s->fault.content_bytes + 4) / 5 : 1;
    long words = per * s->n_chunks;
    a->len = 0;
    mock_buf_printf(a,
                    "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%d,\"model\":\"%.*s\","
                    "\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                    "\"total_tokens\":%ld}}\n\n",
                    s->kind == MOCK_EP_CHAT ? "chatcmpl-mock" : "cmpl-mock",
                    s->kind == MOCK_EP_CHAT ? "chat.completion.chunk" : "text_completion", CREATED,
                    (int)s->model_len, s->model, s->prompt_tokens, words, s->prompt_tokens + words);
    out_event(c, a, "", 0, 0, "", 0, bad);
}

static void stream_step(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    const mock_fault_t *f = &s->fault;
    int truncate_at = s->n_chunks / 2 > 0 ? s->n_chunks / 2 : 1;
    for (;;) {
        int bad = f->bad_chunking == 1 && s->pieces == 1;
        if (s->phase == PH_CONTENT) {
            stream_content(c, bad);
            if (++s->index == s->n_chunks)
                s->phase = PH_USAGE;
        } else if (s->phase == PH_USAGE) {
            stream_usage(c, bad);
            s->phase = PH_DONE;
        } else {
            mock_buf_t done = {.p = (char *)"data: [DONE]\n\n", .len = 14};
            out_event(c, &done, "", 0, 0, "", 0, bad);
            if (s->chunked && !bad)
                mock_out_ref(c, LIT("0\r\n\r\n"));
            s->phase = PH_END;
        }
        s->pieces++;
        mock_flush(c);
        if (c->closing)
            return;
        if (mock_out_exhausted(c)) {
            mock_conn_done(c, MOCK_DONE_RESET);
            return;
        }
        if (bad || (f->truncate == 1 && s->pieces == truncate_at)) {
            mock_conn_done(c, f->reset_after >= 0 ? MOCK_DONE_RESET : MOCK_DONE_CLOSE);
            return;
        }
        if (s->phase == PH_END) {
            mock_conn_done(c, resp_how(c));
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

static void stream_start(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    s->chunked = c->req.http_minor >= 1;
    s->n_chunks = s->fault.chunks >= 0 ? s->fault.chunks : DEFAULT_CHUNKS;
    s->phase = s->n_chunks > 0 ? PH_CONTENT : PH_USAGE;
    out_head(c, s->status, "text/event-stream", -1);
    mock_flush(c);
    if (c->closing)
        return;
    if (mock_out_exhausted(c)) {
        mock_conn_done(c, MOCK_DONE_RESET);
        return;
    }
    stream_step(c);
}

/* ---- dispatch -------------------------------------------------------------------------- */

static void respond(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    if (s->fault.reset_after >= 0)
        mock_out_budget(c, s->fault.reset_after);
    if (s->fault.status >= 400) {
        scripted_error(c);
        return;
    }
    if (s->fault.status >= 200)
        s->status = s->fault.status;
    if (s->kind == MOCK_EP_MODELS)
        out_full(c, s->status, models_body, sizeof models_body - 1, 1, "", 0, 0, "", 0);
    else if (s->kind == MOCK_EP_EMBEDDINGS)
        respond_embeddings(c, s->n_inputs);
    else if (s->stream)
        stream_start(c);
    else
        respond_text(c);
}

static int endpoint(const char *p, size_t n)
{
    if (n < 4 || memcmp(p, "/v1/", 4) != 0)
        return MOCK_EP_NONE;
    p += 4;
    n -= 4;
    if (n == 16 && memcmp(p, "chat/completions", 16) == 0)
        return MOCK_EP_CHAT;
    if (n == 6 && memcmp(p, "models", 6) == 0)
        return MOCK_EP_MODELS;
    if (n == 11 && memcmp(p, "completions", 11) == 0)
        return MOCK_EP_COMPLETIONS;
    if (n == 10 && memcmp(p, "embeddings", 10) == 0)
        return MOCK_EP_EMBEDDINGS;
    return MOCK_EP_NONE;
}

void mock_api_handle(mock_conn_t *c, mock_req_t *r)
{
    mock_resp_t *s = &c->resp;
    char msg[200];
    memset(s, 0, sizeof *s);
    mock_fault_init(&s->fault);
    s->status = 200;
    s->keep_alive = r->keep_alive;
    s->model = DEFAULT_MODEL;
    s->model_len = sizeof DEFAULT_MODEL - 1;
    if (r->path_len >= 7 && memcmp(r->path, "/_mock/", 7) == 0) {
        mock_admin_handle(c, r);
        return;
    }
    classify_headers(r);
    mock_admin_record(c->w->id, r);

    int ep = endpoint(r->path, r->path_len);
    if (ep == MOCK_EP_NONE) {
        snprintf(msg, sizeof msg, "Unknown request URL: %s %.*s. Please check the URL for typos.",
                 llhttp_method_name((llhttp_method_t)r->method),
                 (int)(r->path_len < 120 ? r->path_len : 120), r->path);
        mock_api_error(c, 404, "invalid_request_error", "unknown_url", msg, MOCK_DONE_KEEP);
        return;
    }
    if (r->key == NULL) {
        mock_api_error(c, 401, "invalid_request_error", "invalid_api_key", "missing api key",
                       MOCK_DONE_KEEP);
        return;
    }
    int want = ep == MOCK_EP_MODELS ? HTTP_GET : HTTP_POST;
    if (r->method != want) {
        snprintf(msg, sizeof msg, "Method %s not allowed on %.*s (use %s).",
                 llhttp_method_name((llhttp_method_t)r->method), (int)r->path_len, r->path,
                 llhttp_method_name((llhttp_method_t)want));
        mock_api_error(c, 405, "invalid_request_error", "method_not_allowed", msg, MOCK_DONE_KEEP);
        return;
    }

    /* A key's script first, then the request's own x-mock-* headers on top. */
    mock_admin_script_take(r->key, r->key_len, &s->fault, r->xheaders);
    mock_fault_overlay(&s->fault, &r->fault);
    s->kind = ep;
    if (ep != MOCK_EP_MODELS) {
        mock_scan_t scan;
        if (mock_json_scan_request(r->body, r->body_len, &scan) != 0) {
            mock_api_error(c, 400, "invalid_request_error", NULL,
                           "We could not parse the JSON body of your request: expected a JSON "
                           "object.",
                           MOCK_DONE_KEEP);
            return;
        }
        if (scan.model) {
            s->model = scan.model;
            s->model_len = scan.model_len;
        }
        s->stream = scan.stream && ep != MOCK_EP_EMBEDDINGS;
        s->n_inputs = scan.n_inputs < 1            ? 1
                      : scan.n_inputs > MAX_INPUTS ? MAX_INPUTS
                                                   : scan.n_inputs;
    }
    s->prompt_tokens = r->body_len / 4 > 0 ? (long)(r->body_len / 4) : 1;
    s->keep_alive = r->keep_alive && s->fault.close != 1 && s->fault.truncate != 1 &&
                    s->fault.bad_chunking != 1 && !(s->stream && r->http_minor == 0);
    if (s->fault.delay_ms > 0) {
        mock_conn_after(c, (uint64_t)s->fault.delay_ms, respond);
        return;
    }
    respond(c);
}
