/* actions.c - cooldown, disable, enable, reset, prune.
 *
 * Each action is one shm admin transaction (shm_key_cooldown, _disable, _enable, _reset,
 * shm_keys_prune); the store records it in the key's history with the actor
 * "llmgatectl uid N", and every running server obeys it at its next admission because
 * admission reads the same record. The key is read before and after, and the change is
 * printed as "NAME: before -> after".
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The key as the table would show it (no latency ring needed). */
static int key_row(ctl_t *c, const char *name, vw_key_t *r)
{
    shm_provider_t p;
    int rc;

    memset(r, 0, sizeof(*r));
    c->now_ms = ctl_now_ms();
    if ((rc = shm_key_get(c->shm, name, c->now_ms, &r->k)) != 0)
        return rc;
    rc = shm_provider_get(c->shm, r->k.provider, &p);
    vw_key_derive(r, NULL, c->now_ms,
                  rc == 0 && p.circuit == SHM_CIRCUIT_OPEN ? p.open_until_ms : 0);
    return 0;
}

static void used_change(vw_buf_t *o, const char *what, uint64_t before, uint64_t after,
                        uint64_t limit, int *first)
{
    char a[32], b[32];
    vw_buf_printf(o, "%s%s %s -> %s", *first ? "" : ", ", what,
                  vw_fmt_used(before, limit, a, sizeof(a)),
                  vw_fmt_used(after, limit, b, sizeof(b)));
    *first = 0;
}

int ctl_cmd_action(ctl_t *c, const char *cmd, const char *name)
{
    vw_key_t before, after;
    vw_buf_t o = {0};
    char actor[40], nb[SHM_NAME_MAX * 2 + 2], t[40];
    int rc;

    snprintf(actor, sizeof(actor), "llmgatectl uid %u", (unsigned)getuid());
    if ((rc = key_row(c, name, &before)) != 0)
        return ctl_store_error(c, rc, "reading key", name);
    if (strcmp(cmd, "cooldown") == 0)
        rc = shm_key_cooldown(c->shm, name, c->duration_ms, actor, SHM_NOW);
    else if (strcmp(cmd, "disable") == 0)
        rc = shm_key_disable(c->shm, name, actor, SHM_NOW);
    else if (strcmp(cmd, "enable") == 0)
        rc = shm_key_enable(c->shm, name, actor, SHM_NOW);
    else
        rc = shm_key_reset(c->shm, name, c->reset_what, actor, SHM_NOW);
    if (rc != 0)
        return ctl_store_error(c, rc, cmd, name);
    if ((rc = key_row(c, name, &after)) != 0)
        return ctl_store_error(c, rc, "reading key", name);

    vw_buf_printf(&o, "%s: ", vw_printable(name, nb, sizeof(nb)));
    if (strcmp(cmd, "reset") == 0) {
        int first = 1;
        vw_buf_puts(&o, "reset ");
        if (c->reset_what & SHM_RESET_RPM)
            used_change(&o, "rpm", before.k.rpm_used, after.k.rpm_used, after.k.rpm, &first);
        if (c->reset_what & SHM_RESET_RPD)
            used_change(&o, "rpd", before.k.rpd_used, after.k.rpd_used, after.k.rpd, &first);
        if (c->reset_what & SHM_RESET_TPM)
            used_change(&o, "tpm", before.k.tpm_used, after.k.tpm_used, after.k.tpm, &first);
        if (c->reset_what & SHM_RESET_COUNTERS)
            vw_buf_printf(&o,
                          "%scounters (requests %llu -> %llu, tokens %llu -> %llu, latency "
                          "ring, last error, consecutive counts)",
                          first ? "" : ", ", (unsigned long long)before.k.requests,
                          (unsigned long long)after.k.requests,
                          (unsigned long long)(before.k.prompt_tokens + before.k.completion_tokens),
                          (unsigned long long)(after.k.prompt_tokens + after.k.completion_tokens));
        vw_buf_printf(&o, "; status %s\n", after.status_text);
    } else if (strcmp(before.status_text, after.status_text) == 0 && strcmp(cmd, "cooldown") != 0) {
        vw_buf_printf(&o, "already %s (recorded again)\n", after.status_text);
    } else {
        vw_buf_printf(&o, "%s -> %s", before.status_text, after.status_text);
        if (strcmp(cmd, "cooldown") == 0)
            vw_buf_printf(&o, " (until %s)",
                          vw_fmt_time(after.k.cooldown_until_ms, VW_T_FULL, t, sizeof(t)));
        vw_buf_puts(&o, "\n");
    }
    if (after.k.orphaned)
        vw_buf_puts(&o, "note: the key is orphaned (not in the config): no server uses it\n");
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&o);
    return rc;
}

int ctl_cmd_prune(ctl_t *c)
{
    shm_key_t *keys = NULL;
    unsigned nk = 0, pruned = 0;
    vw_buf_t names = {0}, o = {0};
    int rc;

    c->now_ms = ctl_now_ms();
    if ((rc = shm_snapshot(c->shm, c->now_ms, &keys, &nk)) != 0)
        return ctl_store_error(c, rc, "reading the keys", NULL);
    for (unsigned i = 0; i < nk; i++)
        if (keys[i].orphaned)
            vw_buf_printf(&names, "%s%s", names.len ? ", " : "", keys[i].name);
    shm_snapshot_free(keys);
    if ((rc = shm_keys_prune(c->shm, &pruned)) != 0) {
        vw_buf_free(&names);
        return ctl_store_error(c, rc, "prune", NULL);
    }
    if (pruned == 0)
        vw_buf_puts(&o, "no orphaned keys: nothing pruned\n");
    else
        vw_buf_printf(&o, "pruned %u orphaned key%s: %s\n", pruned, pruned == 1 ? "" : "s",
                      names.len ? names.p : "?");
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&names);
    vw_buf_free(&o);
    return rc;
}
