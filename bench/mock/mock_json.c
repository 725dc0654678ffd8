/* mock_json.c - JSON scanning for the mock upstream, the one user of jsmn.
 *
 * Request bodies are tokenized (no DOM) to find the top-level "model", "stream", "input"
 * and the tool a "tool_choice" names (and, for the Responses and Messages APIs, the fields
 * their answers echo, and the input items the Responses API stores); /_mock/script bodies are read
 * into a mock_script_spec_t. Tokens live in a per-thread array that grows to the largest body seen
 * and is reused.
 */

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS (1u << 24)

static int get_long(const char *js, const jsmntok_t *t, long lo, long hi, long *out);
static void scan_tool_choice(const char *js, const jsmntok_t *t, int i, int fn, char *out);

static __thread jsmntok_t *t_toks;
static __thread unsigned t_ntoks;

void mock_json_thread_free(void)
{
    free(t_toks);
    t_toks = NULL;
    t_ntoks = 0;
}

/* Tokenize; the number of tokens, or < 0 when js is not valid JSON (or too large). */
static int tokenize(const char *js, size_t len, jsmntok_t **out)
{
    jsmn_parser p;
    if (t_toks == NULL) {
        t_ntoks = 256;
        t_toks = mock_xrealloc(NULL, t_ntoks * sizeof *t_toks);
    }
    for (;;) {
        jsmn_init(&p);
        int r = jsmn_parse(&p, js, len, t_toks, t_ntoks);
        if (r != JSMN_ERROR_NOMEM) {
            *out = t_toks;
            return r;
        }
        if (t_ntoks >= MAX_TOKENS)
            return r;
        t_ntoks *= 2;
        t_toks = mock_xrealloc(t_toks, t_ntoks * sizeof *t_toks);
    }
}

/* Index of the token after the value starting at i (with all its children). */
static int skip(const jsmntok_t *t, int i)
{
    int left = 1;
    while (left > 0) {
        left += t[i].size;
        left--;
        i++;
    }
    return i;
}

static int tok_is(const char *js, const jsmntok_t *t, const char *s)
{
    size_t n = strlen(s);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(js + t->start, s, n) == 0;
}

/* Tokenize a body that must be a JSON object: the token count, or -1. */
static int tokenize_object(const char *js, size_t len, jsmntok_t **t)
{
    int n = tokenize(js, len, t);
    return n >= 1 && (*t)[0].type == JSMN_OBJECT ? n : -1;
}

int mock_json_scan_request(const char *body, size_t len, mock_scan_t *out)
{
    jsmntok_t *t;
    out->model = NULL;
    out->model_len = 0;
    out->stream = 0;
    out->n_inputs = 1;
    out->tool_choice[0] = '\0';
    int n = tokenize_object(body, len, &t), i = 1;
    if (n < 0)
        return -1;
    for (int k = 0; k < t[0].size && i + 1 < n; k++) {
        const jsmntok_t *key = &t[i], *val = &t[i + 1];
        if (tok_is(body, key, "model") && val->type == JSMN_STRING) {
            out->model = body + val->start;
            out->model_len = (size_t)(val->end - val->start);
        } else if (tok_is(body, key, "stream") && val->type == JSMN_PRIMITIVE) {
            out->stream = body[val->start] == 't';
        } else if (tok_is(body, key, "input")) {
            /* a string, an array of strings, an array of token arrays, or one token array */
            if (val->type == JSMN_ARRAY && val->size > 0 && t[i + 2].type != JSMN_PRIMITIVE)
                out->n_inputs = val->size;
        } else if (tok_is(body, key, "tool_choice")) {
            scan_tool_choice(body, t, i + 1, 1, out->tool_choice);
        }
        i = skip(t, i + 1);
    }
    return 0;
}

/* ---- Responses and Messages bodies ------------------------------------------------------- */

/* Start an item record (see mock_json_scan_rbody); *mark is for item_end. */
static void item_begin(mock_buf_t *items, const char *id, size_t id_len, size_t *mark)
{
    uint32_t zero = 0;
    unsigned char n = (unsigned char)(id_len < 255 ? id_len : 255);
    *mark = items->len;
    mock_buf_append(items, &zero, sizeof zero);
    mock_buf_append(items, &n, 1);
    mock_buf_append(items, id, n);
}

