/* buf.c - growable byte buffer. */
#include "server/common/buf.h"

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

#ifdef __SIZEOF_INT128__
/* 5^k for k = 0..27: every power of five below 2^63 */
static const uint64_t pow5[28] = {1,
                                  5,
                                  25,
                                  125,
                                  625,
                                  3125,
                                  15625,
                                  78125,
                                  390625,
                                  1953125,
                                  9765625,
                                  48828125,
                                  244140625,
                                  1220703125,
                                  6103515625,
                                  30517578125,
                                  152587890625,
                                  762939453125,
                                  3814697265625,
                                  19073486328125,
                                  95367431640625,
                                  476837158203125,
                                  2384185791015625,
                                  11920928955078125,
                                  59604644775390625,
                                  298023223876953125,
                                  1490116119384765625,
                                  7450580596923828125};

/* "%.10g" of v, for 2^-59 <= v < 1e10 only, into out (room for 24 bytes); returns the
 * length.
 *
 * Why it is exact: no floating point operation takes part, so nothing rounds twice.
 * v = m * 2^(e2 - 52) exactly, with m an integer in [2^52, 2^53) and -59 <= e2 <= 33 (the
 * range keeps v normal). x = floor(e2 * log10(2)): (e2 * 78913) >> 18 is that for every
 * -1100 <= e2 <= 1100 (checked one by one). Since 2^e2 <= v < 2^(e2 + 1), the decimal
 * exponent floor(log10(v)) is x or x + 1. Scaled by 10^k, k = 9 - x, v is t / 2^s with the
 * integer t = m * 5^k and s = 52 - e2 - k: x >= -18 makes k <= 27, so 5^k < 2^63,
 * t < 2^116, and 19 <= s <= 85. When t / 2^s >= 10^10 the exponent is x + 1, and k, s step
 * by one (k >= 1 then, since v < 10^10). Now 10^9 <= t / 2^s < 10^10: its integer part
 * n = t >> s and the remainder t mod 2^s are exact, so rounding on the remainder against
 * the half 2^(s - 1), ties to even, gives the ten significant digits of the exact binary
 * value correctly rounded, which is what glibc prints (it converts exactly, in
 * multi-precision). A carry to 10^10 (9.99999999995e-05 -> 0.0001) becomes 10^9 with the
 * exponent one up: %g chooses its style on the exponent after rounding, and so does the
 * code below. */
static size_t g10_format(char *out, double v)
{
    const uint64_t ten9 = 1000000000, ten10 = 10000000000;
    uint64_t bits, m, n;
    unsigned __int128 t, half, rem;
    int e2, x, k, s, nd;
    char dig[10], *d, *p = out;

    memcpy(&bits, &v, sizeof(bits));
    e2 = (int)(bits >> 52) - 1023;
    m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
    x = (e2 * 78913) >> 18; /* an arithmetic shift (gcc, clang): floor for e2 < 0 too */
    k = 9 - x;
    s = 52 - e2 - k;
    t = (unsigned __int128)m * pow5[k];
    if (t >> s >= ten10) {
        x++;
        k--;
        s++;
        t = (unsigned __int128)m * pow5[k];
    }
    n = (uint64_t)(t >> s);
    half = (unsigned __int128)1 << (s - 1);
    rem = t & ((half << 1) - 1);
    if (rem > half || (rem == half && (n & 1)))
        n++;
    if (n == ten10) {
        n = ten9;
        x++;
    }

    for (nd = 10; n % 10 == 0; nd--) /* %g drops trailing zeros; n >= 10^9 is not zero */
        n /= 10;
    d = u64_digits(dig + sizeof(dig), n);
    if (x < -4 || x >= 10) { /* d.ddde-XX, e+10 only from a carry */
        int ax = x < 0 ? -x : x;

        *p++ = d[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, d + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = x < 0 ? '-' : '+';
        *p++ = (char)('0' + ax / 10); /* ax <= 18: always two digits */
        *p++ = (char)('0' + ax % 10);
    } else if (x < 0) { /* 0.000ddd: "0." and -x - 1 zeros */
        memcpy(p, "0.0000", (size_t)(1 - x));
        p += 1 - x;
        memcpy(p, d, (size_t)nd);
        p += nd;
    } else if (nd <= x + 1) { /* an integer: ddd000 */
        memcpy(p, d, (size_t)nd);
        p += nd;
        memset(p, '0', (size_t)(x + 1 - nd));
        p += x + 1 - nd;
    } else { /* ddd.ddd */
        memcpy(p, d, (size_t)x + 1);
        p += x + 1;
        *p++ = '.';
        memcpy(p, d + x + 1, (size_t)(nd - x - 1));
        p += nd - x - 1;
    }
    return (size_t)(p - out);
}
#endif

int buf_append_g10(buf_t *b, double v)
{
#ifdef __SIZEOF_INT128__
    if (v >= 0x1p-59 && v < 1e10) { /* both bounds exact doubles; NaN fails */
        char tmp[24];

        return buf_append(b, tmp, g10_format(tmp, v));
    }
#endif
    if (v == 0 && !signbit(v))
        return buf_append(b, "0", 1);
    return buf_printf(b, "%.10g", v);
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
