/* mock_api.c - the fake provider's front: routing, authentication, scripted faults, error
 * bodies, and the deterministic responses of OpenAI's /v1/models, /v1/chat/completions,
 * /v1/completions and /v1/embeddings, streaming included. The Responses API (mock_responses.c) and
 * Anthropic's Messages API (mock_messages.c) are routed here and answered there.
 *
 * Responses go out through mock_frame.c (complete bodies, or a stream driven by an emit
 * function per endpoint), which honours the request's faults. A chat answer can be tool
 * calls instead of text (x-mock-tool-call, or a tool_choice naming a function), as JSON or
 * as OpenAI streams them (chat_tools_emit).
 *
 * The API family of a request follows from its path (/v1/responses..., /v1/messages...,
 * anything else is OpenAI's classic API) and chooses the error shape and the id header
 * (x-request-id on the Responses API, request-id on Anthropic's; none on the others, whose
 * headers the tests know as they are).
 */

#include "mock.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CREATED    1700000000
#define EMBED_DIM  8
#define MAX_INPUTS 2048

#define LIT(s) s, sizeof(s) - 1

enum { PH_CONTENT, PH_USAGE, PH_DONE };
/* A chat stream that answers with tool calls (see chat_tools_emit). */
enum { TP_ROLE, TP_TEXT, TP_CALL, TP_ARGS, TP_FINISH, TP_USAGE, TP_DONE };

static const char models_body[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"mock-model\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-model-large\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-model-mini\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"},"
    "{\"id\":\"mock-embedding\",\"object\":\"model\",\"created\":1700000000,"
    "\"owned_by\":\"mock\"}]}";

void mock_api_init(void)
{
    mock_frame_init();
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

/* The rest of an extra response header line "NAME: V". */
static void xheader(mock_req_t *r, const char *n, size_t nl, const char *v, size_t vl)
{
    mock_buf_append(r->xheaders, n, nl);
    mock_buf_append(r->xheaders, LIT(": "));
    mock_buf_append(r->xheaders, v, vl);
    mock_buf_append(r->xheaders, LIT("\r\n"));
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
    } else if (name_is(n, nl, LIT("error-message"))) {
        size_t k = vl < sizeof f->error_message - 1 ? vl : sizeof f->error_message - 1;
        memcpy(f->error_message, v, k);
        f->error_message[k] = '\0';
    } else if (name_is(n, nl, LIT("response-status"))) {
        f->response_status = name_is(v, vl, LIT("completed"))    ? MOCK_RS_COMPLETED
                             : name_is(v, vl, LIT("incomplete")) ? MOCK_RS_INCOMPLETE
                             : name_is(v, vl, LIT("failed"))     ? MOCK_RS_FAILED
                                                                 : f->response_status;
    } else if (name_is(n, nl, LIT("tool-call"))) {
        if (vl > 0 && vl < sizeof f->tool_name && memchr(v, '\0', vl) == NULL) {
            memcpy(f->tool_name, v, vl);
            f->tool_name[vl] = '\0';
        }
    } else if (name_is(n, nl, LIT("tool-calls"))) {
        parse_int(v, vl, 1, MOCK_MAX_TOOLS, &f->tool_calls);
    } else if (name_is(n, nl, LIT("tool-text"))) {
        if ((b = parse_bool(v, vl)) >= 0)
            f->tool_text = b;
    } else if (nl > 10 && strncasecmp(n, "ratelimit-", 10) == 0) {
        mock_buf_append(r->xheaders, LIT("x-"));
        xheader(r, n, nl, v, vl);
    } else if (nl > 20 && strncasecmp(n, "anthropic-ratelimit-", 20) == 0) {
        xheader(r, n, nl, v, vl);
    }
}

/* One pass over the headers: the credential and the x-mock-* faults. Anthropic's API takes
 * x-api-key first, then a bearer token (as relays send it), never api-key. */
