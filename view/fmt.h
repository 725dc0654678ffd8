/* fmt.h - the views' text building blocks: a growable output buffer, durations (parse and
 * show), compact numbers, latencies, costs, UTC times, ANSI colours, and the JSON string
 * escaper. Pure functions of their arguments (no store, no clock), so the unit tests pin
 * every format the README documents. Used by llmgatectl (cli/) and the admin API
 * (server/obs/), which show the same documents.
 *
 * Memory: vw_buf_t grows with realloc. When an allocation fails, the hook set with
 * vw_buf_on_oom runs (llmgatectl's prints "llmgatectl: out of memory" and exits 2); without
 * one (the server) the buffer is marked failed: what is appended after that is dropped, and
 * the caller checks failed before it uses the text. Threads: a buffer belongs to one thread;
 * the functions share nothing but the hook, which is set once at start.
 */
#ifndef LLMGATE_VIEW_FMT_H
#define LLMGATE_VIEW_FMT_H

#include <stddef.h>
#include <stdint.h>

typedef struct vw_buf_s {
    char *p; /* NUL terminated when len > 0 or after any append */
    size_t len, cap;
    int failed; /* an allocation failed (without an out-of-memory hook): the text is short */
} vw_buf_t;

/* Called when a buffer cannot grow; NULL (the default) marks the buffer failed instead. */
void vw_buf_on_oom(void (*fn)(void));

void vw_buf_add(vw_buf_t *b, const void *p, size_t n);
void vw_buf_puts(vw_buf_t *b, const char *s);
void vw_buf_printf(vw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vw_buf_free(vw_buf_t *b);
/* Room for n more bytes now, so that appending up to n bytes never moves the buffer (a
 * buffer that will hold a secret is reserved first: realloc leaves no copy behind). */
void vw_buf_reserve(vw_buf_t *b, size_t n);
/* Zeroes all of b's memory (explicit_bzero), then frees it. */
void vw_buf_wipe(vw_buf_t *b);

/* Parses a duration: plain seconds ("90"), or one or more number+unit groups with units
 * d, h, m, s, ms ("30s", "5m", "2h", "1h30m", "1d12h", "250ms"). Returns 0 and *ms (> 0,
 * at most 366 days), or -1 (empty, zero, unknown unit, overflow). */
int vw_parse_duration(const char *s, int64_t *ms);

/* Parses a count for an option: decimal digits only (no sign, no spaces), 0 allowed, at most
 * max. Returns 0 and *out, or -1. */
int vw_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Parses an amount of USD ("5", "12.50", "0.000001", ".5") into micro-USD, rounded to the
 * nearest (half up); a positive amount is at least 1. At most 1e12 USD; no sign, exponent or
 * spaces. Returns 0 and *micro_usd, or -1. */
int vw_parse_usd(const char *s, uint64_t *micro_usd);

/* A UTC date for `usage`: "YYYY-MM-DD" into its day index (days since 1970-01-01), or
 * "YYYY-MM" into the first (end 0) or the last (end 1) day of that month; years 1970 to 9999,
 * a real date ("2026-02-30" is not). Returns 0 and *day, or -1. */
int vw_parse_date(const char *s, int end, int64_t *day);

/* The UTC month index (year * 12 + month - 1) of day index day (>= 0). */
int64_t vw_day_month(int64_t day);

/* "YYYY-MM-DD" of a day index; "YYYY-MM" of a month index. Return buf. */
const char *vw_fmt_day(int64_t day, char *buf, size_t len);
const char *vw_fmt_month(int64_t month, char *buf, size_t len);

/* Micro-USD as exact decimal dollars, for exports: "0.000312", "12.500000". Returns buf. */
const char *vw_fmt_usd6(uint64_t micro_usd, char *buf, size_t len);

/* base64url (RFC 4648 section 5) of in[0..n) without padding, NUL terminated, into out of
 * size at least (n * 4 + 2) / 3 + 1. Returns the length, or 0 when out is too small. */
size_t vw_b64url(const unsigned char *in, size_t n, char *out, size_t size);

/* A duration for people, the two largest units, rounded up to the second: "42s", "5m",
 * "5m3s", "1h30m", "2d3h"; "0s" for <= 0. Returns buf. */
const char *vw_fmt_dur(int64_t ms, char *buf, size_t len);

/* A count in a column: exact below 100000, else three significant digits with k, M, G, T
 * ("123k", "1.23M", "45.6G"). Returns buf. */
const char *vw_fmt_count(uint64_t v, char *buf, size_t len);

/* used/limit with compact numbers, "-" for an unlimited (0) limit: "12/100", "3/-". */
const char *vw_fmt_used(uint64_t used, uint64_t limit, char *buf, size_t len);

/* A latency: "-" when none (have 0), "850ms", "1.25s", "12.5s", "125s". Returns buf. */
const char *vw_fmt_ms(uint32_t ms, int have, char *buf, size_t len);

/* How long ago, for `cluster`'s CONTACT: "0.4s ago" below a minute (0.0s for <= 0), then
 * vw_fmt_dur + " ago" ("5m3s ago"). Returns buf. */
const char *vw_fmt_age(int64_t ms, char *buf, size_t len);

/* A duration in microseconds: "850us", "1.2ms" (below 100 ms), then as vw_fmt_ms. */
const char *vw_fmt_us(uint64_t us, char *buf, size_t len);

/* An error rate 0..1 as "0.8%", "12%", "100%"; "-" without outcomes (have 0). */
const char *vw_fmt_rate(double r, int have, char *buf, size_t len);

/* Cost from micro-USD: "$0.0123" below $100, "$1234.57" from $100. */
const char *vw_fmt_cost(uint64_t micro_usd, char *buf, size_t len);

/* A cost used of its budget: "$0.0012/$5.0000", "$0.0012/-" when unlimited (0). */
const char *vw_fmt_cost_used(uint64_t used, uint64_t limit, char *buf, size_t len);

/* UTC wall time of ms since the epoch: "HH:MMZ" (hm), "HH:MM:SSZ" (hms), or
 * "YYYY-MM-DD HH:MM:SSZ" (full); "-" for 0. */
enum vw_time_style { VW_T_HM, VW_T_HMS, VW_T_FULL };
const char *vw_fmt_time(int64_t ms, int style, char *buf, size_t len);

/* s made safe to show on a terminal: control bytes and DEL become '?'. Returns buf. */
const char *vw_printable(const char *s, char *buf, size_t len);

/* Appends s as a JSON string literal (quotes included): ", \ and control characters
 * escaped, invalid UTF-8 bytes replaced by U+FFFD. */
void vw_json_escape(vw_buf_t *b, const char *s);

/* ANSI SGR colours; vw_color_on/off are "" when colour is off. */
enum vw_color { VW_C_NONE = 0, VW_C_GREEN, VW_C_YELLOW, VW_C_RED, VW_C_DIM, VW_C_BOLD };
const char *vw_color_on(int color, int enabled);
const char *vw_color_off(int color, int enabled);

/* Visible width of s (UTF-8 characters, ANSI escape sequences not counted). */
size_t vw_visible_width(const char *s, size_t n);

/* Appends s[0..n) cut to at most width visible characters, escape sequences kept; if
 * anything was cut and the text held escapes, a reset (ESC[0m) is appended. */
void vw_buf_add_cut(vw_buf_t *b, const char *s, size_t n, size_t width);

#endif
