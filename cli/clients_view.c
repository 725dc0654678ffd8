/* clients_view.c - `clients` (one row per client) and `client NAME` (everything about one),
 * of the config's client keys and of the store's (see clients.c), with their usage of today
 * and of this month per model from the store's usage rows (usage.c).
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- clients, client NAME ----------------------------------------------------------------- */

int ctl_cmd_clients(ctl_t *c)
{
    ctl_crow_t *rows = NULL;
    unsigned n = 0;
    vw_buf_t o = {0};
    int rc = ctl_crows_load(c, &rows, &n);

    if (rc != 0)
        return rc;
    if (c->json)
        ctl_json_clients(c, rows, n, &o);
    else if (n)
        ctl_render_clients(rows, n, c->now_ms, c->color, &o);
    else
        vw_buf_puts(&o, "(no clients: the config's client_keys appear once a server ran with "
                        "them; `llmgatectl client add NAME` adds one to the store)\n");
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    free(rows);
    vw_buf_free(&o);
    return rc;
}

static void history_text(vw_buf_t *o, const shm_event_t *e)
{
    char t[40], text[sizeof(e->text) + 1];

    memcpy(text, e->text, sizeof(e->text));
    text[sizeof(e->text)] = '\0';
    vw_buf_printf(o, "  %s  %-8s", vw_fmt_time(e->ts_ms, VW_T_FULL, t, sizeof(t)),
                  shm_event_name(e->type));
    if (e->type == SHM_EV_CLIENT_SET) {
        vw_buf_puts(o, " ");
        for (unsigned b = 0, first = 1; b < 8; b++)
            if (e->arg & (1u << b)) {
                vw_buf_printf(o, "%s%s", first ? "" : " ", ctl_cset_names[b]);
                first = 0;
            }
    } else if (e->type == SHM_EV_CLIENT_ROTATE) {
        if (e->arg > e->ts_ms)
            vw_buf_printf(o, " old key until %s", vw_fmt_time(e->arg, VW_T_FULL, t, sizeof(t)));
        else
            vw_buf_puts(o, " old key stopped at once");
    }
    if (text[0])
        vw_buf_printf(o, "  (%s)", vw_printable(text, t, sizeof(t)));
    vw_buf_printf(o, "  pid %d\n", (int)e->pid);
}

/* "usage today (2026-12-04)" and per model: requests, errors, refused, tokens, cost. */
static void usage_text(vw_buf_t *o, const char *title, const shm_usage_row_t *sum,
                       const ctl_usage_t *by_model)
{
    char a[32];
    size_t w = 5;

    for (unsigned i = 0; i < by_model->n; i++)
        if (strlen(by_model->rows[i].model) > w)
            w = strlen(by_model->rows[i].model);
    vw_buf_printf(o, "\n%s: %llu requests, %llu errors, %llu refused, %llu tokens, %s\n", title,
                  (unsigned long long)sum->requests, (unsigned long long)sum->errors,
                  (unsigned long long)sum->refused,
                  (unsigned long long)(sum->prompt_tokens + sum->completion_tokens),
                  vw_fmt_cost(sum->cost_micro_usd, a, sizeof(a)));
    for (unsigned i = 0; i < by_model->n; i++) {
        const shm_usage_row_t *r = &by_model->rows[i];
        char m[SHM_NAME_MAX * 2 + 2];
        vw_buf_printf(o, "  %-*s  %llu requests, %llu errors, %llu refused, %llu tokens, %s\n",
                      (int)w, r->model[0] ? vw_printable(r->model, m, sizeof(m)) : "-",
                      (unsigned long long)r->requests, (unsigned long long)r->errors,
                      (unsigned long long)r->refused,
                      (unsigned long long)(r->prompt_tokens + r->completion_tokens),
                      vw_fmt_cost(r->cost_micro_usd, a, sizeof(a)));
    }
}