static void classify_headers(mock_req_t *r, int family)
{
    const char *bearer = NULL, *xkey = NULL, *akey = NULL, *gkey = NULL;
    size_t bearer_len = 0, xkey_len = 0, akey_len = 0, gkey_len = 0;
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
        } else if (name_is(n, nl, LIT("x-goog-api-key"))) {
            gkey = v;
            gkey_len = vl;
        }
    }
    if (family == MOCK_FAM_GEMINI) { /* x-goog-api-key, or ?key= (as Google's API) */
        if (gkey_len == 0)
            gkey = mock_req_query(r, "key", &gkey_len);
        if (gkey && gkey_len > 0) {
            r->key = gkey;
            r->key_len = gkey_len;
            r->key_from = MOCK_KEY_GOOG;
        }
        return;
    }
    if (family == MOCK_FAM_ANTHROPIC) {
        if (xkey_len > 0)
            bearer_len = 0;
        akey_len = 0;
    }
    if (bearer_len > 0) {
        r->key = bearer;
        r->key_len = bearer_len;
        r->key_from = MOCK_KEY_BEARER;
    } else if (xkey_len > 0) {
        r->key = xkey;
        r->key_len = xkey_len;
        r->key_from = MOCK_KEY_X_API_KEY;
    } else if (akey_len > 0) {
        r->key = akey;
        r->key_len = akey_len;
        r->key_from = MOCK_KEY_API_KEY;
    }
}

const char *mock_req_header(const mock_req_t *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nhdrs; i++) {
        const mock_hdr_t *h = &r->hdrs[i];
        if (!name_is(r->hbase + h->name_off, h->name_len, name, n))
            continue;
        const char *v = r->hbase + h->val_off;
        size_t vl = h->val_len;
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        *len = vl;
        return v;
    }
    return NULL;
}

const char *mock_req_query(const mock_req_t *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *p = r->path + r->path_len, *end = r->path + r->url_len;
    while (p < end) {
        p++; /* '?' or '&' */
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > n && p[n] == '=' && memcmp(p, name, n) == 0) {
            *len = (size_t)(e - p - (long)n - 1);
            return p + n + 1;
        }
        p = e;
    }
    return NULL;
}

void mock_api_reply(mock_conn_t *c, int status, const char *body, size_t len)
{
    mock_out_full(c, status, body, len, NULL, "", 0);
}

/* A JSON string, or null. */
static void json_str_or_null(mock_buf_t *b, const char *s)
{
    if (s == NULL) {
        mock_buf_append(b, LIT("null"));
        return;
    }
    mock_buf_append(b, LIT("\""));
    mock_buf_json_escape(b, s, strlen(s));
    mock_buf_append(b, LIT("\""));
}

void mock_api_error_full(mock_conn_t *c, int status, const char *type, const char *code,
                         const char *param, const char *msg)
{
    mock_buf_t *b = &c->w->scratch;
    if (c->resp.family == MOCK_FAM_GEMINI) {
        (void)type;
        (void)param;
        mock_gemini_error(c, status, code, msg);
        return;
    }
    b->len = 0;
    if (c->resp.family == MOCK_FAM_ANTHROPIC) {
        mock_buf_append(b, LIT("{\"type\":\"error\",\"error\":{\"type\":"));
        json_str_or_null(b, type);
        mock_buf_append(b, LIT(",\"message\":"));
        json_str_or_null(b, msg);
        mock_buf_append(b, LIT("}}"));
    } else {
        mock_buf_append(b, LIT("{\"error\":{\"message\":"));
        json_str_or_null(b, msg);
        mock_buf_append(b, LIT(",\"type\":"));
        json_str_or_null(b, type);
        if (c->resp.family == MOCK_FAM_RESPONSES) {
            mock_buf_append(b, LIT(",\"param\":"));
            json_str_or_null(b, param);
        }
        mock_buf_append(b, LIT(",\"code\":"));
        json_str_or_null(b, code);
        mock_buf_append(b, LIT("}}"));
    }
    mock_out_full(c, status, b->p, b->len, NULL, "", 0);
}

/* Anthropic's error type for a status. */
static const char *anthropic_type(int st)
{
    switch (st) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return st >= 500 ? "api_error" : "invalid_request_error";
    }
}

void mock_api_error(mock_conn_t *c, int status, const char *type, const char *code, const char *msg,
                    int how)
{
    if (how != MOCK_DONE_KEEP)
        c->resp.keep_alive = 0;
    if (c->resp.family == MOCK_FAM_ANTHROPIC)
        type = anthropic_type(status);
    mock_api_error_full(c, status, type, code, NULL, msg);
}

