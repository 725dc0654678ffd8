/* json.c - --json output of the read commands: one JSON document per run, on one line.
 *
 * The schema is cli/README.md's "JSON schema" section, version 1 (`"schema": 1` at the top
 * level). Within a version fields are only ever added; a renamed or removed field, or a
 * changed meaning, raises the version. Times are wall-clock ms since the epoch (0 = never),
 * durations ms, limits 0 = unlimited, statistics that have no data yet are null.
 *
 * A tiny writer: it tracks only whether a comma is due at each nesting level.
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <string.h>

#define JSON_SCHEMA 1

typedef struct jw_s {
    ctl_buf_t *b;
    int depth;
    int first[16];
} jw_t;

static void jw_key(jw_t *j, const char *key)
{
    if (!j->first[j->depth])
        ctl_buf_add(j->b, ",", 1);
    j->first[j->depth] = 0;
    if (key) {
        ctl_json_str(j->b, key);
        ctl_buf_add(j->b, ":", 1);
    }
}

static void jw_open(jw_t *j, const char *key, char c)
{
    if (j->depth > 0 || key)
        jw_key(j, key);
    ctl_buf_add(j->b, &c, 1);
    j->first[++j->depth] = 1;
}

static void jw_close(jw_t *j, char c)
{
    j->depth--;
    ctl_buf_add(j->b, &c, 1);
}

static void jw_str(jw_t *j, const char *key, const char *v)
{
    jw_key(j, key);
    ctl_json_str(j->b, v);
}

static void jw_u64(jw_t *j, const char *key, uint64_t v)
{
    jw_key(j, key);
    ctl_buf_printf(j->b, "%llu", (unsigned long long)v);
}

static void jw_i64(jw_t *j, const char *key, int64_t v)
{
    jw_key(j, key);
    ctl_buf_printf(j->b, "%lld", (long long)v);
}

static void jw_null(jw_t *j, const char *key)
{
    jw_key(j, key);
    ctl_buf_puts(j->b, "null");
}

static void jw_u32_or_null(jw_t *j, const char *key, uint32_t v, int have)
{
    if (have)
        jw_u64(j, key, v);
    else
        jw_null(j, key);
}

static void jw_num(jw_t *j, const char *key, double v, int have)
{
    if (!have) {
        jw_null(j, key);
        return;
    }
    jw_key(j, key);
    ctl_buf_printf(j->b, "%.6f", v);
}

static void jw_bool(jw_t *j, const char *key, int v)
{
    jw_key(j, key);
    ctl_buf_puts(j->b, v ? "true" : "false");
}

static void header(jw_t *j, ctl_t *c, const char *command)
{
    jw_open(j, NULL, '{');
    jw_u64(j, "schema", JSON_SCHEMA);
    jw_str(j, "command", command);
    jw_i64(j, "generated_ms", c->now_ms);
    jw_str(j, "state_dir", c->state_dir);
}

static void footer(jw_t *j)
{
    jw_close(j, '}');
    ctl_buf_add(j->b, "\n", 1);
}

/* The fields of one key, into an open object. */
static void key_fields(jw_t *j, const ctl_row_t *r)
{
    static const char *const outcome_names[SHM_CL_COUNT] = {
        "success", "rate_limited", "server_error", "timeout",
        "connect", "auth",         "other",        "cancelled"};
    static const struct {
        unsigned bit;
        const char *name;
    } lim[] = {{CTL_LIM_RPM, "rpm"},
               {CTL_LIM_RPD, "rpd"},
               {CTL_LIM_TPM, "tpm"},
               {CTL_LIM_INFLIGHT, "inflight"},
               {CTL_LIM_CIRCUIT, "circuit"}};
    const shm_key_t *k = &r->k;
    int have = r->samples > 0;

    jw_str(j, "name", k->name);
    jw_str(j, "fingerprint", k->fingerprint);
    jw_str(j, "provider", k->provider);
    jw_str(j, "state", ctl_state_name(r->state));
    jw_str(j, "status", shm_status_name(k->status));
    jw_str(j, "reason", shm_reason_name(k->reason));
    jw_str(j, "status_text", r->status_text);
    jw_bool(j, "orphaned", k->orphaned);
    jw_i64(j, "status_since_ms", k->status_since_ms);
    jw_i64(j, "cooldown_until_ms", k->cooldown_until_ms);
    jw_i64(j, "cooldown_left_ms", r->cooldown_left_ms);
    jw_open(j, "limited_by", '[');
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++)
        if (r->limited & lim[i].bit)
            jw_str(j, NULL, lim[i].name);
    jw_close(j, ']');
    jw_u64(j, "rpm_used", k->rpm_used);
    jw_u64(j, "rpm_limit", k->rpm);
    jw_u64(j, "rpd_used", k->rpd_used);
    jw_u64(j, "rpd_limit", k->rpd);
    jw_i64(j, "rpd_resets_at_ms", r->day_reset_ms);
    jw_u64(j, "tpm_used", k->tpm_used);
    jw_u64(j, "tpm_limit", k->tpm);
    jw_u64(j, "inflight", k->inflight);
    jw_u64(j, "max_inflight", k->max_inflight);
    jw_u64(j, "weight", k->weight);
    jw_i64(j, "day_offset_s", k->day_offset_s);
    jw_open(j, "latency_ms", '{');
    jw_u64(j, "samples", r->samples);
    jw_u32_or_null(j, "p50", r->total.p50, have);
    jw_u32_or_null(j, "p95", r->total.p95, have);
    jw_u32_or_null(j, "p99", r->total.p99, have);
    jw_close(j, '}');
    jw_open(j, "ttfb_ms", '{');
    jw_u32_or_null(j, "p50", r->ttfb.p50, have);
    jw_u32_or_null(j, "p95", r->ttfb.p95, have);
    jw_u32_or_null(j, "p99", r->ttfb.p99, have);
    jw_close(j, '}');
    jw_u32_or_null(j, "ewma_total_ms", k->ewma_total_ms, k->ewma_total_ms > 0);
    jw_u32_or_null(j, "ewma_ttfb_ms", k->ewma_ttfb_ms, k->ewma_ttfb_ms > 0);
    jw_u64(j, "requests", k->requests);
    jw_open(j, "outcomes", '{');
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        jw_u64(j, outcome_names[cl], k->by_class[cl]);
    jw_close(j, '}');
    jw_u64(j, "outcomes_total", r->outcomes);
    jw_u64(j, "errors", r->errors);
    jw_num(j, "error_rate", r->error_rate, r->outcomes > 0);
    jw_u64(j, "consecutive_failures", k->consec_failures);
    jw_u64(j, "consecutive_successes", k->consec_successes);
    jw_i64(j, "last_error_code", k->last_error_code);
    jw_i64(j, "last_error_ms", k->last_error_ms);
    jw_u64(j, "prompt_tokens", k->prompt_tokens);
    jw_u64(j, "completion_tokens", k->completion_tokens);
    jw_u64(j, "tokens", k->prompt_tokens + k->completion_tokens);
    jw_num(j, "cost_usd", (double)k->cost_micro_usd / 1e6, 1);
    jw_u64(j, "cost_micro_usd", k->cost_micro_usd);
    jw_i64(j, "last_admit_ms", k->last_admit_ms);
    jw_i64(j, "created_ms", k->created_ms);
    jw_i64(j, "updated_ms", k->updated_ms);
}

