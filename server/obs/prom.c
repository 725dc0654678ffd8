/* prom.c - the Prometheus text exposition format: families, escaped labels, samples,
 * histograms. See prom.h. */
#include "server/obs/prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t prom_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (overlong) or past 0xf4 */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int prom_escape_value(buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), run = 0;
    int rc = 0;

    /* copy runs of plain bytes at once; escape or replace the rest */
    for (size_t i = 0; i < n;) {
        size_t k = prom_utf8_seq(p + i, n - i);
        const char *rep = NULL;

        if (k == 0)
            rep = "\xef\xbf\xbd"; /* U+FFFD */
        else if (p[i] == '\\')
            rep = "\\\\";
        else if (p[i] == '"')
            rep = "\\\"";
        else if (p[i] == '\n')
            rep = "\\n";
        if (!rep) {
            run += k;
            i += k;
            continue;
        }
        rc |= buf_append(b, p + i - run, run);
        run = 0;
        rc |= buf_appends(b, rep);
        i += k ? k : 1;
    }
    rc |= buf_append(b, p + n - run, run);
    return rc;
}

static int escape_help(buf_t *b, const char *s)
{
    int rc = 0;

    for (; *s; s++) {
        if (*s == '\\')
            rc |= buf_appends(b, "\\\\");
        else if (*s == '\n')
            rc |= buf_appends(b, "\\n");
        else
            rc |= buf_append(b, s, 1);
    }
    return rc;
}

int prom_family(buf_t *b, const char *name, const char *type, const char *help)
{
    int rc = buf_printf(b, "# HELP %s ", name);

    rc |= escape_help(b, help);
    rc |= buf_printf(b, "\n# TYPE %s %s\n", name, type);
    return rc;
}

void prom_label(prom_labels_t *l, const char *name, const char *value)
{
    if (l->n >= PROM_MAX_LABELS)
        return;
    l->name[l->n] = name;
    l->value[l->n] = value ? value : "";
    l->n++;
}

static int put_value(buf_t *b, double v)
{
    if (isnan(v))
        return buf_appends(b, "NaN");
    if (isinf(v))
        return buf_appends(b, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53: exact as an integer */
        return buf_printf(b, "%.0f", v);
    {
        /* the shortest of 15..17 digits that reads back as v: 0.005, not 0.0050000000000000001 */
        char tmp[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        return buf_appends(b, tmp);
    }
}

/* "{a="x",b="y"" without the closing brace; nothing without labels and extra. */
static int put_labels(buf_t *b, const prom_labels_t *l, int more)
{
    int rc = 0;

    if ((!l || l->n == 0) && !more)
        return 0;
    rc |= buf_append(b, "{", 1);
    for (unsigned i = 0; l && i < l->n; i++) {
        rc |= buf_printf(b, "%s%s=\"", i ? "," : "", l->name[i]);
        rc |= prom_escape_value(b, l->value[i]);
        rc |= buf_append(b, "\"", 1);
    }
    return rc;
}

int prom_sample(buf_t *b, const char *name, const prom_labels_t *l, double value)
{
    int rc = buf_appends(b, name);

    rc |= put_labels(b, l, 0);
    if (l && l->n)
        rc |= buf_append(b, "}", 1);
    rc |= buf_append(b, " ", 1);
    rc |= put_value(b, value);
    rc |= buf_append(b, "\n", 1);
    return rc;
}

int prom_histogram(buf_t *b, const char *name, const prom_labels_t *l, const double *bounds,
                   unsigned nbounds, const double *counts, double sum)
{
    double cum = 0;
    int rc = 0;

    for (unsigned i = 0; i <= nbounds; i++) {
        cum += counts[i];
        rc |= buf_printf(b, "%s_bucket", name);
        rc |= put_labels(b, l, 1);
        rc |= buf_printf(b, "%sle=\"", l && l->n ? "," : "");
        rc |= i < nbounds ? put_value(b, bounds[i]) : buf_appends(b, "+Inf");
        rc |= buf_appends(b, "\"} ");
        rc |= put_value(b, cum);
        rc |= buf_append(b, "\n", 1);
    }
    rc |= buf_printf(b, "%s_sum", name);
    rc |= put_labels(b, l, 0);
    if (l && l->n)
        rc |= buf_append(b, "}", 1);
    rc |= buf_append(b, " ", 1);
    rc |= put_value(b, sum);
    rc |= buf_printf(b, "\n%s_count", name);
    rc |= put_labels(b, l, 0);
    if (l && l->n)
        rc |= buf_append(b, "}", 1);
    rc |= buf_append(b, " ", 1);
    rc |= put_value(b, cum);
    rc |= buf_append(b, "\n", 1);
    return rc;
}

unsigned prom_bucket_index(const double *bounds, unsigned nbounds, double v)
{
    unsigned lo = 0, hi = nbounds;

    while (lo < hi) { /* first bound >= v: Prometheus buckets are "less than or equal" */
        unsigned mid = (lo + hi) / 2;
        if (bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}
