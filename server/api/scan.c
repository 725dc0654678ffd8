/* scan.c - top-level member scan of request bodies with jsmn (strict mode). */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "server/api/scan.h"
#include "server/common/errors.h"

#include <stdlib.h>
#include <string.h>

/* Enough for typical chat bodies without touching the heap; larger ones are counted. */
#define SCAN_STACK_TOKENS 512

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescape a JSON string's contents into out; -1 if it does not fit or is not plain text. */
static int unescape(const char *s, size_t n, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];

        if (c == '\\') {
            if (++i >= n)
                return -1;
            switch (s[i]) {
            case '"':
                c = '"';
                break;
            case '\\':
                c = '\\';
                break;
            case '/':
                c = '/';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                unsigned v = 0;
                if (i + 4 >= n)
                    return -1;
                for (int k = 1; k <= 4; k++) {
                    int h = hexval(s[i + (size_t)k]);
                    if (h < 0)
                        return -1;
                    v = v * 16 + (unsigned)h;
                }
                i += 4;
                /* Model names are ASCII; anything else cannot match a configured name. */
                if (v == 0 || v > 0x7f)
                    return -1;
                c = v;
                break;
            }
            default:
                return -1;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

/* A member name as the provider's JSON parser will read it: unescaped. Names that are not
 * short ASCII cannot be one we look for; they come back as "" (never equal to one). */
static const char *member_name(const char *body, const jsmntok_t *t, char *buf, size_t cap)
{
    const char *s = body + t->start;
    size_t n = (size_t)(t->end - t->start), len;

    if (t->type != JSMN_STRING || n >= cap)
        return "";
    if (!memchr(s, '\\', n)) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        return buf;
    }
    /* "mod\u0065l" is "model" to every parser upstream: compare what they compare */
    return unescape(s, n, buf, cap, &len) == 0 ? buf : "";
}

/* Index of the token after the subtree rooted at i. */
static int skip(const jsmntok_t *toks, int ntok, int i)
{
    int end = toks[i].end;
    i++;
    while (i < ntok && toks[i].start < end)
        i++;
    return i;
}

/* stream_options.include_usage of the object at toks[i]: 1 if true (the last one given). */
static int include_usage_of(const char *body, const jsmntok_t *toks, int ntok, int i)
{
    char nbuf[32];
    int yes = 0, j = i + 1;

    if (toks[i].type != JSMN_OBJECT)
        return 0;
    while (j + 1 < ntok && toks[j].start < toks[i].end) {
        const jsmntok_t *v = &toks[j + 1];
        if (strcmp(member_name(body, &toks[j], nbuf, sizeof(nbuf)), "include_usage") == 0)
            yes = v->type == JSMN_PRIMITIVE && body[v->start] == 't';
        j = skip(toks, ntok, j + 1);
    }
    return yes;
}

