/* xjson.c - the translations' jansson helpers; see xjson.h. */
#include "server/xlate/xjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/xlate/xlate.h"

size_t xjson_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t k;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        k = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : k;
}

int xjson_lossy(buf_t *b, const char *s, size_t n, size_t max)
{
    size_t i = 0;

    if (n > max)
        n = max;
    while (i < n) {
        size_t k = s[i] ? xjson_utf8_seq((const unsigned char *)s + i, n - i) : 0;
        if (k ? buf_append(b, s + i, k) != 0 : buf_append(b, "\xef\xbf\xbd", 3) != 0)
            return -1;
        i += k ? k : 1;
    }
    return 0;
}

json_t *xjson_str(const char *s)
{
    buf_t b = {0};
    json_t *j = NULL;

    if (xjson_lossy(&b, s ? s : "", s ? strlen(s) : 0, (size_t)-1) == 0)
        j = xjson_buf(&b);
    buf_free(&b);
    return j;
}

json_t *xjson_buf(const buf_t *b)
{
    return json_stringn_nocheck(b->data ? b->data : "", b->len);
}

void xjson_copy_cut(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static int dump_cb(const char *p, size_t n, void *ud)
{
    return buf_append(ud, p, n) != 0 ? -1 : 0;
}

void xjson_buf_cut(buf_t *b, size_t at)
{
    b->len = at;
    if (b->data)
        b->data[at] = '\0';
}

int xjson_put(buf_t *out, const json_t *j)
{
    size_t at = out->len;

    if (json_dump_callback(j, dump_cb, out, XJSON_DUMP) != 0) {
        xjson_buf_cut(out, at);
        return XLATE_ENOMEM;
    }
    return 0;
}

int xjson_set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) != 0 ? XLATE_ENOMEM : 0;
}

int xjson_push(json_t *a, json_t *v)
{
    return json_array_append_new(a, v) != 0 ? XLATE_ENOMEM : 0;
}

int xjson_streq(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

int xjson_is_type(const json_t *j, const char *type)
{
    const char *t = json_string_value(json_object_get(j, "type"));
    return t && strcmp(t, type) == 0;
}

json_t *xjson_made_id(const char *prefix, const char *id, long long n)
{
    char tmp[160];

    if (n >= 0)
        snprintf(tmp, sizeof(tmp), "%s%s_%lld", prefix, id && *id ? id : "llmgate", n);
    else
        snprintf(tmp, sizeof(tmp), "%s%s", prefix, id && *id ? id : "llmgate");
    return xjson_str(tmp); /* a cut id may have cut a sequence: made valid */
}

/* The refusals' one body: prefix (NULL: none) + ": " before the reason. */
static int vrefuse(xlate_error_t *err, const char *param, const char *prefix, const char *fmt,
                   va_list ap)
{
    size_t n = 0, k = strlen(param);
    buf_t b = {0};

    if (!err)
        return XLATE_EREFUSE;
    memcpy(err->param, param, k < sizeof(err->param) ? k + 1 : 0);
    if (k >= sizeof(err->param))
        err->param[0] = '\0';
    err->message[0] = '\0';
    if (prefix && *prefix)
        n = (size_t)snprintf(err->message, sizeof(err->message), "%s: ", prefix);
    if (n < sizeof(err->message))
        vsnprintf(err->message + n, sizeof(err->message) - n, fmt, ap);
    /* the reason may quote the client's bytes and be cut: keep the message valid UTF-8 */
    if (xjson_lossy(&b, err->message, strlen(err->message), sizeof(err->message) - 4) == 0)
        xjson_copy_cut(err->message, sizeof(err->message), b.data ? b.data : "");
    buf_free(&b);
    if (!err->message[0])
        snprintf(err->message, sizeof(err->message), "the request cannot be translated");
    return XLATE_EREFUSE;
}

int xjson_refuse(xlate_error_t *err, const char *param, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vrefuse(err, param, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int xjson_refusef(xlate_error_t *err, const char *param, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vrefuse(err, param, param, fmt, ap);
    va_end(ap);
    return rc;
}

void xjson_pathf(char *b, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b, cap, fmt, ap);
    va_end(ap);
}

const char *xjson_got(const json_t *v, char *b, size_t cap)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), i;
        for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\'; i++)
            ;
        if (i == n && n + 3 <= cap && n <= 32) {
            snprintf(b, cap, "\"%s\"", s);
            return b;
        }
        return "a string";
    }
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return v ? "null" : "nothing";
    }
}

const json_t *xjson_error_message(const json_t *doc)
{
    const json_t *e = json_object_get(doc, "error");
    const json_t *m = json_object_get(e, "message");

    if (json_is_string(m))
        return m;
    if (json_is_string(e))
        return e;
    m = json_object_get(doc, "message");
    return json_is_string(m) ? m : NULL;
}

json_t *xjson_error_text(const json_t *doc, int status, const char *body, size_t len)
{
    const json_t *m = xjson_error_message(doc);
    json_t *msg = NULL;
    buf_t b = {0};
    size_t k = 0;
    int rc;

    if (m && json_string_length(m) > 0)
        return json_incref((json_t *)m);
    while (k < len && (body[k] == ' ' || body[k] == '\n' || body[k] == '\r' || body[k] == '\t'))
        k++;
    if (k == len)
        rc = buf_printf(&b, "the provider answered HTTP %d with an empty body", status);
    else
        rc = buf_printf(&b, "the provider answered HTTP %d: ", status) ||
             xjson_lossy(&b, body + k, len - k, XJSON_ERROR_TEXT_MAX);
    if (rc == 0)
        msg = xjson_buf(&b);
    buf_free(&b);
    return msg;
}
