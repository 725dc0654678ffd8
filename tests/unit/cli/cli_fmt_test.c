/* cli_fmt_test.c - unit tests of llmgatectl's formats (cli/fmt.c) and of the pure parts of
 * its rows and tables (cli/rows.c, cli/table.c): every format cli/README.md documents. */
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "t.h"

static void test_durations(void)
{
    static const struct {
        const char *in;
        int64_t ms; /* -1 = invalid */
    } cases[] = {
        {"30s", 30000},
        {"5m", 300000},
        {"2h", 7200000},
        {"1h30m", 5400000},
        {"90", 90000},
        {"250ms", 250},
        {"1d12h", 129600000},
        {"1m30s", 90000},
        {"", -1},
        {"0", -1},
        {"0s", -1},
        {"5x", -1},
        {"m", -1},
        {"-5m", -1},
        {"1h30", -1},
        {"5 m", -1},
        {"367d", -1},
        {"99999999999999999999", -1},
        {"1.5h", -1},
    };
    char b[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 0;
        int rc = vw_parse_duration(cases[i].in, &ms);
        if (cases[i].ms < 0)
            T_EQ_INT(rc, -1, "duration \"%s\" refused", cases[i].in);
        else
            T_OK(rc == 0 && ms == cases[i].ms, "duration \"%s\" = %lld ms (got %lld)", cases[i].in,
                 (long long)cases[i].ms, (long long)ms);
    }
    T_EQ_STR(vw_fmt_dur(42000, b, sizeof(b)), "42s", "42 s");
    T_EQ_STR(vw_fmt_dur(41001, b, sizeof(b)), "42s", "rounded up to the second");
    T_EQ_STR(vw_fmt_dur(300000, b, sizeof(b)), "5m", "5 min");
    T_EQ_STR(vw_fmt_dur(303000, b, sizeof(b)), "5m3s", "5 min 3 s");
    T_EQ_STR(vw_fmt_dur(5400000, b, sizeof(b)), "1h30m", "1 h 30");
    T_EQ_STR(vw_fmt_dur(7200000, b, sizeof(b)), "2h", "2 h");
    T_EQ_STR(vw_fmt_dur(183600000, b, sizeof(b)), "2d3h", "2 d 3 h");
    T_EQ_STR(vw_fmt_dur(0, b, sizeof(b)), "0s", "zero");
    T_EQ_STR(vw_fmt_dur(-5, b, sizeof(b)), "0s", "negative");
}