/* x-mock-status >= 400 or a script's status, on Anthropic's API. */
static void scripted_error_anthropic(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    int st = s->fault.status;
    const char *type = s->fault.error_code[0] ? s->fault.error_code : anthropic_type(st);
    char msg[200];
    if (st == 401)
        snprintf(msg, sizeof msg, "invalid x-api-key (mock, status 401)");
    else if (st == 403)
        snprintf(msg, sizeof msg,
                 "Your API key does not have permission to use the specified resource (mock, "
                 "status 403).");
    else if (st == 404)
        snprintf(msg, sizeof msg, "model: %.*s (mock, status 404)",
                 (int)(s->model_len < 100 ? s->model_len : 100), s->model);
    else if (st == 429)
        snprintf(msg, sizeof msg,
                 "This request would exceed the rate limit for your organization (mock, status "
                 "429).");
    else if (st == 529)
        snprintf(msg, sizeof msg, "Overloaded (mock, status 529)");
    else if (st >= 500)
        snprintf(msg, sizeof msg, "Internal server error (mock, status %d)", st);
    else
        snprintf(msg, sizeof msg, "Scripted mock error (status %d).", st);
    mock_api_error_full(c, st, type, NULL, NULL,
                        s->fault.error_message[0] ? s->fault.error_message : msg);
}

/* x-mock-status >= 400 or a script's status. */
static void scripted_error(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    int st = s->fault.status;
    const char *code = s->fault.error_code[0] ? s->fault.error_code : NULL;
    const char *type = "invalid_request_error";
    char msg[200];
    if (s->family == MOCK_FAM_ANTHROPIC) {
        scripted_error_anthropic(c);
        return;
    }
    if (s->family == MOCK_FAM_GEMINI) {
        mock_gemini_scripted_error(c);
        return;
    }
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
    mock_api_error_full(c, st, type, code, NULL,
                        s->fault.error_message[0] ? s->fault.error_message : msg);
}

/* ---- non-streaming bodies ------------------------------------------------------------ */

static void respond_text(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    mock_text_t t;
    mock_text_json(c, &t);
    long words = mock_text_tokens(&t);
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
    mock_out_full(c, s->status, a->p, a->len, &t, b->p, b->len);
}

/* Completion tokens of a chat answer with tool calls: the text's words, if any, and
 * MOCK_TOOL_TOKENS per call. */
static long tool_tokens(const mock_resp_t *s, const mock_text_t *t)
{
    return (s->tool_text ? mock_text_tokens(t) : 0) + (long)s->tools * MOCK_TOOL_TOKENS;
}

/* Chat with tool calls: content null (or the text), tool_calls, finish_reason "tool_calls". */
static void respond_chat_tools(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    mock_text_t t;
    mock_text_json(c, &t);
    long words = tool_tokens(s, &t);
    a->len = b->len = 0;
    mock_buf_printf(a,
                    "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":%d,"
                    "\"model\":\"%.*s\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                    "\"assistant\",\"content\":%s",
                    CREATED, (int)s->model_len, s->model, s->tool_text ? "\"" : "null");
    if (s->tool_text)
        mock_buf_append(b, LIT("\""));
    mock_buf_append(b, LIT(",\"tool_calls\":["));
    for (int i = 0; i < s->tools; i++) {
        mock_buf_printf(b,
                        "%s{\"id\":\"call_mock_%d\",\"type\":\"function\",\"function\":{"
                        "\"name\":\"",
                        i ? "," : "", i);
        mock_tool_name(b, c);
        mock_buf_append(b, LIT("\",\"arguments\":\""));
        mock_tool_args(b, i, MOCK_TOOL_PIECES);
        mock_buf_append(b, LIT("\"}}"));
    }
    mock_buf_printf(b,
                    "]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":%ld,"
                    "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
                    s->prompt_tokens, words, s->prompt_tokens + words);
    mock_out_full(c, s->status, a->p, a->len, s->tool_text ? &t : NULL, b->p, b->len);
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
    mock_out_full(c, s->status, a->p, a->len, NULL, "", 0);
}

/* ---- streaming ------------------------------------------------------------------------- */

static void chat_content(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    int i = s->index, last = i == s->n_chunks - 1;
    mock_text_t t = {i, 1, s->fault.content_bytes};
    a->len = 0;
    if (s->kind == MOCK_EP_CHAT) {
        mock_buf_printf(a,
                        "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\","
                        "\"created\":%d,\"model\":\"%.*s\",\"choices\":[{\"index\":0,\"delta\":{"
                        "%s\"content\":\"",
                        CREATED, (int)s->model_len, s->model, i ? "" : "\"role\":\"assistant\",");
        if (last)
            mock_out_event(c, a->p, a->len, &t, LIT("\"},\"finish_reason\":\"stop\"}]}\n\n"), bad);
        else
            mock_out_event(c, a->p, a->len, &t, LIT("\"},\"finish_reason\":null}]}\n\n"), bad);
    } else {
        mock_buf_printf(a,
                        "data: {\"id\":\"cmpl-mock\",\"object\":\"text_completion\",\"created\":%d,"
                        "\"model\":\"%.*s\",\"choices\":[{\"text\":\"",
                        CREATED, (int)s->model_len, s->model);
        if (last)
            mock_out_event(
                c, a->p, a->len, &t,
                LIT("\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"), bad);
        else
            mock_out_event(c, a->p, a->len, &t,
                           LIT("\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n"),
                           bad);
    }
}