static void detail_text(ctl_t *c, const ctl_crow_t *r, const shm_event_t *ev, unsigned nev,
                        const ctl_usage_t by_model[2], vw_buf_t *o)
{
    const shm_client_t *u = &r->u;
    const shm_cdef_t *d = &r->d;
    int col = c->color;
    char a[SHM_CDEF_MODELS_MAX * 2 + 2], t[40], t2[40];

    vw_buf_printf(o, "client       %s%s%s  (%s)\n", vw_color_on(VW_C_BOLD, col), u->name,
                  vw_color_off(VW_C_BOLD, col), r->store ? "store" : "config");
    vw_buf_printf(o, "status       %s%s%s", vw_color_on(r->status_color, col),
                  ctl_cstate_name(r->state), vw_color_off(r->status_color, col));
    if (r->state == CTL_CS_REVOKED)
        vw_buf_printf(o, "  (at %s; its keys are refused)",
                      vw_fmt_time(d->revoked_ms, VW_T_FULL, t, sizeof(t)));
    else if (r->state == CTL_CS_EXPIRED)
        vw_buf_printf(o, "  (at %s; `client set %s --expires ...` extends it)",
                      vw_fmt_time(d->spec.expires_ms, VW_T_FULL, t, sizeof(t)), u->name);
    else if (r->state == CTL_CS_ORPHANED)
        vw_buf_puts(o, "  (not in the config any more: never admitted)");
    vw_buf_puts(o, "\n");
    if (r->store) {
        vw_buf_printf(o, "key          fingerprint %s", d->fingerprint);
        if (d->prev_fingerprint[0])
            vw_buf_printf(o, "; the previous key (fingerprint %s) works until %s (%s more)",
                          d->prev_fingerprint,
                          vw_fmt_time(d->prev_until_ms, VW_T_FULL, t, sizeof(t)),
                          vw_fmt_dur(d->prev_until_ms - c->now_ms, t2, sizeof(t2)));
        vw_buf_puts(o, "\n");
        vw_buf_printf(o, "models       %s\n", ctl_models_text(d->spec.models, a, sizeof(a)));
        vw_buf_printf(o, "expires      %s", ctl_expiry_text(d->spec.expires_ms, t, sizeof(t)));
        if (d->spec.expires_ms > c->now_ms)
            vw_buf_printf(o, " (in %s)", vw_fmt_dur(d->spec.expires_ms - c->now_ms, t, sizeof(t)));
        vw_buf_puts(o, "\n");
        vw_buf_printf(o, "created      %s by %s\n",
                      vw_fmt_time(d->created_ms, VW_T_FULL, t, sizeof(t)),
                      vw_printable(d->created_by, a, sizeof(a)));
        vw_buf_printf(o, "rotated      %s\n", vw_fmt_time(d->rotated_ms, VW_T_FULL, t, sizeof(t)));
        vw_buf_printf(o, "revoked      %s\n", vw_fmt_time(d->revoked_ms, VW_T_FULL, t, sizeof(t)));
    } else {
        vw_buf_puts(o, "key          the config's (its fingerprint and models are there)\n");
    }
    vw_buf_printf(o, "rpm          %s in the last 60 s\n",
                  vw_fmt_used(u->rpm_used, u->rpm, a, sizeof(a)));
    vw_buf_printf(o, "rpd          %s today (next day starts %s)\n",
                  vw_fmt_used(u->rpd_used, u->rpd, a, sizeof(a)),
                  vw_fmt_time(u->day_reset_ms, VW_T_FULL, t, sizeof(t)));
    vw_buf_printf(o, "tokens/day   %s today\n",
                  vw_fmt_used(u->tokens_day_used, u->tokens_per_day, a, sizeof(a)));
    vw_buf_printf(o, "tokens/month %s this month (next month starts %s)\n",
                  vw_fmt_used(u->tokens_month_used, u->tokens_per_month, a, sizeof(a)),
                  vw_fmt_time(u->month_reset_ms, VW_T_FULL, t, sizeof(t)));
    vw_buf_printf(
        o, "cost/day     %s today\n",
        vw_fmt_cost_used(u->cost_day_used_micro_usd, u->cost_per_day_micro_usd, a, sizeof(a)));
    vw_buf_printf(
        o, "cost/month   %s this month\n",
        vw_fmt_cost_used(u->cost_month_used_micro_usd, u->cost_per_month_micro_usd, a, sizeof(a)));
    vw_buf_printf(o, "requests     %llu admitted, last at %s", (unsigned long long)u->requests,
                  vw_fmt_time(u->last_admit_ms, VW_T_FULL, t, sizeof(t)));
    if (u->last_admit_ms)
        vw_buf_printf(o, " (%s)", vw_fmt_age(c->now_ms - u->last_admit_ms, t, sizeof(t)));
    vw_buf_puts(o, "\n");
    vw_buf_printf(o, "tokens       %llu prompt + %llu completion = %llu\n",
                  (unsigned long long)u->prompt_tokens, (unsigned long long)u->completion_tokens,
                  (unsigned long long)(u->prompt_tokens + u->completion_tokens));
    vw_buf_printf(o, "cost         %s\n", vw_fmt_cost(u->cost_micro_usd, a, sizeof(a)));
    if (r->has_usage)
        vw_buf_printf(o, "usage since  %s, updated %s\n",
                      vw_fmt_time(u->created_ms, VW_T_FULL, t, sizeof(t)),
                      vw_fmt_time(u->updated_ms, VW_T_FULL, t2, sizeof(t2)));
    {
        char day[16], month[16], title[64];
        int64_t today = ctl_today(c);
        snprintf(title, sizeof(title), "today (%s)", vw_fmt_day(today, day, sizeof(day)));
        usage_text(o, title, &r->today, &by_model[0]);
        snprintf(title, sizeof(title), "this month (%s)",
                 vw_fmt_month(vw_day_month(today), month, sizeof(month)));
        usage_text(o, title, &r->month, &by_model[1]);
    }
    if (!r->store) {
        vw_buf_puts(o, "\nno history: a config client is defined by the config\n");
        return;
    }
    vw_buf_printf(o, "\nhistory (last %u event%s, oldest first)\n", nev, nev == 1 ? "" : "s");
    for (unsigned i = 0; i < nev; i++)
        history_text(o, &ev[i]);
}

