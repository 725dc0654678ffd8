/* buf_test.c - server/common/buf.c: buf_printf formats once when the output fits and grows when
 * it does not (exact boundaries under ASan), and the printf-free number appenders write
 * what snprintf writes, for edge values and many pseudo-random ones (over a million for
 * "%.10g", where ties and double rounding hide). */
#include "server/common/buf.h"
#include "t.h"

#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- buf_printf ------------------------------------------------------------------------ */

static void test_printf(void)
{
    buf_t b = {0};
    char big[3000], want[3100];
    size_t room;

    T_EQ_INT(buf_printf(&b, "%s-%d", "x", 7), 0, "printf into a zeroed buffer");
    T_EQ_STR(b.data, "x-7", "... formats");
    T_EQ_INT(b.len, 3, "... and counts");

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[1234] = 'b';
    T_EQ_INT(buf_printf(&b, "[%s]%d", big, 42), 0, "an output bigger than the capacity");
    snprintf(want, sizeof(want), "x-7[%s]42", big);
    T_EQ_STR(b.data, want, "... grows and formats it whole after what was there");
    T_EQ_INT(b.len, strlen(want), "... length");
    T_OK(b.cap > b.len, "... with room for the NUL");
    buf_free(&b);

    /* Fill to the exact boundary: an output of room - 1 bytes fits with its NUL. */
    buf_append(&b, "0123456789", 10);
    room = b.cap - b.len;
    memset(big, 'c', room - 1);
    big[room - 1] = '\0';
    T_EQ_INT(buf_printf(&b, "%s", big), 0, "an output of exactly the spare room less the NUL");
    T_EQ_INT(b.cap, 256, "... fits without growing");
    T_EQ_INT(b.len, 255, "... fills the buffer");
    T_OK(b.data[255] == '\0' && b.data[254] == 'c' && memcmp(b.data, "0123456789c", 11) == 0,
         "... NUL-terminated, earlier bytes kept");
    buf_free(&b);

    /* One byte more: the NUL does not fit, the buffer grows and the output is redone. */
    buf_append(&b, "0123456789", 10);
    room = b.cap - b.len;
    memset(big, 'd', room);
    big[room] = '\0';
    T_EQ_INT(buf_printf(&b, "%s", big), 0, "an output of exactly the spare room");
    T_EQ_INT(b.cap, 512, "... grows");
    T_EQ_INT(b.len, 256, "... length");
    T_OK(b.data[256] == '\0' && b.data[255] == 'd' && b.data[10] == 'd' &&
             memcmp(b.data, "0123456789", 10) == 0,
         "... output whole, not the cut first try");

    T_EQ_INT(buf_printf(&b, "%s", ""), 0, "an empty output");
    T_EQ_INT(b.len, 256, "... changes nothing");
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i);
    T_OK(b.len == 3890 && strncmp(b.data, "0,1,2,", 6) == 0 &&
             strcmp(b.data + b.len - 8, "998,999,") == 0,
         "many small outputs grow the buffer as needed");
    buf_free(&b);
}

/* ---- integer appenders ----------------------------------------------------------------- */

static int check_u64(uint64_t v, int *shown)
{
    buf_t b = {0};
    char want[32];
    int ok;

    snprintf(want, sizeof(want), "%" PRIu64, v);
    ok = buf_append_u64(&b, v) == 0 && b.len == strlen(want) && strcmp(b.data, want) == 0;
    if (!ok && (*shown)++ < 5)
        printf("#   u64: got \"%s\", want \"%s\"\n", b.data ? b.data : "", want);
    buf_free(&b);
    return !ok;
}

static int check_i64(int64_t v, int *shown)
{
    buf_t b = {0};
    char want[32];
    int ok;

    buf_append(&b, "x", 1); /* after something, as in a line */
    snprintf(want, sizeof(want), "x%" PRId64, v);
    ok = buf_append_i64(&b, v) == 0 && b.len == strlen(want) && strcmp(b.data, want) == 0;
    if (!ok && (*shown)++ < 5)
        printf("#   i64: got \"%s\", want \"%s\"\n", b.data ? b.data : "", want);
    buf_free(&b);
    return !ok;
}

