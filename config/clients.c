/* clients.c - client keys: the gateway's own API keys for applications, checked at load.
 *
 * A client key gives its secret as a SHA-256 (`sha256:`, 64 hex digits, so the file never
 * holds the key) or names the environment variable that holds the key (`secret_env:`), whose
 * value is hashed at load and never kept. Both end as cfg_client_t.digest; server/http/auth.c
 * compares presented keys against it. Names are unique and fit the store's records (63
 * bytes); listed models must exist (by name or alias).
 *
 * Without client keys in the file the gateway serves only the clients `llmgatectl client add`
 * put in the store (shm/shm_cdef.h), none at first: it fails closed. allow_unauthenticated:
 * true serves anyone on purpose and is refused together with client keys as contradictory.
 */
#include <mbedtls/sha256.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define CLIENT_NAME_MAX 63 /* SHM_NAME_MAX: the store keys its records by this name */

static int ascii_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static const char *client_name_problem(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return "must not be empty";
    if (n > CLIENT_NAME_MAX)
        return "must be at most 63 characters";
    for (size_t i = 0; i < n; i++)
        if (!ascii_alnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return "may contain only letters, digits, '.', '_' and '-'";
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cfg_parse_sha256(const char *s, unsigned char out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* What makes a key value unusable in a header as clients send it, or NULL. */
static const char *key_value_problem(const char *v)
{
    size_t n = strlen(v);

    if (n == 0)
        return "is empty";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return "contains whitespace, control or non-ASCII characters (remove them)";
    return NULL;
}

static void resolve_secret(cfg_client_t *k, const char *kp, cfg_report_t *rep)
{
    char path[CFG_PATH_MAX], nb[80];
    const char *name = cfg_shown(k->name, nb, sizeof(nb)), *why, *v;

    if (!!k->sha256 + !!k->secret_env != 1) {
        cfg_report_add(rep, kp,
                       "client key \"%s\" needs exactly one of sha256 (64 hex digits of the "
                       "key's SHA-256, e.g. from `printf %%s KEY | sha256sum`) or secret_env "
                       "(found %s)",
                       name, k->sha256 ? "both" : "neither");
        return;
    }
    if (k->sha256) {
        cfg_path_fmt(path, sizeof(path), "%s.sha256", kp);
        if (cfg_parse_sha256(k->sha256, k->digest) != 0) {
            /* a digest is not the key, but it is not shown either: it identifies one */
            cfg_report_add(rep, path,
                           "client key \"%s\": must be exactly 64 hex digits (the SHA-256 of "
                           "the key; got %zu characters)",
                           name, strlen(k->sha256));
            return;
        }
        k->has_digest = 1;
        return;
    }
    cfg_path_fmt(path, sizeof(path), "%s.secret_env", kp);
    if (!cfg_env_name_ok(k->secret_env)) {
        cfg_report_add(rep, path,
                       "client key \"%s\": must be an environment variable name "
                       "([A-Za-z_][A-Za-z0-9_]*)",
                       name);
        return;
    }
    if (rep->flags & CFG_LOAD_NO_SECRETS)
        return;
    v = getenv(k->secret_env);
    if (!v || !*v) {
        cfg_report_add(rep, path,
                       "client key \"%s\": environment variable %s is %s (export it with the "
                       "key before starting llmgate, or give sha256: instead)",
                       name, k->secret_env, v ? "empty" : "not set");
        return;
    }
    why = key_value_problem(v);
    if (why) {
        cfg_report_add(rep, path, "client key \"%s\": the key in environment variable %s %s", name,
                       k->secret_env, why);
        return;
    }
    mbedtls_sha256_ret((const unsigned char *)v, strlen(v), k->digest, 0);
    k->has_digest = 1;
}

static void check_models(const cfg_t *cfg, const cfg_client_t *k, const char *kp, cfg_report_t *rep)
{
    for (unsigned i = 0; i < k->models_count; i++) {
        const char *m = k->models[i];
        char path[CFG_PATH_MAX], nb[80];

        cfg_path_fmt(path, sizeof(path), "%s.models[%u]", kp, i);
        if (!cfg_model_find(cfg, m, strlen(m))) {
            cfg_report_add(rep, path,
                           "unknown model \"%s\" (list models by the name or an alias under "
                           "models:, or remove models: to allow all)",
                           cfg_shown(m, nb, sizeof(nb)));
            continue;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(k->models[j], m) == 0) {
                cfg_report_add(rep, path, "\"%s\" is already listed as models[%u]",
                               cfg_shown(m, nb, sizeof(nb)), j);
                break;
            }
        }
    }
}

static void check_costs(const cfg_client_t *k, const char *kp, cfg_report_t *rep)
{
    /* stored as micro-USD in 64 bits; anything near that is a typo */
    static const double max_usd = 1e12;
    char path[CFG_PATH_MAX];

    if (k->cost_per_day_usd > max_usd) {
        cfg_path_fmt(path, sizeof(path), "%s.cost_per_day_usd", kp);
        cfg_report_add(rep, path, "must be at most 1e12 USD (0 = unlimited)");
    }
    if (k->cost_per_month_usd > max_usd) {
        cfg_path_fmt(path, sizeof(path), "%s.cost_per_month_usd", kp);
        cfg_report_add(rep, path, "must be at most 1e12 USD (0 = unlimited)");
    }
}

void cfg_clients_validate(cfg_t *cfg, cfg_report_t *rep)
{
    if (cfg->client_keys_count == 0)
        return; /* store clients only (shm/shm_cdef.h), or allow_unauthenticated */
    if (cfg->allow_unauthenticated)
        cfg_report_add(rep, "allow_unauthenticated",
                       "must not be true when client_keys are configured (every request "
                       "must then present a client key): remove one of the two");
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        cfg_client_t *k = &cfg->client_keys[i];
        char kp[CFG_PATH_MAX], path[CFG_PATH_MAX], nb[80];
        const char *why = client_name_problem(k->name);

        cfg_path_fmt(kp, sizeof(kp), "client_keys[%u]", i);
        cfg_path_fmt(path, sizeof(path), "%s.name", kp);
        if (why)
            cfg_report_add(rep, path, "%s (got \"%s\")", why, cfg_shown(k->name, nb, sizeof(nb)));
        for (unsigned j = 0; j < i && !why; j++) {
            if (strcmp(cfg->client_keys[j].name, k->name) == 0) {
                char other[CFG_PATH_MAX];
                cfg_path_fmt(other, sizeof(other), "client_keys[%u]", j);
                cfg_report_add(rep, path, "client key name \"%s\" is already used by %s (line %u)",
                               k->name, other, ytree_line(rep->root, other));
                break;
            }
        }
        resolve_secret(k, kp, rep);
        check_models(cfg, k, kp, rep);
        check_costs(k, kp, rep);
    }
    /* Two clients with one key could not be told apart (budgets, logs). */
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        const cfg_client_t *k = &cfg->client_keys[i];
        for (unsigned j = 0; j < i && k->has_digest; j++) {
            const cfg_client_t *o = &cfg->client_keys[j];
            if (o->has_digest && memcmp(o->digest, k->digest, sizeof(k->digest)) == 0) {
                char kp[CFG_PATH_MAX], nb[80];
                cfg_path_fmt(kp, sizeof(kp), "client_keys[%u]", i);
                cfg_report_add(rep, kp, "client key \"%s\" has the same key as client_keys[%u]",
                               cfg_shown(k->name, nb, sizeof(nb)), j);
                break;
            }
        }
    }
}

const cfg_client_t *cfg_client_find(const cfg_t *cfg, const char *name)
{
    for (unsigned i = 0; cfg && name && i < cfg->client_keys_count; i++)
        if (strcmp(cfg->client_keys[i].name, name) == 0)
            return &cfg->client_keys[i];
    return NULL;
}
