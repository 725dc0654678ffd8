/* fmt.c - text building blocks of the views (see fmt.h). */
#include "view/fmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DURATION_MS (366LL * 86400 * 1000)

/* ---- buffer ---------------------------------------------------------------------------- */

static void (*oom_hook)(void);

void vw_buf_on_oom(void (*fn)(void))
{
    oom_hook = fn;
}

/* 0 when extra more bytes fit (grown if needed); -1 when the buffer has failed. */
static int buf_reserve(vw_buf_t *b, size_t extra)
{
    if (b->failed)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        if (oom_hook)
            oom_hook();
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void vw_buf_add(vw_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void vw_buf_puts(vw_buf_t *b, const char *s)
{
    vw_buf_add(b, s, strlen(s));
}

void vw_buf_printf(vw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if (buf_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void vw_buf_reserve(vw_buf_t *b, size_t n)
{
    (void)buf_reserve(b, n);
}

void vw_buf_wipe(vw_buf_t *b)
{
    if (b->p)
        explicit_bzero(b->p, b->cap);
    vw_buf_free(b);
}

void vw_buf_free(vw_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- durations ------------------------------------------------------------------------- */

int vw_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    const char *p = s;

    if (!s || !*s)
        return -1;
    while (*p) {
        const char *start = p;
        int64_t v = 0, unit;
        if (*p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            v = v * 10 + (*p - '0');
            if (v > MAX_DURATION_MS)
                return -1;
        }
        if (*p == '\0' && start == s) {
            unit = 1000; /* the whole string is a number: seconds */
        } else if (strncmp(p, "ms", 2) == 0) {
            unit = 1, p += 2;
        } else if (*p == 'd') {
            unit = 86400000, p++;
        } else if (*p == 'h') {
            unit = 3600000, p++;
        } else if (*p == 'm') {
            unit = 60000, p++;
        } else if (*p == 's') {
            unit = 1000, p++;
        } else {
            return -1;
        }
        if (v > MAX_DURATION_MS / unit)
            return -1;
        total += v * unit;
        if (total > MAX_DURATION_MS)
            return -1;
    }
    if (total <= 0)
        return -1;
    *ms = total;
    return 0;
}

int vw_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (d > max || v > max / 10 || v * 10 > max - d)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

#define MAX_USD 1000000000000ULL /* 1e12 USD: 1e18 micro-USD, inside int64 */

int vw_parse_usd(const char *s, uint64_t *micro_usd)
{
    uint64_t whole = 0, frac = 0;
    const char *p = s;
    int digits = 0, nonzero = 0, round_up = 0;

    if (!s || !*s)
        return -1;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        nonzero |= *p != '0';
        if (whole > MAX_USD)
            return -1;
    }
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++, digits++) {
            nonzero |= *p != '0';
            if (n < 6)
                frac = frac * 10 + (uint64_t)(*p - '0');
            else if (n == 6)
                round_up = *p >= '5';
        }
        for (; n < 6; n++)
            frac *= 10;
    }
    if (*p || digits == 0)
        return -1;
    uint64_t v = whole * 1000000 + frac + (uint64_t)round_up;
    if (v > MAX_USD * 1000000)
        return -1;
    *micro_usd = v == 0 && nonzero ? 1 : v;
    return 0;
}

size_t vw_b64url(const unsigned char *in, size_t n, char *out, size_t size)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, need = (n * 4 + 2) / 3;

    if (size < need + 1)
        return 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
    return o;
}

const char *vw_fmt_dur(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    int64_t s = (ms + 999) / 1000;
    long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
    if (d)
        snprintf(buf, len, h ? "%lldd%lldh" : "%lldd", d, h);
    else if (h)
        snprintf(buf, len, m ? "%lldh%lldm" : "%lldh", h, m);
    else if (m)
        snprintf(buf, len, sec ? "%lldm%llds" : "%lldm", m, sec);
    else
        snprintf(buf, len, "%llds", sec);
    return buf;
}

