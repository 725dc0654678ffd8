/* json.c - the JSON writer and the documents shared by llmgatectl and the admin API (see
 * json.h). */
#include "view/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vw_outcome_names[SHM_CL_COUNT] = {
    "success", "rate_limited", "server_error", "timeout", "connect", "auth", "other", "cancelled"};

static void json_key(vw_json_t *j, const char *key)
{
    if (!j->first[j->depth])
        vw_buf_add(j->b, ",", 1);
    j->first[j->depth] = 0;
    if (key) {
        vw_json_escape(j->b, key);
        vw_buf_add(j->b, ":", 1);
    }
}

void vw_json_open(vw_json_t *j, const char *key, char c)
{
    if (j->depth > 0 || key)
        json_key(j, key);
    vw_buf_add(j->b, &c, 1);
    j->first[++j->depth] = 1;
}

void vw_json_close(vw_json_t *j, char c)
{
    j->depth--;
    vw_buf_add(j->b, &c, 1);
}

void vw_json_str(vw_json_t *j, const char *key, const char *v)
{
    json_key(j, key);
    vw_json_escape(j->b, v);
}

void vw_json_u64(vw_json_t *j, const char *key, uint64_t v)
{
    json_key(j, key);
    vw_buf_printf(j->b, "%llu", (unsigned long long)v);
}

void vw_json_i64(vw_json_t *j, const char *key, int64_t v)
{
    json_key(j, key);
    vw_buf_printf(j->b, "%lld", (long long)v);
}

void vw_json_null(vw_json_t *j, const char *key)
{
    json_key(j, key);
    vw_buf_puts(j->b, "null");
}

void vw_json_u32_or_null(vw_json_t *j, const char *key, uint32_t v, int have)
{
    if (have)
        vw_json_u64(j, key, v);
    else
        vw_json_null(j, key);
}

void vw_json_num(vw_json_t *j, const char *key, double v, int have)
{
    if (!have) {
        vw_json_null(j, key);
        return;
    }
    json_key(j, key);
    vw_buf_printf(j->b, "%.6f", v);
}

void vw_json_bool(vw_json_t *j, const char *key, int v)
{
    json_key(j, key);
    vw_buf_puts(j->b, v ? "true" : "false");
}

void vw_json_begin(vw_json_t *j, vw_buf_t *b, const char *command, int64_t now_ms,
                   const char *state_dir)
{
    memset(j, 0, sizeof(*j));
    j->b = b;
    vw_json_open(j, NULL, '{');
    vw_json_u64(j, "schema", VW_JSON_SCHEMA);
    vw_json_str(j, "command", command);
    vw_json_i64(j, "generated_ms", now_ms);
    if (state_dir)
        vw_json_str(j, "state_dir", state_dir);
}

void vw_json_end(vw_json_t *j)
{
    vw_json_close(j, '}');
    vw_buf_add(j->b, "\n", 1);
}

