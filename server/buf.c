/* buf.c - growable byte buffer. */
#include "server/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 256;
    char *p;

    if (need <= b->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_appends(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    size_t room = b->cap - b->len; /* includes the byte of the NUL; 0 for a zeroed buf */
    va_list ap;
    int n;

    /* Most outputs fit in what the buffer already has: format once, straight into it. */
    va_start(ap, fmt);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        goto fail;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
fail:
    if (room)
        b->data[b->len] = '\0'; /* the cut first try wrote over it */
    return -1;
}

char *u64_digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

char *u64_hex_digits(char *end, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";

    do {
        *--end = hex[v & 15];
        v >>= 4;
    } while (v);
    return end;
}

int buf_append_u64(buf_t *b, uint64_t v)
{
    char tmp[20], *p = u64_digits(tmp + sizeof(tmp), v);

    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int buf_append_i64(buf_t *b, int64_t v)
{
    char tmp[21], *p;

    /* 0 - (uint64_t)v is the magnitude even for INT64_MIN */
    p = u64_digits(tmp + sizeof(tmp), v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int buf_append_fixed3(buf_t *b, double v)
{
    uint64_t bits, m, q, r, half;
    unsigned e;
    char tmp[24], *p;

    if (signbit(v) || !(v < 9007199254740992.0)) /* 2^53; NaN fails the comparison */
        return buf_printf(b, "%.3f", v);
    /* v = m * 2^-e exactly (IEEE 754 binary64); v < 2^53 makes e >= 0, and
     * m < 2^53 keeps m * 1000 below 2^63. The thousandths are m * 1000 / 2^e, rounded. */
    memcpy(&bits, &v, sizeof(bits));
    m = bits & ((UINT64_C(1) << 52) - 1);
    if (bits >> 52) {
        m |= UINT64_C(1) << 52;
        e = 1075 - (unsigned)(bits >> 52);
    } else {
        e = 1074; /* zero or subnormal */
    }
    m *= 1000;
    if (e == 0) {
        q = m;
    } else if (e >= 64) {
        q = 0; /* m < 2^63 <= 2^(e-1): below one half */
    } else {
        q = m >> e;
        r = m & ((UINT64_C(1) << e) - 1);
        half = UINT64_C(1) << (e - 1);
        if (r > half || (r == half && (q & 1)))
            q++;
    }
    p = tmp + sizeof(tmp);
    for (int i = 0; i < 3; i++) {
        *--p = (char)('0' + q % 10);
        q /= 10;
    }
    *--p = '.';
    p = u64_digits(p, q);
    return buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
