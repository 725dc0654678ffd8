/* stats.c - `stats`: the history (shm/shm_stats.h) per model or key over a range, as a table
 * with a sparkline of requests on a terminal, or view/stats.h's document with --json. */
#include "cli/ctl.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "view/stats.h"

#define SPARK_MAX 48 /* characters of a sparkline at most: points are merged to fit */

static const char *const spark_glyphs[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                            "\u2585", "\u2586", "\u2587", "\u2588"};

/* A sparkline of the requests of se's points, merged into at most SPARK_MAX columns. */
static void sparkline(const vw_stats_t *st, const vw_series_t *se, vw_buf_t *o)
{
    uint64_t col[SPARK_MAX] = {0}, max = 0;
    unsigned per = (st->npoints + SPARK_MAX - 1) / SPARK_MAX, ncol;
    if (per == 0)
        per = 1;
    ncol = (st->npoints + per - 1) / per;
    for (unsigned i = 0; i < st->npoints; i++)
        col[i / per] += shm_stats_outcomes(&se->points[i]);
    for (unsigned i = 0; i < ncol; i++)
        if (col[i] > max)
            max = col[i];
    for (unsigned i = 0; i < ncol; i++) {
        if (col[i] == 0) {
            vw_buf_puts(o, " ");
            continue;
        }
        unsigned g = max ? (unsigned)((col[i] * 7 + max - 1) / max) : 0;
        vw_buf_puts(o, spark_glyphs[g > 7 ? 7 : g]);
    }
}

static void render(ctl_t *c, const vw_stats_t *st, int spark, vw_buf_t *o)
{
    char a[32], b[32], d[32], e[32], f[32], g[32], h[32], k[32], m[32], step[32];
    size_t w = 5;
    const char *what = st->scope == SHM_SS_MODEL ? "MODEL" : "KEY";

    for (unsigned i = 0; i < st->n; i++)
        if (strlen(st->series[i].name) > w)
            w = strlen(st->series[i].name);
    vw_buf_printf(o, "history by %s over %s (%u points of %s), %s to %s\n",
                  st->scope == SHM_SS_MODEL ? "model" : "key", st->range.name, st->npoints,
                  vw_fmt_dur(st->range.step_ms, step, sizeof(step)),
                  vw_fmt_time(st->from_ms, VW_T_FULL, a, sizeof(a)),
                  vw_fmt_time(st->to_ms, VW_T_FULL, b, sizeof(b)));
    if (st->n == 0) {
        vw_buf_puts(o, "no outcomes recorded in this range\n");
        return;
    }
    vw_buf_printf(o, "%s%-*s %8s %6s %7s %7s %7s %7s %8s %10s %10s %10s%s%s\n",
                  vw_color_on(VW_C_BOLD, c->color), (int)w, what, "REQS", "ERR%", "P50", "P95",
                  "P99", "TTFB95", "TOKENS", "COST", "TODAY", "MONTH", spark ? "  REQUESTS" : "",
                  vw_color_off(VW_C_BOLD, c->color));
    for (unsigned i = 0; i < st->n; i++) {
        const vw_series_t *se = &st->series[i];
        const shm_stats_t *t = &se->total;
        uint64_t out = shm_stats_outcomes(t), samples = shm_stats_samples(t);
        char nb[SHM_NAME_MAX * 2 + 2], mo[32];
        vw_buf_printf(
            o, "%-*s %8s %6s %7s %7s %7s %7s %8s %10s %10s %10s", (int)w,
            vw_printable(se->name, nb, sizeof(nb)), vw_fmt_count(out, a, sizeof(a)),
            vw_fmt_rate(out ? (double)shm_stats_errors(t) / (double)out : 0, out > 0, b, sizeof(b)),
            vw_fmt_ms(shm_stats_quantile(t->lat, t->lat_max_ms, 0.50), samples > 0, d, sizeof(d)),
            vw_fmt_ms(shm_stats_quantile(t->lat, t->lat_max_ms, 0.95), samples > 0, e, sizeof(e)),
            vw_fmt_ms(shm_stats_quantile(t->lat, t->lat_max_ms, 0.99), samples > 0, f, sizeof(f)),
            vw_fmt_ms(shm_stats_quantile(t->ttfb, t->ttfb_max_ms, 0.95), samples > 0, g, sizeof(g)),
            vw_fmt_count(t->prompt_tokens + t->completion_tokens, h, sizeof(h)),
            vw_fmt_cost(t->cost_micro_usd, k, sizeof(k)),
            vw_fmt_cost(se->days[VW_SPEND_DAYS - 1].cost_micro_usd, m, sizeof(m)),
            vw_fmt_cost(se->months[VW_SPEND_MONTHS - 1].cost_micro_usd, mo, sizeof(mo)));
        if (spark) {
            vw_buf_puts(o, "  ");
            sparkline(st, se, o);
        }
        vw_buf_puts(o, "\n");
    }
}

int ctl_cmd_stats(ctl_t *c)
{
    vw_range_t r;
    vw_stats_t st;
    vw_buf_t o = {0};
    const char *name = c->s_model ? c->s_model : c->s_key;
    int scope = c->s_key ? SHM_SS_KEY : SHM_SS_MODEL, rc;

    if (vw_range_parse(c->s_range ? c->s_range : "1h", &r) != 0)
        return ctl_fail(CTL_EXIT_USAGE, "--range: \"%s\" is not a range (use %s)", c->s_range,
                        vw_range_names);
    c->now_ms = ctl_now_ms();
    if ((rc = vw_stats_load(c->shm, c->now_ms, &r, scope, name, &st)) != 0)
        return ctl_store_error(c, rc, "reading the history", NULL);
    if (c->json)
        vw_doc_stats(&o, c->now_ms, c->state_dir, &st);
    else
        render(c, &st, isatty(STDOUT_FILENO), &o);
    vw_stats_free(&st);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&o);
    return rc;
}
