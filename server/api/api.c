/* api.c - the table of client API operations, path matching, and what the OpenAI-family
 * adapters share (usage members, error shape). See api.h. */
#include "server/api/api.h"
#include "llhttp.h"

#include <string.h>

static const api_adapter_t *const adapters[API_COUNT] = {
    [API_CHAT] = &api_chat,
    [API_COMPLETIONS] = &api_completions,
    [API_EMBEDDINGS] = &api_embeddings,
    [API_MODELS] = &api_models,
    [API_RESPONSES] = &api_responses,
    [API_MESSAGES] = &api_messages,
    [API_GEMINI] = &api_gemini, /* no operations: api_find never matches it */
};

const api_adapter_t *api_adapter(api_id_t id)
{
    return id < API_COUNT ? adapters[id] : NULL;
}

int api_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Whether path[0..len) matches pattern; a "{id}" segment takes 1..SCAN_ID_MAX id
 * characters (never '/'), given back in *id / *id_len. */
static int path_match(const char *pattern, const char *path, size_t len, const char **id,
                      size_t *id_len)
{
    size_t i = 0;

    *id = NULL;
    *id_len = 0;
    for (const char *p = pattern; *p; p++) {
        if (strncmp(p, "{id}", 4) == 0) {
            size_t s = i;
            while (i < len && path[i] != '/')
                if (!api_id_char(path[i++]))
                    return 0;
            if (i == s || i - s > SCAN_ID_MAX)
                return 0;
            *id = path + s;
            *id_len = i - s;
            p += 3;
            continue;
        }
        if (i >= len || path[i] != *p)
            return 0;
        i++;
    }
    return i == len;
}

int api_find(int method, const char *path, size_t len, api_match_t *m)
{
    int found_path = 0;

    memset(m, 0, sizeof(*m));
    /* literal paths first: POST /v1/responses/input_tokens is not GET /v1/responses/{id} */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned a = 0; a < API_COUNT; a++) {
            for (unsigned o = 0; o < adapters[a]->nops; o++) {
                const api_op_t *op = &adapters[a]->ops[o];
                const char *id;
                size_t id_len;
                if ((strchr(op->path, '{') != NULL) != pass ||
                    !path_match(op->path, path, len, &id, &id_len))
                    continue;
                if (op->method != method) {
                    if (!found_path) {
                        m->api = adapters[a];
                        m->op = op;
                    }
                    found_path = 1;
                    continue;
                }
                m->api = adapters[a];
                m->op = op;
                m->id = id;
                m->id_len = id_len;
                return 0;
            }
        }
        if (found_path)
            return API_EMETHOD;
    }
    return API_ENOPATH;
}

int api_upstream_path(const api_match_t *m, char *out, size_t cap, size_t *len)
{
    const char *u = m->op->upstream, *brace = strstr(u, "{id}");
    size_t n = strlen(u), o = 0;

    if (!brace || !m->id) {
        if (n >= cap)
            return -1;
        memcpy(out, u, n + 1);
        *len = n;
        return 0;
    }
    if (n - 4 + m->id_len >= cap)
        return -1;
    memcpy(out, u, (size_t)(brace - u));
    o = (size_t)(brace - u);
    memcpy(out + o, m->id, m->id_len);
    o += m->id_len;
    memcpy(out + o, brace + 4, n - (size_t)(brace + 4 - u) + 1);
    *len = o + n - (size_t)(brace + 4 - u);
    return 0;
}

static uint32_t num(const char *s, const char *e, const char *name)
{
    long long v = usage_number(s, e, name);
    return v < 0 ? 0 : (uint32_t)v;
}

int api_openai_usage(const usage_tail_t *t, int stream, usage_t *u)
{
    const char *s, *e;

    (void)stream;
    memset(u, 0, sizeof(*u));
    if (!usage_object(t->buf, t->len, &s, &e))
        return 0;
    if (usage_number(s, e, "prompt_tokens") >= 0) {
        u->input = num(s, e, "prompt_tokens");
        u->output = num(s, e, "completion_tokens");
    } else if (usage_number(s, e, "input_tokens") >= 0) {
        u->input = num(s, e, "input_tokens");
        u->output = num(s, e, "output_tokens");
    } else {
        return 0;
    }
    u->cached = num(s, e, "cached_tokens");
    u->reasoning = num(s, e, "reasoning_tokens");
    return 1;
}

size_t api_openai_error(char *buf, size_t len, int status, const char *message, const char *code,
                        const char *param)
{
    return error_json(buf, len, message, error_type_for(status), param, code);
}