static void chat_usage(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    mock_text_t t = {0, s->n_chunks, s->fault.content_bytes};
    long words = s->tools ? tool_tokens(s, &t) : mock_text_tokens(&t);
    a->len = 0;
    mock_buf_printf(a,
                    "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%d,\"model\":\"%.*s\","
                    "\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                    "\"total_tokens\":%ld}}\n\n",
                    s->kind == MOCK_EP_CHAT ? "chatcmpl-mock" : "cmpl-mock",
                    s->kind == MOCK_EP_CHAT ? "chat.completion.chunk" : "text_completion", CREATED,
                    (int)s->model_len, s->model, s->prompt_tokens, words, s->prompt_tokens + words);
    mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
}

/* Chat and completions: one data: event per content chunk, the usage, then [DONE]. */
static int chat_emit(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    if (s->phase == PH_CONTENT && s->index >= s->n_chunks)
        s->phase = PH_USAGE;
    if (s->phase == PH_CONTENT) {
        chat_content(c, bad);
        s->index++;
        return 0;
    }
    if (s->phase == PH_USAGE) {
        chat_usage(c, bad);
        s->phase = PH_DONE;
        return 0;
    }
    mock_out_event(c, LIT("data: [DONE]\n\n"), NULL, "", 0, bad);
    return 1;
}

/* The start of a chat chunk, up to the inside of "delta". */
static void chunk_head(mock_conn_t *c, mock_buf_t *a)
{
    mock_resp_t *s = &c->resp;
    mock_buf_printf(a,
                    "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\","
                    "\"created\":%d,\"model\":\"%.*s\",\"choices\":[{\"index\":0,\"delta\":{",
                    CREATED, (int)s->model_len, s->model);
}

/* Chat with tool calls, as OpenAI streams them: the role alone, the text (x-mock-tool-text),
 * then per call its id and name with empty arguments and the arguments in pieces, then
 * finish_reason "tool_calls", the usage and [DONE]. s->index counts the text pieces, then
 * each call's argument pieces. */
static int chat_tools_emit(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    static const char tail[] = "},\"finish_reason\":null}]}\n\n";
    a->len = 0;
    switch (s->phase) {
    case TP_ROLE:
        chunk_head(c, a);
        mock_buf_append(a, LIT("\"role\":\"assistant\""));
        mock_out_event(c, a->p, a->len, NULL, LIT(tail), bad);
        s->phase = s->tool_text && s->n_chunks > 0 ? TP_TEXT : TP_CALL;
        return 0;
    case TP_TEXT: {
        mock_text_t t = {s->index, 1, s->fault.content_bytes};
        chunk_head(c, a);
        mock_buf_append(a, LIT("\"content\":\""));
        mock_out_event(c, a->p, a->len, &t, LIT("\"},\"finish_reason\":null}]}\n\n"), bad);
        if (++s->index >= s->n_chunks)
            s->phase = TP_CALL;
        return 0;
    }
    case TP_CALL:
        chunk_head(c, a);
        mock_buf_printf(a,
                        "\"tool_calls\":[{\"index\":%d,\"id\":\"call_mock_%d\",\"type\":"
                        "\"function\",\"function\":{\"name\":\"",
                        s->tool_at, s->tool_at);
        mock_tool_name(a, c);
        mock_buf_append(a, LIT("\",\"arguments\":\"\"}}]"));
        mock_out_event(c, a->p, a->len, NULL, LIT(tail), bad);
        s->index = 0;
        s->phase = TP_ARGS;
        return 0;
    case TP_ARGS:
        chunk_head(c, a);
        mock_buf_printf(a, "\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":\"",
                        s->tool_at);
        mock_tool_args(a, s->tool_at, s->index);
        mock_buf_append(a, LIT("\"}}]"));
        mock_out_event(c, a->p, a->len, NULL, LIT(tail), bad);
        if (++s->index >= MOCK_TOOL_PIECES)
            s->phase = ++s->tool_at < s->tools ? TP_CALL : TP_FINISH;
        return 0;
    case TP_FINISH:
        chunk_head(c, a);
        mock_out_event(c, a->p, a->len, NULL, LIT("},\"finish_reason\":\"tool_calls\"}]}\n\n"),
                       bad);
        s->phase = TP_USAGE;
        return 0;
    case TP_USAGE:
        chat_usage(c, bad);
        s->phase = TP_DONE;
        return 0;
    default:
        mock_out_event(c, LIT("data: [DONE]\n\n"), NULL, "", 0, bad);
        return 1;
    }
}