static void test_ints(void)
{
    static const int64_t edge[] = {0,       1,        -1,        9,           10,    -10,
                                   99,      100,      999,       1000,        -1000, INT_MAX,
                                   INT_MIN, UINT_MAX, INT64_MAX, INT64_MIN,   200,   404,
                                   499,     -32768,   65535,     4294967296LL};
    int bad = 0, shown = 0;
    uint64_t p = 1;

    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
        bad += check_i64(edge[i], &shown);
        bad += check_u64((uint64_t)edge[i], &shown);
    }
    bad += check_u64(UINT64_MAX, &shown);
    bad += check_u64(UINT64_MAX - 1, &shown);
    for (int i = 0; i < 20; i++, p *= 10) { /* every power of ten and its neighbours */
        bad += check_u64(p, &shown) + check_u64(p - 1, &shown) + check_u64(p + 1, &shown);
        bad += check_i64((int64_t)(p - 1), &shown) + check_i64(-(int64_t)(p - 1), &shown);
    }
    T_EQ_INT(bad, 0, "u64/i64 edge values: 0, +-1, powers of ten, INT_MAX, INT64_MIN, UINT64_MAX");

    bad = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = next_rand() >> (next_rand() % 64); /* every magnitude */
        bad += check_u64(r, &shown) + check_i64((int64_t)r, &shown) +
               check_i64(-(int64_t)(r >> 1), &shown);
    }
    T_EQ_INT(bad, 0, "u64/i64: 300000 pseudo-random values as snprintf");
}

/* ---- buf_append_fixed3 ----------------------------------------------------------------- */

static int check_fixed3(double v, int *shown)
{
    buf_t b = {0};
    char want[512];
    int ok;

    snprintf(want, sizeof(want), "%.3f", v);
    ok = buf_append_fixed3(&b, v) == 0 && b.len == strlen(want) && strcmp(b.data, want) == 0;
    if (!ok && (*shown)++ < 5)
        printf("#   fixed3(%.17g): got \"%s\", want \"%s\"\n", v, b.data ? b.data : "", want);
    buf_free(&b);
    return !ok;
}

/* v and the doubles next to it on both sides */
static int check_around(double v, int *shown)
{
    int bad = check_fixed3(v, shown);
    double up = v, down = v;

    for (int i = 0; i < 3; i++) {
        up = nextafter(up, INFINITY);
        down = nextafter(down, -INFINITY);
        bad += check_fixed3(up, shown) + check_fixed3(down, shown);
    }
    return bad;
}

static void test_fixed3(void)
{
    static const double edge[] = {0.0,
                                  -0.0,
                                  0.0004999,
                                  0.0005,
                                  0.0005000000001,
                                  0.0015,
                                  0.0025,
                                  0.0625, /* ties: exact halves of a thousandth */
                                  0.1875,
                                  0.3125,
                                  1.0625,
                                  2.4375,
                                  12.345,
                                  12.3456,
                                  0.9995,
                                  9.9995,
                                  999.9995,
                                  1500.0,
                                  1e6,
                                  123456789.987654,
                                  1e15,
                                  9007199254740991.0, /* 2^53 - 1 */
                                  9007199254740992.0, /* 2^53: printf from here */
                                  1e19,
                                  1.8446744073709552e19,
                                  1e300,
                                  DBL_MAX,
                                  DBL_MIN,
                                  4.9406564584124654e-324,
                                  -1.0,
                                  -0.0004,
                                  -12.3456,
                                  INFINITY,
                                  -INFINITY,
                                  NAN};
    int bad = 0, shown = 0;

    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        bad += check_fixed3(edge[i], &shown);
    T_EQ_INT(bad, 0, "%%.3f edge values: 0, -0, 0.0004999, 0.0005, ties, 2^53, inf, NaN");

    bad = 0;
    for (int k = 0; k < 200000; k++) /* every rounding boundary x.xxx5 up to 200 */
        bad += check_around((k + 0.5) / 1000.0, &shown);
    for (int k = 0; k < 20000; k++) /* and at larger magnitudes */
        bad += check_around((double)(next_rand() % 1000000000000ULL) + 0.0005, &shown);
    T_EQ_INT(bad, 0, "%%.3f at rounding boundaries and the 3 doubles on each side");

    bad = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = next_rand(), bits = next_rand();
        double v;

        bad += check_fixed3((double)(r >> 11) / 9007199254740992.0, &shown);       /* [0, 1) */
        bad += check_fixed3((double)(r >> 11) / 9007199254740992.0 * 1e6, &shown); /* ms */
        bad += check_fixed3((double)(r % 100000000) / 1000.0, &shown); /* whole thousandths */
        memcpy(&v, &bits, sizeof(v));
        bad += check_fixed3(v, &shown); /* any bit pattern */
        /* seconds to milliseconds, as the access log calls it */
        bad += check_fixed3((double)(r % 3600000000ULL) / 1e6 * 1000.0, &shown);
    }
    T_EQ_INT(bad, 0, "%%.3f: 500000 pseudo-random values as snprintf");
}

