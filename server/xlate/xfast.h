/* xfast.h - the stream translators' fast path: the events that are most of a stream (one
 * text delta each) recognised in their exact shape by a scan, without building a document.
 *
 * Design note
 * -----------
 * jansson builds a tree of allocated values for every event; for a text delta that is
 * nearly all the work of a translated stream (measured: 2 to 6 us an event, where the
 * passthrough path spends none). A matcher built from these readers answers "yes" only when
 * the bytes are a JSON document jansson would read the same way (XJSON_LOAD: strings of
 * valid UTF-8 without raw control characters, escapes well formed, surrogates paired, no
 * \u0000, no member twice) AND of exactly the shape it expects, with keys written as
 * themselves. Anything else, also valid JSON it does not know (a key it has no entry for, a
 * real where it expects an integer, a key written with escapes), is a "no", and the caller
 * parses with jansson as before: the fast path decides nothing the slow one would decide
 * otherwise. The fuzz targets of the stream translators run every input both ways
 * (xfast_enable) and compare the events.
 *
 * A string read is handed out as written (its escapes kept, without the quotes): it is
 * valid as the inside of a JSON string, so a translator copies it into its own event as
 * it is.
 *
 * Errors: the readers return 0 or -1 ("no": not this shape, or not valid); on -1 the
 * cursor is somewhere inside and must be dropped. Pure, any thread, except xfast_enable.
 */
#ifndef LLMGATE_XFAST_H
#define LLMGATE_XFAST_H

#include <stddef.h>
#include <stdint.h>

typedef struct xfast_cur_s {
    const char *p, *end;
} xfast_cur_t;

/* A string's bytes between its quotes, escapes as written. */
typedef struct xfast_span_s {
    const char *s;
    size_t n;
} xfast_span_t;

/* Whether the matchers may answer yes (1, the default). Tests and fuzz targets turn them
 * off to compare with jansson's path; set it before any stream runs (it is one process-wide
 * flag, read without a lock). */
void xfast_enable(int on);
int xfast_enabled(void);

static inline xfast_cur_t xfast_cur(const char *p, size_t n)
{
    xfast_cur_t c = {p, p + n};
    return c;
}

/* Each reader skips the JSON whitespace before what it reads. */
int xfast_string(xfast_cur_t *c, xfast_span_t *out);
int xfast_null(xfast_cur_t *c);
/* A string or null (out->s NULL for null). */
int xfast_string_or_null(xfast_cur_t *c, xfast_span_t *out);
/* An integer of digits only (no sign, fraction or exponent), that fits *v. */
int xfast_uint(xfast_cur_t *c, uint64_t *v);
/* The character ch (one of {}[],:). */
int xfast_char(xfast_cur_t *c, char ch);
/* Only whitespace is left: 0. */
int xfast_end(xfast_cur_t *c);

/* 1 if span is exactly the characters of lit. */
int xfast_is(const xfast_span_t *span, const char *lit);

/* Reads the value of member keys[k] at c: 0 or -1. */
typedef int (*xfast_member_cb)(void *ud, unsigned k, xfast_cur_t *c);

/* An object {...} whose every key is one of keys[0..n) (n <= 32) as written, each once;
 * each value is read by cb. *seen gets bit k for each key read. 0 or -1 (a key not in the
 * list, one twice, cb's -1, or the syntax). */
int xfast_object(xfast_cur_t *c, const char *const *keys, unsigned n, xfast_member_cb cb, void *ud,
                 uint32_t *seen);

#endif