static void test_numbers(void)
{
    char b[32];

    T_EQ_STR(vw_fmt_count(0, b, sizeof(b)), "0", "count 0");
    T_EQ_STR(vw_fmt_count(99999, b, sizeof(b)), "99999", "exact below 100000");
    T_EQ_STR(vw_fmt_count(100000, b, sizeof(b)), "100k", "100k");
    T_EQ_STR(vw_fmt_count(123456, b, sizeof(b)), "123k", "123k");
    T_EQ_STR(vw_fmt_count(999600, b, sizeof(b)), "1.00M", "999.6k moves on to 1.00M");
    T_EQ_STR(vw_fmt_count(1234567, b, sizeof(b)), "1.23M", "1.23M");
    T_EQ_STR(vw_fmt_count(45600000000ULL, b, sizeof(b)), "45.6G", "45.6G");
    T_EQ_STR(vw_fmt_used(12, 100, b, sizeof(b)), "12/100", "used/limit");
    T_EQ_STR(vw_fmt_used(3, 0, b, sizeof(b)), "3/-", "unlimited is -");
    T_EQ_STR(vw_fmt_used(4100, 150000, b, sizeof(b)), "4100/150k", "compact limit");
    T_EQ_STR(vw_fmt_ms(0, 0, b, sizeof(b)), "-", "no latency");
    T_EQ_STR(vw_fmt_ms(0, 1, b, sizeof(b)), "0ms", "0 ms sample");
    T_EQ_STR(vw_fmt_ms(850, 1, b, sizeof(b)), "850ms", "ms");
    T_EQ_STR(vw_fmt_ms(1250, 1, b, sizeof(b)), "1.25s", "seconds, 2 decimals");
    T_EQ_STR(vw_fmt_ms(12500, 1, b, sizeof(b)), "12.5s", "seconds, 1 decimal");
    T_EQ_STR(vw_fmt_ms(125000, 1, b, sizeof(b)), "125s", "seconds");
    T_EQ_STR(vw_fmt_age(400, b, sizeof(b)), "0.4s ago", "age below a minute: tenths");
    T_EQ_STR(vw_fmt_age(-30, b, sizeof(b)), "0.0s ago", "age of a clock ahead of ours");
    T_EQ_STR(vw_fmt_age(303000, b, sizeof(b)), "5m3s ago", "age from a minute: as durations");
    T_EQ_STR(vw_fmt_us(850, b, sizeof(b)), "850us", "us");
    T_EQ_STR(vw_fmt_us(1234, b, sizeof(b)), "1.2ms", "ms, 1 decimal below 100 ms");
    T_EQ_STR(vw_fmt_us(1250000, b, sizeof(b)), "1.25s", "then as latencies");
    T_EQ_STR(vw_fmt_rate(0, 0, b, sizeof(b)), "-", "no outcomes");
    T_EQ_STR(vw_fmt_rate(0, 1, b, sizeof(b)), "0%", "no errors");
    T_EQ_STR(vw_fmt_rate(0.008, 1, b, sizeof(b)), "0.8%", "0.8%%");
    T_EQ_STR(vw_fmt_rate(0.125, 1, b, sizeof(b)), "12%", "12%% (no decimal from 10%%)");
    T_EQ_STR(vw_fmt_rate(1, 1, b, sizeof(b)), "100%", "100%%");
    T_EQ_STR(vw_fmt_cost(12300, b, sizeof(b)), "$0.0123", "cost below $100");
    T_EQ_STR(vw_fmt_cost(1234567800, b, sizeof(b)), "$1234.57", "cost from $100");
    T_EQ_STR(vw_fmt_time(0, VW_T_HM, b, sizeof(b)), "-", "time 0 is -");
    T_EQ_STR(vw_fmt_time(86400000LL * 20000, VW_T_HM, b, sizeof(b)), "00:00Z", "HH:MMZ");
    T_EQ_STR(vw_fmt_time(86400000LL * 20000 + 3723000, VW_T_HMS, b, sizeof(b)), "01:02:03Z",
             "HH:MM:SSZ");
    T_EQ_STR(vw_fmt_time(86400000LL * 20000, VW_T_FULL, b, sizeof(b)), "2024-10-04 00:00:00Z",
             "full");
    T_EQ_STR(vw_printable("a\x1b[2Jb\x7f", b, sizeof(b)), "a?[2Jb?", "control bytes shown as ?");
}

static void test_json_str(void)
{
    vw_buf_t b = {0};

    vw_json_escape(&b, "plain");
    T_EQ_STR(b.p, "\"plain\"", "plain string");
    b.len = 0;
    vw_json_escape(&b, "q\"b\\s\n\t\x01");
    T_EQ_STR(b.p, "\"q\\\"b\\\\s\\n\\t\\u0001\"", "quote, backslash, controls escaped");
    b.len = 0;
    vw_json_escape(&b, "caf\xc3\xa9 \xe2\x82\xac");
    T_EQ_STR(b.p, "\"caf\xc3\xa9 \xe2\x82\xac\"", "valid UTF-8 kept");
    b.len = 0;
    vw_json_escape(&b, "a\xff"
                       "b\xc3(\xed\xa0\x80");
    T_EQ_STR(b.p, "\"a\\ufffdb\\ufffd(\\ufffd\\ufffd\\ufffd\"",
             "invalid bytes, truncated sequence and surrogate -> U+FFFD");
    b.len = 0;
    vw_json_escape(&b, NULL);
    T_EQ_STR(b.p, "\"\"", "NULL is the empty string");
    vw_buf_free(&b);
}

static void test_widths(void)
{
    const char *s = "\x1b[31mred\x1b[39m t\xc3\xa9xt";
    vw_buf_t b = {0};

    T_EQ_INT(vw_visible_width(s, strlen(s)), 8, "escapes and UTF-8 continuation not counted");
    vw_buf_add_cut(&b, s, strlen(s), 5);
    T_EQ_STR(b.p, "\x1b[31mred\x1b[39m t\x1b[0m", "cut keeps escapes, resets colour");
    b.len = 0;
    vw_buf_add_cut(&b, "abc", 3, 10);
    T_EQ_STR(b.p, "abc", "no cut, nothing added");
    vw_buf_free(&b);
    T_EQ_STR(vw_color_on(VW_C_RED, 0), "", "no colour when off");
    T_EQ_STR(vw_color_on(VW_C_RED, 1), "\x1b[31m", "red");
}

