/* buf.h - a growable byte buffer (heads, bodies, error responses).
 *
 * A zeroed buf_t is empty and valid. Appends grow geometrically; on allocation failure
 * they return -1 and leave the buffer as it was. buf_free releases and re-zeroes. The
 * bytes are always followed by a NUL (not counted in len) once anything was appended.
 *
 * The number appenders below write what the printf conversion in their comment would,
 * byte for byte, without going through vsnprintf: they are for hot paths (heads, access
 * log lines). buf_printf formats into the spare room first and formats a second time only
 * when the output did not fit.
 */
#ifndef LLMGATE_BUF_H
#define LLMGATE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf_s {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

int buf_reserve(buf_t *b, size_t extra);

/* Inline: appends of a few bytes (header punctuation, JSON keys) compile to moves. */
static inline int buf_append(buf_t *b, const void *data, size_t len)
{
    if (len >= b->cap - b->len && buf_reserve(b, len) != 0) /* room for len and the NUL */
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appends(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_append_u64(buf_t *b, uint64_t v); /* "%" PRIu64 */
int buf_append_i64(buf_t *b, int64_t v);  /* "%" PRId64 */

/* "%.3f" of v (three decimals, exact value rounded half to even, as glibc does in the
 * default rounding mode). Done without printf for 0 <= v < 2^53; other values (negative,
 * -0.0, NaN, infinities, huge) go through buf_printf, so the output is always that of
 * "%.3f". */
int buf_append_fixed3(buf_t *b, double v);

/* "%.10g" of v: ten significant digits, the exact value rounded half to even (as glibc
 * does in the default rounding mode), fixed or exponent notation by the rules of %g,
 * trailing zeros dropped. Done without printf for +0 and 2^-59 <= v < 1e10 (about 1.7e-18
 * up to ten billion: any price or cost) where the compiler has unsigned __int128 (64-bit
 * gcc and clang); other values (negative, -0.0, tinier, huge, NaN, infinities) go through
 * buf_printf, so the output is always that of "%.10g". */
int buf_append_g10(buf_t *b, double v);

/* The decimal ("%" PRIu64) or lower-case hex ("%" PRIx64) digits of v, written backwards so
 * that they end at end (exclusive; room for 20 or 16 bytes before it). Returns where they
 * start. For fixed buffers on hot paths. */
char *u64_digits(char *end, uint64_t v);
char *u64_hex_digits(char *end, uint64_t v);

void buf_reset(buf_t *b); /* length 0, memory kept */
void buf_free(buf_t *b);

#endif
