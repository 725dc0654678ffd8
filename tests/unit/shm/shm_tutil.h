/* shm_tutil.h - helpers shared by the shm/ unit tests: private state dirs, key specs. */
#ifndef LLMGATE_SHM_TUTIL_H
#define LLMGATE_SHM_TUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/shm.h"

#define DAY_MS 86400000LL
/* A fake epoch at a UTC midnight, far from 0 so that sums and differences are realistic. */
#define T0 (20000LL * DAY_MS)

static int tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh private parent dir; the state dir is parent/state (created by shm_store_open). */
static inline void tu_mkdir(char *parent, size_t size, char *state, size_t ssize)
{
    snprintf(parent, size, "/tmp/shm-test-XXXXXX");
    if (!mkdtemp(parent)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(state, ssize, "%s/state", parent);
}

static inline void tu_rmdir(const char *parent)
{
    nftw(parent, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline shm_t *tu_open(const char *dir, int64_t now)
{
    shm_opts_t o = {.dir = dir};
    shm_t *s = NULL;
    char err[512];
    int rc = shm_store_open(&o, now, &s, err, sizeof(err));
    if (rc != 0) {
        printf("# shm_store_open %s: %s (%s)\n", dir, shm_strerror(rc), err);
        return NULL;
    }
    return s;
}

static inline shm_key_spec_t tu_spec(const char *name, const char *prov, uint32_t rpm, uint32_t rpd,
                                     uint32_t tpm, uint32_t max_inflight)
{
    shm_key_spec_t k = {.name = name,
                        .fingerprint = "0123456789ab",
                        .provider = prov,
                        .rpm = rpm,
                        .rpd = rpd,
                        .tpm = tpm,
                        .max_inflight = max_inflight,
                        .weight = 1};
    return k;
}

/* Admit one of names (first admissible); returns the shm_key_admit code. */
static inline int tu_admit(shm_t *s, const char *const *names, unsigned n, uint32_t tokens,
                           int64_t now, shm_resv_t *r, int64_t *retry)
{
    shm_admit_req_t req = {.names = names, .count = n, .tokens = tokens};
    return shm_key_admit(s, &req, now, r, retry);
}

static inline int tu_admit1(shm_t *s, const char *name, int64_t now, int64_t *retry)
{
    shm_resv_t r;
    const char *names[1] = {name};
    int rc = tu_admit(s, names, 1, 0, now, &r, retry);
    if (rc == 0)
        rc = shm_key_release(s, &r, 0, now);
    return rc;
}

#endif