static vw_key_t row(const char *name, int status, uint32_t rpm_used, uint32_t rpm)
{
    vw_key_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.k.name, sizeof(r.k.name), "%s", name);
    snprintf(r.k.provider, sizeof(r.k.provider), "p");
    r.k.status = status;
    r.k.rpm_used = rpm_used;
    r.k.rpm = rpm;
    return r;
}

static void test_rows(void)
{
    const int64_t now = 86400000LL * 20000 + 3600000; /* 01:00Z */
    shm_latency_t lat = {.count = 4, .total_ms = {100, 200, 300, 400}, .ttfb_ms = {1, 2, 3, 4}};
    vw_key_t r = row("k", SHM_ST_COOLING, 0, 0), v[3];

    r.k.cooldown_until_ms = now + 42000;
    r.k.by_class[SHM_CL_SUCCESS] = 7;
    r.k.by_class[SHM_CL_429] = 1;
    r.k.by_class[SHM_CL_5XX] = 1;
    r.k.by_class[SHM_CL_OTHER] = 1;
    vw_key_derive(&r, &lat, now, 0);
    T_EQ_STR(r.status_text, "cooling 42s", "cooling with time left");
    T_OK(r.errors == 2 && r.outcomes == 10 && r.error_rate > 0.199 && r.error_rate < 0.201,
         "error rate = (429+5xx+timeout+connect+auth) / all outcomes");
    T_OK(r.samples == 4 && r.total.p50 == 200 && r.total.p99 == 400 && r.ttfb.p95 == 4,
         "percentiles from the ring");
    r.k.cooldown_until_ms = now - 1;
    vw_key_derive(&r, NULL, now, 0);
    T_OK(r.state == SHM_ST_HALF_OPEN && strcmp(r.status_text, "half-open") == 0 && !r.samples,
         "cooldown passed: half-open");
    r = row("k", SHM_ST_ACTIVE, 0, 0);
    r.k.rpd = 3;
    r.k.rpd_used = 3;
    vw_key_derive(&r, NULL, now, 0);
    T_EQ_STR(r.status_text, "depleted until 00:00Z", "day quota used up: until the next day");
    T_OK(r.limited == VW_LIM_RPD && r.day_reset_ms == 86400000LL * 20001, "  ... limited by rpd");
    r.k.day_offset_s = 7200;
    vw_key_derive(&r, NULL, now, 0);
    T_EQ_STR(r.status_text, "depleted until 02:00Z", "day offset moves the reset");
    r = row("k", SHM_ST_ACTIVE, 0, 0);
    vw_key_derive(&r, NULL, now, now + 12000);
    T_EQ_STR(r.status_text, "circuit open 12s", "provider circuit open");
    r = row("k", SHM_ST_DEPLETED, 0, 0);
    vw_key_derive(&r, NULL, now, 0);
    T_EQ_STR(r.status_text, "depleted", "depleted without a time");
    r.k.orphaned = 1;
    vw_key_derive(&r, NULL, now, 0);
    T_OK(r.state == VW_STATE_ORPHANED && !strcmp(r.status_text, "orphaned"), "orphaned");

    v[0] = row("b", SHM_ST_ACTIVE, 5, 10);
    v[1] = row("a", SHM_ST_DISABLED, 9, 10);
    v[2] = row("c", SHM_ST_ACTIVE, 5, 10);
    for (int i = 0; i < 3; i++)
        vw_key_derive(&v[i], NULL, now, 0);
    ctl_rows_sort(v, 3, CTL_SORT_RPM, 0);
    T_OK(!strcmp(v[0].k.name, "a") && !strcmp(v[1].k.name, "b") && !strcmp(v[2].k.name, "c"),
         "sort rpm: largest first, ties by name");
    ctl_rows_sort(v, 3, CTL_SORT_NAME, 1);
    T_OK(!strcmp(v[0].k.name, "c") && !strcmp(v[2].k.name, "a"), "sort name --reverse");
    ctl_rows_sort(v, 3, CTL_SORT_STATUS, 0);
    T_EQ_STR(v[2].k.name, "a", "sort status: active first");
    T_EQ_INT(ctl_sort_parse("p95"), CTL_SORT_P95, "--sort p95");
    T_EQ_INT(ctl_sort_parse("bogus"), -1, "--sort bogus refused");
    T_EQ_INT(vw_state_parse("half-open", 9), SHM_ST_HALF_OPEN, "state half-open");
    T_EQ_INT(vw_state_parse("orphaned", 8), VW_STATE_ORPHANED, "state orphaned");
    T_EQ_INT(vw_state_parse("sleepy", 6), -1, "unknown state");
}

