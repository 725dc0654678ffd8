/* prom_test.c - unit tests of server/obs/prom.c: label escaping, UTF-8 repair, number formats,
 * histograms, bucket choice. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs_tutil.h"
#include "server/obs/prom.h"
#include "t.h"

static void test_escape(void)
{
    buf_t b = {0};

    prom_escape_value(&b, "plain-name_1.2");
    T_EQ_STR(b.data, "plain-name_1.2", "plain values are copied");
    buf_reset(&b);
    prom_escape_value(&b, "a\\b\"c\nd");
    T_EQ_STR(b.data, "a\\\\b\\\"c\\nd", "backslash, quote and line feed are escaped");
    buf_reset(&b);
    prom_escape_value(&b, "caf\xc3\xa9 \xe2\x82\xac");
    T_EQ_STR(b.data, "caf\xc3\xa9 \xe2\x82\xac", "valid UTF-8 is kept");
    buf_reset(&b);
    prom_escape_value(&b, "x\xff y\xc3");
    T_EQ_STR(b.data, "x\xef\xbf\xbd y\xef\xbf\xbd", "invalid bytes become U+FFFD");
    buf_reset(&b);
    prom_escape_value(&b, "\xed\xa0\x80\xc0\xaf");
    T_EQ_STR(b.data, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
             "surrogates and overlong forms are replaced byte by byte");
    buf_reset(&b);
    prom_escape_value(&b, NULL);
    T_EQ_INT(b.len, 0, "NULL is the empty value");
    buf_free(&b);

    T_EQ_INT(prom_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4, "4-byte sequence");
    T_EQ_INT(prom_utf8_seq((const unsigned char *)"\xf0\x9f\x98", 3), 0, "cut sequence");
    T_EQ_INT(prom_utf8_seq((const unsigned char *)"\xf4\x90\x80\x80", 4), 0, "past U+10FFFF");
}

static void test_samples(void)
{
    buf_t b = {0};
    prom_labels_t l = {0};

    prom_family(&b, "t_total", "counter", "Help with a \\ and a\nline feed.");
    T_EQ_STR(b.data, "# HELP t_total Help with a \\\\ and a\\nline feed.\n# TYPE t_total counter\n",
             "HELP escapes backslash and line feed; TYPE follows");
    buf_reset(&b);
    prom_sample(&b, "t_total", NULL, 3);
    T_EQ_STR(b.data, "t_total 3\n", "no braces without labels; integers exact");
    buf_reset(&b);
    prom_label(&l, "model", "m\"1");
    prom_label(&l, "key", NULL);
    prom_sample(&b, "t_total", &l, 0.25);
    T_EQ_STR(b.data, "t_total{model=\"m\\\"1\",key=\"\"} 0.25\n", "labels escaped, NULL is \"\"");
    buf_reset(&b);
    prom_sample(&b, "g", NULL, 12345678901234.0);
    prom_sample(&b, "g", NULL, 0.1);
    prom_sample(&b, "g", NULL, 1e-7);
    prom_sample(&b, "g", NULL, INFINITY);
    prom_sample(&b, "g", NULL, NAN);
    prom_sample(&b, "g", NULL, 0.1 + 0.2);
    T_EQ_STR(b.data, "g 12345678901234\ng 0.1\ng 1e-07\ng +Inf\ng NaN\ng 0.30000000000000004\n",
             "numbers: exact integers, shortest round-trip decimals, +Inf, NaN");
    {
        const char *p = strstr(b.data, "0.3000");
        T_OK(p && strtod(p, NULL) == 0.1 + 0.2, "a decimal reads back as the same double");
    }
    buf_free(&b);
}

static void test_histogram(void)
{
    static const double bounds[] = {0.005, 0.5, 10};
    double counts[4] = {0}, sum = 0;
    const double obs[] = {0.001, 0.005, 0.0051, 0.4, 9, 11, 200};
    buf_t b = {0};
    prom_labels_t l = {0};
    int bad, samples;

    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        counts[prom_bucket_index(bounds, 3, obs[i])]++;
        sum += obs[i];
    }
    T_OK(counts[0] == 2 && counts[1] == 2 && counts[2] == 1 && counts[3] == 2,
         "bucket index: le is inclusive, overflow past the last bound");
    prom_family(&b, "h_seconds", "histogram", "A histogram.");
    prom_label(&l, "model", "m");
    prom_histogram(&b, "h_seconds", &l, bounds, 3, counts, sum);
    prom_histogram(&b, "h_seconds", NULL, bounds, 3, counts, sum);
    T_OK(strstr(b.data, "h_seconds_bucket{model=\"m\",le=\"0.005\"} 2\n") &&
             strstr(b.data, "h_seconds_bucket{model=\"m\",le=\"0.5\"} 4\n") &&
             strstr(b.data, "h_seconds_bucket{model=\"m\",le=\"10\"} 5\n") &&
             strstr(b.data, "h_seconds_bucket{model=\"m\",le=\"+Inf\"} 7\n") &&
             strstr(b.data, "h_seconds_count{model=\"m\"} 7\n") &&
             strstr(b.data, "h_seconds_sum{model=\"m\"} 220.411"),
         "cumulative buckets, +Inf = count, sum");
    T_OK(strstr(b.data, "h_seconds_bucket{le=\"0.005\"} 2\n") &&
             strstr(b.data, "h_seconds_count 7\n"),
         "a histogram without labels");
    bad = tu_prom_check(b.data, &samples);
    T_EQ_INT(bad, 0, "the output passes the format check");
    T_EQ_INT(samples, 12, "6 samples per histogram");
    buf_free(&b);
}

int main(void)
{
    test_escape();
    test_samples();
    test_histogram();
    return t_done();
}
