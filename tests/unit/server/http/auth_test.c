/* auth_test.c - client authentication (server/http/auth.c) on a configuration loaded as the
 * server loads it: Bearer and x-api-key, every way a key can be missing or wrong, the
 * unauthenticated mode, allowed models through aliases, and the messages (never the key). */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "server/http/auth.h"
#include "t.h"

static const char yaml[] =
    "listen: [\"127.0.0.1:0\"]\n"
    "providers:\n"
    "  - {name: p, base_url: \"http://127.0.0.1:9\", keys: [{name: k, secret_env: T_UP}]}\n"
    "models:\n"
    "  - {name: m1, aliases: [one], deployments: [{provider: p, model: u}]}\n"
    "  - {name: m2, deployments: [{provider: p, model: u}]}\n"
    "client_keys:\n"
    "  - {name: app-a, secret_env: T_CLIENT_A, models: [one]}\n"
    /* sha256 of "sk-client-b" */
    "  - {name: app-b, sha256: "
    "F65D4FAA282CCE185BB64B57C0206B9F24B47A6F0EC2CB062267F06699D46892}\n"
    "  - {name: app-c, secret_env: T_CLIENT_C}\n";

static const char unauth_yaml[] =
    "listen: [\"127.0.0.1:0\"]\n"
    "providers:\n"
    "  - {name: p, base_url: \"http://127.0.0.1:9\", keys: [{name: k, secret_env: T_UP}]}\n"
    "models:\n"
    "  - {name: m1, deployments: [{provider: p, model: u}]}\n"
    "allow_unauthenticated: true\n";

static int check(const cfg_t *cfg, const char *name, const char *value, const cfg_client_t **out)
{
    http_hdr_t h[3] = {
        {"Host", 4, "gw", 2},
        {"Content-Type", 12, "application/json", 16},
        {name, name ? strlen(name) : 0, value, strlen(value)},
    };
    return auth_check(cfg, h, name ? 3 : 2, out);
}