int ctl_cmd_client(ctl_t *c, const char *name)
{
    ctl_crow_t r;
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned nev = 0;
    vw_buf_t o = {0};
    int rc = ctl_crow_get(c, name, &r);

    if (rc == SHM_ENOTFOUND)
        return ctl_client_not_found(c, name);
    if (rc != 0)
        return ctl_store_error(c, rc, "reading client", name);
    if (r.store && (rc = shm_cdef_history(c->shm, name, ev, SHM_HISTORY_RING, &nev)) != 0)
        return ctl_store_error(c, rc, "reading the history of client", name);
    int64_t today = ctl_today(c);
    ctl_usage_t by_model[2] = {
        {.by = CTL_BY_MODEL, .from_day = today, .to_day = today},
        {.by = CTL_BY_MODEL, .from_day = ctl_month_first(today), .to_day = today}};
    for (int k = 0; k < 2; k++)
        if ((rc = ctl_usage_load(c, name, by_model[k].from_day, by_model[k].to_day, CTL_BY_MODEL,
                                 &by_model[k].rows, &by_model[k].n)) != 0)
            goto done;
    if (c->json)
        ctl_json_client(c, &r, r.store ? ev : NULL, nev, by_model, &o);
    else
        detail_text(c, &r, ev, nev, by_model, &o);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
done:
    free(by_model[0].rows);
    free(by_model[1].rows);
    vw_buf_free(&o);
    return rc;
}