/* The fields of one key, into an open object. */
void vw_json_key_fields(vw_json_t *j, const vw_key_t *r)
{
    static const struct {
        unsigned bit;
        const char *name;
    } lim[] = {{VW_LIM_RPM, "rpm"},
               {VW_LIM_RPD, "rpd"},
               {VW_LIM_TPM, "tpm"},
               {VW_LIM_INFLIGHT, "inflight"},
               {VW_LIM_CIRCUIT, "circuit"}};
    const shm_key_t *k = &r->k;
    int have = r->samples > 0;

    vw_json_str(j, "name", k->name);
    vw_json_str(j, "fingerprint", k->fingerprint);
    vw_json_str(j, "provider", k->provider);
    vw_json_str(j, "state", vw_state_name(r->state));
    vw_json_str(j, "status", shm_status_name(k->status));
    vw_json_str(j, "reason", shm_reason_name(k->reason));
    vw_json_str(j, "status_text", r->status_text);
    vw_json_bool(j, "orphaned", k->orphaned);
    vw_json_i64(j, "status_since_ms", k->status_since_ms);
    vw_json_i64(j, "cooldown_until_ms", k->cooldown_until_ms);
    vw_json_i64(j, "cooldown_left_ms", r->cooldown_left_ms);
    vw_json_open(j, "limited_by", '[');
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++)
        if (r->limited & lim[i].bit)
            vw_json_str(j, NULL, lim[i].name);
    vw_json_close(j, ']');
    vw_json_u64(j, "rpm_used", k->rpm_used);
    vw_json_u64(j, "rpm_limit", k->rpm);
    vw_json_u64(j, "rpd_used", k->rpd_used);
    vw_json_u64(j, "rpd_limit", k->rpd);
    vw_json_i64(j, "rpd_resets_at_ms", r->day_reset_ms);
    vw_json_u64(j, "tpm_used", k->tpm_used);
    vw_json_u64(j, "tpm_limit", k->tpm);
    vw_json_u64(j, "inflight", k->inflight);
    vw_json_u64(j, "max_inflight", k->max_inflight);
    vw_json_u64(j, "weight", k->weight);
    vw_json_i64(j, "day_offset_s", k->day_offset_s);
    vw_json_open(j, "latency_ms", '{');
    vw_json_u64(j, "samples", r->samples);
    vw_json_u32_or_null(j, "p50", r->total.p50, have);
    vw_json_u32_or_null(j, "p95", r->total.p95, have);
    vw_json_u32_or_null(j, "p99", r->total.p99, have);
    vw_json_close(j, '}');
    vw_json_open(j, "ttfb_ms", '{');
    vw_json_u32_or_null(j, "p50", r->ttfb.p50, have);
    vw_json_u32_or_null(j, "p95", r->ttfb.p95, have);
    vw_json_u32_or_null(j, "p99", r->ttfb.p99, have);
    vw_json_close(j, '}');
    vw_json_u32_or_null(j, "ewma_total_ms", k->ewma_total_ms, k->ewma_total_ms > 0);
    vw_json_u32_or_null(j, "ewma_ttfb_ms", k->ewma_ttfb_ms, k->ewma_ttfb_ms > 0);
    vw_json_u64(j, "requests", k->requests);
    vw_json_open(j, "outcomes", '{');
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        vw_json_u64(j, vw_outcome_names[cl], k->by_class[cl]);
    vw_json_close(j, '}');
    vw_json_u64(j, "outcomes_total", r->outcomes);
    vw_json_u64(j, "errors", r->errors);
    vw_json_num(j, "error_rate", r->error_rate, r->outcomes > 0);
    vw_json_u64(j, "consecutive_failures", k->consec_failures);
    vw_json_u64(j, "consecutive_successes", k->consec_successes);
    vw_json_i64(j, "last_error_code", k->last_error_code);
    vw_json_i64(j, "last_error_ms", k->last_error_ms);
    vw_json_u64(j, "prompt_tokens", k->prompt_tokens);
    vw_json_u64(j, "completion_tokens", k->completion_tokens);
    vw_json_u64(j, "tokens", k->prompt_tokens + k->completion_tokens);
    vw_json_num(j, "cost_usd", (double)k->cost_micro_usd / 1e6, 1);
    vw_json_u64(j, "cost_micro_usd", k->cost_micro_usd);
    vw_json_i64(j, "last_admit_ms", k->last_admit_ms);
    vw_json_i64(j, "created_ms", k->created_ms);
    vw_json_i64(j, "updated_ms", k->updated_ms);
}

/* The circuit fields of a provider, into an open object. */
void vw_json_circuit_fields(vw_json_t *j, const shm_provider_t *p, int64_t now_ms)
{
    int64_t left =
        p->circuit == SHM_CIRCUIT_OPEN && p->open_until_ms > now_ms ? p->open_until_ms - now_ms : 0;
    vw_json_str(j, "circuit", shm_circuit_name(p->circuit));
    vw_json_str(j, "circuit_reason", shm_reason_name(p->reason));
    vw_json_i64(j, "circuit_since_ms", p->since_ms);
    vw_json_i64(j, "open_until_ms", p->open_until_ms);
    vw_json_i64(j, "open_left_ms", left);
    vw_json_u64(j, "consecutive_failures", p->consec_failures);
    vw_json_u64(j, "failures", p->failures);
    vw_json_i64(j, "updated_ms", p->updated_ms);
}

