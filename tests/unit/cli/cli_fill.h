/* cli_fill.h - a store with known contents for the llmgatectl tests, written through the
 * shm API exactly as a server would (admit, record), plus admin actions and an orphan.
 *
 *   k-a1  provider pa  rpm 100 rpd 1000 tpm 90000 inflight 8: 20 admitted, 18 successes
 *         (total latencies 10, 20, ... 180 ms; ttfb half), one 429 (cooldown 120 s), one 5xx;
 *         one more admitted and left in flight; tokens 100+20 per success, cost 50 each.
 *   k-a2  provider pa  rpm 5: 5 successes of 300 ms - RPM used up (5/5).
 *   k-b1  provider pb  rpd 3: 3 successes - RPD used up ("depleted until" the next day);
 *         provider pb's circuit open for 10 minutes.
 *   k-b2  provider pb: disabled by "test".
 *   k-old provider pa: orphaned (synced once, then left out of the config).
 */
#ifndef LLMGATE_CLI_FILL_H
#define LLMGATE_CLI_FILL_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shm/shm.h"

static int fill_admit(shm_t *s, const char *name, shm_resv_t *r)
{
    const char *names[1] = {name};
    shm_admit_req_t req = {.names = names, .count = 1, .tokens = 10};
    int rc = shm_key_admit(s, &req, SHM_NOW, r, NULL);
    if (rc != 0)
        printf("# admit %s: %s\n", name, shm_strerror(rc));
    return rc;
}

static int fill_outcome(shm_t *s, const char *name, int cls, uint32_t total_ms, int64_t cooldown_ms)
{
    shm_resv_t r;
    shm_outcome_t o;
    int rc = fill_admit(s, name, &r);
    if (rc != 0)
        return rc;
    shm_outcome_init(&o, cls);
    if (cls == SHM_CL_SUCCESS) {
        o.ttfb_ms = total_ms / 2;
        o.total_ms = total_ms;
        o.prompt_tokens = 100;
        o.completion_tokens = 20;
        o.cost_micro_usd = 50;
        o.code = 200;
    } else {
        o.code = cls == SHM_CL_429 ? 429 : 503;
        o.reason = cls == SHM_CL_429 ? SHM_RS_RATE_LIMITED : SHM_RS_SERVER_ERROR;
    }
    if (cooldown_ms)
        o.cooldown_until_ms = r.admitted_ms + cooldown_ms;
    rc = shm_key_record(s, &r, &o, SHM_NOW);
    if (rc != 0)
        printf("# record %s: %s\n", name, shm_strerror(rc));
    return rc;
}

/* Fills the store at dir (created). *inflight gets the reservation left open (the caller
 * keeps the store open to keep it in flight). Returns the open store or NULL. */
static shm_t *fill_store(const char *dir, shm_resv_t *inflight)
{
    shm_opts_t o = {.dir = dir};
    shm_t *s = NULL;
    char err[512];
    int rc = shm_store_open(&o, SHM_NOW, &s, err, sizeof(err));
    if (rc != 0) {
        printf("# open %s: %s\n", dir, err);
        return NULL;
    }
    shm_key_spec_t specs[] = {
        {.name = "k-a1",
         .fingerprint = "a1a1a1a1a1a1",
         .provider = "pa",
         .rpm = 100,
         .rpd = 1000,
         .tpm = 90000,
         .max_inflight = 8,
         .weight = 1},
        {.name = "k-a2", .fingerprint = "a2a2a2a2a2a2", .provider = "pa", .rpm = 5, .weight = 1},
        {.name = "k-b1", .fingerprint = "b1b1b1b1b1b1", .provider = "pb", .rpd = 3, .weight = 1},
        {.name = "k-b2", .fingerprint = "b2b2b2b2b2b2", .provider = "pb", .weight = 1},
        {.name = "k-old", .fingerprint = "0d0d0d0d0d0d", .provider = "pa", .weight = 1},
    };
    rc = shm_keys_sync(s, specs, 5, SHM_NOW, NULL);
    rc = rc ? rc : shm_keys_sync(s, specs, 4, SHM_NOW, NULL); /* k-old orphaned */
    for (unsigned i = 0; rc == 0 && i < 18; i++)
        rc = fill_outcome(s, "k-a1", SHM_CL_SUCCESS, 10 * (i + 1), 0);
    rc = rc ? rc : fill_outcome(s, "k-a1", SHM_CL_5XX, 0, 0);
    rc = rc ? rc : fill_outcome(s, "k-a1", SHM_CL_429, 0, 120000);
    /* cooling now: the in-flight one is admitted by an enable / cooldown dance */
    rc = rc ? rc : shm_key_enable(s, "k-a1", "test", SHM_NOW);
    rc = rc ? rc : fill_admit(s, "k-a1", inflight);
    rc = rc ? rc : shm_key_cooldown(s, "k-a1", 120000, "test", SHM_NOW);
    for (unsigned i = 0; rc == 0 && i < 5; i++)
        rc = fill_outcome(s, "k-a2", SHM_CL_SUCCESS, 300, 0);
    for (unsigned i = 0; rc == 0 && i < 3; i++)
        rc = fill_outcome(s, "k-b1", SHM_CL_SUCCESS, 40, 0);
    rc = rc ? rc : shm_key_disable(s, "k-b2", "test", SHM_NOW);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    rc = rc ? rc
            : shm_provider_set_circuit(s, "pb", SHM_CIRCUIT_OPEN, now_ms + 600000,
                                       SHM_RS_SERVER_ERROR, SHM_NOW);
    if (rc != 0) {
        printf("# filling %s: %s\n", dir, shm_strerror(rc));
        shm_store_close(s);
        return NULL;
    }
    return s;
}

#endif
