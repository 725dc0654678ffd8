/* mock_gemini.c - the fake Google Gemini API (v1beta): GET /v1beta/models,
 * POST /v1beta/models/{model}:generateContent and
 * POST /v1beta/models/{model}:streamGenerateContent?alt=sse.
 *
 * As generativelanguage.googleapis.com: the key is x-goog-api-key (or ?key=); the model is
 * the path's; errors have Google's shape {"error":{"code","message","status","details"}}
 * (mock_gemini_error). A 429 (x-mock-status or a script) is RESOURCE_EXHAUSTED with a
 * google.rpc.RetryInfo whose retryDelay is the fault's retry_after ("Ns"; Gemini sends no
 * Retry-After header, and neither does the mock on these paths); x-mock-error-code C adds a
 * google.rpc.ErrorInfo with reason C (API_KEY_INVALID: a 400 INVALID_ARGUMENT "API key not
 * valid").
 *
 * An answer: one candidate with the usual text (or, with tool calls, functionCall parts
 * {name, args {"city":C,"unit":"celsius"}}, after the text with x-mock-tool-text),
 * finishReason STOP (MAX_TOKENS with x-mock-response-status: incomplete), usageMetadata
 * {promptTokenCount: max(1, body bytes / 4), candidatesTokenCount: words (+ 10 per call),
 * totalTokenCount, promptTokensDetails}, modelVersion, responseId. Streamed: one event
 * "data: <GenerateContentResponse>\r\n\r\n" per text piece (the running usageMetadata in
 * each), then one event per function call (Gemini sends calls whole); the last event has
 * the finishReason and the final usageMetadata; no terminator. failed: an error event
 * (503 UNAVAILABLE) in place of the last one. A tool call is asked by x-mock-tool-call (or a
 * script) or by the body's toolConfig.functionCallingConfig.allowedFunctionNames[0].
 */

#include "mock.h"

#include <stdio.h>
#include <string.h>

#define LIT(s) s, sizeof(s) - 1

static const char models_body[] =
    "{\"models\":[{\"name\":\"models/gemini-2.5-flash\",\"version\":\"001\",\"displayName\":"
    "\"Gemini 2.5 Flash\",\"inputTokenLimit\":1048576,\"outputTokenLimit\":65536,"
    "\"supportedGenerationMethods\":[\"generateContent\",\"countTokens\"]}]}";

static const char *status_name(int st)
{
    switch (st) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return st >= 500 ? "UNKNOWN" : "FAILED_PRECONDITION";
    }
}

/* {"error":{"code":st,"message":msg,"status":S,"details":[...]}} */
static void error_body(mock_conn_t *c, mock_buf_t *b, int st, const char *reason, const char *msg)
{
    const mock_fault_t *f = &c->resp.fault;
    int n = 0;
    mock_buf_printf(b, "{\"error\":{\"code\":%d,\"message\":\"", st);
    mock_buf_json_escape(b, msg, strlen(msg));
    mock_buf_printf(b, "\",\"status\":\"%s\",\"details\":[", status_name(st));
    if (reason && *reason) {
        mock_buf_append(b, LIT("{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                               "\"reason\":\""));
        mock_buf_json_escape(b, reason, strlen(reason));
        mock_buf_append(b, LIT("\",\"domain\":\"googleapis.com\",\"metadata\":{\"service\":"
                               "\"generativelanguage.googleapis.com\"}}"));
        n++;
    }
    if (st == 429) {
        mock_buf_printf(b,
                        "%s{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
                        "\"violations\":[{\"quotaMetric\":\"generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests\",\"quotaId\":"
                        "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\"}]}",
                        n++ ? "," : "");
        if (f->retry_after >= 0)
            mock_buf_printf(b,
                            ",{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                            "\"retryDelay\":\"%ds\"}",
                            f->retry_after);
    }
    mock_buf_append(b, LIT("]}}"));
}

void mock_gemini_error(mock_conn_t *c, int status, const char *reason, const char *msg)
{
    mock_buf_t *b = &c->w->scratch;
    b->len = 0;
    error_body(c, b, status, reason, msg);
    mock_out_full(c, status, b->p, b->len, NULL, "", 0);
}