static void item_end(mock_buf_t *items, size_t mark)
{
    uint32_t n = (uint32_t)(items->len - mark - sizeof n - 1 - (unsigned char)items->p[mark + 4]);
    memcpy(items->p + mark, &n, sizeof n);
}

/* The value token of the key name of the object at t[i], or -1. */
static int obj_get(const char *js, const jsmntok_t *t, int i, const char *name)
{
    int j = i + 1;
    for (int k = 0; k < t[i].size; k++) {
        if (tok_is(js, &t[j], name))
            return j + 1;
        j = skip(t, j + 1);
    }
    return -1;
}

/* The input items of the "input" value at t[i]. */
static void scan_items(const char *js, const jsmntok_t *t, int i, mock_buf_t *items, int *nitems)
{
    char id[64];
    size_t mark;
    if (t[i].type == JSMN_STRING) {
        mock_id(id, "msg_", 48);
        item_begin(items, id, strlen(id), &mark);
        mock_buf_printf(items,
                        "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"user\",\"content\":"
                        "[{\"type\":\"input_text\",\"text\":\"",
                        id);
        mock_buf_append(items, js + t[i].start, (size_t)(t[i].end - t[i].start));
        mock_buf_append(items, "\"}]}", 4);
        item_end(items, mark);
        (*nitems)++;
        return;
    }
    int n = t[i].size;
    i++;
    for (int k = 0; k < n; k++, i = skip(t, i)) {
        const jsmntok_t *e = &t[i];
        int idv = e->type == JSMN_OBJECT ? obj_get(js, t, i, "id") : -1;
        if (e->type == JSMN_OBJECT && idv < 0) {
            /* no id: give it one, first in the object */
            mock_id(id, "msg_", 48);
            item_begin(items, id, strlen(id), &mark);
            mock_buf_printf(items, "{\"id\":\"%s\"%s", id, e->size > 0 ? "," : "");
            mock_buf_append(items, js + e->start + 1, (size_t)(e->end - e->start - 1));
        } else {
            if (idv >= 0 && t[idv].type == JSMN_STRING)
                item_begin(items, js + t[idv].start, (size_t)(t[idv].end - t[idv].start), &mark);
            else
                item_begin(items, "", 0, &mark);
            if (e->type == JSMN_STRING) /* with its quotes */
                mock_buf_append(items, js + e->start - 1, (size_t)(e->end - e->start + 2));
            else
                mock_buf_append(items, js + e->start, (size_t)(e->end - e->start));
        }
        item_end(items, mark);
        (*nitems)++;
    }
}

int mock_json_scan_rbody(const char *body, size_t len, mock_rscan_t *out, mock_buf_t *items,
                         int *nitems)
{
    jsmntok_t *t;
    memset(out, 0, sizeof *out);
    out->max_output_tokens = -1;
    out->store = 1;
    int n = tokenize_object(body, len, &t), i = 1;
    if (n < 0)
        return -1;
    for (int k = 0; k < t[0].size && i + 1 < n; k++) {
        const jsmntok_t *key = &t[i], *val = &t[i + 1];
        const char *v = body + val->start;
        size_t vl = (size_t)(val->end - val->start);
        int prim = val->type == JSMN_PRIMITIVE;
        if (tok_is(body, key, "model") && val->type == JSMN_STRING) {
            out->model = v;
            out->model_len = vl;
        } else if (tok_is(body, key, "stream") && prim) {
            out->stream = *v == 't';
        } else if (tok_is(body, key, "store") && prim) {
            out->store = *v != 'f';
        } else if (tok_is(body, key, "background") && prim) {
            out->background = *v == 't';
        } else if (tok_is(body, key, "previous_response_id") && val->type == JSMN_STRING) {
            out->prev = v;
            out->prev_len = vl;
        } else if (tok_is(body, key, "instructions") && val->type == JSMN_STRING) {
            out->instr = v - 1; /* with its quotes */
            out->instr_len = vl + 2;
        } else if (tok_is(body, key, "max_output_tokens") && prim) {
            get_long(body, val, 0, 1L << 40, &out->max_output_tokens);
        } else if (tok_is(body, key, "max_tokens") && prim) {
            long x;
            out->has_max_tokens = get_long(body, val, 0, 1L << 40, &x) == 0;
        } else if (tok_is(body, key, "input")) {
            out->input_type = val->type == JSMN_STRING  ? 's'
                              : val->type == JSMN_ARRAY ? 'a'
                              : prim && *v == 'n'       ? 0
                                                        : 'x';
            if (items && (out->input_type == 's' || out->input_type == 'a'))
                scan_items(body, t, i + 1, items, nitems);
        } else if (tok_is(body, key, "tool_choice")) {
            scan_tool_choice(body, t, i + 1, 0, out->tool_choice);
        }
        i = skip(t, i + 1);
    }
    return 0;
}

