/* auth_store.c - a presented key looked up among the store's clients (see auth_store.h). */
#include "server/http/auth_store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/http/auth.h"

/* "2026-12-04 13:45:00 UTC" of wall-clock ms. */
static void utc(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, size, "%lld ms", (long long)ms);
}

/* out->client from a lookup that succeeded: name and models into out's own buffers. */
static void fill_client(const shm_cdef_auth_t *a, auth_store_t *out)
{
    memset(&out->client, 0, sizeof(out->client));
    snprintf(out->name, sizeof(out->name), "%s", a->name);
    snprintf(out->models_buf, sizeof(out->models_buf), "%s", a->models);
    out->client.name = out->name;
    out->client.models = out->models;
    out->client.has_digest = 1;
    unsigned n = 0;
    char *p = out->models_buf;
    while (*p && n < SHM_CDEF_MODELS_N) {
        out->models[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    out->client.models_count = n;
}

int auth_store_check(shm_t *s, const http_hdr_t *hdrs, size_t n, auth_store_t *out)
{
    unsigned char digest[32];
    shm_cdef_auth_t a;
    char when[40];

    out->why[0] = '\0';
    if (auth_digest(hdrs, n, digest) != 0) {
        snprintf(out->why, sizeof(out->why), "%s", auth_message(AUTH_EMISSING));
        return AUTH_EMISSING;
    }
    int rc = shm_cdef_auth(s, digest, SHM_NOW, &a);
    explicit_bzero(digest, sizeof(digest));
    if (rc != 0) {
        snprintf(out->why, sizeof(out->why),
                 "The gateway could not check this API key (its state store failed); retry.");
        return AUTH_ESTORE;
    }
    utc(a.at_ms, when, sizeof(when));
    switch (a.result) {
    case SHM_AUTH_OK:
        fill_client(&a, out);
        return 0;
    case SHM_AUTH_REVOKED:
        snprintf(out->why, sizeof(out->why),
                 "This API key (client %s) was revoked at %s; ask the gateway's operator "
                 "for a new one.",
                 a.name, when);
        return AUTH_EREVOKED;
    case SHM_AUTH_EXPIRED:
        snprintf(out->why, sizeof(out->why),
                 "This API key (client %s) expired at %s; ask the gateway's operator to "
                 "extend it or for a new one.",
                 a.name, when);
        return AUTH_EEXPIRED;
    case SHM_AUTH_REPLACED:
        snprintf(out->why, sizeof(out->why),
                 "This API key (client %s) was replaced by a new one; it stopped working at "
                 "%s. Use the new key.",
                 a.name, when);
        return AUTH_EREPLACED;
    default:
        snprintf(out->why, sizeof(out->why), "%s", auth_message(AUTH_EUNKNOWN));
        return AUTH_EUNKNOWN;
    }
}