const char *vw_fmt_age(int64_t ms, char *buf, size_t len)
{
    char d[32];
    if (ms < 60000)
        snprintf(buf, len, "%.1fs ago", ms > 0 ? (double)ms / 1000.0 : 0.0);
    else
        snprintf(buf, len, "%s ago", vw_fmt_dur(ms, d, sizeof(d)));
    return buf;
}

const char *vw_fmt_us(uint64_t us, char *buf, size_t len)
{
    if (us < 1000)
        snprintf(buf, len, "%lluus", (unsigned long long)us);
    else if (us < 100000)
        snprintf(buf, len, "%.1fms", (double)us / 1000.0);
    else
        vw_fmt_ms(us / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(us / 1000), 1, buf, len);
    return buf;
}

/* ---- numbers --------------------------------------------------------------------------- */

const char *vw_fmt_count(uint64_t v, char *buf, size_t len)
{
    static const char units[] = "kMGTPE";
    double x = (double)v;

    if (v < 100000) {
        snprintf(buf, len, "%llu", (unsigned long long)v);
        return buf;
    }
    for (int u = 0; u < 6; u++) {
        x /= 1000.0;
        /* the number as it will be printed, so 999.6k moves on to 1.00M */
        const char *f = x >= 99.95 ? "%.0f%c" : x >= 9.995 ? "%.1f%c" : "%.2f%c";
        char tmp[32];
        snprintf(tmp, sizeof(tmp), f, x, units[u]);
        if (atof(tmp) < 1000.0 || u == 5) {
            snprintf(buf, len, "%s", tmp);
            return buf;
        }
    }
    return buf; /* not reached */
}

const char *vw_fmt_used(uint64_t used, uint64_t limit, char *buf, size_t len)
{
    char a[24], b[24];
    snprintf(buf, len, "%s/%s", vw_fmt_count(used, a, sizeof(a)),
             limit ? vw_fmt_count(limit, b, sizeof(b)) : "-");
    return buf;
}

const char *vw_fmt_ms(uint32_t ms, int have, char *buf, size_t len)
{
    if (!have)
        snprintf(buf, len, "-");
    else if (ms < 1000)
        snprintf(buf, len, "%ums", ms);
    else if (ms < 9995)
        snprintf(buf, len, "%.2fs", ms / 1000.0);
    else if (ms < 99950)
        snprintf(buf, len, "%.1fs", ms / 1000.0);
    else
        snprintf(buf, len, "%.0fs", ms / 1000.0);
    return buf;
}

const char *vw_fmt_rate(double r, int have, char *buf, size_t len)
{
    double pct = r * 100.0;
    if (!have)
        snprintf(buf, len, "-");
    else if (pct <= 0.0)
        snprintf(buf, len, "0%%");
    else if (pct < 9.95)
        snprintf(buf, len, "%.1f%%", pct);
    else
        snprintf(buf, len, "%.0f%%", pct);
    return buf;
}

const char *vw_fmt_cost(uint64_t micro_usd, char *buf, size_t len)
{
    double usd = (double)micro_usd / 1e6;
    snprintf(buf, len, usd < 100.0 ? "$%.4f" : "$%.2f", usd);
    return buf;
}

const char *vw_fmt_cost_used(uint64_t used, uint64_t limit, char *buf, size_t len)
{
    char a[32], b[32];
    snprintf(buf, len, "%s/%s", vw_fmt_cost(used, a, sizeof(a)),
             limit ? vw_fmt_cost(limit, b, sizeof(b)) : "-");
    return buf;
}

const char *vw_fmt_time(int64_t ms, int style, char *buf, size_t len)
{
    struct tm tm;
    time_t t;

    if (ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return buf;
    }
    if (style == VW_T_HM)
        strftime(buf, len, "%H:%MZ", &tm);
    else if (style == VW_T_HMS)
        strftime(buf, len, "%H:%M:%SZ", &tm);
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

#define DAY_SEC 86400

/* Digits s[0..n) as a number; -1 if any is not a digit. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Day index of a date, or -1 when it is not one (timegm normalises: compare back). */
static int64_t day_of(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm back;
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_year != y - 1900 ||
        back.tm_mon != m - 1 || back.tm_mday != d)
        return -1;
    return (int64_t)t / DAY_SEC;
}

