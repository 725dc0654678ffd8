/* keys.c - rows of keys and providers (see keys.h). */
#include "view/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view/fmt.h"

#define DAY_MS 86400000LL

const char *vw_state_name(int state)
{
    return state == VW_STATE_ORPHANED ? "orphaned" : shm_status_name(state);
}

int vw_state_parse(const char *s, size_t n)
{
    for (int st = 0; st <= VW_STATE_ORPHANED; st++) {
        const char *name = vw_state_name(st);
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return st;
    }
    if (n == 9 && memcmp(s, "half-open", 9) == 0)
        return SHM_ST_HALF_OPEN;
    return -1;
}

/* ---- one key --------------------------------------------------------------------------- */

static int64_t next_day_ms(int64_t now_ms, int32_t day_offset_s)
{
    int64_t off = (int64_t)day_offset_s * 1000, t = now_ms - off;
    int64_t day = t >= 0 ? t / DAY_MS : -((-t + DAY_MS - 1) / DAY_MS);
    return (day + 1) * DAY_MS + off;
}

void vw_key_derive(vw_key_t *r, const shm_latency_t *lat, int64_t now_ms, int64_t circuit_until)
{
    const shm_key_t *k = &r->k;
    char t[32];

    r->cooldown_left_ms = k->cooldown_until_ms > now_ms ? k->cooldown_until_ms - now_ms : 0;
    r->day_reset_ms = next_day_ms(now_ms, k->day_offset_s);
    r->limited = 0;
    if (k->rpm && k->rpm_used >= k->rpm)
        r->limited |= VW_LIM_RPM;
    if (k->rpd && k->rpd_used >= k->rpd)
        r->limited |= VW_LIM_RPD;
    if (k->tpm && k->tpm_used >= k->tpm)
        r->limited |= VW_LIM_TPM;
    if (k->max_inflight && k->inflight >= k->max_inflight)
        r->limited |= VW_LIM_INFLIGHT;
    if (circuit_until > now_ms)
        r->limited |= VW_LIM_CIRCUIT;

    r->state = k->orphaned ? VW_STATE_ORPHANED : k->status;
    if (r->state == SHM_ST_COOLING && r->cooldown_left_ms == 0)
        r->state = SHM_ST_HALF_OPEN;
    switch (r->state) {
    case VW_STATE_ORPHANED:
        snprintf(r->status_text, sizeof(r->status_text), "orphaned");
        r->status_color = VW_C_DIM;
        break;
    case SHM_ST_ACTIVE:
        r->status_color = VW_C_GREEN;
        if (r->limited & VW_LIM_RPD) {
            snprintf(r->status_text, sizeof(r->status_text), "depleted until %s",
                     vw_fmt_time(r->day_reset_ms, VW_T_HM, t, sizeof(t)));
            r->status_color = VW_C_YELLOW;
        } else if (r->limited & VW_LIM_CIRCUIT) {
            snprintf(r->status_text, sizeof(r->status_text), "circuit open %s",
                     vw_fmt_dur(circuit_until - now_ms, t, sizeof(t)));
            r->status_color = VW_C_YELLOW;
        } else {
            snprintf(r->status_text, sizeof(r->status_text), "active");
        }
        break;
    case SHM_ST_COOLING:
        snprintf(r->status_text, sizeof(r->status_text), "cooling %s",
                 vw_fmt_dur(r->cooldown_left_ms, t, sizeof(t)));
        r->status_color = VW_C_YELLOW;
        break;
    case SHM_ST_HALF_OPEN:
        snprintf(r->status_text, sizeof(r->status_text), "half-open");
        r->status_color = VW_C_YELLOW;
        break;
    case SHM_ST_DEPLETED:
        if (r->cooldown_left_ms)
            snprintf(r->status_text, sizeof(r->status_text), "depleted until %s",
                     vw_fmt_time(k->cooldown_until_ms, VW_T_HM, t, sizeof(t)));
        else
            snprintf(r->status_text, sizeof(r->status_text), "depleted");
        r->status_color = VW_C_RED;
        break;
    default: /* disabled, invalid */
        snprintf(r->status_text, sizeof(r->status_text), "%s", shm_status_name(r->state));
        r->status_color = VW_C_RED;
        break;
    }

    r->outcomes = r->errors = 0;
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        r->outcomes += k->by_class[cl];
    r->errors = k->by_class[SHM_CL_429] + k->by_class[SHM_CL_5XX] + k->by_class[SHM_CL_TIMEOUT] +
                k->by_class[SHM_CL_CONNECT] + k->by_class[SHM_CL_AUTH];
    r->error_rate = r->outcomes ? (double)r->errors / (double)r->outcomes : 0.0;

    r->samples = lat ? lat->count : 0;
    memset(&r->total, 0, sizeof(r->total));
    memset(&r->ttfb, 0, sizeof(r->ttfb));
    if (r->samples) {
        shm_percentiles(lat->total_ms, lat->count, &r->total);
        shm_percentiles(lat->ttfb_ms, lat->count, &r->ttfb);
    }
}

