/* stats.h - the history (shm/shm_stats.h) as series of points over a range: what
 * `llmgatectl stats` prints and the admin API's /api/stats serves (the "stats" document).
 *
 * A range is a span ending now, read from one resolution of the store and shown in points
 * of a fixed step (a multiple of the resolution), so a chart has 60 to 168 points whatever
 * the span:
 *     1h   minute rows, 1 min points (60)      7d   hour rows, 1 h points (168)
 *     6h   minute rows, 5 min points (72)      30d  hour rows, 6 h points (120)
 *     24h  minute rows, 15 min points (96)     90d  day rows, 1 day points (90)
 * Points are aligned to their step in UTC and dense: the last one is the step that holds
 * now, and a step without outcomes is a point of zeros. Each series also has its spend per
 * UTC day (the last 31), ISO week (Monday first, the last 12) and month (the last 12), from
 * the day rows. Series are those with a row in the range or in the spend's days, sorted by
 * name.
 *
 * Memory: vw_stats_load fills a vw_stats_t whose arrays vw_stats_free releases. Threads:
 * any; the load reads the store in two read transactions, the rest is pure.
 */
#ifndef LLMGATE_VIEW_STATS_H
#define LLMGATE_VIEW_STATS_H

#include <stdint.h>

#include "shm/shm_stats.h"
#include "view/fmt.h"

#define VW_SPEND_DAYS   31
#define VW_SPEND_WEEKS  12
#define VW_SPEND_MONTHS 12

typedef struct vw_range_s {
    const char *name; /* "1h" ... "90d" */
    int64_t span_ms;
    int res;         /* enum shm_stats_res read */
    int64_t step_ms; /* of the points */
} vw_range_t;

/* The range called s; 0, or -1 for an unknown one. vw_range_names lists them. */
int vw_range_parse(const char *s, vw_range_t *out);
extern const char vw_range_names[];

typedef struct vw_spend_s {
    int64_t start_day; /* UTC day index of the day, the week's Monday or the month's 1st */
    uint64_t requests, prompt_tokens, completion_tokens, cost_micro_usd;
} vw_spend_t;

typedef struct vw_series_s {
    char name[SHM_NAME_MAX + 1];
    shm_stats_t *points; /* npoints of vw_stats_t, oldest first */
    shm_stats_t total;   /* over the range */
    vw_spend_t days[VW_SPEND_DAYS], weeks[VW_SPEND_WEEKS], months[VW_SPEND_MONTHS];
} vw_series_t;

typedef struct vw_stats_s {
    vw_range_t range;
    int scope;              /* enum shm_stats_scope */
    int64_t from_ms, to_ms; /* the points cover [from_ms, to_ms) */
    unsigned npoints;
    vw_series_t *series;
    unsigned n;
} vw_stats_t;

/* The series of scope (name NULL: all of them) over range r as of now_ms. 0, or an SHM_E*
 * code (nothing to free then). */
int vw_stats_load(shm_t *s, int64_t now_ms, const vw_range_t *r, int scope, const char *name,
                  vw_stats_t *out);
void vw_stats_free(vw_stats_t *st);

/* The start of point i, ms. */
int64_t vw_stats_point_ms(const vw_stats_t *st, unsigned i);

/* The "stats" document: range, scope, step_ms, from_ms, to_ms and the series (see cli/README.md,
 * "JSON schema"). */
void vw_doc_stats(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_stats_t *st);

#endif