static void chat_tools_stream(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    int n = s->fault.chunks >= 0 ? s->fault.chunks : MOCK_DEFAULT_CHUNKS;
    /* x-mock-truncate: stop half-way through the first call's arguments */
    s->truncate_at = 1 + (s->tool_text ? n : 0) + 1 + MOCK_TOOL_PIECES / 2;
    s->phase = TP_ROLE;
    mock_stream_start(c, chat_tools_emit, 0);
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
    if (s->family == MOCK_FAM_RESPONSES)
        mock_responses_respond(c);
    else if (s->family == MOCK_FAM_ANTHROPIC)
        mock_messages_respond(c);
    else if (s->family == MOCK_FAM_GEMINI)
        mock_gemini_respond(c);
    else if (s->kind == MOCK_EP_MODELS)
        mock_out_static(c, s->status, models_body, sizeof models_body - 1);
    else if (s->kind == MOCK_EP_EMBEDDINGS)
        respond_embeddings(c, s->n_inputs);
    else if (s->tools && s->stream)
        chat_tools_stream(c);
    else if (s->tools)
        respond_chat_tools(c);
    else if (s->stream)
        mock_stream_start(c, chat_emit, 0);
    else
        respond_text(c);
}

static int has_prefix(const char *p, size_t n, const char *lit, size_t ll)
{
    return n >= ll && memcmp(p, lit, ll) == 0 && (n == ll || p[ll] == '/');
}

static int family(const char *p, size_t n)
{
    if (has_prefix(p, n, LIT("/v1/responses")))
        return MOCK_FAM_RESPONSES;
    if (has_prefix(p, n, LIT("/v1/messages")))
        return MOCK_FAM_ANTHROPIC;
    if (has_prefix(p, n, LIT("/v1beta")))
        return MOCK_FAM_GEMINI;
    return MOCK_FAM_OPENAI;
}

/* Paths under /v1/ with one endpoint each, and its method. */
static const struct {
    const char *path;
    size_t len;
    int ep, method;
} routes[] = {
    {LIT("chat/completions"), MOCK_EP_CHAT, HTTP_POST},
    {LIT("models"), MOCK_EP_MODELS, HTTP_GET},
    {LIT("completions"), MOCK_EP_COMPLETIONS, HTTP_POST},
    {LIT("embeddings"), MOCK_EP_EMBEDDINGS, HTTP_POST},
    {LIT("messages"), MOCK_EP_MESSAGES, HTTP_POST},
    {LIT("messages/count_tokens"), MOCK_EP_MESSAGES_TOKENS, HTTP_POST},
    {LIT("responses"), MOCK_EP_RESPONSES, HTTP_POST},
    {LIT("responses/input_tokens"), MOCK_EP_RESPONSE_TOKENS, HTTP_POST},
};

/* The endpoint of a path, and in *want the method it takes (given method where a path
 * takes several). */
