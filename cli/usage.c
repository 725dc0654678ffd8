/* usage.c - `usage`: what clients used, by UTC day or month and model, for billing exports
 * (a table, CSV or JSON), and the usage figures that `clients` and `client NAME` show.
 *
 * The rows are the store's (shm/shm_usage.h): one per client, day and model, written by the
 * servers in the transaction that settles the client's budgets, so an export agrees with the
 * budgets and with the access log (a request served is one row count however many attempts
 * it took). Months and per-model totals are sums of those rows, made here.
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/shm_usage.h"

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

void ctl_usage_add(shm_usage_row_t *to, const shm_usage_row_t *r)
{
    to->requests = add_sat(to->requests, r->requests);
    to->prompt_tokens = add_sat(to->prompt_tokens, r->prompt_tokens);
    to->completion_tokens = add_sat(to->completion_tokens, r->completion_tokens);
    to->cost_micro_usd = add_sat(to->cost_micro_usd, r->cost_micro_usd);
    to->errors = add_sat(to->errors, r->errors);
    to->refused = add_sat(to->refused, r->refused);
}

static int cmp_row(const void *a, const void *b)
{
    const shm_usage_row_t *x = a, *y = b;
    int c = strcmp(x->client, y->client);
    if (c)
        return c;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return strcmp(x->model, y->model);
}

/* Rows of the same (client, period, model) merged into the first; sorted first. */
static unsigned merge(shm_usage_row_t *rows, unsigned n)
{
    unsigned out = 0;
    if (n == 0)
        return 0; /* rows may be NULL */
    qsort(rows, n, sizeof(*rows), cmp_row);
    for (unsigned i = 0; i < n; i++) {
        if (out && cmp_row(&rows[out - 1], &rows[i]) == 0)
            ctl_usage_add(&rows[out - 1], &rows[i]);
        else
            rows[out++] = rows[i];
    }
    return out;
}

int ctl_usage_load(ctl_t *c, const char *client, int64_t from_day, int64_t to_day, int by,
                   shm_usage_row_t **rows, unsigned *n)
{
    int rc = shm_usage(c->shm, client, from_day, to_day, rows, n);
    if (rc != 0)
        return ctl_store_error(c, rc, "reading the usage of client", client);
    if (by == CTL_BY_DAY)
        return 0;
    for (unsigned i = 0; i < *n; i++)
        (*rows)[i].day = by == CTL_BY_MONTH ? vw_day_month((*rows)[i].day) : -1;
    *n = merge(*rows, *n);
    return 0;
}

int64_t ctl_today(const ctl_t *c)
{
    return shm_usage_day(c->now_ms);
}

int64_t ctl_month_first(int64_t day)
{
    char m[16];
    int64_t first = day;
    /* "YYYY-MM" of its month, read back as that month's first day */
    vw_parse_date(vw_fmt_month(vw_day_month(day), m, sizeof(m)), 0, &first);
    return first;
}

static int cmp_crow_name(const void *key, const void *row)
{
    return strcmp(key, ((const ctl_crow_t *)row)->u.name);
}

int ctl_usage_sums(ctl_t *c, ctl_crow_t *rows, unsigned n)
{
    int64_t today = ctl_today(c), first = ctl_month_first(today);
    shm_usage_row_t *u = NULL;
    unsigned nu = 0;

    for (unsigned i = 0; i < n; i++) {
        memset(&rows[i].today, 0, sizeof(rows[i].today));
        memset(&rows[i].month, 0, sizeof(rows[i].month));
    }
    if (n == 0)
        return 0;
    int rc = shm_usage(c->shm, n == 1 ? rows[0].u.name : NULL, first, today, &u, &nu);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < nu; i++) {
        ctl_crow_t *r = bsearch(u[i].client, rows, n, sizeof(*rows), cmp_crow_name);
        if (!r)
            continue; /* a client gone from the config and the store: `usage` shows it */
        ctl_usage_add(&r->month, &u[i]);
        if (u[i].day == today)
            ctl_usage_add(&r->today, &u[i]);
    }
    free(u);
    return 0;
}

/* ---- the command -------------------------------------------------------------------------- */

static const char *period_text(int by, int64_t v, char *buf, size_t len)
{
    return by == CTL_BY_MONTH ? vw_fmt_month(v, buf, len) : vw_fmt_day(v, buf, len);
}

/* RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. Names are
 * [A-Za-z0-9._-] today; this keeps an export valid whatever a name holds. */
static void csv_field(vw_buf_t *o, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        vw_buf_puts(o, s);
        return;
    }
    vw_buf_puts(o, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            vw_buf_add(o, "\"", 1);
        vw_buf_add(o, p, 1);
    }
    vw_buf_puts(o, "\"");
}

static void csv(const ctl_usage_t *u, vw_buf_t *o)
{
    char p[16], cost[32];
    vw_buf_printf(o,
                  "client,%s,model,requests,prompt_tokens,completion_tokens,tokens,cost_usd,"
                  "errors,refused\n",
                  u->by == CTL_BY_MONTH ? "month" : "day");
    for (unsigned i = 0; i < u->n; i++) {
        const shm_usage_row_t *r = &u->rows[i];
        csv_field(o, r->client);
        vw_buf_printf(o, ",%s,", period_text(u->by, r->day, p, sizeof(p)));
        csv_field(o, r->model);
        vw_buf_printf(o, ",%llu,%llu,%llu,%llu,%s,%llu,%llu\n", (unsigned long long)r->requests,
                      (unsigned long long)r->prompt_tokens,
                      (unsigned long long)r->completion_tokens,
                      (unsigned long long)(r->prompt_tokens + r->completion_tokens),
                      vw_fmt_usd6(r->cost_micro_usd, cost, sizeof(cost)),
                      (unsigned long long)r->errors, (unsigned long long)r->refused);
    }
}

int ctl_cmd_usage(ctl_t *c)
{
    ctl_usage_t u = {.by = c->u_by, .from_day = c->u_from_day, .to_day = c->u_to_day};
    vw_buf_t o = {0};
    char a[16], b[16];

    if (!c->u_to_set)
        u.to_day = ctl_today(c);
    if (!c->u_from_set) /* default: the month of --to (of today: this month so far) */
        u.from_day = ctl_month_first(u.to_day);
    if (u.from_day > u.to_day)
        return ctl_fail(CTL_EXIT_USAGE, "usage: --from %s is after --to %s",
                        vw_fmt_day(u.from_day, a, sizeof(a)), vw_fmt_day(u.to_day, b, sizeof(b)));
    if (c->u_client && !ctl_client_name_ok(c->u_client))
        return ctl_fail(CTL_EXIT_USAGE, "usage: --client: \"%s\" is not a client name",
                        vw_printable(c->u_client, a, sizeof(a)));
    int rc = ctl_usage_load(c, c->u_client, u.from_day, u.to_day, u.by, &u.rows, &u.n);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < u.n; i++)
        ctl_usage_add(&u.total, &u.rows[i]);
    if (c->json)
        ctl_json_usage(c, &u, &o);
    else if (c->u_csv)
        csv(&u, &o);
    else if (u.n)
        ctl_render_usage(&u, c->color, &o);
    else
        vw_buf_printf(&o, "(no usage%s%s from %s to %s)\n", c->u_client ? " of client " : "",
                      c->u_client ? c->u_client : "", vw_fmt_day(u.from_day, a, sizeof(a)),
                      vw_fmt_day(u.to_day, b, sizeof(b)));
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    free(u.rows);
    vw_buf_free(&o);
    return rc;
}
