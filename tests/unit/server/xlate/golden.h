/* golden.h - what the golden tests of the translations (the xlate tests) share: reading the
 * case files of golden_dir, comparing JSON, and reading back the events of a stream with the
 * format every event of a named-event stream must have. */
#ifndef LLMGATE_TEST_GOLDEN_H
#define LLMGATE_TEST_GOLDEN_H

#include <stddef.h>

#include "server/common/buf.h"
#include "server/xlate/xlate.h"

#define GOLDEN_EVENTS_MAX 512

/* The folder of the case files (the test sets it from its GOLDEN_DIR). */
extern const char *golden_dir;

/* The bytes of golden_dir/name, NUL-terminated (malloc'd), or NULL. */
char *golden_slurp(const char *name, size_t *len);
/* The file of a case with its suffix replaced: "x.in.json" -> "x.out.json". */
char *golden_sibling(const char *name, const char *in_sfx, const char *out_sfx, size_t *len);
int golden_ends_with(const char *s, const char *sfx);
int golden_starts_with(const char *s, const char *pfx);
/* json_equal of got against want; prints both when they differ. */
int golden_same_json(const char *got, size_t got_len, const char *want, size_t want_len);

typedef struct ev_s {
    char name[64];
    char *data;
    size_t len;
} golden_ev_t;

typedef struct evs_s {
    golden_ev_t v[GOLDEN_EVENTS_MAX];
    int n, overflow;
} golden_evs_t;

/* The events of an SSE body (at most GOLDEN_EVENTS_MAX, then overflow is set). */
void golden_parse_events(const char *s, size_t len, golden_evs_t *e);
void golden_free_events(golden_evs_t *e);
/* Exactly "event: NAME\ndata: JSON\n\n" per event, the JSON's "type" being NAME; else 0 and
 * why. */
int golden_well_formed(const char *s, size_t len, char *why, size_t cap);

/* A stream translation run: step 0 = fed whole, step > 0 = in pieces of that size, step < 0 =
 * in pseudo-random pieces seeded by -step; its result, its bytes in out. */
typedef int (*golden_run_fn)(const char *in, size_t len, long step, int complete, buf_t *out);

/* Pair p's stream over in[0..len) with options o, fed as golden_run_fn's step says (the
 * pseudo-random pieces are 1 to 97 bytes); the rc of the first failing call, or 0. */
int golden_run_pair(const xlate_pair_t *p, const xlate_opts_t *o, const char *in, size_t len,
                    long step, int complete, buf_t *out);

/* Whether run gives rc and the bytes of whole for pieces of every size up to 64 and 40
 * pseudo-random cuts (prints the first that differs). */
int golden_same_cuts(golden_run_fn run, const char *in, size_t len, int complete, int rc,
                     const buf_t *whole);

#endif