static int endpoint(const char *p, size_t n, int method, int *want)
{
    *want = HTTP_POST;
    if (n < 4 || memcmp(p, "/v1/", 4) != 0)
        return MOCK_EP_NONE;
    p += 4;
    n -= 4;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (n == routes[i].len && memcmp(p, routes[i].path, n) == 0) {
            *want = routes[i].method;
            return routes[i].ep;
        }
    if (n < 10 || memcmp(p, "responses/", 10) != 0)
        return MOCK_EP_NONE;
    /* responses/{id}, responses/{id}/cancel, responses/{id}/input_items */
    const char *id = p + 10, *slash = memchr(id, '/', n - 10);
    if (slash == NULL) {
        *want = method == HTTP_DELETE ? HTTP_DELETE : HTTP_GET;
        return method == HTTP_DELETE ? MOCK_EP_RESPONSE_DELETE : MOCK_EP_RESPONSE_GET;
    }
    size_t rest = n - (size_t)(slash - p);
    if (rest == 7 && memcmp(slash, "/cancel", 7) == 0)
        return MOCK_EP_RESPONSE_CANCEL;
    if (rest == 12 && memcmp(slash, "/input_items", 12) == 0) {
        *want = HTTP_GET;
        return MOCK_EP_RESPONSE_ITEMS;
    }
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
    s->model = MOCK_DEFAULT_MODEL;
    s->model_len = sizeof MOCK_DEFAULT_MODEL - 1;
    if (r->path_len >= 7 && memcmp(r->path, "/_mock/", 7) == 0) {
        mock_admin_handle(c, r);
        return;
    }
    s->family = family(r->path, r->path_len);
    if (s->family != MOCK_FAM_OPENAI)
        mock_id(c->req_id, "req_", 32);
    classify_headers(r, s->family);
    mock_admin_record(c->w->id, r);

    const char *gmodel = NULL;
    size_t gmodel_len = 0;
    int want, ep = s->family == MOCK_FAM_GEMINI
                       ? mock_gemini_endpoint(r, &want, &gmodel, &gmodel_len)
                       : endpoint(r->path, r->path_len, r->method, &want);
    if (ep == MOCK_EP_NONE && s->family == MOCK_FAM_GEMINI) {
        mock_gemini_error(c, 404, NULL, "mock: unknown Gemini method (v1beta/models/M:method)");
        return;
    }
    if (ep == MOCK_EP_NONE) {
        if (s->family == MOCK_FAM_ANTHROPIC)
            snprintf(msg, sizeof msg, "Not Found");
        else
            snprintf(msg, sizeof msg,
                     "Unknown request URL: %s %.*s. Please check the URL for typos.",
                     llhttp_method_name((llhttp_method_t)r->method),
                     (int)(r->path_len < 120 ? r->path_len : 120), r->path);
        mock_api_error(c, 404, "invalid_request_error", "unknown_url", msg, MOCK_DONE_KEEP);
        return;
    }
    if (r->key == NULL && s->family == MOCK_FAM_GEMINI) {
        mock_gemini_error(c, 403, NULL,
                          "Method doesn't allow unregistered callers (callers without established "
                          "identity). Please use API Key or other form of API consumer identity "
                          "to call this API.");
        return;
    }
    if (r->key == NULL) {
        mock_api_error(c, 401, "invalid_request_error", "invalid_api_key",
                       s->family == MOCK_FAM_ANTHROPIC ? "x-api-key header is required"
                                                       : "missing api key",
                       MOCK_DONE_KEEP);
        return;
    }
    if (r->method != want) {
        snprintf(msg, sizeof msg, "Method %s not allowed on %.*s (use %s).",
                 llhttp_method_name((llhttp_method_t)r->method),
                 (int)(r->path_len < 120 ? r->path_len : 120), r->path,
                 llhttp_method_name((llhttp_method_t)want));
        mock_api_error(c, 405, "invalid_request_error", "method_not_allowed", msg, MOCK_DONE_KEEP);
        return;
    }

    /* A key's script first, then the request's own x-mock-* headers on top. */
    mock_admin_script_take(r->key, r->key_len, &s->fault, r->xheaders);
    mock_fault_overlay(&s->fault, &r->fault);
    s->kind = ep;
    s->prompt_tokens = r->body_len / 4 > 0 ? (long)(r->body_len / 4) : 1;
    if (s->family == MOCK_FAM_RESPONSES) {
        if (mock_responses_prepare(c, r) != 0)
            return;
    } else if (s->family == MOCK_FAM_ANTHROPIC) {
        if (mock_messages_prepare(c, r) != 0)
            return;
    } else if (s->family == MOCK_FAM_GEMINI) {
        if (gmodel) {
            s->model = gmodel;
            s->model_len = gmodel_len;
        }
        if (mock_gemini_prepare(c, r) != 0)
            return;
    } else if (ep != MOCK_EP_MODELS) {
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
        if (ep == MOCK_EP_CHAT)
            mock_tool_setup(c, scan.tool_choice);
    }
    s->keep_alive = r->keep_alive && s->fault.close != 1 && s->fault.truncate != 1 &&
                    s->fault.bad_chunking != 1 && !(s->stream && r->http_minor == 0);
    if (s->fault.delay_ms > 0) {
        mock_conn_after(c, (uint64_t)s->fault.delay_ms, respond);
        return;
    }
    respond(c);
}