/* ---- one provider ---------------------------------------------------------------------- */

void vw_prov_derive(vw_prov_t *p, const vw_key_t *rows, unsigned nr, int64_t now_ms)
{
    char t[32];

    p->keys = p->available = 0;
    p->requests = p->outcomes = p->errors = 0;
    for (unsigned j = 0; j < nr; j++) {
        const vw_key_t *r = &rows[j];
        if (r->state == VW_STATE_ORPHANED || strcmp(r->k.provider, p->p.name) != 0)
            continue;
        p->keys++;
        if ((r->state == SHM_ST_ACTIVE || r->state == SHM_ST_HALF_OPEN) &&
            !(r->limited & (VW_LIM_RPD | VW_LIM_CIRCUIT)))
            p->available++;
        p->requests += r->k.requests;
        p->outcomes += r->outcomes;
        p->errors += r->errors;
    }
    p->error_rate = p->outcomes ? (double)p->errors / (double)p->outcomes : 0.0;
    p->open_left_ms = p->p.circuit == SHM_CIRCUIT_OPEN && p->p.open_until_ms > now_ms
                          ? p->p.open_until_ms - now_ms
                          : 0;
    if (p->p.circuit == SHM_CIRCUIT_CLOSED) {
        snprintf(p->circuit_text, sizeof(p->circuit_text), "closed");
        p->circuit_color = VW_C_GREEN;
    } else if (p->p.circuit == SHM_CIRCUIT_OPEN && p->open_left_ms) {
        snprintf(p->circuit_text, sizeof(p->circuit_text), "open %s",
                 vw_fmt_dur(p->open_left_ms, t, sizeof(t)));
        p->circuit_color = VW_C_RED;
    } else if (p->p.circuit == SHM_CIRCUIT_OPEN) {
        snprintf(p->circuit_text, sizeof(p->circuit_text), "open (expired)");
        p->circuit_color = VW_C_YELLOW;
    } else {
        snprintf(p->circuit_text, sizeof(p->circuit_text), "half-open");
        p->circuit_color = VW_C_YELLOW;
    }
}

/* ---- loading --------------------------------------------------------------------------- */

static const shm_provider_t *find_provider(const shm_provider_t *ps, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ps[i].name, name) == 0)
            return &ps[i];
    return NULL;
}

static int64_t circuit_until(const shm_provider_t *p)
{
    return p && p->circuit == SHM_CIRCUIT_OPEN ? p->open_until_ms : 0;
}

int vw_keys_load(shm_t *s, int64_t now_ms, vw_key_t **out, unsigned *nout, const char **what,
                 char name[SHM_NAME_MAX + 1])
{
    shm_key_t *keys = NULL;
    shm_provider_t *provs = NULL;
    vw_key_t *rows = NULL;
    shm_latency_t *lat = NULL;
    unsigned nk = 0, np = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    name[0] = '\0';
    *what = "reading the keys";
    if ((rc = shm_snapshot(s, now_ms, &keys, &nk)) != 0)
        goto exit;
    *what = "reading the providers";
    if ((rc = shm_providers(s, &provs, &np)) != 0)
        goto exit;
    rows = calloc(nk ? nk : 1, sizeof(*rows));
    lat = malloc(sizeof(*lat));
    if (!rows || !lat) {
        rc = SHM_ENOMEM;
        goto exit;
    }
    *what = "reading the latencies of";
    for (unsigned i = 0; i < nk; i++) {
        vw_key_t *r = &rows[i];
        r->k = keys[i];
        rc = shm_key_latency(s, r->k.name, lat);
        if (rc == SHM_ENOTFOUND) {
            lat->count = 0; /* pruned since the snapshot */
        } else if (rc != 0) {
            snprintf(name, SHM_NAME_MAX + 1, "%s", r->k.name);
            goto exit;
        }
        vw_key_derive(r, lat, now_ms, circuit_until(find_provider(provs, np, r->k.provider)));
    }
    *out = rows;
    *nout = nk;
    rows = NULL;
    rc = 0;
exit:
    free(rows);
    free(lat);
    shm_snapshot_free(keys);
    shm_snapshot_free(provs);
    return rc;
}

int vw_provs_load(shm_t *s, int64_t now_ms, const vw_key_t *rows, unsigned nrows, vw_prov_t **out,
                  unsigned *nout)
{
    shm_provider_t *provs = NULL;
    unsigned np = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    if ((rc = shm_providers(s, &provs, &np)) != 0)
        return rc;
    vw_prov_t *pr = calloc(np ? np : 1, sizeof(*pr));
    if (!pr) {
        shm_snapshot_free(provs);
        return SHM_ENOMEM;
    }
    for (unsigned i = 0; i < np; i++) {
        pr[i].p = provs[i];
        vw_prov_derive(&pr[i], rows, nrows, now_ms);
    }
    shm_snapshot_free(provs);
    *out = pr;
    *nout = np;
    return 0;
}