/* ---- buf_append_g10 -------------------------------------------------------------------- */

static buf_t g10_buf; /* one buffer for the million checks: no allocation per value */
static unsigned long g10_checked;

static int check_g10(double v, int *shown)
{
    char want[64];
    int ok;

    g10_checked++;
    buf_reset(&g10_buf);
    buf_append(&g10_buf, "x", 1); /* after something, as in a line */
    snprintf(want, sizeof(want), "x%.10g", v);
    ok = buf_append_g10(&g10_buf, v) == 0 && g10_buf.len == strlen(want) &&
         strcmp(g10_buf.data, want) == 0;
    if (!ok && (*shown)++ < 20)
        printf("#   g10(%a = %.17g): got \"%s\", want \"%s\"\n", v, v, g10_buf.data + 1, want + 1);
    return !ok;
}

/* v and the n doubles next to it on both sides */
static int check_g10_around(double v, int n, int *shown)
{
    int bad = check_g10(v, shown);
    double up = v, down = v;

    for (int i = 0; i < n; i++) {
        up = nextafter(up, INFINITY);
        down = nextafter(down, -INFINITY);
        bad += check_g10(up, shown) + check_g10(down, shown);
    }
    return bad;
}

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* a uniform integer with exactly nd decimal digits, 1 <= nd <= 15 */
static uint64_t rand_digits(int nd)
{
    uint64_t lo = (uint64_t)pow10_tab[nd - 1], hi = (uint64_t)pow10_tab[nd];

    return lo + next_rand() % (hi - lo);
}