int vw_parse_date(const char *s, int end, int64_t *day)
{
    size_t n = s ? strlen(s) : 0;
    int y, m, d = 1;

    if ((n != 7 && n != 10) || s[4] != '-' || (n == 10 && s[7] != '-'))
        return -1;
    y = digits(s, 4);
    m = digits(s + 5, 2);
    if (n == 10)
        d = digits(s + 8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return -1;
    if (n == 7 && end) { /* the last day: the day before the next month's first */
        int64_t next = m == 12 ? day_of(y + 1, 1, 1) : day_of(y, m + 1, 1);
        if (next < 0)
            return -1;
        *day = next - 1;
        return 0;
    }
    int64_t v = day_of(y, m, d);
    if (v < 0)
        return -1;
    *day = v;
    return 0;
}

int64_t vw_day_month(int64_t day)
{
    time_t t = (time_t)(day * DAY_SEC);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

const char *vw_fmt_day(int64_t day, char *buf, size_t len)
{
    time_t t = (time_t)(day * DAY_SEC);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        snprintf(buf, len, "?");
    else
        strftime(buf, len, "%Y-%m-%d", &tm);
    return buf;
}

const char *vw_fmt_month(int64_t month, char *buf, size_t len)
{
    snprintf(buf, len, "%04lld-%02lld", (long long)(month / 12), (long long)(month % 12 + 1));
    return buf;
}

const char *vw_fmt_usd6(uint64_t micro_usd, char *buf, size_t len)
{
    snprintf(buf, len, "%llu.%06llu", (unsigned long long)(micro_usd / 1000000),
             (unsigned long long)(micro_usd % 1000000));
    return buf;
}

const char *vw_printable(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    if (!len)
        return buf;
    for (; s && s[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* ---- JSON strings ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

void vw_json_escape(vw_buf_t *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    vw_buf_add(b, "\"", 1);
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            vw_buf_puts(b, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            vw_buf_add(b, e, 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            static const char *const named[] = {
                [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r", [31] = NULL};
            if (*p < 0x20 && named[*p])
                vw_buf_puts(b, named[*p]);
            else
                vw_buf_printf(b, "\\u%04x", *p);
            p++;
        } else {
            vw_buf_add(b, p, n);
            p += n;
        }
    }
    vw_buf_add(b, "\"", 1);
}

/* ---- colours and widths ---------------------------------------------------------------- */

const char *vw_color_on(int color, int enabled)
{
    static const char *const sgr[] = {"", "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[2m", "\x1b[1m"};
    if (!enabled || color <= VW_C_NONE || color > VW_C_BOLD)
        return "";
    return sgr[color];
}

const char *vw_color_off(int color, int enabled)
{
    return enabled && color > VW_C_NONE && color <= VW_C_BOLD ? "\x1b[0m" : "";
}

/* Length of the escape sequence at s[0..n) (s[0] == ESC), at least 1. */
static size_t esc_len(const char *s, size_t n)
{
    size_t i = 1;
    if (n > 1 && s[1] == '[') {
        for (i = 2; i < n; i++)
            if ((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
                return i + 1;
        return n;
    }
    return n > 1 ? 2 : 1;
}

size_t vw_visible_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\x1b') {
            i += esc_len(s + i, n - i);
            continue;
        }
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            w++;
        i++;
    }
    return w;
}

void vw_buf_add_cut(vw_buf_t *b, const char *s, size_t n, size_t width)
{
    size_t w = 0, i = 0;
    int escapes = 0, cut = 0;

    while (i < n) {
        if (s[i] == '\x1b') {
            size_t e = esc_len(s + i, n - i);
            vw_buf_add(b, s + i, e);
            escapes = 1;
            i += e;
            continue;
        }
        size_t c = 1;
        while (i + c < n && ((unsigned char)s[i + c] & 0xc0) == 0x80)
            c++;
        if (w == width) {
            cut = 1;
            break;
        }
        vw_buf_add(b, s + i, c);
        w++;
        i += c;
    }
    if (cut && escapes)
        vw_buf_puts(b, "\x1b[0m");
}
