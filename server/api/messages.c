/* messages.c - the Anthropic Messages API (Claude Code, the Anthropic SDK).
 *
 * POST /v1/messages (JSON, or SSE: message_start, content blocks, message_delta,
 * message_stop) and POST /v1/messages/count_tokens. The model is the top-level "model",
 * the output cap "max_tokens". Usage: the input side (input_tokens, cache_creation_input_
 * tokens, cache_read_input_tokens) is in message_start at the start of a stream and in the
 * JSON body's "usage"; the output side (output_tokens) in the last message_delta or the
 * body's "usage". Billed input = input + cache writes + cache reads. A stream that ends
 * before its message_delta (the client left, the provider broke off) has usage_t.partial:
 * the input is exact, the output is estimated by the proxy. Served by providers
 * with api: anthropic. Errors in Anthropic's shape, {"type":"error","error":{"type",
 * "message"}}, with the error type its SDK maps to an error class.
 */
#include "server/api/api.h"
#include "llhttp.h"

#include <string.h>

static const api_op_t messages_ops[] = {
    {HTTP_POST, "/v1/messages", "/messages", API_OP_MODEL},
    {HTTP_POST, "/v1/messages/count_tokens", "/messages/count_tokens", API_OP_MODEL | API_OP_FREE},
};

static const scan_spec_t messages_scan = {
    .max_names = {"max_tokens", NULL},
};

/* The first "name": N of the bytes (a stream's first event is message_start). */
static uint32_t first_number(const char *p, size_t n, const char *name)
{
    long long v = usage_number(p, p + n, name);
    return v < 0 ? 0 : (uint32_t)v;
}

static int messages_usage(const usage_tail_t *t, int stream, usage_t *u)
{
    static const char delta[] = "\"message_delta\"";
    const char *s, *e;
    long long in = -1;

    memset(u, 0, sizeof(*u));
    if (usage_object(t->buf, t->len, &s, &e)) {
        u->output = first_number(s, (size_t)(e - s), "output_tokens");
        in = usage_number(s, e, "input_tokens");
        if (in >= 0) { /* a JSON body, message_start, or a message_delta that repeats it */
            u->cache_write = first_number(s, (size_t)(e - s), "cache_creation_input_tokens");
            u->cached = first_number(s, (size_t)(e - s), "cache_read_input_tokens");
        }
        /* a stream's output is known once its message_delta came (only message_stop
         * follows it, so it is in the tail) */
        u->partial = stream && !memmem(t->buf, t->len, delta, sizeof(delta) - 1);
    } else if (stream) {
        u->partial = 1; /* a long stream cut before its message_delta */
    } else {
        return 0;
    }
    if (in < 0) {
        /* the input side from message_start, the stream's first event */
        if (!stream || usage_number(t->head, t->head + t->head_len, "input_tokens") < 0)
            return 0;
        in = (long long)first_number(t->head, t->head_len, "input_tokens");
        u->cache_write = first_number(t->head, t->head_len, "cache_creation_input_tokens");
        u->cached = first_number(t->head, t->head_len, "cache_read_input_tokens");
        if (u->partial)
            u->output = first_number(t->head, t->head_len, "output_tokens");
    }
    u->input = (uint32_t)in + u->cache_write + u->cached;
    return 1;
}

const char *api_anthropic_error_type(int status)
{
    switch (status) {
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
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* {"type":"error","error":{"type":T,"message":M}}; the message is cut (never an escape,
 * never the closing) when the buffer is short, so the body stays JSON. The gateway's code
 * is not part of Anthropic's shape: it is left out. */
static size_t messages_error(char *buf, size_t len, int status, const char *message,
                             const char *code, const char *param)
{
    static const char pre[] = "{\"type\":\"error\",\"error\":{\"type\":\"";
    static const char mid[] = "\",\"message\":\"";
    static const char end[] = "\"}}";
    const char *type = api_anthropic_error_type(status);
    size_t tl = strlen(type), o = 0, room;

    (void)code;
    (void)param;
    if (len < sizeof(pre) + tl + sizeof(mid) + sizeof(end)) { /* not even the frame fits */
        if (len)
            buf[0] = '\0';
        return 0;
    }
    memcpy(buf, pre, sizeof(pre) - 1);
    o = sizeof(pre) - 1;
    memcpy(buf + o, type, tl);
    o += tl;
    memcpy(buf + o, mid, sizeof(mid) - 1);
    o += sizeof(mid) - 1;
    room = len - o - (sizeof(end) - 1); /* json_escape leaves its NUL inside room */
    o += json_escape(buf + o, room, message ? message : "", message ? strlen(message) : 0);
    memcpy(buf + o, end, sizeof(end));
    return o + sizeof(end) - 1;
}

const api_adapter_t api_messages = {
    .id = API_MESSAGES,
    .name = "messages",
    .providers = API_PROVIDER(CFG_API_ANTHROPIC),
    .ops = messages_ops,
    .nops = sizeof(messages_ops) / sizeof(messages_ops[0]),
    .scan = &messages_scan,
    .usage = messages_usage,
    .error_json = messages_error,
};