int main(void)
{
    char err[4096];
    cfg_t *cfg = NULL, *open = NULL;
    const cfg_client_t *cl = (const cfg_client_t *)1;

    setenv("T_UP", "sk-upstream", 1);
    setenv("T_CLIENT_A", "sk-client-a", 1);
    setenv("T_CLIENT_C", "sk-client-c-with-a-longer-key-0123456789", 1);
    if (cfg_load_string(yaml, sizeof(yaml) - 1, "t.yaml", &cfg, err, sizeof(err)) != 0) {
        printf("# %s\n", err);
        T_OK(0, "the test configuration loads");
        return t_done();
    }
    const cfg_client_t *a = cfg_client_find(cfg, "app-a"), *b = cfg_client_find(cfg, "app-b"),
                       *c = cfg_client_find(cfg, "app-c");

    T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-a", &cl), 0, "Bearer key of app-a");
    T_OK(cl == a, "  ... is app-a");
    T_OK(check(cfg, "authorization", "Bearer sk-client-b", &cl) == 0 && cl == b,
         "a key given as sha256 (upper-case hex) authenticates app-b");
    T_OK(check(cfg, "AUTHORIZATION", "bearer   sk-client-c-with-a-longer-key-0123456789  ", &cl) ==
                 0 &&
             cl == c,
         "header name and scheme case-insensitive, spaces around the key ignored");
    T_OK(check(cfg, "x-api-key", "sk-client-b", &cl) == 0 && cl == b, "x-api-key: KEY");
    T_OK(check(cfg, "X-Api-Key", " sk-client-a\t", &cl) == 0 && cl == a,
         "x-api-key case-insensitive, trimmed");

    cl = a;
    T_EQ_INT(check(cfg, NULL, "", &cl), AUTH_EMISSING, "no credential: AUTH_EMISSING");
    T_OK(cl == NULL, "  ... and no client");
    T_EQ_INT(check(cfg, "Authorization", "", &cl), AUTH_EMISSING, "empty Authorization: missing");
    T_EQ_INT(check(cfg, "Authorization", "Bearer", &cl), AUTH_EMISSING, "Bearer without a key");
    T_EQ_INT(check(cfg, "Authorization", "Bearer    ", &cl), AUTH_EMISSING, "Bearer and spaces");
    T_EQ_INT(check(cfg, "Authorization", "Basic c2stY2xpZW50LWE=", &cl), AUTH_EMISSING,
             "another scheme: missing");
    T_EQ_INT(check(cfg, "Authorization", "Bearersk-client-a", &cl), AUTH_EMISSING,
             "no space after Bearer: missing");
    T_EQ_INT(check(cfg, "Authorization", "sk-client-a", &cl), AUTH_EMISSING,
             "a bare key in Authorization: missing (Bearer expected)");
    T_EQ_INT(check(cfg, "x-api-key", "", &cl), AUTH_EMISSING, "empty x-api-key: missing");
    T_EQ_INT(check(cfg, "api-key", "sk-client-a", &cl), AUTH_EMISSING,
             "api-key (another header) is not read");

    T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-x", &cl), AUTH_EUNKNOWN,
             "an unknown key: AUTH_EUNKNOWN");
    T_OK(cl == NULL, "  ... and no client");
    T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-a ", &cl), 0,
             "a trailing space is not part of the key");
    T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-aa", &cl), AUTH_EUNKNOWN,
             "a key with one byte more is unknown");
    T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-", &cl), AUTH_EUNKNOWN,
             "a prefix of a key is unknown");
    T_EQ_INT(check(cfg, "Authorization", "Bearer SK-CLIENT-A", &cl), AUTH_EUNKNOWN,
             "keys are case-sensitive");
    T_EQ_INT(check(cfg, "x-api-key",
                   "F65D4FAA282CCE185BB64B57C0206B9F24B47A6F0EC2CB062267F06699D46892", &cl),
             AUTH_EUNKNOWN, "the digest itself is not a key");

    {
        /* Authorization wins over x-api-key, first header of a name counts */
        http_hdr_t h[3] = {
            {"x-api-key", 9, "sk-client-a", 11},
            {"Authorization", 13, "Bearer sk-client-b", 18},
            {"Authorization", 13, "Bearer sk-client-a", 18},
        };
        T_OK(auth_check(cfg, h, 3, &cl) == 0 && cl == b,
             "Authorization before x-api-key; the first Authorization counts");
        h[1].value = "Basic xyz";
        h[1].value_len = 9;
        T_EQ_INT(auth_check(cfg, h, 3, &cl), AUTH_EMISSING,
                 "an Authorization that is not Bearer is not replaced by x-api-key");
    }

    {
        /* the per-connection cache: same answers as auth_check, the hash skipped on a repeat */
        auth_cache_t ac;
        http_hdr_t h[1] = {{"Authorization", 13, "Bearer sk-client-a", 18}};
        memset(&ac, 0, sizeof(ac));
        T_OK(auth_check_cached(cfg, 1, h, 1, &ac, &cl) == 0 && cl == a, "cached: app-a");
        T_OK(ac.generation == 1 && ac.client == a && ac.len == 11, "  ... remembered");
        T_OK(auth_check_cached(cfg, 1, h, 1, &ac, &cl) == 0 && cl == a, "again: app-a (hit)");
        /* a hit does not hash: a client remembered under a wrong pointer is what comes back,
         * which shows the cache answered (never done outside this test) */
        ac.client = b;
        T_OK(auth_check_cached(cfg, 1, h, 1, &ac, &cl) == 0 && cl == b,
             "  ... the hit answers from the cache");
        T_OK(auth_check_cached(cfg, 2, h, 1, &ac, &cl) == 0 && cl == a,
             "another configuration generation: checked again (app-a)");
        T_EQ_INT(ac.generation, 2, "  ... and remembered for it");
        http_hdr_t hb[1] = {{"x-api-key", 9, "sk-client-b", 11}};
        T_OK(auth_check_cached(cfg, 2, hb, 1, &ac, &cl) == 0 && cl == b,
             "another key of the same length: checked (app-b)");
        T_OK(ac.client == b, "  ... and it replaced the remembered one");
        http_hdr_t hx[1] = {{"x-api-key", 9, "sk-client-x", 11}};
        T_EQ_INT(auth_check_cached(cfg, 2, hx, 1, &ac, &cl), AUTH_EUNKNOWN,
                 "an unknown key after a known one: AUTH_EUNKNOWN");
        T_OK(cl == NULL && ac.generation == 0 && ac.len == 0, "  ... nothing remembered");
        int zero = 1;
        for (size_t i = 0; i < sizeof(ac.key); i++)
            zero &= ac.key[i] == 0;
        T_OK(zero, "  ... and the previous key's bytes were wiped");
        http_hdr_t hp[1] = {{"x-api-key", 9, "sk-client-", 10}};
        auth_check_cached(cfg, 2, hb, 1, &ac, &cl);
        T_EQ_INT(auth_check_cached(cfg, 2, hp, 1, &ac, &cl), AUTH_EUNKNOWN,
                 "a prefix of the remembered key is not a hit");
        T_EQ_INT(auth_check_cached(cfg, 2, h, 0, &ac, &cl), AUTH_EMISSING,
                 "no key with a key remembered: missing");
        T_OK(auth_check_cached(cfg, 0, h, 1, &ac, &cl) == 0 && cl == a && ac.generation == 0,
             "generation 0: plain auth_check, nothing remembered");
        auth_cache_clear(&ac);
        T_OK(ac.generation == 0 && ac.client == NULL && ac.len == 0, "auth_cache_clear empties");
    }

    /* models */
    const cfg_model_t *m1 = cfg_model_find(cfg, "m1", 2), *m2 = cfg_model_find(cfg, "m2", 2);
    T_OK(auth_model_allowed(a, m1), "app-a lists alias \"one\": m1 allowed");
    T_OK(!auth_model_allowed(a, m2), "  ... m2 not allowed");
    T_OK(auth_model_allowed(b, m1) && auth_model_allowed(b, m2), "no models: every model");
    T_OK(auth_model_allowed(NULL, m2), "the anonymous client: every model");
    T_OK(!auth_model_allowed(a, NULL), "no model: not allowed for a restricted client");

    /* messages */
    T_EQ_STR(auth_code(AUTH_EMISSING), "missing_api_key", "code for a missing key");
    T_EQ_STR(auth_code(AUTH_EUNKNOWN), "invalid_api_key", "code for an unknown key");
    T_OK(strstr(auth_message(AUTH_EMISSING), "Authorization: Bearer") != NULL,
         "the missing-key message says how to send one");
    T_OK(strstr(auth_message(AUTH_EUNKNOWN), "sk-") == NULL, "messages hold no key");

    /* unauthenticated mode, and a configuration loaded without secrets */
    if (cfg_load_string(unauth_yaml, sizeof(unauth_yaml) - 1, "u.yaml", &open, err, sizeof(err)) ==
        0) {
        T_OK(check(open, NULL, "", &cl) == 0 && cl == NULL,
             "allow_unauthenticated: no key passes as the anonymous client");
        T_OK(check(open, "Authorization", "Bearer whatever", &cl) == 0 && cl == NULL,
             "  ... and so does any key");
        cfg_free(open);
    } else {
        printf("# %s\n", err);
        T_OK(0, "the unauthenticated configuration loads");
    }
    cfg_free(cfg);
    cfg = NULL;
    unsetenv("T_CLIENT_A");
    unsetenv("T_CLIENT_C");
    if (cfg_load_string_ex(yaml, sizeof(yaml) - 1, "t.yaml", CFG_LOAD_NO_SECRETS, &cfg, err,
                           sizeof(err)) == 0) {
        T_EQ_INT(check(cfg, "Authorization", "Bearer sk-client-a", &cl), AUTH_EUNKNOWN,
                 "no-secrets load: an unresolved client key never matches");
        T_OK(check(cfg, "Authorization", "Bearer sk-client-b", &cl) == 0 &&
                 cl == cfg_client_find(cfg, "app-b"),
             "  ... a sha256 one still does");
        cfg->client_keys_count = 0;
        T_EQ_INT(check(cfg, NULL, "", &cl), AUTH_EMISSING,
                 "no client keys without allow_unauthenticated: fails closed");
        cfg->client_keys_count = 3;
        cfg_free(cfg);
    }
    return t_done();
}