static void test_g10(void)
{
    static const double edge[] = {0.0,
                                  -0.0,
                                  1.0,
                                  0.1,
                                  0.5,
                                  2.0,
                                  10.0,
                                  100.0,
                                  1e-5,
                                  1e-4,
                                  0.001,
                                  1e9,
                                  1e10,
                                  1e22,
                                  1e-18,
                                  1e-19,
                                  9.99999999995e-5,
                                  9.9999999999e-5,
                                  9.99999999995e-6,
                                  9.99999999995e-19,
                                  0.00001234567891,
                                  0.000012345678915,
                                  123456789.5,
                                  1234567890.5,
                                  1234567891.5,
                                  999999999.95,
                                  9999999999.4,
                                  9999999999.5,
                                  9999999999.6,
                                  99999.999995,
                                  0.12345678905,
                                  0.12345678915,
                                  1.00000000005,
                                  3.0517578125e-05, /* 2^-15: an exact tie, to even */
                                  6.103515625e-05,
                                  0x1p-59,
                                  0x1p-60,
                                  0x1p33,
                                  0x1p34,
                                  5e-324,
                                  DBL_TRUE_MIN,
                                  DBL_MIN,
                                  DBL_MAX,
                                  1e300,
                                  1e-300,
                                  0.000123,
                                  0.0042,
                                  1.5e-06,
                                  0.0000123,
                                  0.00015,
                                  0.0375,
                                  2.5e-7,
                                  12.5,
                                  1234.5678,
                                  4294967296.0,
                                  9007199254740993.0,
                                  -1.0,
                                  -1e-6,
                                  INFINITY,
                                  -INFINITY,
                                  NAN};
    int bad = 0, shown = 0;
    unsigned long n0;

    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        bad += check_g10_around(edge[i], 3, &shown);
    for (int j = -20; j <= 11; j++) { /* every power of ten, and the carries to it */
        bad += check_g10_around(pow(10, j), 3, &shown);
        bad += check_g10_around(9.9999999995 * pow(10, j), 3, &shown);
        bad += check_g10_around(9.999999999 * pow(10, j), 3, &shown);
    }
    for (int e = -62; e <= 35; e++) /* every binade of the fast range and past its ends */
        bad += check_g10_around(ldexp(1, e), 3, &shown) +
               check_g10_around(ldexp(1.9999999999999998, e), 3, &shown);
    T_EQ_INT(bad, 0,
             "%%.10g edge values: 0, -0, powers of ten and of two, carries to a new power "
             "of ten, ties, 5e-324, DBL_MAX, inf, NaN, and 3 doubles each side (%lu values)",
             g10_checked);

    bad = 0;
    n0 = g10_checked;
    for (int i = 0; i < 300000; i++) { /* any bits in the fast range and somewhat past it */
        uint64_t r = next_rand();
        double v = ldexp(1.0 + (double)(r >> 12) / 4503599627370496.0, -64 + (int)(r % 102));

        bad += check_g10(v, &shown);
        if (i % 8 == 0) { /* any bit pattern: subnormals, huge, negative, NaN */
            uint64_t bits = next_rand();

            memcpy(&v, &bits, sizeof(v));
            bad += check_g10(v, &shown);
        }
    }
    T_EQ_INT(bad, 0, "%%.10g: %lu doubles with random bits, binary exponents -64..37 and any",
             g10_checked - n0);

    bad = 0;
    n0 = g10_checked;
    for (int i = 0; i < 300000; i++) { /* decimals of 1 to 12 significant digits */
        uint64_t r = next_rand();
        int nd = 1 + (int)(r % 12), j = (int)((r >> 8) % 23);

        bad += check_g10((double)rand_digits(nd) / pow10_tab[j], &shown);
    }
    T_EQ_INT(bad, 0, "%%.10g: %lu decimals of 1-12 significant digits over 10^0..10^22",
             g10_checked - n0);

    bad = 0;
    n0 = g10_checked;
    for (int i = 0; i < 60000; i++) {
        uint64_t r = next_rand(), t;
        int j = 1 + (int)(r % 15);
        double p5 = pow(5, j);

        /* nearest doubles to an 11-digit decimal ending in 5, the half between two
         * 10-digit outputs, and two doubles each side */
        t = rand_digits(10) * 10 + 5;
        bad += check_g10_around((double)t / pow10_tab[(r >> 8) % 23], 2, &shown);
        /* exact ties: t odd and t * 5^j of 11 digits make t / 2^j an 11-digit decimal
         * ending in 5, a double exactly halfway, rounded to even */
        t = (uint64_t)ceil(1e10 / p5) + (next_rand() % (uint64_t)(9e10 / p5));
        t |= 1;
        if ((double)t * p5 < 1e11)
            bad += check_g10_around(ldexp((double)t, -j), 2, &shown);
    }
    T_EQ_INT(bad, 0, "%%.10g: %lu doubles at and next to ties, inexact and exact",
             g10_checked - n0);

    bad = 0;
    n0 = g10_checked;
    for (int i = 0; i < 100000; i++) { /* costs as obs_cost_usd computes them */
        uint64_t r = next_rand();
        double in = (double)(r % 10000) / 100, out = (double)((r >> 16) % 100000) / 1000;

        bad +=
            check_g10(((double)((r >> 32) % 200000) * in + (double)(r >> 50) * out) / 1e6, &shown);
    }
    T_EQ_INT(bad, 0, "%%.10g: %lu costs of random tokens at random prices per million",
             g10_checked - n0);
    buf_free(&g10_buf);
}

int main(void)
{
    test_printf();
    test_ints();
    test_fixed3();
    test_g10();
    return t_done();
}
