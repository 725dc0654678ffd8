/* stats.c - history series over a range, and the "stats" document (see stats.h). */
#include "view/stats.h"

#include <stdlib.h>
#include <string.h>

#include "view/json.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL

static const vw_range_t ranges[] = {
    {"1h", HOUR_MS, SHM_SR_MINUTE, MIN_MS},         {"6h", 6 * HOUR_MS, SHM_SR_MINUTE, 5 * MIN_MS},
    {"24h", DAY_MS, SHM_SR_MINUTE, 15 * MIN_MS},    {"7d", 7 * DAY_MS, SHM_SR_HOUR, HOUR_MS},
    {"30d", 30 * DAY_MS, SHM_SR_HOUR, 6 * HOUR_MS}, {"90d", 90 * DAY_MS, SHM_SR_DAY, DAY_MS},
};

const char vw_range_names[] = "1h, 6h, 24h, 7d, 30d, 90d";

int vw_range_parse(const char *s, vw_range_t *out)
{
    for (size_t i = 0; s && i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (strcmp(s, ranges[i].name) == 0) {
            *out = ranges[i];
            return 0;
        }
    return -1;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

int64_t vw_stats_point_ms(const vw_stats_t *st, unsigned i)
{
    return st->from_ms + (int64_t)i * st->range.step_ms;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* The series called name in st, added (sorted by name) if it is not there. NULL: no memory. */
static void spend_starts(vw_series_t *se, int64_t today);

static vw_series_t *series_at(vw_stats_t *st, unsigned *cap, const char *name, int64_t today)
{
    unsigned lo = 0, hi = st->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(st->series[mid].name, name);
        if (c == 0)
            return &st->series[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (st->n == *cap) {
        unsigned nc = *cap ? *cap * 2 : 8;
        vw_series_t *ns = realloc(st->series, nc * sizeof(*ns));
        if (!ns)
            return NULL;
        st->series = ns;
        *cap = nc;
    }
    shm_stats_t *pts = calloc(st->npoints ? st->npoints : 1, sizeof(*pts));
    if (!pts)
        return NULL;
    memmove(&st->series[lo + 1], &st->series[lo], (st->n - lo) * sizeof(st->series[0]));
    vw_series_t *se = &st->series[lo];
    memset(se, 0, sizeof(*se));
    memcpy(se->name, name, sizeof(se->name));
    se->points = pts;
    spend_starts(se, today);
    st->n++;
    return se;
}

/* The UTC day of the Monday of day's ISO week (1970-01-01 was a Thursday). */
static int64_t week_start(int64_t day)
{
    return day - (((day + 3) % 7) + 7) % 7;
}

static int64_t month_first(int64_t month)
{
    char m[16];
    int64_t day = 0;
    vw_parse_date(vw_fmt_month(month, m, sizeof(m)), 0, &day);
    return day;
}

static void spend_add(vw_spend_t *sp, const shm_stats_t *v)
{
    sp->requests += shm_stats_outcomes(v);
    sp->prompt_tokens += v->prompt_tokens;
    sp->completion_tokens += v->completion_tokens;
    sp->cost_micro_usd += v->cost_micro_usd;
}

/* Set each series' spend periods' start days (today's day, week and month last). */
static void spend_starts(vw_series_t *se, int64_t today)
{
    int64_t month = vw_day_month(today);
    for (int i = 0; i < VW_SPEND_DAYS; i++)
        se->days[i].start_day = today - (VW_SPEND_DAYS - 1 - i);
    for (int i = 0; i < VW_SPEND_WEEKS; i++)
        se->weeks[i].start_day = week_start(today) - 7 * (VW_SPEND_WEEKS - 1 - i);
    for (int i = 0; i < VW_SPEND_MONTHS; i++)
        se->months[i].start_day = month_first(month - (VW_SPEND_MONTHS - 1 - i));
}

static void spend_fold(vw_series_t *se, int64_t day, const shm_stats_t *v)
{
    int64_t d0 = se->days[0].start_day, w = week_start(day);
    if (day >= d0 && day < d0 + VW_SPEND_DAYS)
        spend_add(&se->days[day - d0], v);
    int64_t w0 = se->weeks[0].start_day;
    if (w >= w0 && w <= se->weeks[VW_SPEND_WEEKS - 1].start_day)
        spend_add(&se->weeks[(w - w0) / 7], v);
    for (int i = VW_SPEND_MONTHS - 1; i >= 0; i--)
        if (day >= se->months[i].start_day) {
            spend_add(&se->months[i], v);
            break;
        }
}

int vw_stats_load(shm_t *s, int64_t now_ms, const vw_range_t *r, int scope, const char *name,
                  vw_stats_t *out)
{
    shm_stats_row_t *rows = NULL;
    unsigned nrows = 0, cap = 0;
    int64_t res_ms = shm_stats_step_ms(r->res);
    int rc;

    memset(out, 0, sizeof(*out));
    out->range = *r;
    out->scope = scope;
    out->to_ms = (floordiv(now_ms, r->step_ms) + 1) * r->step_ms;
    out->from_ms = out->to_ms - r->span_ms;
    out->npoints = (unsigned)(r->span_ms / r->step_ms);
    int64_t today = floordiv(now_ms, DAY_MS);

    /* the points */
    rc = shm_stats(s, r->res, scope, name, floordiv(out->from_ms, res_ms),
                   floordiv(out->to_ms - 1, res_ms), &rows, &nrows);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < nrows; i++) {
        vw_series_t *se = series_at(out, &cap, rows[i].name, today);
        if (!se) {
            rc = SHM_ENOMEM;
            goto fail;
        }
        int64_t t = rows[i].index * res_ms;
        if (t < out->from_ms || t >= out->to_ms)
            continue;
        shm_stats_merge(&se->points[(t - out->from_ms) / r->step_ms], &rows[i].v);
        shm_stats_merge(&se->total, &rows[i].v);
    }
    shm_snapshot_free(rows);
    rows = NULL;

    /* the spend, from the day rows since the first of the months shown */
    vw_series_t probe;
    spend_starts(&probe, today);
    int64_t first = probe.months[0].start_day;
    if (probe.weeks[0].start_day < first)
        first = probe.weeks[0].start_day;
    rc = shm_stats(s, SHM_SR_DAY, scope, name, first, today, &rows, &nrows);
    if (rc != 0)
        goto fail;
    for (unsigned i = 0; i < nrows; i++) {
        vw_series_t *se = series_at(out, &cap, rows[i].name, today);
        if (!se) {
            rc = SHM_ENOMEM;
            goto fail;
        }
        spend_fold(se, rows[i].index, &rows[i].v);
    }
    shm_snapshot_free(rows);
    return 0;
fail:
    shm_snapshot_free(rows);
    vw_stats_free(out);
    return rc;
}

void vw_stats_free(vw_stats_t *st)
{
    for (unsigned i = 0; i < st->n; i++)
        free(st->series[i].points);
    free(st->series);
    st->series = NULL;
    st->n = 0;
}

/* ---- the document ------------------------------------------------------------------------ */

static void pct(vw_json_t *j, const char *key, const uint64_t *hist, uint32_t max, int have)
{
    vw_json_open(j, key, '{');
    vw_json_u32_or_null(j, "p50", shm_stats_quantile(hist, max, 0.50), have);
    vw_json_u32_or_null(j, "p95", shm_stats_quantile(hist, max, 0.95), have);
    vw_json_u32_or_null(j, "p99", shm_stats_quantile(hist, max, 0.99), have);
    vw_json_close(j, '}');
}

/* The fields of a point (or a total), into an open object. */
static void point_fields(vw_json_t *j, const shm_stats_t *v)
{
    uint64_t outcomes = shm_stats_outcomes(v), errors = shm_stats_errors(v);
    uint64_t samples = shm_stats_samples(v);
    vw_json_u64(j, "requests", outcomes);
    vw_json_u64(j, "errors", errors);
    vw_json_open(j, "outcomes", '{');
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        vw_json_u64(j, vw_outcome_names[cl], v->by_class[cl]);
    vw_json_close(j, '}');
    vw_json_num(j, "error_rate", outcomes ? (double)errors / (double)outcomes : 0, outcomes > 0);
    vw_json_u64(j, "prompt_tokens", v->prompt_tokens);
    vw_json_u64(j, "completion_tokens", v->completion_tokens);
    vw_json_u64(j, "tokens", v->prompt_tokens + v->completion_tokens);
    vw_json_u64(j, "cost_micro_usd", v->cost_micro_usd);
    vw_json_num(j, "cost_usd", (double)v->cost_micro_usd / 1e6, 1);
    vw_json_u64(j, "samples", samples);
    pct(j, "latency_ms", v->lat, v->lat_max_ms, samples > 0);
    pct(j, "ttfb_ms", v->ttfb, v->ttfb_max_ms, samples > 0);
}

static void spend_list(vw_json_t *j, const char *key, const vw_spend_t *sp, int n)
{
    char d[16];
    vw_json_open(j, key, '[');
    for (int i = 0; i < n; i++) {
        vw_json_open(j, NULL, '{');
        vw_json_str(j, "start", vw_fmt_day(sp[i].start_day, d, sizeof(d)));
        vw_json_u64(j, "requests", sp[i].requests);
        vw_json_u64(j, "prompt_tokens", sp[i].prompt_tokens);
        vw_json_u64(j, "completion_tokens", sp[i].completion_tokens);
        vw_json_u64(j, "tokens", sp[i].prompt_tokens + sp[i].completion_tokens);
        vw_json_u64(j, "cost_micro_usd", sp[i].cost_micro_usd);
        vw_json_num(j, "cost_usd", (double)sp[i].cost_micro_usd / 1e6, 1);
        vw_json_close(j, '}');
    }
    vw_json_close(j, ']');
}

void vw_doc_stats(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_stats_t *st)
{
    vw_json_t j;
    const char *scope = st->scope == SHM_SS_MODEL ? "model" : "key";
    vw_json_begin(&j, out, "stats", now_ms, state_dir);
    vw_json_str(&j, "range", st->range.name);
    vw_json_str(&j, "scope", scope);
    vw_json_i64(&j, "step_ms", st->range.step_ms);
    vw_json_i64(&j, "from_ms", st->from_ms);
    vw_json_i64(&j, "to_ms", st->to_ms);
    vw_json_open(&j, "series", '[');
    for (unsigned i = 0; i < st->n; i++) {
        const vw_series_t *se = &st->series[i];
        vw_json_open(&j, NULL, '{');
        vw_json_str(&j, "scope", scope);
        vw_json_str(&j, "name", se->name);
        vw_json_open(&j, "points", '[');
        for (unsigned p = 0; p < st->npoints; p++) {
            vw_json_open(&j, NULL, '{');
            vw_json_i64(&j, "t_ms", vw_stats_point_ms(st, p));
            point_fields(&j, &se->points[p]);
            vw_json_close(&j, '}');
        }
        vw_json_close(&j, ']');
        vw_json_open(&j, "total", '{');
        point_fields(&j, &se->total);
        vw_json_close(&j, '}');
        spend_list(&j, "days", se->days, VW_SPEND_DAYS);
        spend_list(&j, "weeks", se->weeks, VW_SPEND_WEEKS);
        spend_list(&j, "months", se->months, VW_SPEND_MONTHS);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_end(&j);
}
