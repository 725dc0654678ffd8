/* view_stats_test.c - history series over a range (view/stats.h) from a real store: points
 * aligned to their step and dense, each row in the point of its time, totals and latency
 * quantiles, the spend by day, ISO week and month, the ranges' names, and the document. */
#include <stdlib.h>
#include <string.h>

#include "../shm/shm_tutil.h"
#include "t.h"
#include "view/stats.h"

static void serve(shm_t *s, const char *key, const char *model, int cls, uint32_t ms, uint64_t cost,
                  int64_t now)
{
    const char *names[1] = {key};
    shm_admit_req_t req = {.names = names, .count = 1, .model = model};
    shm_resv_t r;
    int64_t retry;
    shm_outcome_t o;
    if (shm_key_admit(s, &req, now, &r, &retry) != 0) {
        T_OK(0, "admitted");
        return;
    }
    shm_outcome_init(&o, cls);
    o.total_ms = ms;
    o.ttfb_ms = ms / 2;
    o.prompt_tokens = 10;
    o.completion_tokens = 5;
    o.cost_micro_usd = cost;
    T_EQ_INT(shm_key_record(s, &r, &o, now), 0, "recorded");
}

int main(void)
{
    vw_range_t r;
    T_EQ_INT(vw_range_parse("1h", &r), 0, "1h");
    T_OK(r.res == SHM_SR_MINUTE && r.step_ms == 60000 && r.span_ms == 3600000, "1h: minutes");
    T_EQ_INT(vw_range_parse("30d", &r), 0, "30d");
    T_OK(r.res == SHM_SR_HOUR && r.step_ms == 6 * 3600000LL, "30d: hours in 6 h points");
    T_EQ_INT(vw_range_parse("90d", &r), 0, "90d");
    T_OK(r.res == SHM_SR_DAY, "90d: days");
    T_EQ_INT(vw_range_parse("2h", &r), -1, "2h is not a range");
    T_EQ_INT(vw_range_parse(NULL, &r), -1, "NULL");

    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    /* T0 is a UTC midnight, a Sunday or not: the week test below works it out */
    const int64_t now = T0 + 10 * 3600000LL + 30 * 60000 + 15000; /* 10:30:15 */
    shm_t *s = tu_open(dir, T0);
    T_OK(s != NULL, "store");
    if (!s)
        return t_done();
    shm_key_spec_t k = tu_spec("k", "p", 0, 0, 0, 0);
    T_EQ_INT(shm_keys_sync(s, &k, 1, T0, NULL), 0, "key");
    serve(s, "k", "m", SHM_CL_SUCCESS, 100, 1000, now);               /* point 59 (now) */
    serve(s, "k", "m", SHM_CL_SUCCESS, 300, 2000, now - 60000);       /* point 58 */
    serve(s, "k", "m", SHM_CL_429, 0, 0, now - 60000);                /* point 58 */
    serve(s, "k", "m", SHM_CL_SUCCESS, 50, 1, now - 3600000);         /* out of the hour */
    serve(s, "k", "m2", SHM_CL_SUCCESS, 70, 7, now - 2 * 86400000LL); /* 2 days ago */

    vw_stats_t st;
    T_EQ_INT(vw_range_parse("1h", &r), 0, "1h");
    T_EQ_INT(vw_stats_load(s, now, &r, SHM_SS_MODEL, NULL, &st), 0, "loaded");
    T_EQ_INT(st.npoints, 60, "60 points");
    T_EQ_INT(st.to_ms, T0 + 10 * 3600000LL + 31 * 60000, "the last point holds now");
    T_EQ_INT(st.from_ms, st.to_ms - 3600000, "an hour before");
    T_EQ_INT(st.n, 2, "m (in the hour) and m2 (in the spend only)");
    if (st.n == 2) {
        const vw_series_t *m = &st.series[0], *m2 = &st.series[1];
        T_OK(!strcmp(m->name, "m") && !strcmp(m2->name, "m2"), "sorted by name");
        T_EQ_INT(shm_stats_outcomes(&m->points[59]), 1, "now's point: one");
        T_EQ_INT(shm_stats_outcomes(&m->points[58]), 2, "the minute before: two");
        T_EQ_INT(m->points[58].by_class[SHM_CL_429], 1, "  one of them a 429");
        T_EQ_INT(shm_stats_outcomes(&m->points[0]), 0,
                 "the first point: none (the 50 ms one "
                 "is an hour ago, before from)");
        T_EQ_INT(shm_stats_outcomes(&m->total), 3, "total over the hour: three");
        T_EQ_INT(m->total.cost_micro_usd, 3000, "total cost");
        uint32_t p99 = shm_stats_quantile(m->total.lat, m->total.lat_max_ms, 0.99);
        T_OK(p99 > 200 && p99 <= 300, "p99 in the 300 ms bucket");
        T_EQ_INT(shm_stats_outcomes(&m2->total), 0, "m2: nothing in the hour");
        const int64_t today = now / DAY_MS;
        T_EQ_INT(m->days[VW_SPEND_DAYS - 1].start_day, today, "the last day is today");
        T_EQ_INT(m->days[VW_SPEND_DAYS - 1].requests, 4, "m today: four");
        T_EQ_INT(m->days[VW_SPEND_DAYS - 1].cost_micro_usd, 3001, "m today: cost");
        T_EQ_INT(m2->days[VW_SPEND_DAYS - 3].requests, 1, "m2: two days ago");
        T_EQ_INT(m2->days[VW_SPEND_DAYS - 3].cost_micro_usd, 7, "  its cost");
        int64_t monday = m->weeks[VW_SPEND_WEEKS - 1].start_day;
        T_OK(monday <= today && today - monday < 7 && ((monday + 3) % 7) == 0,
             "this week starts on a Monday (day 0 was a Thursday)");
        uint64_t w = m2->weeks[VW_SPEND_WEEKS - 1].requests +
                     (VW_SPEND_WEEKS > 1 ? m2->weeks[VW_SPEND_WEEKS - 2].requests : 0);
        T_EQ_INT(w, 1, "m2's request is in this week or the last");
        T_EQ_INT(m->months[VW_SPEND_MONTHS - 1].requests +
                     m2->months[VW_SPEND_MONTHS - 1].requests +
                     m2->months[VW_SPEND_MONTHS - 2].requests,
                 5, "this month (and the last, for m2) hold all five");
        char buf[16];
        T_OK(!strcmp(vw_fmt_day(m->months[VW_SPEND_MONTHS - 1].start_day, buf, sizeof(buf)) + 8,
                     "01"),
             "a month starts on the 1st");
    }
    vw_buf_t b = {0};
    vw_doc_stats(&b, now, "/state", &st);
    T_OK(b.p && strstr(b.p, "\"command\":\"stats\"") && strstr(b.p, "\"range\":\"1h\"") &&
             strstr(b.p, "\"step_ms\":60000") && strstr(b.p, "\"name\":\"m2\""),
         "the document");
    T_OK(b.p && b.p[b.len - 1] == '\n' && !b.failed, "one line");
    vw_buf_free(&b);
    vw_stats_free(&st);

    T_EQ_INT(vw_stats_load(s, now, &r, SHM_SS_KEY, "k", &st), 0, "key k");
    T_OK(st.n == 1 && shm_stats_outcomes(&st.series[0].total) == 3, "k's hour");
    vw_stats_free(&st);
    T_EQ_INT(vw_stats_load(s, now, &r, SHM_SS_KEY, "nope", &st), 0, "a key without rows");
    T_EQ_INT(st.n, 0, "no series");
    vw_stats_free(&st);
    shm_store_close(s);
    tu_rmdir(parent);
    return t_done();
}
