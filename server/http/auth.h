/* auth.h - client authentication: who is asking, and for which models they may ask.
 *
 * Design note
 * -----------
 * A client presents its key as "Authorization: Bearer KEY" or, when there is no
 * Authorization header, as "x-api-key: KEY" (the first header of each name counts). The
 * configuration holds only SHA-256 digests of client keys (config.h, cfg_client_t), so the
 * presented key is hashed once and its digest compared with every configured digest: every
 * comparison runs over all 32 bytes and over all clients, whatever matched where, and the
 * match is selected without a branch on the comparison, so the time taken tells nothing
 * about which bytes or which client came close. (The hash itself takes time by the key's
 * length only, which the client chose.) The presented key is never copied, logged or put
 * into a response; the digest is wiped after use.
 *
 * With no client keys configured (only possible with allow_unauthenticated: true) every
 * request passes as the anonymous client (*out = NULL); a configuration without both fails
 * closed (AUTH_EMISSING), so a cfg_t loaded with CFG_LOAD_NO_SECRETS never authenticates.
 *
 * The responses the proxy gives (OpenAI-shaped, via conn_respond_error):
 *   AUTH_EMISSING      401 code "missing_api_key"  auth_message()
 *   AUTH_EUNKNOWN      401 code "invalid_api_key"  auth_message()
 *   model not allowed  403 code "model_not_allowed", param "model"
 * Both 401s should carry "WWW-Authenticate: Bearer\r\n".
 *
 * A keep-alive connection usually presents the same key on every request: auth_check_cached
 * remembers, per connection, the last key that authenticated and the client it gave, for one
 * configuration generation, and skips the hash when the same key comes again (compared over
 * its whole length without an early exit). That copy lives in the connection's memory only
 * and is wiped (auth_cache_clear) when another key comes, when the configuration changed,
 * and when the connection closes. A key that fails is never remembered.
 *
 * Pure functions: any thread, no allocation, no state beyond the caller's cache.
 */
#ifndef LLMGATE_AUTH_H
#define LLMGATE_AUTH_H

#include <stddef.h>

#include "config/config.h"
#include "server/common/hdr.h"

#define AUTH_EMISSING (-1) /* no usable key: no header, an empty one, or not "Bearer" */
#define AUTH_EUNKNOWN (-2) /* a key was presented and no client has it */

/* Authenticate the request with headers hdrs[0..n). Returns 0 and sets *out to the client
 * (NULL when the configuration allows unauthenticated use and has no client keys), or
 * AUTH_EMISSING / AUTH_EUNKNOWN with *out = NULL. out may not be NULL. */
int auth_check(const cfg_t *cfg, const http_hdr_t *hdrs, size_t n, const cfg_client_t **out);

/* The SHA-256 of the key the request presents (the same header rules), for a lookup
 * elsewhere (auth_store.h). 0, or AUTH_EMISSING. The caller wipes out. */
int auth_digest(const http_hdr_t *hdrs, size_t n, unsigned char out[32]);

/* The per-connection memory of auth_check_cached. Zeroed = empty. */
#define AUTH_CACHE_KEY_MAX 256
typedef struct auth_cache_s {
    unsigned generation; /* of the configuration the client belongs to; 0 = empty */
    const cfg_client_t *client;
    size_t len;
    unsigned char key[AUTH_CACHE_KEY_MAX];
} auth_cache_t;

/* auth_check, remembering a success in cache for configuration generation gen (> 0; the
 * caller's cfg must be the one of that generation). */
int auth_check_cached(const cfg_t *cfg, unsigned gen, const http_hdr_t *hdrs, size_t n,
                      auth_cache_t *cache, const cfg_client_t **out);

/* Wipe the remembered key. */
void auth_cache_clear(auth_cache_t *cache);

/* 1 if client may use model (resolved through aliases): it lists no models, or lists the
 * model's name or one of its aliases. The anonymous client (NULL) may use every model. */
int auth_model_allowed(const cfg_client_t *client, const cfg_model_t *model);

/* The error code ("missing_api_key", "invalid_api_key") and message for an AUTH_E* code. */
const char *auth_code(int rc);
const char *auth_message(int rc);

#endif
