/* keys.h - the rows behind every view of keys and providers: one row per key (its record,
 * latency ring and provider circuit, with the effective state, the STATUS text, what limits
 * it now, percentiles and error rate) and one row per provider (its circuit and the totals
 * of its keys). llmgatectl's tables, watch and --json and the admin API's documents are all
 * made from these rows, so they say the same.
 *
 * The effective state differs from the stored status in one way: a COOLING key whose
 * cooldown has passed is admissible as a half-open probe, so it is shown as half_open (the
 * store changes it at the next admission).
 *
 * Threads: the derive functions are pure; the loaders read the store (any thread, a few
 * read transactions each) and return malloc'ed arrays the caller frees with free().
 */
#ifndef LLMGATE_VIEW_KEYS_H
#define LLMGATE_VIEW_KEYS_H

#include <stdint.h>

#include "shm/shm.h"

/* "orphaned" plus the SHM_ST_* values (as bits of a --status filter). */
#define VW_STATE_ORPHANED SHM_ST_COUNT

/* What stops a key now besides its status (provider circuit open counts too). */
enum vw_limited {
    VW_LIM_RPM = 1,
    VW_LIM_RPD = 2,
    VW_LIM_TPM = 4,
    VW_LIM_INFLIGHT = 8,
    VW_LIM_CIRCUIT = 16,
};

typedef struct vw_key_s {
    shm_key_t k;
    int state;            /* SHM_ST_* or VW_STATE_ORPHANED */
    char status_text[48]; /* the table's STATUS cell: "cooling 42s", "depleted until 00:00Z" */
    int status_color;     /* enum vw_color */
    int64_t cooldown_left_ms;
    int64_t day_reset_ms;  /* when the key's RPD count starts again */
    unsigned limited;      /* VW_LIM_* at their limit now */
    unsigned samples;      /* latency ring samples */
    shm_pct_t total, ttfb; /* percentiles of the ring, ms */
    uint64_t outcomes;     /* outcomes recorded (all classes) */
    uint64_t errors;       /* 429 + 5xx + timeout + connect + auth */
    double error_rate;     /* errors / outcomes, 0 without outcomes */
} vw_key_t;

typedef struct vw_prov_s {
    shm_provider_t p;
    char circuit_text[48]; /* "closed", "open 12s", "half-open" */
    int circuit_color;
    int64_t open_left_ms;
    unsigned keys, available; /* keys of this provider; those admissible by status */
    uint64_t requests, outcomes, errors;
    double error_rate;
} vw_prov_t;

/* The name of a row state ("active" ... "depleted", "orphaned"). */
const char *vw_state_name(int state);
/* Parses a state name (also "half-open"); -1 if unknown. */
int vw_state_parse(const char *s, size_t n);

/* Fills the derived fields of r from r->k, the latency ring (may be NULL), now and the
 * open-until of the key's provider circuit (0 = closed). Pure. */
void vw_key_derive(vw_key_t *r, const shm_latency_t *lat, int64_t now_ms,
                   int64_t circuit_open_until_ms);

/* Fills the derived fields of p from p->p, now and the key rows (those of other providers
 * and orphaned ones are skipped). Pure. */
void vw_prov_derive(vw_prov_t *p, const vw_key_t *rows, unsigned n, int64_t now_ms);

/* Every key as a row as of now_ms, sorted by name. Returns 0 or an SHM_E* code; then *what
 * says what was being read ("reading the keys", "reading the providers", "reading the
 * latencies of") and name holds the key it was reading ("" for none). */
int vw_keys_load(shm_t *s, int64_t now_ms, vw_key_t **out, unsigned *n, const char **what,
                 char name[SHM_NAME_MAX + 1]);

/* Every provider as a row, with the totals of rows (from vw_keys_load). 0 or an SHM_E*
 * code. */
int vw_provs_load(shm_t *s, int64_t now_ms, const vw_key_t *rows, unsigned nrows, vw_prov_t **out,
                  unsigned *n);

#endif