/* A listing command's document: {"command": what, ..., what: [fields of each row]}. */
static void json_list(ctl_t *c, const char *what, const void *rows, unsigned n, size_t size,
                      void (*fields)(jw_t *, const void *), ctl_buf_t *out)
{
    jw_t j = {.b = out};
    header(&j, c, what);
    jw_open(&j, what, '[');
    for (unsigned i = 0; i < n; i++) {
        jw_open(&j, NULL, '{');
        fields(&j, (const char *)rows + (size_t)i * size);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    footer(&j);
}

static void key_row(jw_t *j, const void *row)
{
    key_fields(j, row);
}

void ctl_json_keys(ctl_t *c, const ctl_row_t *rows, unsigned n, ctl_buf_t *out)
{
    json_list(c, "keys", rows, n, sizeof(*rows), key_row, out);
}

/* The circuit fields of a provider, into an open object. */
static void circuit_fields(jw_t *j, const shm_provider_t *p, int64_t now_ms)
{
    int64_t left =
        p->circuit == SHM_CIRCUIT_OPEN && p->open_until_ms > now_ms ? p->open_until_ms - now_ms : 0;
    jw_str(j, "circuit", shm_circuit_name(p->circuit));
    jw_str(j, "circuit_reason", shm_reason_name(p->reason));
    jw_i64(j, "circuit_since_ms", p->since_ms);
    jw_i64(j, "open_until_ms", p->open_until_ms);
    jw_i64(j, "open_left_ms", left);
    jw_u64(j, "consecutive_failures", p->consec_failures);
    jw_u64(j, "failures", p->failures);
    jw_i64(j, "updated_ms", p->updated_ms);
}

void ctl_json_providers(ctl_t *c, const ctl_prow_t *rows, unsigned n, ctl_buf_t *out)
{
    jw_t j = {.b = out};
    header(&j, c, "providers");
    jw_open(&j, "providers", '[');
    for (unsigned i = 0; i < n; i++) {
        const ctl_prow_t *p = &rows[i];
        jw_open(&j, NULL, '{');
        jw_str(&j, "name", p->p.name);
        circuit_fields(&j, &p->p, c->now_ms);
        jw_str(&j, "circuit_text", p->circuit_text);
        jw_u64(&j, "keys", p->keys);
        jw_u64(&j, "keys_available", p->available);
        jw_u64(&j, "requests", p->requests);
        jw_u64(&j, "outcomes_total", p->outcomes);
        jw_u64(&j, "errors", p->errors);
        jw_num(&j, "error_rate", p->error_rate, p->outcomes > 0);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    footer(&j);
}

void ctl_json_key(ctl_t *c, const ctl_row_t *r, const shm_provider_t *prov,
                  const shm_latency_t *lat, const shm_event_t *ev, unsigned nev, ctl_buf_t *out)
{
    jw_t j = {.b = out};
    uint64_t counts[CTL_HIST_BUCKETS];

    header(&j, c, "key");
    jw_open(&j, "key", '{');
    key_fields(&j, r);
    if (prov) {
        jw_open(&j, "provider_circuit", '{');
        circuit_fields(&j, prov, c->now_ms);
        jw_close(&j, '}');
    } else {
        jw_null(&j, "provider_circuit");
    }
    ctl_histogram(lat->total_ms, lat->count, counts);
    jw_open(&j, "histogram", '[');
    for (unsigned i = 0; i < CTL_HIST_BUCKETS; i++) {
        jw_open(&j, NULL, '{');
        if (i + 1 < CTL_HIST_BUCKETS)
            jw_u64(&j, "le_ms", ctl_hist_le[i]);
        else
            jw_null(&j, "le_ms");
        jw_u64(&j, "count", counts[i]);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_open(&j, "history", '[');
    for (unsigned i = 0; i < nev; i++) {
        char text[sizeof(ev[i].text) + 1];
        memcpy(text, ev[i].text, sizeof(ev[i].text));
        text[sizeof(ev[i].text)] = '\0';
        jw_open(&j, NULL, '{');
        jw_i64(&j, "ts_ms", ev[i].ts_ms);
        jw_str(&j, "event", shm_event_name(ev[i].type));
        jw_str(&j, "status", shm_status_name(ev[i].status));
        jw_str(&j, "reason", shm_reason_name(ev[i].reason));
        jw_i64(&j, "arg", ev[i].arg);
        jw_i64(&j, "pid", ev[i].pid);
        jw_str(&j, "text", text);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_close(&j, '}');
    footer(&j);
}

/* `cluster`: no state_dir (it reads Redis, not the store) but the config it read. */
void ctl_json_cluster(ctl_t *c, const ctl_cluster_t *v, ctl_buf_t *out)
{
    jw_t j = {.b = out};

    jw_open(&j, NULL, '{');
    jw_u64(&j, "schema", JSON_SCHEMA);
    jw_str(&j, "command", "cluster");
    jw_i64(&j, "generated_ms", c->now_ms);
    jw_str(&j, "config", c->config_path);
    jw_str(&j, "redis", v->redis);
    jw_str(&j, "prefix", v->prefix);
    jw_u64(&j, "expected_nodes", v->expected_nodes);
    jw_i64(&j, "redis_time_ms", v->redis_now_ms);
    jw_open(&j, "nodes", '[');
    for (unsigned i = 0; i < v->n_nodes; i++) {
        const ctl_cnode_t *nd = &v->nodes[i];
        int have = !nd->gone;
        jw_open(&j, NULL, '{');
        jw_str(&j, "node", nd->id);
        jw_bool(&j, "listed", nd->listed);
        jw_bool(&j, "gone", nd->gone);
        if (have && nd->mode[0])
            jw_str(&j, "mode", nd->mode);
        else
            jw_null(&j, "mode");
        jw_i64(&j, "last_contact_ms", have ? nd->last_contact_ms : 0);
        if (have)
            jw_i64(&j, "last_contact_age_ms", v->now_ms - nd->last_contact_ms);
        else
            jw_null(&j, "last_contact_age_ms");
        if (have) {
            jw_i64(&j, "pid", nd->pid);
            jw_u64(&j, "grants", nd->grants);
            jw_u64(&j, "units", nd->units);
            jw_u64(&j, "refills", nd->refills);
            jw_u64(&j, "refill_p50_us", nd->refill_p50_us);
            jw_u64(&j, "refill_max_us", nd->refill_max_us);
        } else {
            static const char *const none[] = {"pid",     "grants",        "units",
                                               "refills", "refill_p50_us", "refill_max_us"};
            for (size_t k = 0; k < sizeof(none) / sizeof(none[0]); k++)
                jw_null(&j, none[k]);
        }
        if (have && nd->version[0])
            jw_str(&j, "version", nd->version);
        else
            jw_null(&j, "version");
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_open(&j, "entities", '[');
    for (unsigned i = 0; i < v->n_ents; i++) {
        const ctl_cent_t *e = &v->ents[i];
        jw_open(&j, NULL, '{');
        jw_str(&j, "kind", e->kind == SHM_LK_KEY ? "key" : "client");
        jw_str(&j, "name", e->name);
        if (e->provider)
            jw_str(&j, "provider", e->provider);
        else
            jw_null(&j, "provider");
        jw_open(&j, "dims", '[');
        for (int d = 0; d < SHM_LD_COUNT; d++) {
            if (!e->limit[d])
                continue;
            jw_open(&j, NULL, '{');
            jw_str(&j, "dim", ctl_dim_names[d]);
            jw_u64(&j, "limit", e->limit[d]);
            jw_u64(&j, "units", e->units[d]);
            jw_u64(&j, "grants", e->grants[d]);
            jw_open(&j, "nodes", '[');
            for (unsigned u = 0; u < e->n_uses; u++) {
                const ctl_cuse_t *use = &v->uses[e->first_use + u];
                if (!use->grants[d])
                    continue;
                jw_open(&j, NULL, '{');
                jw_str(&j, "node", v->nodes[use->node].id);
                jw_u64(&j, "units", use->units[d]);
                jw_u64(&j, "grants", use->grants[d]);
                jw_close(&j, '}');
            }
            jw_close(&j, ']');
            jw_close(&j, '}');
        }
        jw_close(&j, ']');
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    footer(&j);
}

static void usage_counts(jw_t *j, const shm_usage_row_t *r);

/* ---- clients ------------------------------------------------------------------------------ */

/* The fields of one client, into an open object (never its key: the store has none). */
static void client_fields(jw_t *j, const ctl_crow_t *r)
{
    const shm_client_t *u = &r->u;
    const shm_cdef_t *d = &r->d;

    jw_str(j, "name", u->name);
    jw_str(j, "source", r->store ? "store" : "config");
    jw_str(j, "state", ctl_cstate_name(r->state));
    jw_str(j, "fingerprint", r->store ? d->fingerprint : "");
    jw_str(j, "prev_fingerprint", r->store ? d->prev_fingerprint : "");
    jw_i64(j, "prev_until_ms", r->store && d->prev_fingerprint[0] ? d->prev_until_ms : 0);
    if (r->store) {
        jw_open(j, "models", '[');
        for (const char *p = d->spec.models; *p;) {
            size_t n = strcspn(p, ",");
            char m[SHM_CDEF_MODELS_MAX + 1];
            snprintf(m, sizeof(m), "%.*s", (int)n, p);
            jw_str(j, NULL, m);
            p += n + (p[n] == ',');
        }
        jw_close(j, ']');
    } else {
        jw_null(j, "models");
    }
    jw_i64(j, "expires_ms", r->store ? d->spec.expires_ms : 0);
    jw_str(j, "created_by", r->store ? d->created_by : "");
    jw_i64(j, "created_ms", r->store ? d->created_ms : u->created_ms);
    jw_i64(j, "updated_ms",
           r->store && d->updated_ms > u->updated_ms ? d->updated_ms : u->updated_ms);
    jw_i64(j, "rotated_ms", r->store ? d->rotated_ms : 0);
    jw_i64(j, "revoked_ms", r->store ? d->revoked_ms : 0);
    jw_u64(j, "rpm_used", u->rpm_used);
    jw_u64(j, "rpm_limit", u->rpm);
    jw_u64(j, "rpd_used", u->rpd_used);
    jw_u64(j, "rpd_limit", u->rpd);
    jw_u64(j, "tokens_day_used", u->tokens_day_used);
    jw_u64(j, "tokens_day_limit", u->tokens_per_day);
    jw_u64(j, "tokens_month_used", u->tokens_month_used);
    jw_u64(j, "tokens_month_limit", u->tokens_per_month);
    jw_u64(j, "cost_day_used_micro_usd", u->cost_day_used_micro_usd);
    jw_u64(j, "cost_day_limit_micro_usd", u->cost_per_day_micro_usd);
    jw_u64(j, "cost_month_used_micro_usd", u->cost_month_used_micro_usd);
    jw_u64(j, "cost_month_limit_micro_usd", u->cost_per_month_micro_usd);
    jw_i64(j, "day_resets_at_ms", u->day_reset_ms);
    jw_i64(j, "month_resets_at_ms", u->month_reset_ms);
    jw_u64(j, "requests", u->requests);
    jw_u64(j, "prompt_tokens", u->prompt_tokens);
    jw_u64(j, "completion_tokens", u->completion_tokens);
    jw_u64(j, "tokens", u->prompt_tokens + u->completion_tokens);
    jw_num(j, "cost_usd", (double)u->cost_micro_usd / 1e6, 1);
    jw_u64(j, "cost_micro_usd", u->cost_micro_usd);
    jw_i64(j, "last_admit_ms", u->last_admit_ms);
    jw_open(j, "today", '{');
    usage_counts(j, &r->today);
    jw_close(j, '}');
    jw_open(j, "this_month", '{');
    usage_counts(j, &r->month);
    jw_close(j, '}');
}

static void client_row(jw_t *j, const void *row)
{
    client_fields(j, row);
}

void ctl_json_clients(ctl_t *c, const ctl_crow_t *rows, unsigned n, ctl_buf_t *out)
{
    json_list(c, "clients", rows, n, sizeof(*rows), client_row, out);
}

void ctl_json_client(ctl_t *c, const ctl_crow_t *r, const shm_event_t *ev, unsigned nev,
                     const struct ctl_usage_s *by_model, ctl_buf_t *out)
{
    jw_t j = {.b = out};
    static const char *const keys[2] = {"models_today", "models_this_month"};

    header(&j, c, "client");
    jw_open(&j, "client", '{');
    client_fields(&j, r);
    for (int k = 0; k < 2; k++) {
        jw_open(&j, keys[k], '[');
        for (unsigned i = 0; i < by_model[k].n; i++) {
            jw_open(&j, NULL, '{');
            jw_str(&j, "model", by_model[k].rows[i].model);
            usage_counts(&j, &by_model[k].rows[i]);
            jw_close(&j, '}');
        }
        jw_close(&j, ']');
    }
    if (!ev) {
        jw_null(&j, "history");
    } else {
        jw_open(&j, "history", '[');
        for (unsigned i = 0; i < nev; i++) {
            char text[sizeof(ev[i].text) + 1];
            memcpy(text, ev[i].text, sizeof(ev[i].text));
            text[sizeof(ev[i].text)] = '\0';
            jw_open(&j, NULL, '{');
            jw_i64(&j, "ts_ms", ev[i].ts_ms);
            jw_str(&j, "event", shm_event_name(ev[i].type));
            jw_str(&j, "status", ev[i].status == SHM_CDEF_REVOKED ? "revoked" : "active");
            jw_i64(&j, "arg", ev[i].arg);
            jw_open(&j, "fields", '[');
            for (unsigned b = 0; ev[i].type == SHM_EV_CLIENT_SET && b < 8; b++)
                if (ev[i].arg & (1u << b))
                    jw_str(&j, NULL, ctl_cset_names[b]);
            jw_close(&j, ']');
            jw_i64(&j, "pid", ev[i].pid);
            jw_str(&j, "text", text);
            jw_close(&j, '}');
        }
        jw_close(&j, ']');
    }
    jw_close(&j, '}');
    footer(&j);
}

void ctl_json_client_key(ctl_t *c, const char *command, const ctl_crow_t *r, const char *key,
                         ctl_buf_t *out)
{
    jw_t j = {.b = out};

    header(&j, c, command);
    jw_str(&j, "key", key);
    jw_open(&j, "client", '{');
    client_fields(&j, r);
    jw_close(&j, '}');
    footer(&j);
}

/* ---- usage -------------------------------------------------------------------------------- */

/* The counts of a usage row (or total), into an open object. */
static void usage_counts(jw_t *j, const shm_usage_row_t *r)
{
    jw_u64(j, "requests", r->requests);
    jw_u64(j, "prompt_tokens", r->prompt_tokens);
    jw_u64(j, "completion_tokens", r->completion_tokens);
    jw_u64(j, "tokens", r->prompt_tokens + r->completion_tokens);
    jw_num(j, "cost_usd", (double)r->cost_micro_usd / 1e6, 1); /* exact: cost_micro_usd */
    jw_u64(j, "cost_micro_usd", r->cost_micro_usd);
    jw_u64(j, "errors", r->errors);
    jw_u64(j, "refused", r->refused);
}

void ctl_json_usage(ctl_t *c, const ctl_usage_t *u, ctl_buf_t *out)
{
    jw_t j = {.b = out};
    char a[16];
    const char *period = u->by == CTL_BY_MONTH ? "month" : "day";

    header(&j, c, "usage");
    jw_str(&j, "from", ctl_fmt_day(u->from_day, a, sizeof(a)));
    jw_str(&j, "to", ctl_fmt_day(u->to_day, a, sizeof(a)));
    jw_str(&j, "by", period);
    jw_open(&j, "rows", '[');
    for (unsigned i = 0; i < u->n; i++) {
        const shm_usage_row_t *r = &u->rows[i];
        jw_open(&j, NULL, '{');
        jw_str(&j, "client", r->client);
        jw_str(&j, period,
               u->by == CTL_BY_MONTH ? ctl_fmt_month(r->day, a, sizeof(a))
                                     : ctl_fmt_day(r->day, a, sizeof(a)));
        jw_str(&j, "model", r->model);
        usage_counts(&j, r);
        jw_close(&j, '}');
    }
    jw_close(&j, ']');
    jw_open(&j, "total", '{');
    usage_counts(&j, &u->total);
    jw_close(&j, '}');
    footer(&j);
}
