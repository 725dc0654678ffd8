/* detail.c - `llmgatectl key NAME`: everything the store knows about one key - status and
 * why, limits and their use, outcome counts, the last error, tokens and cost, percentiles
 * and a histogram of the latency ring, its provider's circuit, and the key's history (the
 * last SHM_HISTORY_RING events: status changes with their reasons, admin actions, config
 * changes, reclaimed reservations).
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <string.h>

const uint32_t ctl_hist_le[CTL_HIST_BUCKETS - 1] = {10,  25,   50,   100,  250,
                                                    500, 1000, 2500, 5000, 10000};

void ctl_histogram(const uint32_t *samples, unsigned n, uint64_t counts[CTL_HIST_BUCKETS])
{
    memset(counts, 0, CTL_HIST_BUCKETS * sizeof(counts[0]));
    for (unsigned i = 0; i < n; i++) {
        unsigned b = 0;
        while (b < CTL_HIST_BUCKETS - 1 && samples[i] > ctl_hist_le[b])
            b++;
        counts[b]++;
    }
}

static void histogram_text(vw_buf_t *o, const shm_latency_t *lat)
{
    uint64_t counts[CTL_HIST_BUCKETS], max = 0;
    unsigned first = CTL_HIST_BUCKETS, last = 0;
    char a[16];

    ctl_histogram(lat->total_ms, lat->count, counts);
    for (unsigned i = 0; i < CTL_HIST_BUCKETS; i++) {
        if (counts[i] && first == CTL_HIST_BUCKETS)
            first = i;
        if (counts[i])
            last = i;
        if (counts[i] > max)
            max = counts[i];
    }
    vw_buf_printf(o, "\nlatency histogram (total time of the last %u successes)\n", lat->count);
    if (!max) {
        vw_buf_puts(o, "  no samples yet\n");
        return;
    }
    for (unsigned i = first; i <= last; i++) {
        unsigned bar = (unsigned)((counts[i] * 40 + max - 1) / max);
        if (i + 1 < CTL_HIST_BUCKETS)
            vw_buf_printf(o, "  <= %6s  ", vw_fmt_ms(ctl_hist_le[i], 1, a, sizeof(a)));
        else
            vw_buf_printf(o, "  >  %6s  ", vw_fmt_ms(ctl_hist_le[i - 1], 1, a, sizeof(a)));
        for (unsigned k = 0; k < 40; k++)
            vw_buf_add(o, k < bar ? "#" : " ", 1);
        vw_buf_printf(o, "  %llu\n", (unsigned long long)counts[i]);
    }
}

static void event_text(vw_buf_t *o, const shm_event_t *e)
{
    char t[40], d[32], text[sizeof(e->text) + 1];

    memcpy(text, e->text, sizeof(e->text));
    text[sizeof(e->text)] = '\0';
    vw_buf_printf(o, "  %s  %-10s %-9s %-12s", vw_fmt_time(e->ts_ms, VW_T_FULL, t, sizeof(t)),
                  shm_event_name(e->type), shm_status_name(e->status),
                  e->reason ? shm_reason_name(e->reason) : "");
    switch (e->type) {
    case SHM_EV_STATUS:
    case SHM_EV_COOLDOWN:
        if (e->arg > 0)
            vw_buf_printf(o, "  until %s", vw_fmt_time(e->arg, VW_T_FULL, t, sizeof(t)));
        break;
    case SHM_EV_RESET:
        vw_buf_printf(o, "  %s%s%s%s", e->arg & SHM_RESET_RPM ? "rpm " : "",
                      e->arg & SHM_RESET_RPD ? "rpd " : "", e->arg & SHM_RESET_TPM ? "tpm " : "",
                      e->arg & SHM_RESET_COUNTERS ? "counters " : "");
        break;
    case SHM_EV_RECLAIM:
        vw_buf_printf(o, "  %lld in-flight cleared", (long long)e->arg);
        break;
    case SHM_EV_CLOCK:
        vw_buf_printf(o, "  clock stepped back %s", vw_fmt_dur(e->arg, d, sizeof(d)));
        break;
    default:
        break;
    }
    if (text[0])
        vw_buf_printf(o, "  (%s)", vw_printable(text, t, sizeof(t)));
    vw_buf_printf(o, "  pid %d\n", (int)e->pid);
}

static void detail_text(ctl_t *c, const vw_key_t *r, const shm_provider_t *prov,
                        const shm_latency_t *lat, const shm_event_t *ev, unsigned nev, vw_buf_t *o)
{
    const shm_key_t *k = &r->k;
    int col = c->color, have = r->samples > 0;
    char a[64], b[64], d[64], e[64], t[40];

    vw_buf_printf(o, "key          %s%s%s  (fingerprint %s)\n", vw_color_on(VW_C_BOLD, col),
                  vw_printable(k->name, a, sizeof(a)), vw_color_off(VW_C_BOLD, col),
                  k->fingerprint[0] ? vw_printable(k->fingerprint, b, sizeof(b)) : "none");
    vw_buf_printf(o, "provider     %s", vw_printable(k->provider, a, sizeof(a)));
    if (prov) {
        vw_buf_printf(o, "  (circuit %s", shm_circuit_name(prov->circuit));
        if (prov->circuit == SHM_CIRCUIT_OPEN && prov->open_until_ms > c->now_ms)
            vw_buf_printf(o, " for %s more",
                          vw_fmt_dur(prov->open_until_ms - c->now_ms, a, sizeof(a)));
        vw_buf_printf(o, ", %u consecutive failures)", prov->consec_failures);
    }
    vw_buf_puts(o, "\n");
    vw_buf_printf(o, "status       %s%s%s  (stored %s, reason %s, since %s",
                  vw_color_on(r->status_color, col), r->status_text,
                  vw_color_off(r->status_color, col), shm_status_name(k->status),
                  shm_reason_name(k->reason),
                  vw_fmt_time(k->status_since_ms, VW_T_FULL, t, sizeof(t)));
    if (k->cooldown_until_ms)
        vw_buf_printf(o, ", cooldown until %s",
                      vw_fmt_time(k->cooldown_until_ms, VW_T_FULL, t, sizeof(t)));
    vw_buf_puts(o, ")\n");
    vw_buf_printf(o, "rpm          %s in the last 60 s\n",
                  vw_fmt_used(k->rpm_used, k->rpm, a, sizeof(a)));
    vw_buf_printf(o, "rpd          %s today (next day starts %s)\n",
                  vw_fmt_used(k->rpd_used, k->rpd, a, sizeof(a)),
                  vw_fmt_time(r->day_reset_ms, VW_T_FULL, t, sizeof(t)));
    vw_buf_printf(o, "tpm          %s in the last 60 s\n",
                  vw_fmt_used(k->tpm_used, k->tpm, a, sizeof(a)));
    vw_buf_printf(o, "in-flight    %s\n", vw_fmt_used(k->inflight, k->max_inflight, a, sizeof(a)));
    vw_buf_printf(o, "weight       %u\n", k->weight);
    vw_buf_printf(o, "requests     %llu admitted, last at %s\n", (unsigned long long)k->requests,
                  vw_fmt_time(k->last_admit_ms, VW_T_FULL, t, sizeof(t)));
    vw_buf_puts(o, "outcomes    ");
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        vw_buf_printf(o, " %s %llu%s", shm_class_name(cl), (unsigned long long)k->by_class[cl],
                      cl + 1 < SHM_CL_COUNT ? "," : "\n");
    vw_buf_printf(o,
                  "errors       %llu of %llu outcomes (%s); %u consecutive failures, %u "
                  "consecutive successes\n",
                  (unsigned long long)r->errors, (unsigned long long)r->outcomes,
                  vw_fmt_rate(r->error_rate, r->outcomes > 0, a, sizeof(a)), k->consec_failures,
                  k->consec_successes);
    if (k->last_error_ms)
        vw_buf_printf(o, "last error   %d at %s (%s ago)\n", (int)k->last_error_code,
                      vw_fmt_time(k->last_error_ms, VW_T_FULL, t, sizeof(t)),
                      vw_fmt_dur(c->now_ms - k->last_error_ms, a, sizeof(a)));
    else
        vw_buf_puts(o, "last error   none\n");
    vw_buf_printf(o, "tokens       %llu prompt + %llu completion = %llu\n",
                  (unsigned long long)k->prompt_tokens, (unsigned long long)k->completion_tokens,
                  (unsigned long long)(k->prompt_tokens + k->completion_tokens));
    vw_buf_printf(o, "cost         %s\n", vw_fmt_cost(k->cost_micro_usd, a, sizeof(a)));
    vw_buf_printf(
        o, "latency      %u samples; total p50 %s p95 %s p99 %s; first byte p50 %s", r->samples,
        vw_fmt_ms(r->total.p50, have, a, sizeof(a)), vw_fmt_ms(r->total.p95, have, b, sizeof(b)),
        vw_fmt_ms(r->total.p99, have, d, sizeof(d)), vw_fmt_ms(r->ttfb.p50, have, e, sizeof(e)));
    vw_buf_printf(o, " p95 %s p99 %s\n", vw_fmt_ms(r->ttfb.p95, have, a, sizeof(a)),
                  vw_fmt_ms(r->ttfb.p99, have, b, sizeof(b)));
    vw_buf_printf(o, "created      %s, updated %s%s\n",
                  vw_fmt_time(k->created_ms, VW_T_FULL, t, sizeof(t)),
                  vw_fmt_time(k->updated_ms, VW_T_FULL, a, sizeof(a)),
                  k->orphaned ? " (orphaned: not in the config any more; `prune` deletes it)" : "");
    histogram_text(o, lat);
    vw_buf_printf(o, "\nhistory (last %u event%s, oldest first)\n", nev, nev == 1 ? "" : "s");
    for (unsigned i = 0; i < nev; i++)
        event_text(o, &ev[i]);
}

int ctl_cmd_key(ctl_t *c, const char *name)
{
    vw_key_t r;
    shm_latency_t lat;
    shm_provider_t prov;
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned nev = 0;
    vw_buf_t o = {0};
    int rc, have_prov;

    memset(&r, 0, sizeof(r));
    c->now_ms = ctl_now_ms();
    if ((rc = shm_key_get(c->shm, name, c->now_ms, &r.k)) != 0)
        return ctl_store_error(c, rc, "reading key", name);
    if ((rc = shm_key_latency(c->shm, name, &lat)) != 0)
        return ctl_store_error(c, rc, "reading the latencies of", name);
    if ((rc = shm_key_history(c->shm, name, ev, SHM_HISTORY_RING, &nev)) != 0)
        return ctl_store_error(c, rc, "reading the history of", name);
    rc = shm_provider_get(c->shm, r.k.provider, &prov);
    if (rc != 0 && rc != SHM_ENOTFOUND)
        return ctl_store_error(c, rc, "reading the provider of", name);
    have_prov = rc == 0;
    vw_key_derive(&r, &lat, c->now_ms,
                  have_prov && prov.circuit == SHM_CIRCUIT_OPEN ? prov.open_until_ms : 0);
    if (c->json)
        ctl_json_key(c, &r, have_prov ? &prov : NULL, &lat, ev, nev, &o);
    else
        detail_text(c, &r, have_prov ? &prov : NULL, &lat, ev, nev, &o);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&o);
    return rc;
}
