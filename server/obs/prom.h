/* prom.h - writing the Prometheus text exposition format (version 0.0.4).
 *
 * A family is announced once with prom_family() (# HELP and # TYPE lines), then its samples
 * follow, all together. Label values are escaped here (backslash, double quote and line feed;
 * bytes that are not valid UTF-8 become U+FFFD, as the format is UTF-8), so callers pass
 * names as they are. Values: integers print exactly, other numbers with up to 17
 * significant digits, infinities as +Inf / -Inf.
 *
 * Every function appends to a buf_t and returns 0, or -1 if memory ran out (the buffer
 * then holds a partial line: callers OR the results and discard the buffer on -1).
 * Pure, any thread.
 */
#ifndef LLMGATE_PROM_H
#define LLMGATE_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"

/* Up to PROM_MAX_LABELS label pairs, built before each sample. */
#define PROM_MAX_LABELS 6

typedef struct prom_labels_s {
    const char *name[PROM_MAX_LABELS];
    const char *value[PROM_MAX_LABELS];
    unsigned n;
} prom_labels_t;

/* "# HELP name help\n# TYPE name type\n"; type: counter, gauge, histogram. */
int prom_family(buf_t *b, const char *name, const char *type, const char *help);

/* Add a label (value NULL = ""); beyond PROM_MAX_LABELS it is ignored. */
void prom_label(prom_labels_t *l, const char *name, const char *value);

/* Append the escaped label value. */
int prom_escape_value(buf_t *b, const char *s);

/* "name{labels} value\n" (no braces without labels). */
int prom_sample(buf_t *b, const char *name, const prom_labels_t *l, double value);

/* A histogram's samples: name_bucket{labels,le="..."} cumulative for each bound and +Inf,
 * name_sum and name_count. counts has nbounds + 1 entries, non-cumulative, the last being
 * the observations above the last bound. */
int prom_histogram(buf_t *b, const char *name, const prom_labels_t *l, const double *bounds,
                   unsigned nbounds, const double *counts, double sum);

/* Length (1-4) of the valid UTF-8 sequence at s[0..n), or 0 if s does not start with one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). n >= 1. */
size_t prom_utf8_seq(const unsigned char *s, size_t n);

/* Index of the first bound >= v (nbounds if none): where an observation is counted. */
unsigned prom_bucket_index(const double *bounds, unsigned nbounds, double v);

#endif
