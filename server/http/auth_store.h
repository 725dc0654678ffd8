/* auth_store.h - client keys that live in the store (shm/shm_cdef.h), for authentication.
 *
 * Design note
 * -----------
 * The configuration's client keys are checked by auth.h. A key that is none of them (or
 * any key, when the configuration has none and does not allow unauthenticated use) is
 * looked up here: its SHA-256 in the store's digest index, one LMDB read transaction, so a
 * key that `llmgatectl client add` created, `client rotate` replaced or `client revoke`
 * revoked is accepted or refused by the very next request in every worker of every process
 * sharing the state dir. Nothing is cached between requests.
 *
 * The request gets its own copy of what it needs (auth_store_t): a cfg_client_t whose name
 * and models point into the same struct, so the rest of the request path (model allowlist,
 * admission with the client's budgets, access log, metrics) treats it like a configured
 * client. The presented key is hashed, never copied; the digest is wiped after use.
 *
 * Results beyond auth.h's AUTH_EMISSING / AUTH_EUNKNOWN (all answered 401 "invalid_api_key"
 * with why as the message, which names the client and the time but never the key):
 *   AUTH_EREVOKED, AUTH_EEXPIRED, AUTH_EREPLACED (rotated away, its grace over)
 *   AUTH_ESTORE    the store failed (answered 500; why says so)
 *
 * Threads: any; the store handle is shared (LMDB read transactions). No allocation.
 */
#ifndef LLMGATE_AUTH_STORE_H
#define LLMGATE_AUTH_STORE_H

#include <stddef.h>

#include "config/config.h"
#include "server/common/hdr.h"
#include "shm/shm_cdef.h"

#define AUTH_EREVOKED  (-3)
#define AUTH_EEXPIRED  (-4)
#define AUTH_EREPLACED (-5)
#define AUTH_ESTORE    (-6)

typedef struct auth_store_s {
    cfg_client_t client; /* name and models point below */
    char name[SHM_NAME_MAX + 1];
    char models_buf[SHM_CDEF_MODELS_MAX + 1];
    char *models[SHM_CDEF_MODELS_N];
    char why[200]; /* with an error: the message for the client */
} auth_store_t;

/* Authenticate the request's key against the store's clients. Returns 0 with out->client
 * ready, or AUTH_EMISSING (no key), AUTH_EUNKNOWN, AUTH_EREVOKED, AUTH_EEXPIRED,
 * AUTH_EREPLACED, AUTH_ESTORE with out->why set. */
int auth_store_check(shm_t *s, const http_hdr_t *hdrs, size_t n, auth_store_t *out);

#endif