static void test_table(void)
{
    const int64_t now = 86400000LL * 20000;
    vw_key_t v[2] = {row("key-one", SHM_ST_ACTIVE, 12, 100), row("k2", SHM_ST_DISABLED, 0, 0)};
    vw_buf_t b = {0};
    uint64_t counts[CTL_HIST_BUCKETS];
    uint32_t samples[] = {5, 10, 11, 10001, 99999};

    v[0].k.requests = 123456;
    for (int i = 0; i < 2; i++)
        vw_key_derive(&v[i], NULL, now, 0);
    ctl_render_keys(v, 2, 0, &b);
    T_EQ_STR(b.p,
             "NAME     PROVIDER  STATUS       RPM  RPD  TPM  INFL  P50  P95  P99  ERR  REQS  "
             "TOKENS     COST\n"
             "key-one  p         active    12/100  0/-  0/-   0/-    -    -    -    -  123k  "
             "     0  $0.0000\n"
             "k2       p         disabled     0/-  0/-  0/-   0/-    -    -    -    -     0  "
             "     0  $0.0000\n",
             "table: widest cell sets the width, numbers right-aligned, compact counts, - for "
             "no data");
    T_OK(strstr(b.p, "\x1b") == NULL, "no escape codes without colour");
    T_OK(strstr(b.p, " \n") == NULL, "no trailing blanks");
    b.len = 0;
    ctl_render_keys(v, 2, 1, &b);
    T_OK(strstr(b.p, "\x1b[32mactive\x1b[0m") && strstr(b.p, "\x1b[31mdisabled\x1b[0m"),
         "colours: active green, disabled red");
    vw_buf_free(&b);
    ctl_histogram(samples, 5, counts);
    T_OK(counts[0] == 2 && counts[1] == 1 && counts[CTL_HIST_BUCKETS - 1] == 2,
         "histogram: <= bound, the rest in the last bucket");
}

/* `cluster`'s table from a view as cluster.c reads it: a live node, a gone one, a key two
 * nodes hold grants of, a client key with a cost budget. */
static void test_cluster_table(void)
{
    ctl_cnode_t nodes[2] = {{.id = "host-a",
                             .listed = 1,
                             .mode = "leased",
                             .pid = 42,
                             .last_contact_ms = 1000000 - 400,
                             .grants = 3,
                             .units = 12,
                             .refills = 7,
                             .refill_p50_us = 850,
                             .refill_max_us = 2500,
                             .version = "1.2"},
                            {.id = "host-b", .listed = 1, .gone = 1}};
    ctl_cent_t ents[2] = {{.kind = SHM_LK_KEY,
                           .name = "k1",
                           .provider = "p",
                           .limit = {[SHM_LD_RPM] = 60, [SHM_LD_RPD] = 1000},
                           .units = {[SHM_LD_RPM] = 60, [SHM_LD_RPD] = 9},
                           .grants = {[SHM_LD_RPM] = 2, [SHM_LD_RPD] = 1},
                           .first_use = 0,
                           .n_uses = 2},
                          {.kind = SHM_LK_CLIENT,
                           .name = "team",
                           .limit = {[SHM_LD_COST_DAY] = 5000000},
                           .units = {[SHM_LD_COST_DAY] = 1234567},
                           .grants = {[SHM_LD_COST_DAY] = 1},
                           .first_use = 2,
                           .n_uses = 1}};
    ctl_cuse_t uses[3] = {
        {.node = 0,
         .units = {[SHM_LD_RPM] = 20, [SHM_LD_RPD] = 9},
         .grants = {[SHM_LD_RPM] = 1, [SHM_LD_RPD] = 1}},
        {.node = 1, .units = {[SHM_LD_RPM] = 40}, .grants = {[SHM_LD_RPM] = 1}},
        {.node = 0, .units = {[SHM_LD_COST_DAY] = 1234567}, .grants = {[SHM_LD_COST_DAY] = 1}}};
    ctl_cluster_t v = {.redis = "127.0.0.1:6379",
                       .prefix = "llmgate",
                       .expected_nodes = 3,
                       .now_ms = 1000000,
                       .nodes = nodes,
                       .n_nodes = 2,
                       .ents = ents,
                       .n_ents = 2,
                       .uses = uses,
                       .n_uses = 3};
    vw_buf_t b = {0};

    ctl_render_cluster(&v, 0, &b);
    T_EQ_STR(b.p,
             "redis 127.0.0.1:6379  prefix llmgate  nodes 2 (1 gone), 3 expected\n"
             "\n"
             "NODE    MODE    CONTACT   PID  GRANTS  UNITS  REFILLS  REFILL P50  REFILL MAX  "
             "VERSION\n"
             "host-a  leased  0.4s ago   42       3     12        7       850us       2.5ms  "
             "1.2\n"
             "host-b  -       gone        -       -      -        -           -           -  -\n"
             "\n"
             "KEY  NODE      RPM  TPM     RPD\n"
             "k1   host-a  20/60    -  9/1000\n"
             "k1   host-b  40/60    -  0/1000\n"
             "k1   (all)   60/60    -  9/1000\n"
             "\n"
             "CLIENT  NODE    RPM  RPD  TOK/D  TOK/M           COST/D  COST/M\n"
             "team    host-a    -    -      -      -  $1.2346/$5.0000       -\n"
             "team    (all)     -    -      -      -  $1.2346/$5.0000       -\n",
             "cluster: nodes (gone as gone), then per key and client the nodes' units of "
             "each limit and their sum");
    b.len = 0;
    ctl_render_cluster(&v, 1, &b);
    T_OK(strstr(b.p, "\x1b[32mleased\x1b[0m") && strstr(b.p, "\x1b[31m60/60\x1b[0m"),
         "colours: leased green, a limit all granted red");
    vw_buf_free(&b);
}

