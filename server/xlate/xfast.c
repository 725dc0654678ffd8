/* xfast.c - the readers of the stream translators' fast path; see xfast.h. */
#include "server/xlate/xfast.h"

#include <string.h>

#include "server/xlate/xjson.h"

static int enabled = 1;

void xfast_enable(int on)
{
    enabled = on;
}

int xfast_enabled(void)
{
    return enabled;
}

/* jansson's whitespace: space, tab, LF, CR. */
static void skip_ws(xfast_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *v)
{
    unsigned u = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                     : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                     : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return -1;
        u = u << 4 | d;
    }
    *v = u;
    return 0;
}

/* After the backslash of a \u escape at p: its length (6 or 12 with a surrogate pair's
 * second half), or 0 where jansson refuses it (\u0000 without JSON_ALLOW_NUL, a lone or
 * unpaired surrogate). */
static size_t u_escape(const unsigned char *p, const unsigned char *end)
{
    unsigned u, lo;

    if (hex4(p + 2, end, &u) != 0 || u == 0 || (u >= 0xdc00 && u <= 0xdfff))
        return 0;
    if (u < 0xd800 || u > 0xdbff)
        return 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, end, &lo) != 0 || lo < 0xdc00 ||
        lo > 0xdfff)
        return 0;
    return 12;
}

int xfast_string(xfast_cur_t *c, xfast_span_t *out)
{
    const unsigned char *p, *end = (const unsigned char *)c->end;

    skip_ws(c);
    if (c->p == c->end || *c->p != '"')
        return -1;
    p = (const unsigned char *)c->p + 1;
    out->s = (const char *)p;
    for (;;) {
        size_t k;

        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++; /* the common case: plain ASCII */
        if (p == end || *p < 0x20)
            return -1; /* not closed, or a raw control character */
        if (*p == '"')
            break;
        if (*p == '\\') {
            if (end - p < 2)
                return -1;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                k = 2;
                break;
            case 'u':
                k = u_escape(p, end);
                break;
            default:
                k = 0;
            }
        } else {
            k = xjson_utf8_seq(p, (size_t)(end - p));
        }
        if (k == 0)
            return -1;
        p += k;
    }
    out->n = (size_t)((const char *)p - out->s);
    c->p = (const char *)p + 1;
    return 0;
}

int xfast_null(xfast_cur_t *c)
{
    skip_ws(c);
    if (c->end - c->p < 4 || memcmp(c->p, "null", 4) != 0)
        return -1;
    c->p += 4;
    return 0;
}

int xfast_string_or_null(xfast_cur_t *c, xfast_span_t *out)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == 'n') {
        out->s = NULL;
        out->n = 0;
        return xfast_null(c);
    }
    return xfast_string(c, out);
}

int xfast_uint(xfast_cur_t *c, uint64_t *v)
{
    uint64_t n = 0;
    const char *p0;

    skip_ws(c);
    p0 = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (n > (UINT64_C(0x7fffffffffffffff) - d) / 10)
            return -1; /* past json_int_t: jansson refuses it */
        n = n * 10 + d;
        c->p++;
    }
    if (c->p == p0 || (*p0 == '0' && c->p - p0 > 1))
        return -1; /* none, or a leading zero */
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        return -1; /* a real */
    *v = n;
    return 0;
}

int xfast_char(xfast_cur_t *c, char ch)
{
    skip_ws(c);
    if (c->p == c->end || *c->p != ch)
        return -1;
    c->p++;
    return 0;
}

int xfast_end(xfast_cur_t *c)
{
    skip_ws(c);
    return c->p == c->end ? 0 : -1;
}

int xfast_is(const xfast_span_t *span, const char *lit)
{
    size_t n;

    if (!span->s || !span->n || span->s[0] != lit[0]) /* most keys differ at once */
        return 0;
    n = strlen(lit);
    return span->n == n && memcmp(span->s, lit, n) == 0;
}

int xfast_object(xfast_cur_t *c, const char *const *keys, unsigned n, xfast_member_cb cb, void *ud,
                 uint32_t *seen)
{
    *seen = 0;
    if (n > 32 || xfast_char(c, '{') != 0)
        return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        xfast_span_t key;
        unsigned k = 0;

        if (xfast_string(c, &key) != 0 || xfast_char(c, ':') != 0)
            return -1;
        while (k < n && !xfast_is(&key, keys[k]))
            k++;
        if (k == n || (*seen >> k & 1))
            return -1; /* unknown (or written with escapes), or twice */
        *seen |= 1u << k;
        if (cb(ud, k, c) != 0)
            return -1;
        skip_ws(c);
        if (c->p == c->end)
            return -1;
        if (*c->p++ == '}')
            return 0;
        if (c->p[-1] != ',')
            return -1;
    }
}
