/* json.c - --json output of the read commands: one JSON document per run, on one line.
 *
 * The schema is cli/README.md's "JSON schema" section, version 1 (`"schema": 1` at the top
 * level). Within a version fields are only ever added; a renamed or removed field, or a
 * changed meaning, raises the version. Times are wall-clock ms since the epoch (0 = never),
 * durations ms, limits 0 = unlimited, statistics that have no data yet are null.
 *
 * The writer and the documents the admin API serves too (keys, providers) are view/json.h's.
 */
#include "cli/ctl.h"
#include "view/json.h"

#include <stdio.h>
#include <string.h>

static void header(vw_json_t *j, ctl_t *c, const char *command)
{
    vw_json_begin(j, j->b, command, c->now_ms, c->state_dir);
}

static void footer(vw_json_t *j)
{
    vw_json_end(j);
}

/* A listing command's document: {"command": what, ..., what: [fields of each row]}. */
static void json_list(ctl_t *c, const char *what, const void *rows, unsigned n, size_t size,
                      void (*fields)(vw_json_t *, const void *), vw_buf_t *out)
{
    vw_json_t j = {.b = out};
    header(&j, c, what);
    vw_json_open(&j, what, '[');
    for (unsigned i = 0; i < n; i++) {
        vw_json_open(&j, NULL, '{');
        fields(&j, (const char *)rows + (size_t)i * size);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    footer(&j);
}

void ctl_json_keys(ctl_t *c, const vw_key_t *rows, unsigned n, vw_buf_t *out)
{
    vw_doc_keys(out, c->now_ms, c->state_dir, rows, n);
}

void ctl_json_providers(ctl_t *c, const vw_prov_t *rows, unsigned n, vw_buf_t *out)
{
    vw_doc_providers(out, c->now_ms, c->state_dir, rows, n);
}

void ctl_json_key(ctl_t *c, const vw_key_t *r, const shm_provider_t *prov, const shm_latency_t *lat,
                  const shm_event_t *ev, unsigned nev, vw_buf_t *out)
{
    vw_json_t j = {.b = out};
    uint64_t counts[CTL_HIST_BUCKETS];

    header(&j, c, "key");
    vw_json_open(&j, "key", '{');
    vw_json_key_fields(&j, r);
    if (prov) {
        vw_json_open(&j, "provider_circuit", '{');
        vw_json_circuit_fields(&j, prov, c->now_ms);
        vw_json_close(&j, '}');
    } else {
        vw_json_null(&j, "provider_circuit");
    }
    ctl_histogram(lat->total_ms, lat->count, counts);
    vw_json_open(&j, "histogram", '[');
    for (unsigned i = 0; i < CTL_HIST_BUCKETS; i++) {
        vw_json_open(&j, NULL, '{');
        if (i + 1 < CTL_HIST_BUCKETS)
            vw_json_u64(&j, "le_ms", ctl_hist_le[i]);
        else
            vw_json_null(&j, "le_ms");
        vw_json_u64(&j, "count", counts[i]);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_open(&j, "history", '[');
    for (unsigned i = 0; i < nev; i++) {
        vw_json_open(&j, NULL, '{');
        vw_json_event_fields(&j, &ev[i]);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_close(&j, '}');
    footer(&j);
}

/* `cluster`: no state_dir (it reads Redis, not the store) but the config it read. */
void ctl_json_cluster(ctl_t *c, const ctl_cluster_t *v, vw_buf_t *out)
{
    vw_json_t j;

    vw_json_begin(&j, out, "cluster", c->now_ms, NULL);
    vw_json_str(&j, "config", c->config_path);
    vw_json_str(&j, "redis", v->redis);
    vw_json_str(&j, "prefix", v->prefix);
    vw_json_u64(&j, "expected_nodes", v->expected_nodes);
    vw_json_i64(&j, "redis_time_ms", v->redis_now_ms);
    vw_json_open(&j, "nodes", '[');
    for (unsigned i = 0; i < v->n_nodes; i++) {
        const ctl_cnode_t *nd = &v->nodes[i];
        int have = !nd->gone;
        vw_json_open(&j, NULL, '{');
        vw_json_str(&j, "node", nd->id);
        vw_json_bool(&j, "listed", nd->listed);
        vw_json_bool(&j, "gone", nd->gone);
        if (have && nd->mode[0])
            vw_json_str(&j, "mode", nd->mode);
        else
            vw_json_null(&j, "mode");
        vw_json_i64(&j, "last_contact_ms", have ? nd->last_contact_ms : 0);
        if (have)
            vw_json_i64(&j, "last_contact_age_ms", v->now_ms - nd->last_contact_ms);
        else
            vw_json_null(&j, "last_contact_age_ms");
        if (have) {
            vw_json_i64(&j, "pid", nd->pid);
            vw_json_u64(&j, "grants", nd->grants);
            vw_json_u64(&j, "units", nd->units);
            vw_json_u64(&j, "refills", nd->refills);
            vw_json_u64(&j, "refill_p50_us", nd->refill_p50_us);
            vw_json_u64(&j, "refill_max_us", nd->refill_max_us);
        } else {
            static const char *const none[] = {"pid",     "grants",        "units",
                                               "refills", "refill_p50_us", "refill_max_us"};
            for (size_t k = 0; k < sizeof(none) / sizeof(none[0]); k++)
                vw_json_null(&j, none[k]);
        }
        if (have && nd->version[0])
            vw_json_str(&j, "version", nd->version);
        else
            vw_json_null(&j, "version");
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_open(&j, "entities", '[');
    for (unsigned i = 0; i < v->n_ents; i++) {
        const ctl_cent_t *e = &v->ents[i];
        vw_json_open(&j, NULL, '{');
        vw_json_str(&j, "kind", e->kind == SHM_LK_KEY ? "key" : "client");
        vw_json_str(&j, "name", e->name);
        if (e->provider)
            vw_json_str(&j, "provider", e->provider);
        else
            vw_json_null(&j, "provider");
        vw_json_open(&j, "dims", '[');
        for (int d = 0; d < SHM_LD_COUNT; d++) {
            if (!e->limit[d])
                continue;
            vw_json_open(&j, NULL, '{');
            vw_json_str(&j, "dim", ctl_dim_names[d]);
            vw_json_u64(&j, "limit", e->limit[d]);
            vw_json_u64(&j, "units", e->units[d]);
            vw_json_u64(&j, "grants", e->grants[d]);
            vw_json_open(&j, "nodes", '[');
            for (unsigned u = 0; u < e->n_uses; u++) {
                const ctl_cuse_t *use = &v->uses[e->first_use + u];
                if (!use->grants[d])
                    continue;
                vw_json_open(&j, NULL, '{');
                vw_json_str(&j, "node", v->nodes[use->node].id);
                vw_json_u64(&j, "units", use->units[d]);
                vw_json_u64(&j, "grants", use->grants[d]);
                vw_json_close(&j, '}');
            }
            vw_json_close(&j, ']');
            vw_json_close(&j, '}');
        }
        vw_json_close(&j, ']');
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    footer(&j);
}

static void usage_counts(vw_json_t *j, const shm_usage_row_t *r);

/* ---- clients ------------------------------------------------------------------------------ */

/* The fields of one client, into an open object (never its key: the store has none). */
static void client_fields(vw_json_t *j, const ctl_crow_t *r)
{
    const shm_client_t *u = &r->u;
    const shm_cdef_t *d = &r->d;

    vw_json_str(j, "name", u->name);
    vw_json_str(j, "source", r->store ? "store" : "config");
    vw_json_str(j, "state", ctl_cstate_name(r->state));
    vw_json_str(j, "fingerprint", r->store ? d->fingerprint : "");
    vw_json_str(j, "prev_fingerprint", r->store ? d->prev_fingerprint : "");
    vw_json_i64(j, "prev_until_ms", r->store && d->prev_fingerprint[0] ? d->prev_until_ms : 0);
    if (r->store) {
        vw_json_open(j, "models", '[');
        for (const char *p = d->spec.models; *p;) {
            size_t n = strcspn(p, ",");
            char m[SHM_CDEF_MODELS_MAX + 1];
            snprintf(m, sizeof(m), "%.*s", (int)n, p);
            vw_json_str(j, NULL, m);
            p += n + (p[n] == ',');
        }
        vw_json_close(j, ']');
    } else {
        vw_json_null(j, "models");
    }
    vw_json_i64(j, "expires_ms", r->store ? d->spec.expires_ms : 0);
    vw_json_str(j, "created_by", r->store ? d->created_by : "");
    vw_json_i64(j, "created_ms", r->store ? d->created_ms : u->created_ms);
    vw_json_i64(j, "updated_ms",
                r->store && d->updated_ms > u->updated_ms ? d->updated_ms : u->updated_ms);
    vw_json_i64(j, "rotated_ms", r->store ? d->rotated_ms : 0);
    vw_json_i64(j, "revoked_ms", r->store ? d->revoked_ms : 0);
    vw_json_u64(j, "rpm_used", u->rpm_used);
    vw_json_u64(j, "rpm_limit", u->rpm);
    vw_json_u64(j, "rpd_used", u->rpd_used);
    vw_json_u64(j, "rpd_limit", u->rpd);
    vw_json_u64(j, "tokens_day_used", u->tokens_day_used);
    vw_json_u64(j, "tokens_day_limit", u->tokens_per_day);
    vw_json_u64(j, "tokens_month_used", u->tokens_month_used);
    vw_json_u64(j, "tokens_month_limit", u->tokens_per_month);
    vw_json_u64(j, "cost_day_used_micro_usd", u->cost_day_used_micro_usd);
    vw_json_u64(j, "cost_day_limit_micro_usd", u->cost_per_day_micro_usd);
    vw_json_u64(j, "cost_month_used_micro_usd", u->cost_month_used_micro_usd);
    vw_json_u64(j, "cost_month_limit_micro_usd", u->cost_per_month_micro_usd);
    vw_json_i64(j, "day_resets_at_ms", u->day_reset_ms);
    vw_json_i64(j, "month_resets_at_ms", u->month_reset_ms);
    vw_json_u64(j, "requests", u->requests);
    vw_json_u64(j, "prompt_tokens", u->prompt_tokens);
    vw_json_u64(j, "completion_tokens", u->completion_tokens);
    vw_json_u64(j, "tokens", u->prompt_tokens + u->completion_tokens);
    vw_json_num(j, "cost_usd", (double)u->cost_micro_usd / 1e6, 1);
    vw_json_u64(j, "cost_micro_usd", u->cost_micro_usd);
    vw_json_i64(j, "last_admit_ms", u->last_admit_ms);
    vw_json_open(j, "today", '{');
    usage_counts(j, &r->today);
    vw_json_close(j, '}');
    vw_json_open(j, "this_month", '{');
    usage_counts(j, &r->month);
    vw_json_close(j, '}');
}

static void client_row(vw_json_t *j, const void *row)
{
    client_fields(j, row);
}

void ctl_json_clients(ctl_t *c, const ctl_crow_t *rows, unsigned n, vw_buf_t *out)
{
    json_list(c, "clients", rows, n, sizeof(*rows), client_row, out);
}

void ctl_json_client(ctl_t *c, const ctl_crow_t *r, const shm_event_t *ev, unsigned nev,
                     const struct ctl_usage_s *by_model, vw_buf_t *out)
{
    vw_json_t j = {.b = out};
    static const char *const keys[2] = {"models_today", "models_this_month"};

    header(&j, c, "client");
    vw_json_open(&j, "client", '{');
    client_fields(&j, r);
    for (int k = 0; k < 2; k++) {
        vw_json_open(&j, keys[k], '[');
        for (unsigned i = 0; i < by_model[k].n; i++) {
            vw_json_open(&j, NULL, '{');
            vw_json_str(&j, "model", by_model[k].rows[i].model);
            usage_counts(&j, &by_model[k].rows[i]);
            vw_json_close(&j, '}');
        }
        vw_json_close(&j, ']');
    }
    if (!ev) {
        vw_json_null(&j, "history");
    } else {
        vw_json_open(&j, "history", '[');
        for (unsigned i = 0; i < nev; i++) {
            char text[sizeof(ev[i].text) + 1];
            memcpy(text, ev[i].text, sizeof(ev[i].text));
            text[sizeof(ev[i].text)] = '\0';
            vw_json_open(&j, NULL, '{');
            vw_json_i64(&j, "ts_ms", ev[i].ts_ms);
            vw_json_str(&j, "event", shm_event_name(ev[i].type));
            vw_json_str(&j, "status", ev[i].status == SHM_CDEF_REVOKED ? "revoked" : "active");
            vw_json_i64(&j, "arg", ev[i].arg);
            vw_json_open(&j, "fields", '[');
            for (unsigned b = 0; ev[i].type == SHM_EV_CLIENT_SET && b < 8; b++)
                if (ev[i].arg & (1u << b))
                    vw_json_str(&j, NULL, ctl_cset_names[b]);
            vw_json_close(&j, ']');
            vw_json_i64(&j, "pid", ev[i].pid);
            vw_json_str(&j, "text", text);
            vw_json_close(&j, '}');
        }
        vw_json_close(&j, ']');
    }
    vw_json_close(&j, '}');
    footer(&j);
}

void ctl_json_client_key(ctl_t *c, const char *command, const ctl_crow_t *r, const char *key,
                         vw_buf_t *out)
{
    vw_json_t j = {.b = out};

    header(&j, c, command);
    vw_json_str(&j, "key", key);
    vw_json_open(&j, "client", '{');
    client_fields(&j, r);
    vw_json_close(&j, '}');
    footer(&j);
}

/* ---- usage -------------------------------------------------------------------------------- */

/* The counts of a usage row (or total), into an open object. */
static void usage_counts(vw_json_t *j, const shm_usage_row_t *r)
{
    vw_json_u64(j, "requests", r->requests);
    vw_json_u64(j, "prompt_tokens", r->prompt_tokens);
    vw_json_u64(j, "completion_tokens", r->completion_tokens);
    vw_json_u64(j, "tokens", r->prompt_tokens + r->completion_tokens);
    vw_json_num(j, "cost_usd", (double)r->cost_micro_usd / 1e6, 1); /* exact: cost_micro_usd */
    vw_json_u64(j, "cost_micro_usd", r->cost_micro_usd);
    vw_json_u64(j, "errors", r->errors);
    vw_json_u64(j, "refused", r->refused);
}

void ctl_json_usage(ctl_t *c, const ctl_usage_t *u, vw_buf_t *out)
{
    vw_json_t j = {.b = out};
    char a[16];
    const char *period = u->by == CTL_BY_MONTH ? "month" : "day";

    header(&j, c, "usage");
    vw_json_str(&j, "from", vw_fmt_day(u->from_day, a, sizeof(a)));
    vw_json_str(&j, "to", vw_fmt_day(u->to_day, a, sizeof(a)));
    vw_json_str(&j, "by", period);
    vw_json_open(&j, "rows", '[');
    for (unsigned i = 0; i < u->n; i++) {
        const shm_usage_row_t *r = &u->rows[i];
        vw_json_open(&j, NULL, '{');
        vw_json_str(&j, "client", r->client);
        vw_json_str(&j, period,
                    u->by == CTL_BY_MONTH ? vw_fmt_month(r->day, a, sizeof(a))
                                          : vw_fmt_day(r->day, a, sizeof(a)));
        vw_json_str(&j, "model", r->model);
        usage_counts(&j, r);
        vw_json_close(&j, '}');
    }
    vw_json_close(&j, ']');
    vw_json_open(&j, "total", '{');
    usage_counts(&j, &u->total);
    vw_json_close(&j, '}');
    footer(&j);
}
