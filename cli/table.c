/* table.c - aligned text tables (`keys`, `providers`, the body of `watch`).
 *
 * A table is a list of cells with a colour each; widths are measured on the visible text, so
 * colour codes never shift a column. Names are left-aligned, numbers right-aligned, two
 * spaces between columns, no trailing blanks.
 *
 * Colour rules: STATUS green (active), yellow (cooling, half-open, day quota used up, circuit
 * open), red (disabled, invalid, depleted), dim (orphaned); a used/limit cell yellow from 90%
 * of its limit and red at it; ERR yellow from 5% and red from 25%.
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cell_s {
    char *text;
    int color;
} cell_t;

typedef struct table_s {
    unsigned ncols;
    const char *const *heads;
    const char *align; /* 'l' or 'r' per column */
    cell_t *cells;
    unsigned n, cap;
} table_t;

static void cell(table_t *t, const char *text, int color)
{
    if (t->n == t->cap) {
        unsigned cap = t->cap ? t->cap * 2 : 64;
        cell_t *v = realloc(t->cells, cap * sizeof(*v));
        if (!v) {
            fputs("llmgatectl: out of memory\n", stderr);
            exit(CTL_EXIT_STORE);
        }
        t->cells = v;
        t->cap = cap;
    }
    t->cells[t->n].text = strdup(text);
    if (!t->cells[t->n].text) {
        fputs("llmgatectl: out of memory\n", stderr);
        exit(CTL_EXIT_STORE);
    }
    t->cells[t->n++].color = color;
}

static void pad(vw_buf_t *out, size_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        vw_buf_add(out, spaces, k);
        n -= k;
    }
}

static void render(table_t *t, int color, vw_buf_t *out)
{
    size_t w[32] = {0};
    unsigned rows = t->n / t->ncols;

    for (unsigned c = 0; c < t->ncols; c++)
        w[c] = strlen(t->heads[c]);
    for (unsigned i = 0; i < t->n; i++) {
        size_t v = vw_visible_width(t->cells[i].text, strlen(t->cells[i].text));
        if (v > w[i % t->ncols])
            w[i % t->ncols] = v;
    }
    for (int r = -1; r < (int)rows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            const char *text = r < 0 ? t->heads[c] : t->cells[(unsigned)r * t->ncols + c].text;
            int col = r < 0 ? VW_C_BOLD : t->cells[(unsigned)r * t->ncols + c].color;
            size_t v = vw_visible_width(text, strlen(text));
            int last = c + 1 == t->ncols;
            if (c)
                vw_buf_add(out, "  ", 2);
            if (t->align[c] == 'r')
                pad(out, w[c] - v);
            vw_buf_puts(out, vw_color_on(col, color));
            vw_buf_puts(out, text);
            vw_buf_puts(out, vw_color_off(col, color));
            if (t->align[c] != 'r' && !last)
                pad(out, w[c] - v);
        }
        vw_buf_add(out, "\n", 1);
    }
    for (unsigned i = 0; i < t->n; i++)
        free(t->cells[i].text);
    free(t->cells);
    t->cells = NULL;
    t->n = t->cap = 0;
}

static int usage_color(uint64_t used, uint64_t limit)
{
    if (!limit)
        return VW_C_NONE;
    if (used >= limit)
        return VW_C_RED;
    return used * 10 >= limit * 9 ? VW_C_YELLOW : VW_C_NONE;
}