void vw_json_prov_fields(vw_json_t *j, const vw_prov_t *p, int64_t now_ms)
{
    vw_json_str(j, "name", p->p.name);
    vw_json_circuit_fields(j, &p->p, now_ms);
    vw_json_str(j, "circuit_text", p->circuit_text);
    vw_json_u64(j, "keys", p->keys);
    vw_json_u64(j, "keys_available", p->available);
    vw_json_u64(j, "requests", p->requests);
    vw_json_u64(j, "outcomes_total", p->outcomes);
    vw_json_u64(j, "errors", p->errors);
    vw_json_num(j, "error_rate", p->error_rate, p->outcomes > 0);
}

void vw_json_event_fields(vw_json_t *j, const shm_event_t *ev)
{
    char text[sizeof(ev->text) + 1];
    memcpy(text, ev->text, sizeof(ev->text));
    text[sizeof(ev->text)] = '\0';
    vw_json_i64(j, "ts_ms", ev->ts_ms);
    vw_json_str(j, "event", shm_event_name(ev->type));
    vw_json_str(j, "status", shm_status_name(ev->status));
    vw_json_str(j, "reason", shm_reason_name(ev->reason));
    vw_json_i64(j, "arg", ev->arg);
    vw_json_i64(j, "pid", ev->pid);
    vw_json_str(j, "text", text);
}

/* ---- documents --------------------------------------------------------------------------- */

void vw_doc_keys(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_key_t *rows,
                 unsigned n)
{
    vw_json_t j;
    vw_json_begin(&j, out, "keys", now_ms, state_dir);
    vw_json_open(&j, "keys", '[');
    for (unsigned i = 0; i < n; i++) {
        vw_json_open(&j, NULL, '{');
        vw_json_key_fields(&j, &rows[i]);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_end(&j);
}

void vw_doc_providers(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_prov_t *rows,
                      unsigned n)
{
    vw_json_t j;
    vw_json_begin(&j, out, "providers", now_ms, state_dir);
    vw_json_open(&j, "providers", '[');
    for (unsigned i = 0; i < n; i++) {
        vw_json_open(&j, NULL, '{');
        vw_json_prov_fields(&j, &rows[i], now_ms);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_end(&j);
}

typedef struct kev_s {
    const char *key;
    shm_event_t ev;
} kev_t;

static int kev_newest_first(const void *pa, const void *pb)
{
    const kev_t *a = pa, *b = pb;
    if (a->ev.ts_ms != b->ev.ts_ms)
        return a->ev.ts_ms < b->ev.ts_ms ? 1 : -1;
    return strcmp(a->key, b->key);
}

int vw_doc_events(vw_buf_t *out, shm_t *s, int64_t now_ms, const char *state_dir, unsigned limit)
{
    shm_key_t *keys = NULL;
    kev_t *all = NULL;
    unsigned nk = 0, n = 0;
    int rc = shm_snapshot(s, now_ms, &keys, &nk);
    if (rc != 0)
        return rc;
    if (nk && !(all = malloc((size_t)nk * SHM_HISTORY_RING * sizeof(*all)))) {
        shm_snapshot_free(keys);
        return SHM_ENOMEM;
    }
    for (unsigned i = 0; i < nk; i++) {
        shm_event_t ev[SHM_HISTORY_RING];
        unsigned ne = 0;
        rc = shm_key_history(s, keys[i].name, ev, SHM_HISTORY_RING, &ne);
        if (rc == SHM_ENOTFOUND)
            continue; /* pruned since the snapshot */
        if (rc != 0)
            goto exit;
        for (unsigned e = 0; e < ne; e++)
            all[n++] = (kev_t){keys[i].name, ev[e]};
    }
    if (n > 1)
        qsort(all, n, sizeof(*all), kev_newest_first);
    vw_json_t j;
    vw_json_begin(&j, out, "events", now_ms, state_dir);
    vw_json_open(&j, "events", '[');
    for (unsigned i = 0; i < n && i < limit; i++) {
        vw_json_open(&j, NULL, '{');
        vw_json_str(&j, "key", all[i].key);
        vw_json_event_fields(&j, &all[i].ev);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_end(&j);
    rc = 0;
exit:
    free(all);
    shm_snapshot_free(keys);
    return rc;
}