static void test_dates(void)
{
    int64_t d = -1;
    char b[32];
    T_OK(vw_parse_date("1970-01-01", 0, &d) == 0 && d == 0, "1970-01-01 is day 0");
    T_OK(vw_parse_date("2026-12-04", 0, &d) == 0 && d == 20791, "2026-12-04 is day 20791");
    T_OK(!strcmp(vw_fmt_day(d, b, sizeof(b)), "2026-12-04"), "and back");
    T_OK(vw_parse_date("2026-12", 0, &d) == 0 && !strcmp(vw_fmt_day(d, b, sizeof(b)), "2026-12-01"),
         "a month from its first day");
    T_OK(vw_parse_date("2026-12", 1, &d) == 0 && !strcmp(vw_fmt_day(d, b, sizeof(b)), "2026-12-31"),
         "  ... to its last (December)");
    T_OK(vw_parse_date("2024-02", 1, &d) == 0 && !strcmp(vw_fmt_day(d, b, sizeof(b)), "2024-02-29"),
         "  ... February of a leap year");
    T_OK(vw_parse_date("2024-02-29", 0, &d) == 0, "2024-02-29 is a date");
    T_OK(vw_parse_date("2026-02-29", 0, &d) == -1, "2026-02-29 is not");
    T_OK(vw_parse_date("2026-13-01", 0, &d) == -1, "no month 13");
    T_OK(vw_parse_date("2026-1-01", 0, &d) == -1, "two-digit months");
    T_OK(vw_parse_date("1969-12-31", 0, &d) == -1, "not before 1970");
    T_OK(vw_parse_date("2026-12-04x", 0, &d) == -1 && vw_parse_date("", 0, &d) == -1 &&
             vw_parse_date("2026/12/04", 0, &d) == -1 && vw_parse_date("today", 0, &d) == -1,
         "other text is refused");
    T_OK(vw_day_month(20791) == 2026 * 12 + 11, "day 20791 is in December 2026");
    T_OK(!strcmp(vw_fmt_month(2026 * 12 + 11, b, sizeof(b)), "2026-12"), "month text");
    int64_t first = -1;
    T_OK(vw_parse_date("2026-12-01", 0, &first) == 0 && ctl_month_first(20791) == first &&
             ctl_month_first(first) == first,
         "the first day of a day's month");
    T_OK(!strcmp(vw_fmt_cost_used(1200, 5000000, b, sizeof(b)), "$0.0012/$5.0000") &&
             !strcmp(vw_fmt_cost_used(1200, 0, b, sizeof(b)), "$0.0012/-"),
         "a cost used of its budget");
    T_OK(!strcmp(vw_fmt_usd6(312, b, sizeof(b)), "0.000312") &&
             !strcmp(vw_fmt_usd6(12500000, b, sizeof(b)), "12.500000"),
         "exact dollars for exports");
}

int main(void)
{
    test_durations();
    test_dates();
    test_numbers();
    test_json_str();
    test_widths();
    test_rows();
    test_table();
    test_cluster_table();
    return t_done();
}