void ctl_render_keys(const vw_key_t *rows, unsigned n, int color, vw_buf_t *out)
{
    static const char *const heads[] = {"NAME", "PROVIDER", "STATUS", "RPM", "RPD",
                                        "TPM",  "INFL",     "P50",    "P95", "P99",
                                        "ERR",  "REQS",     "TOKENS", "COST"};
    table_t t = {.ncols = 14, .heads = heads, .align = "lllrrrrrrrrrrr"};
    char b[64];

    for (unsigned i = 0; i < n; i++) {
        const vw_key_t *r = &rows[i];
        const shm_key_t *k = &r->k;
        int have = r->samples > 0, err_col = VW_C_NONE;
        cell(&t, vw_printable(k->name, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_printable(k->provider, b, sizeof(b)), VW_C_NONE);
        cell(&t, r->status_text, r->status_color);
        cell(&t, vw_fmt_used(k->rpm_used, k->rpm, b, sizeof(b)), usage_color(k->rpm_used, k->rpm));
        cell(&t, vw_fmt_used(k->rpd_used, k->rpd, b, sizeof(b)), usage_color(k->rpd_used, k->rpd));
        cell(&t, vw_fmt_used(k->tpm_used, k->tpm, b, sizeof(b)), usage_color(k->tpm_used, k->tpm));
        cell(&t, vw_fmt_used(k->inflight, k->max_inflight, b, sizeof(b)),
             usage_color(k->inflight, k->max_inflight));
        cell(&t, vw_fmt_ms(r->total.p50, have, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_ms(r->total.p95, have, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_ms(r->total.p99, have, b, sizeof(b)), VW_C_NONE);
        if (r->outcomes && r->error_rate >= 0.25)
            err_col = VW_C_RED;
        else if (r->outcomes && r->error_rate >= 0.05)
            err_col = VW_C_YELLOW;
        cell(&t, vw_fmt_rate(r->error_rate, r->outcomes > 0, b, sizeof(b)), err_col);
        cell(&t, vw_fmt_count(k->requests, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_count(k->prompt_tokens + k->completion_tokens, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_cost(k->cost_micro_usd, b, sizeof(b)), VW_C_NONE);
    }
    render(&t, color, out);
}

void ctl_render_providers(const vw_prov_t *rows, unsigned n, int color, vw_buf_t *out)
{
    static const char *const heads[] = {"PROVIDER", "CIRCUIT", "KEYS",     "AVAIL",
                                        "REQS",     "ERR",     "FAILURES", "CONSEC"};
    table_t t = {.ncols = 8, .heads = heads, .align = "llrrrrrr"};
    char b[64];

    for (unsigned i = 0; i < n; i++) {
        const vw_prov_t *p = &rows[i];
        int err_col = VW_C_NONE;
        cell(&t, vw_printable(p->p.name, b, sizeof(b)), VW_C_NONE);
        cell(&t, p->circuit_text, p->circuit_color);
        snprintf(b, sizeof(b), "%u", p->keys);
        cell(&t, b, VW_C_NONE);
        snprintf(b, sizeof(b), "%u", p->available);
        cell(&t, b, p->keys && !p->available ? VW_C_RED : VW_C_NONE);
        cell(&t, vw_fmt_count(p->requests, b, sizeof(b)), VW_C_NONE);
        if (p->outcomes && p->error_rate >= 0.25)
            err_col = VW_C_RED;
        else if (p->outcomes && p->error_rate >= 0.05)
            err_col = VW_C_YELLOW;
        cell(&t, vw_fmt_rate(p->error_rate, p->outcomes > 0, b, sizeof(b)), err_col);
        cell(&t, vw_fmt_count(p->p.failures, b, sizeof(b)), VW_C_NONE);
        snprintf(b, sizeof(b), "%u", p->p.consec_failures);
        cell(&t, b, VW_C_NONE);
    }
    render(&t, color, out);
}

/* ---- cluster -------------------------------------------------------------------------- */

static void cluster_nodes(const ctl_cluster_t *v, int color, vw_buf_t *out)
{
    static const char *const heads[] = {"NODE",  "MODE",    "CONTACT",    "PID",        "GRANTS",
                                        "UNITS", "REFILLS", "REFILL P50", "REFILL MAX", "VERSION"};
    table_t t = {.ncols = 10, .heads = heads, .align = "lllrrrrrrl"};
    char b[64];

    for (unsigned i = 0; i < v->n_nodes; i++) {
        const ctl_cnode_t *nd = &v->nodes[i];
        cell(&t, vw_printable(nd->id, b, sizeof(b)), nd->gone ? VW_C_DIM : VW_C_NONE);
        if (nd->gone) {
            cell(&t, "-", VW_C_DIM);
            cell(&t, "gone", VW_C_DIM);
            for (int k = 0; k < 7; k++)
                cell(&t, "-", VW_C_DIM);
            continue;
        }
        cell(&t, nd->mode[0] ? vw_printable(nd->mode, b, sizeof(b)) : "-",
             !strcmp(nd->mode, "leased") ? VW_C_GREEN : VW_C_YELLOW);
        cell(&t, vw_fmt_age(v->now_ms - nd->last_contact_ms, b, sizeof(b)), VW_C_NONE);
        snprintf(b, sizeof(b), "%lld", (long long)nd->pid);
        cell(&t, b, VW_C_NONE);
        cell(&t, vw_fmt_count(nd->grants, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_count(nd->units, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_count(nd->refills, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_us(nd->refill_p50_us, b, sizeof(b)), VW_C_NONE);
        cell(&t, vw_fmt_us(nd->refill_max_us, b, sizeof(b)), VW_C_NONE);
        cell(&t, nd->version[0] ? vw_printable(nd->version, b, sizeof(b)) : "-", VW_C_NONE);
    }
    render(&t, color, out);
}

/* A dimension's cell: units/limit ("-" without a limit); costs in USD. */
static const char *lease_cell(uint64_t units, uint64_t limit, int d, char *b, size_t len)
{
    char u[32], l[32];
    if (!limit)
        snprintf(b, len, "-");
    else if (d == SHM_LD_COST_DAY || d == SHM_LD_COST_MONTH)
        snprintf(b, len, "%s/%s", vw_fmt_cost(units, u, sizeof(u)),
                 vw_fmt_cost(limit, l, sizeof(l)));
    else
        vw_fmt_used(units, limit, b, len);
    return b;
}

/* One row per node that holds a live grant of the entity, then its "(all)" row. */
static void cluster_ents(const ctl_cluster_t *v, int kind, int color, vw_buf_t *out)
{
    static const char *const key_heads[] = {"KEY", "NODE", "RPM", "TPM", "RPD"};
    static const int key_dims[] = {SHM_LD_RPM, SHM_LD_TPM, SHM_LD_RPD};
    static const char *const client_heads[] = {"CLIENT", "NODE",  "RPM",    "RPD",
                                               "TOK/D",  "TOK/M", "COST/D", "COST/M"};
    static const int client_dims[] = {SHM_LD_RPM,       SHM_LD_RPD,      SHM_LD_TOK_DAY,
                                      SHM_LD_TOK_MONTH, SHM_LD_COST_DAY, SHM_LD_COST_MONTH};
    const int *dims = kind == SHM_LK_KEY ? key_dims : client_dims;
    unsigned nd = kind == SHM_LK_KEY ? 3 : 6, rows = 0;
    table_t t = {.ncols = nd + 2,
                 .heads = kind == SHM_LK_KEY ? key_heads : client_heads,
                 .align = kind == SHM_LK_KEY ? "llrrr" : "llrrrrrr"};
    char b[64];

    for (unsigned i = 0; i < v->n_ents; i++) {
        const ctl_cent_t *e = &v->ents[i];
        if (e->kind != kind)
            continue;
        for (unsigned u = 0; u <= e->n_uses; u++) {
            const ctl_cuse_t *use = u < e->n_uses ? &v->uses[e->first_use + u] : NULL;
            cell(&t, vw_printable(e->name, b, sizeof(b)), VW_C_NONE);
            cell(&t, use ? vw_printable(v->nodes[use->node].id, b, sizeof(b)) : "(all)",
                 use ? VW_C_NONE : VW_C_BOLD);
            for (unsigned k = 0; k < nd; k++) {
                int d = dims[k];
                uint64_t units = use ? use->units[d] : e->units[d];
                cell(&t, lease_cell(units, e->limit[d], d, b, sizeof(b)),
                     use ? VW_C_NONE : usage_color(units, e->limit[d]));
            }
        }
        rows++;
    }
    if (!rows)
        return;
    vw_buf_add(out, "\n", 1);
    render(&t, color, out);
}

void ctl_render_cluster(const ctl_cluster_t *v, int color, vw_buf_t *out)
{
    char b[160];
    unsigned gone = 0;

    for (unsigned i = 0; i < v->n_nodes; i++)
        gone += v->nodes[i].gone;
    vw_buf_printf(out, "redis %s  prefix %s  nodes %u (%u gone), %u expected\n", v->redis,
                  vw_printable(v->prefix, b, sizeof(b)), v->n_nodes, gone, v->expected_nodes);
    vw_buf_add(out, "\n", 1);
    if (v->n_nodes)
        cluster_nodes(v, color, out);
    else
        vw_buf_printf(out, "no node has joined yet (%s:nodes is empty)\n",
                      vw_printable(v->prefix, b, sizeof(b)));
    cluster_ents(v, SHM_LK_KEY, color, out);
    cluster_ents(v, SHM_LK_CLIENT, color, out);
}

/* ---- clients -------------------------------------------------------------------------- */

void ctl_render_clients(const ctl_crow_t *rows, unsigned n, int64_t now_ms, int color,
                        vw_buf_t *out)
{
    static const char *const heads[] = {"NAME",   "SOURCE", "STATUS", "RPM",   "RPD",      "TOK/D",
                                        "COST/D", "COST/M", "REQS",   "ERR/D", "LAST SEEN"};
    table_t t = {.ncols = 11, .heads = heads, .align = "lllrrrrrrrl"};
    char b[64];

    for (unsigned i = 0; i < n; i++) {
        const ctl_crow_t *r = &rows[i];
        const shm_client_t *u = &r->u;
        cell(&t, vw_printable(u->name, b, sizeof(b)), VW_C_NONE);
        cell(&t, r->store ? "store" : "config", VW_C_NONE);
        cell(&t, ctl_cstate_name(r->state), r->status_color);
        cell(&t, vw_fmt_used(u->rpm_used, u->rpm, b, sizeof(b)), usage_color(u->rpm_used, u->rpm));
        cell(&t, vw_fmt_used(u->rpd_used, u->rpd, b, sizeof(b)), usage_color(u->rpd_used, u->rpd));
        cell(&t, vw_fmt_used(u->tokens_day_used, u->tokens_per_day, b, sizeof(b)),
             usage_color(u->tokens_day_used, u->tokens_per_day));
        cell(&t,
             vw_fmt_cost_used(u->cost_day_used_micro_usd, u->cost_per_day_micro_usd, b, sizeof(b)),
             usage_color(u->cost_day_used_micro_usd, u->cost_per_day_micro_usd));
        cell(&t,
             vw_fmt_cost_used(u->cost_month_used_micro_usd, u->cost_per_month_micro_usd, b,
                              sizeof(b)),
             usage_color(u->cost_month_used_micro_usd, u->cost_per_month_micro_usd));
        cell(&t, vw_fmt_count(u->requests, b, sizeof(b)), VW_C_NONE);
        /* today's answers that were errors: the provider's passed on, and its own limits' 429s */
        uint64_t err = r->today.errors + r->today.refused;
        cell(&t, vw_fmt_count(err, b, sizeof(b)), err ? VW_C_YELLOW : VW_C_NONE);
        if (u->last_admit_ms)
            cell(&t, vw_fmt_age(now_ms - u->last_admit_ms, b, sizeof(b)), VW_C_NONE);
        else
            cell(&t, "-", VW_C_NONE);
    }
    render(&t, color, out);
}

/* ---- usage -------------------------------------------------------------------------------- */

static void usage_cells(table_t *t, const shm_usage_row_t *r)
{
    char b[32];
    snprintf(b, sizeof(b), "%llu", (unsigned long long)r->requests);
    cell(t, b, VW_C_NONE);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)r->errors);
    cell(t, b, r->errors ? VW_C_YELLOW : VW_C_NONE);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)r->refused);
    cell(t, b, r->refused ? VW_C_YELLOW : VW_C_NONE);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)r->prompt_tokens);
    cell(t, b, VW_C_NONE);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)r->completion_tokens);
    cell(t, b, VW_C_NONE);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)(r->prompt_tokens + r->completion_tokens));
    cell(t, b, VW_C_NONE);
    char d[32];
    snprintf(b, sizeof(b), "$%s", vw_fmt_usd6(r->cost_micro_usd, d, sizeof(d)));
    cell(t, b, VW_C_NONE);
}