/* x-mock-status >= 400 or a script's status. */
void mock_gemini_scripted_error(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    int st = s->fault.status;
    const char *reason = s->fault.error_code;
    char msg[200];
    if (strcmp(reason, "API_KEY_INVALID") == 0)
        snprintf(msg, sizeof msg, "API key not valid. Please pass a valid API key.");
    else if (st == 401 || st == 403)
        snprintf(msg, sizeof msg, "Method doesn't allow unregistered callers (mock, status %d).",
                 st);
    else if (st == 404)
        snprintf(msg, sizeof msg,
                 "models/%.*s is not found for API version v1beta, or is not supported for "
                 "generateContent (mock, status 404).",
                 (int)(s->model_len < 100 ? s->model_len : 100), s->model);
    else if (st == 429)
        snprintf(msg, sizeof msg,
                 "You exceeded your current quota, please check your plan and billing details "
                 "(mock, status 429).");
    else if (st == 503)
        snprintf(msg, sizeof msg, "The model is overloaded. Please try again later (mock).");
    else if (st >= 500)
        snprintf(msg, sizeof msg, "An internal error has occurred (mock, status %d).", st);
    else
        snprintf(msg, sizeof msg, "Scripted mock error (status %d).", st);
    mock_gemini_error(c, st, reason, s->fault.error_message[0] ? s->fault.error_message : msg);
}

/* The endpoint of a /v1beta path; *model the path's model. */
int mock_gemini_endpoint(mock_req_t *r, int *want, const char **model, size_t *model_len)
{
    static const char gen[] = ":generateContent", str[] = ":streamGenerateContent";
    const char *p = r->path;
    size_t n = r->path_len;

    *want = HTTP_POST;
    if (n == 14 && memcmp(p, "/v1beta/models", 14) == 0) {
        *want = HTTP_GET;
        return MOCK_EP_GEMINI_MODELS;
    }
    if (n < 16 || memcmp(p, "/v1beta/models/", 15) != 0)
        return MOCK_EP_NONE;
    p += 15;
    n -= 15;
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p || memchr(p, '/', (size_t)(colon - p)))
        return MOCK_EP_NONE;
    *model = p;
    *model_len = (size_t)(colon - p);
    n -= (size_t)(colon - p);
    if (n == sizeof(gen) - 1 && memcmp(colon, gen, n) == 0)
        return MOCK_EP_GEMINI_GENERATE;
    if (n == sizeof(str) - 1 && memcmp(colon, str, n) == 0)
        return MOCK_EP_GEMINI_STREAM;
    return MOCK_EP_NONE;
}

/* toolConfig.functionCallingConfig.allowedFunctionNames[0] of the body, into out ("" if none):
 * a plain search (the mock's bodies are ours). */
static void allowed_name(const char *body, size_t len, char *out, size_t cap)
{
    static const char key[] = "\"allowedFunctionNames\"";
    const char *p = memmem(body, len, key, sizeof(key) - 1), *end = body + len, *q;
    out[0] = '\0';
    if (!p)
        return;
    p += sizeof(key) - 1;
    while (p < end && *p != '"' && *p != ']')
        p++;
    if (p >= end || *p != '"')
        return;
    p++;
    q = memchr(p, '"', (size_t)(end - p));
    if (!q || q == p || (size_t)(q - p) >= cap || memchr(p, '\\', (size_t)(q - p)))
        return;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
}

int mock_gemini_prepare(mock_conn_t *c, mock_req_t *r)
{
    mock_resp_t *s = &c->resp;
    mock_scan_t sc;
    char name[MOCK_TOOL_NAME];
    size_t vl = 0;
    const char *alt;
    if (s->kind == MOCK_EP_GEMINI_MODELS)
        return 0;
    if (mock_json_scan_request(r->body, r->body_len, &sc) != 0) {
        mock_gemini_error(c, 400, NULL,
                          "Invalid JSON payload received. Expected an object (mock).");
        return -1;
    }
    if (s->kind == MOCK_EP_GEMINI_STREAM) {
        alt = mock_req_query(r, "alt", &vl);
        if (!alt || vl != 3 || memcmp(alt, "sse", 3) != 0) {
            mock_gemini_error(c, 400, NULL,
                              "mock: streamGenerateContent is served as SSE only (add ?alt=sse)");
            return -1;
        }
        s->stream = 1;
    }
    if (memmem(r->body, r->body_len, LIT("\"contents\"")) == NULL) {
        mock_gemini_error(c, 400, NULL,
                          "* GenerateContentRequest.contents: contents is not "
                          "specified");
        return -1;
    }
    allowed_name(r->body, r->body_len, name, sizeof name);
    mock_tool_setup(c, name);
    if (s->stream)
        c->rdesc.text =
            (mock_text_t){0, s->fault.chunks >= 0 ? s->fault.chunks : MOCK_DEFAULT_CHUNKS,
                          s->fault.content_bytes};
    else
        mock_text_json(c, &c->rdesc.text);
    mock_id(c->rdesc.id, "", 22);
    return 0;
}