static int parse_uint(const char *s, size_t n, long long *out)
{
    long long v = 0;

    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

const scan_spec_t scan_spec_chat = {
    .max_names = {"max_tokens", "max_completion_tokens"},
    .stream_options = 1,
};

static int is_max_name(const scan_spec_t *spec, const char *name)
{
    return (spec->max_names[0] && strcmp(name, spec->max_names[0]) == 0) ||
           (spec->max_names[1] && strcmp(name, spec->max_names[1]) == 0);
}

static int scan_tokens(const char *body, const jsmntok_t *toks, int ntok, const scan_spec_t *spec,
                       scan_result_t *out)
{
    int seen_model = 0, seen_stream = 0, seen_max = 0, seen_options = 0, seen_prev = 0,
        seen_store = 0;
    char nbuf[32];
    int i;

    if (ntok < 1 || toks[0].type != JSMN_OBJECT)
        return SCAN_ENOTOBJECT;
    i = 1;
    while (i < ntok && toks[i].start < toks[0].end) {
        const jsmntok_t *k = &toks[i], *v;
        const char *name;

        if (i + 1 >= ntok)
            return SCAN_EINVAL;
        v = &toks[i + 1];
        name = member_name(body, k, nbuf, sizeof(nbuf));
        if (strcmp(name, "model") == 0) {
            out->bad_field = "model";
            if ((out->duplicate = seen_model++ > 0) || v->type != JSMN_STRING)
                return SCAN_EBADFIELD;
            if (unescape(body + v->start, (size_t)(v->end - v->start), out->model,
                         sizeof(out->model), &out->model_len) != 0 ||
                out->model_len == 0)
                return SCAN_EBADFIELD;
            out->model_start = (size_t)v->start - 1; /* jsmn string spans exclude quotes */
            out->model_end = (size_t)v->end + 1;
        } else if (strcmp(name, "stream") == 0) {
            out->bad_field = "stream";
            if ((out->duplicate = seen_stream++ > 0) || v->type != JSMN_PRIMITIVE)
                return SCAN_EBADFIELD;
            if (body[v->start] == 't')
                out->stream = 1;
            else if (body[v->start] == 'f' || body[v->start] == 'n')
                out->stream = 0;
            else
                return SCAN_EBADFIELD;
        } else if (spec->stream_options && strcmp(name, "stream_options") == 0) {
            out->bad_field = "stream_options";
            if ((out->duplicate = seen_options++ > 0))
                return SCAN_EBADFIELD;
            out->has_stream_options = 1;
            out->include_usage = include_usage_of(body, toks, ntok, i + 1);
        } else if (spec->previous_id && strcmp(name, "previous_response_id") == 0) {
            out->bad_field = "previous_response_id";
            if ((out->duplicate = seen_prev++ > 0))
                return SCAN_EBADFIELD;
            if (v->type == JSMN_PRIMITIVE && body[v->start] == 'n')
                out->previous_id[0] = '\0';
            else if (v->type != JSMN_STRING ||
                     unescape(body + v->start, (size_t)(v->end - v->start), out->previous_id,
                              sizeof(out->previous_id), &out->previous_id_len) != 0)
                return SCAN_EBADFIELD;
        } else if (spec->store && strcmp(name, "store") == 0) {
            out->bad_field = "store";
            if ((out->duplicate = seen_store++ > 0) || v->type != JSMN_PRIMITIVE)
                return SCAN_EBADFIELD;
            if (body[v->start] == 't')
                out->store = 1;
            else if (body[v->start] == 'f')
                out->store = 0;
            else if (body[v->start] != 'n')
                return SCAN_EBADFIELD;
        } else if (is_max_name(spec, name)) {
            out->bad_field = spec->max_names[0];
            if ((out->duplicate = seen_max++ > 0))
                return SCAN_EBADFIELD;
            if (v->type == JSMN_PRIMITIVE && body[v->start] == 'n')
                out->max_tokens = -1;
            else if (v->type != JSMN_PRIMITIVE ||
                     parse_uint(body + v->start, (size_t)(v->end - v->start), &out->max_tokens))
                return SCAN_EBADFIELD;
        }
        i = skip(toks, ntok, i + 1);
    }
    out->bad_field = NULL;
    return seen_model || spec->model_optional ? 0 : SCAN_ENOMODEL;
}

int scan_body(const char *body, size_t len, const scan_spec_t *spec, scan_result_t *out)
{
    jsmntok_t stack_toks[SCAN_STACK_TOKENS];
    jsmntok_t *toks = stack_toks;
    jsmn_parser p;
    int ntok, rc;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->max_tokens = -1;
    out->store = -1;
    if (!spec)
        spec = &scan_spec_chat;
    for (i = 0;
         i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'); i++)
        ;
    if (i == len)
        return SCAN_EEMPTY;

    jsmn_init(&p);
    ntok = jsmn_parse(&p, body, len, toks, SCAN_STACK_TOKENS);
    if (ntok == JSMN_ERROR_NOMEM) {
        jsmn_init(&p);
        ntok = jsmn_parse(&p, body, len, NULL, 0);
        if (ntok < 0)
            return SCAN_EINVAL;
        toks = malloc(sizeof(*toks) * (size_t)ntok);
        if (!toks)
            return SCAN_ENOMEM;
        jsmn_init(&p);
        ntok = jsmn_parse(&p, body, len, toks, (unsigned)ntok);
    }
    if (ntok < 0) {
        rc = SCAN_EINVAL;
        goto done;
    }
    /* jsmn stops after the first complete value; anything but whitespace after it is junk. */
    if (ntok > 0) {
        /* jsmn's string spans stop before the closing quote */
        for (i = (size_t)toks[0].end + (toks[0].type == JSMN_STRING); i < len; i++)
            if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
                break;
        if (i != len || p.toksuper != -1) {
            rc = SCAN_EINVAL;
            goto done;
        }
    }
    rc = scan_tokens(body, toks, ntok, spec, out);
done:
    if (toks != stack_toks)
        free(toks);
    return rc;
}

/* What a member must be, and the message when it is given twice. */
static const struct {
    const char *field, *bad, *twice;
} field_msgs[] = {
#define TWICE(f) "\"" f "\" is given more than once (member names are compared after unescaping)"
    {"model", "\"model\" must be a non-empty string", TWICE("model")},
    {"stream", "\"stream\" must be a boolean", TWICE("stream")},
    {"stream_options", "\"stream_options\" must be given once", TWICE("stream_options")},
    {"max_tokens", "\"max_tokens\" (or \"max_completion_tokens\") must be a non-negative integer",
     "\"max_tokens\" is given more than once, or together with \"max_completion_tokens\" "
     "(member names are compared after unescaping)"},
    {"max_output_tokens", "\"max_output_tokens\" must be a non-negative integer",
     TWICE("max_output_tokens")},
    {"previous_response_id",
     "\"previous_response_id\" must be a response id (a string of up to 127 "
     "ASCII characters) or null",
     TWICE("previous_response_id")},
    {"store", "\"store\" must be a boolean", TWICE("store")},
#undef TWICE
};

const char *scan_strerror(int err, const scan_result_t *r)
{
    switch (err) {
    case 0:
        return "ok";
    case SCAN_EEMPTY:
        return "request body is empty; expected a JSON object with a \"model\"";
    case SCAN_EINVAL:
        return "request body is not valid JSON";
    case SCAN_ENOTOBJECT:
        return "request body must be a JSON object";
    case SCAN_ENOMODEL:
        return "you must provide a model parameter";
    case SCAN_ENOMEM:
        return "out of memory while reading the request body";
    case SCAN_EBADFIELD:
        for (size_t i = 0; r && r->bad_field && i < sizeof(field_msgs) / sizeof(field_msgs[0]); i++)
            if (strcmp(r->bad_field, field_msgs[i].field) == 0)
                return r->duplicate ? field_msgs[i].twice : field_msgs[i].bad;
        return "a request member has the wrong type";
    default:
        return "unknown scan error";
    }
}

int scan_splice_model(const char *body, size_t len, const scan_result_t *r, const char *name,
                      char **out, size_t *out_len)
{
    size_t nlen = strlen(name);
    size_t cap = len - (r->model_end - r->model_start) + nlen * 6 + 3;
    char *buf = malloc(cap);
    size_t o;

    if (!buf)
        return SCAN_ENOMEM;
    memcpy(buf, body, r->model_start);
    o = r->model_start;
    buf[o++] = '"';
    o += json_escape(buf + o, cap - o - 1, name, nlen);
    buf[o++] = '"';
    memcpy(buf + o, body + r->model_end, len - r->model_end);
    o += len - r->model_end;
    *out = buf;
    *out_len = o;
    return 0;
}