/* ---- /_mock/script ---------------------------------------------------------------------- */

static void put_utf8(mock_buf_t *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    mock_buf_append(b, u, n);
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The value of a JSON string token, escapes decoded, appended to b. 0 or -1. */
static int unescape(mock_buf_t *b, const char *s, size_t n)
{
    size_t i = 0;
    mock_buf_reserve(b, n + 1);
    while (i < n) {
        if (s[i] != '\\') {
            mock_buf_append(b, s + i, 1);
            i++;
            continue;
        }
        if (i + 1 >= n)
            return -1;
        char e = s[i + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            mock_buf_append(b, &map[simple - "\"\\/bfnrt"], 1);
            i += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || i + 6 > n || hex4(s + i + 2, &cp) != 0)
            return -1;
        i += 6;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' &&
            hex4(s + i + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        put_utf8(b, cp);
    }
    return 0;
}

/* The tool a "tool_choice" value t[i] names, unescaped into out[MOCK_TOOL_NAME]: chat's
 * {"type":"function","function":{"name":X}} (fn 1) or Messages' {"type":"tool","name":X}
 * (fn 0). Anything else ("auto", "required", {"type":"any"}, a name too long) leaves out
 * as it is. Only an escaped name costs an allocation. */
static void scan_tool_choice(const char *js, const jsmntok_t *t, int i, int fn, char *out)
{
    if (t[i].type != JSMN_OBJECT)
        return;
    int ty = obj_get(js, t, i, "type"), o = fn ? obj_get(js, t, i, "function") : i;
    if (ty < 0 || !tok_is(js, &t[ty], fn ? "function" : "tool") || o < 0 ||
        t[o].type != JSMN_OBJECT)
        return;
    int nm = obj_get(js, t, o, "name");
    if (nm < 0 || t[nm].type != JSMN_STRING)
        return;
    const char *v = js + t[nm].start;
    size_t vl = (size_t)(t[nm].end - t[nm].start);
    if (memchr(v, '\\', vl) == NULL) {
        if (vl > 0 && vl < MOCK_TOOL_NAME) {
            memcpy(out, v, vl);
            out[vl] = '\0';
        }
        return;
    }
    mock_buf_t u = {0};
    if (unescape(&u, v, vl) == 0 && u.len > 0 && u.len < MOCK_TOOL_NAME &&
        memchr(u.p, '\0', u.len) == NULL) {
        memcpy(out, u.p, u.len);
        out[u.len] = '\0';
    }
    mock_buf_free(&u);
}

static int get_long(const char *js, const jsmntok_t *t, long lo, long hi, long *out)
{
    char tmp[24];
    size_t n = (size_t)(t->end - t->start);
    if (t->type != JSMN_PRIMITIVE || n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, js + t->start, n);
    tmp[n] = '\0';
    char *end;
    long v = strtol(tmp, &end, 10);
    if (*end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int get_bool(const char *js, const jsmntok_t *t, int *out)
{
    long v;
    if (t->type == JSMN_PRIMITIVE && (js[t->start] == 't' || js[t->start] == 'f')) {
        *out = js[t->start] == 't';
        return 0;
    }
    if (get_long(js, t, 0, 1, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* A string field, unescaped, into dst[cap]. 0, or -1 with err set. */
static int get_fixed(const char *js, const jsmntok_t *t, const char *name, char *dst, size_t cap,
                     char *err, size_t errlen)
{
    mock_buf_t v = {0};
    int r = 0;
    if (t->type != JSMN_STRING || unescape(&v, js + t->start, (size_t)(t->end - t->start)) != 0 ||
        v.len >= cap) {
        snprintf(err, errlen, "script: \"%s\" must be a string of at most %zu bytes", name,
                 cap - 1);
        r = -1;
    } else {
        memcpy(dst, v.p ? v.p : "", v.len);
        dst[v.len] = '\0';
    }
    mock_buf_free(&v);
    return r;
}

static int is_token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "headers": {"name": "value", ...} into "name: value\r\n" lines. */
static int get_headers(const char *js, const jsmntok_t *t, int i, mock_buf_t *out, char *err,
                       size_t errlen)
{
    if (t[i].type != JSMN_OBJECT) {
        snprintf(err, errlen, "script: \"headers\" must be an object of strings");
        return -1;
    }
    int n = t[i].size;
    i++;
    for (int k = 0; k < n; k++, i += 2) {
        const jsmntok_t *name = &t[i], *val = &t[i + 1];
        if (val->type != JSMN_STRING) {
            snprintf(err, errlen, "script: headers.%.*s must be a string",
                     (int)(name->end - name->start), js + name->start);
            return -1;
        }
        size_t mark = out->len;
        if (unescape(out, js + name->start, (size_t)(name->end - name->start)) != 0)
            return -1;
        if (out->len == mark)
            goto bad_name;
        for (size_t j = mark; j < out->len; j++)
            if (!is_token_char(out->p[j]))
                goto bad_name;
        mock_buf_append(out, ": ", 2);
        size_t vmark = out->len;
        if (unescape(out, js + val->start, (size_t)(val->end - val->start)) != 0)
            return -1;
        for (size_t j = vmark; j < out->len; j++)
            if (out->p[j] == '\r' || out->p[j] == '\n' || out->p[j] == '\0') {
                snprintf(err, errlen, "script: header values may not contain CR, LF or NUL");
                return -1;
            }
        mock_buf_append(out, "\r\n", 2);
    }
    return 0;
bad_name:
    snprintf(err, errlen, "script: header name \"%.*s\" is not a valid HTTP token",
             (int)(t[i].end - t[i].start), js + t[i].start);
    return -1;
}

int mock_json_parse_script(const char *body, size_t len, mock_script_spec_t *out, char *err,
                           size_t errlen)
{
    static const struct {
        const char *name;
        size_t off;
        long lo, hi;
        int is_long;
    } ints[] = {
        {"status", offsetof(mock_fault_t, status), 100, 599, 0},
        {"retry_after", offsetof(mock_fault_t, retry_after), 0, 1L << 30, 0},
        {"delay_ms", offsetof(mock_fault_t, delay_ms), 0, MOCK_MAX_DELAY_MS, 0},
        {"chunk_delay_ms", offsetof(mock_fault_t, chunk_delay_ms), 0, MOCK_MAX_DELAY_MS, 0},
        {"chunks", offsetof(mock_fault_t, chunks), 0, MOCK_MAX_CHUNKS, 0},
        {"content_bytes", offsetof(mock_fault_t, content_bytes), 0, MOCK_MAX_CONTENT, 1},
        {"reset_after_bytes", offsetof(mock_fault_t, reset_after), 0, 1L << 40, 1},
        {"tool_calls", offsetof(mock_fault_t, tool_calls), 1, MOCK_MAX_TOOLS, 0},
    };
    static const struct {
        const char *name;
        size_t off;
    } bools[] = {
        {"truncate", offsetof(mock_fault_t, truncate)},
        {"bad_chunking", offsetof(mock_fault_t, bad_chunking)},
        {"close", offsetof(mock_fault_t, close)},
        {"tool_text", offsetof(mock_fault_t, tool_text)},
    };
    jsmntok_t *t;
    mock_fault_init(&out->fault);
    out->count = 0;
    int n = tokenize(body, len, &t);
    if (n < 1 || t[0].type != JSMN_OBJECT) {
        snprintf(err, errlen, "script: the body must be a JSON object with at least \"key\"");
        return -1;
    }
    int i = 1;
    for (int k = 0; k < t[0].size; k++) {
        const jsmntok_t *key = &t[i], *val = &t[i + 1];
        int klen = key->end - key->start, known = 0;
        const char *kname = body + key->start;
        if (val->type == JSMN_PRIMITIVE && body[val->start] == 'n') {
            known = 1; /* null: leave unset */
        } else if (tok_is(body, key, "key")) {
            known = 1;
            out->key.len = 0;
            if (val->type != JSMN_STRING ||
                unescape(&out->key, body + val->start, (size_t)(val->end - val->start)) != 0 ||
                out->key.len == 0) {
                snprintf(err, errlen, "script: \"key\" must be a non-empty string");
                return -1;
            }
        } else if (tok_is(body, key, "error_code")) {
            known = 1;
            if (get_fixed(body, val, "error_code", out->fault.error_code,
                          sizeof out->fault.error_code, err, errlen) != 0)
                return -1;
        } else if (tok_is(body, key, "error_message")) {
            known = 1;
            if (get_fixed(body, val, "error_message", out->fault.error_message,
                          sizeof out->fault.error_message, err, errlen) != 0)
                return -1;
        } else if (tok_is(body, key, "tool_call")) {
            known = 1;
            if (get_fixed(body, val, "tool_call", out->fault.tool_name, sizeof out->fault.tool_name,
                          err, errlen) != 0)
                return -1;
            if (out->fault.tool_name[0] == '\0') {
                snprintf(err, errlen, "script: \"tool_call\" must be a tool name, not empty");
                return -1;
            }
        } else if (tok_is(body, key, "response_status")) {
            known = 1;
            out->fault.response_status = tok_is(body, val, "completed")    ? MOCK_RS_COMPLETED
                                         : tok_is(body, val, "incomplete") ? MOCK_RS_INCOMPLETE
                                         : tok_is(body, val, "failed")     ? MOCK_RS_FAILED
                                                                           : MOCK_RS_UNSET;
            if (out->fault.response_status == MOCK_RS_UNSET) {
                snprintf(err, errlen,
                         "script: \"response_status\" must be \"completed\", \"incomplete\" or "
                         "\"failed\"");
                return -1;
            }
        } else if (tok_is(body, key, "headers")) {
            known = 1;
            if (get_headers(body, t, i + 1, &out->headers, err, errlen) != 0)
                return -1;
        } else if (tok_is(body, key, "count")) {
            known = 1;
            if (get_long(body, val, 0, 1L << 40, &out->count) != 0) {
                snprintf(err, errlen, "script: \"count\" must be a non-negative integer");
                return -1;
            }
        }
        for (size_t j = 0; !known && j < sizeof ints / sizeof ints[0]; j++) {
            long v;
            if (!tok_is(body, key, ints[j].name))
                continue;
            known = 1;
            if (get_long(body, val, ints[j].lo, ints[j].hi, &v) != 0) {
                snprintf(err, errlen, "script: \"%s\" must be an integer in [%ld, %ld]",
                         ints[j].name, ints[j].lo, ints[j].hi);
                return -1;
            }
            char *field = (char *)&out->fault + ints[j].off;
            if (ints[j].is_long)
                *(long *)(void *)field = v;
            else
                *(int *)(void *)field = (int)v;
        }
        for (size_t j = 0; !known && j < sizeof bools / sizeof bools[0]; j++) {
            int v;
            if (!tok_is(body, key, bools[j].name))
                continue;
            known = 1;
            if (get_bool(body, val, &v) != 0) {
                snprintf(err, errlen, "script: \"%s\" must be true or false", bools[j].name);
                return -1;
            }
            *(int *)(void *)((char *)&out->fault + bools[j].off) = v;
        }
        if (!known) {
            snprintf(err, errlen,
                     "script: unknown field \"%.*s\" (known: key, status, retry_after, "
                     "error_code, error_message, response_status, delay_ms, chunk_delay_ms, "
                     "chunks, content_bytes, reset_after_bytes, truncate, bad_chunking, close, "
                     "tool_call, tool_calls, tool_text, count, headers)",
                     klen > 40 ? 40 : klen, kname);
            return -1;
        }
        i = skip(t, i + 1);
    }
    if (out->key.len == 0) {
        snprintf(err, errlen, "script: \"key\" is required");
        return -1;
    }
    return 0;
}
