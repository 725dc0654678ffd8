/* auth.c - client keys: SHA-256 of the presented key against every configured digest, in
 * time that does not depend on which client (or how much of a digest) matched. */
#include "server/http/auth.h"

#include <mbedtls/sha256.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Trim spaces and tabs around v[0..*n) (llhttp leaves trailing ones in a value). */
static const char *trim(const char *v, size_t *n)
{
    size_t len = *n;

    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    *n = len;
    return v;
}

/* The key the request presents, or NULL. Authorization wins over x-api-key: when it is
 * there, it is the credential, and a scheme other than Bearer is no key at all. */
static const char *presented_key(const http_hdr_t *hdrs, size_t n, size_t *klen)
{
    size_t vlen = 0;
    const char *v = hdr_find(hdrs, n, "authorization", &vlen);

    if (v) {
        v = trim(v, &vlen);
        if (vlen < 7 || strncasecmp(v, "bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
            return NULL;
        v += 7;
        vlen -= 7;
    } else {
        v = hdr_find(hdrs, n, "x-api-key", &vlen);
        if (!v)
            return NULL;
    }
    v = trim(v, &vlen);
    if (vlen == 0)
        return NULL;
    *klen = vlen;
    return v;
}

/* 0xff if a[0..32) == b[0..32), else 0; always reads all 32 bytes. */
static uint8_t digest_eq_mask(const unsigned char *a, const unsigned char *b)
{
    unsigned diff = 0;

    for (int i = 0; i < 32; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    /* diff in 0..255: (diff - 1) >> 8 has its low byte 0xff only for diff == 0 */
    return (uint8_t)((diff - 1u) >> 8);
}

int auth_check(const cfg_t *cfg, const http_hdr_t *hdrs, size_t n, const cfg_client_t **out)
{
    unsigned char digest[32];
    uintptr_t found = 0;
    size_t klen = 0;
    const char *key;

    *out = NULL;
    if (cfg->client_keys_count == 0)
        return cfg->allow_unauthenticated ? 0 : AUTH_EMISSING;
    key = presented_key(hdrs, n, &klen);
    if (!key)
        return AUTH_EMISSING;
    mbedtls_sha256_ret((const unsigned char *)key, klen, digest, 0);
    /* Every client, every byte; the match is folded in with a mask, never branched on.
     * (Digests are unique: the loader refuses two clients with one key.) */
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        const cfg_client_t *c = &cfg->client_keys[i];
        uintptr_t m = (uintptr_t)0 - (uintptr_t)(digest_eq_mask(digest, c->digest) & 1);
        m &= (uintptr_t)0 - (uintptr_t)(c->has_digest != 0);
        found |= (uintptr_t)c & m;
    }
    explicit_bzero(digest, sizeof(digest));
    if (!found)
        return AUTH_EUNKNOWN;
    *out = (const cfg_client_t *)found;
    return 0;
}

int auth_digest(const http_hdr_t *hdrs, size_t n, unsigned char out[32])
{
    size_t klen = 0;
    const char *key = presented_key(hdrs, n, &klen);
    if (!key)
        return AUTH_EMISSING;
    mbedtls_sha256_ret((const unsigned char *)key, klen, out, 0);
    return 0;
}

void auth_cache_clear(auth_cache_t *cache)
{
    explicit_bzero(cache, sizeof(*cache));
}

/* 1 if the len bytes at a and b are equal; every byte is compared. */
static int same_bytes(const unsigned char *a, const unsigned char *b, size_t len)
{
    unsigned diff = 0;

    for (size_t i = 0; i < len; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff == 0;
}

int auth_check_cached(const cfg_t *cfg, unsigned gen, const http_hdr_t *hdrs, size_t n,
                      auth_cache_t *cache, const cfg_client_t **out)
{
    size_t klen = 0;
    const char *key;
    int rc;

    if (cfg->client_keys_count == 0 || gen == 0)
        return auth_check(cfg, hdrs, n, out);
    key = presented_key(hdrs, n, &klen);
    if (key && cache->generation == gen && cache->len == klen &&
        same_bytes(cache->key, (const unsigned char *)key, klen)) {
        *out = cache->client;
        return 0;
    }
    if (cache->generation)
        auth_cache_clear(cache);
    rc = auth_check(cfg, hdrs, n, out);
    if (rc == 0 && *out && key && klen <= sizeof(cache->key)) {
        memcpy(cache->key, key, klen);
        cache->len = klen;
        cache->client = *out;
        cache->generation = gen;
    }
    return rc;
}

int auth_model_allowed(const cfg_client_t *client, const cfg_model_t *model)
{
    if (!client || client->models_count == 0)
        return 1;
    if (!model)
        return 0;
    for (unsigned i = 0; i < client->models_count; i++) {
        const char *want = client->models[i];
        if (strcmp(want, model->name) == 0)
            return 1;
        for (unsigned a = 0; a < model->aliases_count; a++)
            if (strcmp(want, model->aliases[a]) == 0)
                return 1;
    }
    return 0;
}

const char *auth_code(int rc)
{
    return rc == AUTH_EMISSING ? "missing_api_key" : "invalid_api_key";
}

const char *auth_message(int rc)
{
    if (rc == AUTH_EMISSING)
        return "You didn't provide an API key. Send your llmgate client key in an "
               "Authorization header (Authorization: Bearer YOUR_KEY) or in x-api-key.";
    return "Incorrect API key provided. Use a client key of this llmgate (its configuration's "
           "client_keys, or one made with llmgatectl client add).";
}