void ctl_render_usage(const ctl_usage_t *u, int color, vw_buf_t *out)
{
    static const char *const day_heads[] = {"CLIENT",  "DAY",    "MODEL",      "REQS",   "ERRORS",
                                            "REFUSED", "PROMPT", "COMPLETION", "TOKENS", "COST"};
    static const char *const month_heads[] = {"CLIENT",  "MONTH",  "MODEL",      "REQS",   "ERRORS",
                                              "REFUSED", "PROMPT", "COMPLETION", "TOKENS", "COST"};
    table_t t = {.ncols = 10,
                 .heads = u->by == CTL_BY_MONTH ? month_heads : day_heads,
                 .align = "lllrrrrrrr"};
    char b[64];

    for (unsigned i = 0; i < u->n; i++) {
        const shm_usage_row_t *r = &u->rows[i];
        cell(&t, vw_printable(r->client, b, sizeof(b)), VW_C_NONE);
        if (u->by == CTL_BY_MONTH)
            cell(&t, vw_fmt_month(r->day, b, sizeof(b)), VW_C_NONE);
        else
            cell(&t, vw_fmt_day(r->day, b, sizeof(b)), VW_C_NONE);
        cell(&t, r->model[0] ? vw_printable(r->model, b, sizeof(b)) : "-", VW_C_NONE);
        usage_cells(&t, r);
    }
    cell(&t, "TOTAL", VW_C_BOLD);
    cell(&t, "", VW_C_NONE);
    cell(&t, "", VW_C_NONE);
    usage_cells(&t, &u->total);
    render(&t, color, out);
}