/* candidatesTokenCount: the text's words (with tool calls: if there is text), and
 * MOCK_TOOL_TOKENS per call. */
static long output_tokens(const mock_conn_t *c)
{
    const mock_resp_t *s = &c->resp;
    long text = !s->tools || s->tool_text ? mock_text_tokens(&c->rdesc.text) : 0;
    return text + (long)s->tools * MOCK_TOOL_TOKENS;
}

static const char *finish(const mock_conn_t *c)
{
    return c->resp.fault.response_status == MOCK_RS_INCOMPLETE ? "MAX_TOKENS" : "STOP";
}

/* ,"usageMetadata":{...},"modelVersion":M,"responseId":ID} */
static void tail(mock_conn_t *c, mock_buf_t *b, long out)
{
    const mock_resp_t *s = &c->resp;
    mock_buf_printf(b,
                    ",\"usageMetadata\":{\"promptTokenCount\":%ld,\"candidatesTokenCount\":%ld,"
                    "\"totalTokenCount\":%ld,\"promptTokensDetails\":[{\"modality\":\"TEXT\","
                    "\"tokenCount\":%ld}]},\"modelVersion\":\"%.*s\",\"responseId\":\"%s\"}",
                    s->prompt_tokens, out, s->prompt_tokens + out, s->prompt_tokens,
                    (int)s->model_len, s->model, c->rdesc.id);
}

static void call_part(mock_conn_t *c, mock_buf_t *b, int i)
{
    mock_buf_append(b, LIT("{\"functionCall\":{\"name\":\""));
    mock_tool_name(b, c);
    mock_buf_append(b, LIT("\",\"args\":"));
    mock_tool_args(b, i, -1);
    mock_buf_append(b, LIT("}}"));
}

enum { G_TEXT, G_CALL, G_EMPTY };

static const char error_event[] =
    "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again "
    "later.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";

/* One event: a text piece, a call, or (no text, no calls) an empty text; the last one ends
 * the candidate. */
static int gemini_emit(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    int text = !s->tools || s->tool_text, ntext = text ? c->rdesc.text.n : 0;
    int total = ntext + s->tools, last;
    mock_text_t piece = {s->index, 1, c->rdesc.text.pat};
    if (total == 0)
        total = 1;
    last = s->pieces + 1 >= total;
    if (last && s->fault.response_status == MOCK_RS_FAILED) {
        mock_out_event(c, LIT(error_event), NULL, "", 0, bad);
        return 1;
    }
    a->len = b->len = 0;
    mock_buf_append(a, LIT("data: {\"candidates\":[{\"content\":{\"parts\":["));
    if (s->index < ntext) {
        mock_buf_append(a, LIT("{\"text\":\""));
        mock_buf_append(b, LIT("\"}"));
    } else if (s->tools) {
        call_part(c, b, s->tool_at++);
    } else {
        mock_buf_append(b, LIT("{\"text\":\"\"}"));
    }
    mock_buf_append(b, LIT("],\"role\":\"model\"}"));
    if (last)
        mock_buf_printf(b, ",\"finishReason\":\"%s\"", finish(c));
    mock_buf_append(b, LIT(",\"index\":0}]"));
    tail(c, b, last ? output_tokens(c) : 0);
    mock_buf_append(b, LIT("\r\n\r\n"));
    if (s->index < ntext) {
        mock_out_event(c, a->p, a->len, &piece, b->p, b->len, bad);
        s->index++;
    } else {
        mock_buf_append(a, b->p, b->len);
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
    }
    return last;
}

void mock_gemini_respond(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    int text = !s->tools || s->tool_text;
    if (s->kind == MOCK_EP_GEMINI_MODELS) {
        mock_out_static(c, s->status, models_body, sizeof models_body - 1);
        return;
    }
    if (s->stream) {
        s->index = s->tool_at = 0;
        mock_stream_start(c, gemini_emit, 0);
        return;
    }
    a->len = b->len = 0;
    mock_buf_append(a, LIT("{\"candidates\":[{\"content\":{\"parts\":["));
    if (text) {
        mock_buf_append(a, LIT("{\"text\":\""));
        mock_buf_append(b, LIT("\"}"));
    }
    for (int i = 0; i < s->tools; i++) {
        if (text || i)
            mock_buf_append(b, LIT(","));
        call_part(c, b, i);
    }
    mock_buf_printf(b, "],\"role\":\"model\"},\"finishReason\":\"%s\",\"index\":0}]", finish(c));
    tail(c, b, output_tokens(c));
    mock_out_full(c, s->status, a->p, a->len, text ? &c->rdesc.text : NULL, b->p, b->len);
}
