/* config_test.c - unit tests of config/: defaults, URL parsing, every validation rule with
 * its path and line, libcyaml's errors in our form, secrets (never in a message), and the
 * two shipped configurations (the example names every key of the schema).
 *
 * Most cases edit one line of a valid base configuration, so the expected line number of a
 * message is the number of the edited line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_int.h" /* cfg_schema, for the example's coverage */
#include "t.h"

static char err[16384];

/* The base configuration, one entry per line (line N is base[N - 1]). */
static const char *const base[] = {
    /*  1 */ "listen: [\"127.0.0.1:8080\"]",
    /*  2 */ "providers:",
    /*  3 */ "  - name: p1",
    /*  4 */ "    base_url: https://api.example.com/v1/",
    /*  5 */ "    keys:",
    /*  6 */ "      - name: k1",
    /*  7 */ "        secret_env: T_KEY_1",
    /*  8 */ "        rpm: 10",
    /*  9 */ "  - name: p2",
    /* 10 */ "    base_url: http://[::1]:8081",
    /* 11 */ "    auth: header",
    /* 12 */ "    auth_header: api-key",
    /* 13 */ "    keys:",
    /* 14 */ "      - name: k2",
    /* 15 */ "        secret_env: T_KEY_2",
    /* 16 */ "models:",
    /* 17 */ "  - name: m1",
    /* 18 */ "    aliases: [one, uno]",
    /* 19 */ "    deployments:",
    /* 20 */ "      - {provider: p1, model: up-m1}",
    /* 21 */ "      - {provider: p2, model: up-m1, weight: 3, priority: 2}",
    /* 22 */ "    fallbacks: [m2]",
    /* 23 */ "    input_price_per_m: 0.5",
    /* 24 */ "  - name: m2",
    /* 25 */ "    deployments:",
    /* 26 */ "      - {provider: p2, model: up-m2}",
};
#define NBASE (sizeof(base) / sizeof(base[0]))

/* Loads the base with edits: pairs (line, text) ended by line 0; line -1 appends text as a
 * new line after the base. Unless an edit is about client keys, a last line
 * "allow_unauthenticated: true" follows (the base has no client keys), so that appended lines
 * keep their numbers. */
static int load_edit(cfg_t **out, ...)
{
    const char *lines[NBASE + 9];
    size_t n = NBASE, len = 0;
    char *yaml;
    va_list ap;
    int line, rc, auth = 0;

    memcpy(lines, base, sizeof(base));
    va_start(ap, out);
    while ((line = va_arg(ap, int)) != 0) {
        const char *text = va_arg(ap, const char *);
        if (strstr(text, "client_keys") || strstr(text, "allow_unauthenticated"))
            auth = 1;
        if (line < 0 && n < NBASE + 8)
            lines[n++] = text;
        else if (line > 0 && (size_t)line <= NBASE)
            lines[line - 1] = text;
    }
    va_end(ap);
    if (!auth)
        lines[n++] = "allow_unauthenticated: true";
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    yaml = malloc(len + 1);
    len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(yaml + len, "%s\n", lines[i]);
    rc = cfg_load_string(yaml, len, "t.yaml", out, err, sizeof(err));
    free(yaml);
    return rc;
}

static void show_err(void)
{
    const char *p = err;

    while (*p) {
        size_t n = strcspn(p, "\n");
        printf("#   | %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* One test point: the load failed and err holds needle. */
static void expect_err(int rc, const char *needle, const char *what)
{
    int ok = rc == -1 && strstr(err, needle) != NULL;

    T_OK(ok, "%s", what);
    if (!ok) {
        printf("#   rc %d, want substring: %s\n", rc, needle);
        show_err();
    }
}

/* Loads the base with one edited line and expects needle. */
static void expect_edit(int line, const char *text, const char *needle, const char *what)
{
    cfg_t *c = NULL;
    int rc = load_edit(&c, line, text, 0);

    expect_err(rc, needle, what);
    cfg_free(c);
}

static void test_valid_base(void)
{
    cfg_t *c = NULL;
    const cfg_provider_t *prov = NULL;
    const cfg_key_t *k;
    const cfg_model_t *m;
    int rc = load_edit(&c, 0);

    T_EQ_INT(rc, 0, "the base configuration loads");
    if (rc) {
        show_err();
        return;
    }
    T_EQ_STR(err, "", "no message on success");
    T_EQ_STR(c->path, "t.yaml", "path is the name given");
    T_EQ_INT(c->listen_count, 1, "one listen address");
    T_EQ_STR(c->listen[0], "127.0.0.1:8080", "listen address as written");
    T_OK(c->workers >= 1, "workers: 0 resolved to the core count (%u)", c->workers);
    T_EQ_STR(c->state_dir, "./llmgate-state", "state_dir default");
    T_EQ_INT(c->shutdown_timeout_ms, 10000, "shutdown_timeout_ms default");
    T_EQ_INT(c->allow_inline_secrets, 0, "allow_inline_secrets default false");
    T_EQ_INT(c->limits.max_header_bytes, 16384, "limits.max_header_bytes default");
    T_EQ_INT(c->limits.max_headers, 100, "limits.max_headers default");
    T_EQ_INT(c->limits.max_body_bytes, 4u << 20, "limits.max_body_bytes default");
    T_EQ_INT(c->limits.max_url_bytes, 8192, "limits.max_url_bytes default");
    T_EQ_INT(c->limits.header_timeout_ms, 10000, "limits.header_timeout_ms default");
    T_EQ_INT(c->limits.body_timeout_ms, 30000, "limits.body_timeout_ms default");
    T_EQ_INT(c->limits.idle_timeout_ms, 75000, "limits.idle_timeout_ms default");
    T_EQ_INT(c->limits.max_connections, 20000, "limits.max_connections default");
    T_EQ_INT(c->policy.strategy, CFG_STRATEGY_ROUND_ROBIN, "policy.strategy default");
    T_EQ_INT(c->policy.max_retries, 2, "policy.max_retries default");
    T_EQ_INT(c->policy.request_timeout_ms, 300000, "policy.request_timeout_ms default");
    T_EQ_INT(c->policy.cooldown_ms, 60000, "policy.cooldown_ms default");

    T_EQ_INT(c->providers_count, 2, "two providers");
    T_EQ_INT(c->providers[0].tls, 1, "https -> tls");
    T_EQ_STR(c->providers[0].host, "api.example.com", "host parsed");
    T_EQ_INT(c->providers[0].port, 443, "https default port");
    T_EQ_STR(c->providers[0].base_path, "/v1", "base_path without trailing slash");
    T_EQ_STR(c->providers[0].host_header, "api.example.com", "Host header without default port");
    T_EQ_INT(c->providers[0].auth, CFG_AUTH_BEARER, "auth default bearer");
    T_EQ_INT(c->providers[0].api, CFG_API_OPENAI, "api default openai");
    T_OK(c->providers[0].anthropic_version == NULL, "no anthropic_version for api: openai");
    T_OK(c->providers[0].keys[0].group == NULL, "key group default none (the key alone)");
    T_EQ_INT(c->responses.affinity_ttl_s, 2592000, "responses.affinity_ttl_s default 30 days");
    T_EQ_INT(c->responses.affinity_max, 100000, "responses.affinity_max default");
    T_OK(c->providers[0].auth_header == NULL && c->providers[0].ca_file == NULL,
         "no auth_header, no ca_file");
    T_EQ_INT(c->providers[0].connect_timeout_ms, 5000, "connect_timeout_ms default");
    T_EQ_INT(c->providers[0].first_byte_timeout_ms, 60000, "first_byte_timeout_ms default");
    T_EQ_INT(c->providers[0].idle_timeout_ms, 30000, "provider idle_timeout_ms default");
    T_EQ_INT(c->providers[0].pool_max_idle, 64, "pool_max_idle default");
    T_EQ_INT(c->providers[1].tls, 0, "http -> no tls");
    T_EQ_STR(c->providers[1].host, "::1", "IPv6 host without brackets");
    T_EQ_INT(c->providers[1].port, 8081, "explicit port");
    T_EQ_STR(c->providers[1].base_path, "", "empty base_path");
    T_EQ_STR(c->providers[1].host_header, "[::1]:8081", "Host header with brackets and port");
    T_EQ_INT(c->providers[1].auth, CFG_AUTH_HEADER, "auth: header");
    T_EQ_STR(c->providers[1].auth_header, "api-key", "auth_header");

    k = &c->providers[0].keys[0];
    T_EQ_STR(k->secret, "sk-test-key-1", "secret resolved from the environment");
    T_EQ_STR(k->fingerprint, "c1fa602237f8", "fingerprint = 12 hex digits of SHA-256");
    T_EQ_INT(k->rpm, 10, "rpm as written");
    T_EQ_INT(k->rpd + k->tpm + k->max_inflight, 0, "absent limits are 0 (unlimited)");
    T_EQ_INT(k->weight, 1, "key weight default 1");

    T_EQ_INT(c->models_count, 2, "two models");
    m = &c->models[0];
    T_EQ_INT(m->deployments[0].weight, 1, "deployment weight default 1");
    T_EQ_INT(m->deployments[0].priority, 1, "deployment priority default 1");
    T_EQ_INT(m->deployments[1].weight, 3, "deployment weight as written");
    T_EQ_INT(m->deployments[1].priority, 2, "deployment priority as written");
    T_OK(m->deployments[0].provider_ref == &c->providers[0] &&
             m->deployments[1].provider_ref == &c->providers[1],
         "provider_ref resolved");
    T_OK(m->fallbacks_count == 1 && m->fallback_refs[0] == &c->models[1], "fallback_refs resolved");
    T_OK(m->input_price_per_m == 0.5 && m->output_price_per_m == 0.0, "prices, default 0");

    T_OK(cfg_model_find(c, "m1", 2) == m, "model found by name");
    T_OK(cfg_model_find(c, "uno", 3) == m, "model found by alias");
    T_OK(cfg_model_find(c, "unos", 3) == m, "length bounds the name");
    T_OK(cfg_model_find(c, "M1", 2) == NULL, "names are case-sensitive");
    T_OK(cfg_model_find(c, "m", 1) == NULL, "no prefix match");
    T_OK(cfg_key_find(c, "k2", &prov) == &c->providers[1].keys[0] && prov == &c->providers[1],
         "key found with its provider");
    T_OK(cfg_key_find(c, "k3", &prov) == NULL && prov == NULL, "unknown key -> NULL");
    cfg_free(c);
}

static void test_explicit_values(void)
{
    cfg_t *c = NULL;
    int rc = load_edit(&c, 1, "listen: \"[::1]:0\"", 2,
                       "workers: 3\nstate_dir: /tmp/x\nallow_inline_secrets: true\n"
                       "limits: {max_body_bytes: 1000, max_connections: 0}\n"
                       "policy: {strategy: least_inflight, max_retries: 0}\nproviders:",
                       0);

    T_EQ_INT(rc, 0, "explicit values load");
    if (rc) {
        show_err();
        return;
    }
    T_OK(c->listen_count == 1 && strcmp(c->listen[0], "[::1]:0") == 0,
         "listen as a single string, port 0 allowed");
    T_EQ_INT(c->workers, 3, "workers as written");
    T_EQ_STR(c->state_dir, "/tmp/x", "state_dir as written");
    T_EQ_INT(c->allow_inline_secrets, 1, "allow_inline_secrets: true");
    T_EQ_INT(c->limits.max_body_bytes, 1000, "limits value as written");
    T_EQ_INT(c->limits.max_connections, 0, "max_connections 0 = unlimited");
    T_EQ_INT(c->limits.max_headers, 100, "other limits keep their defaults");
    T_EQ_INT(c->policy.strategy, CFG_STRATEGY_LEAST_INFLIGHT, "strategy parsed");
    T_EQ_INT(c->policy.max_retries, 0, "max_retries 0 allowed");
    cfg_free(c);
}

static void test_cyaml_errors(void)
{
    expect_edit(8, "        rpm: ten",
                "config: t.yaml:8: providers[0].keys[0].rpm: must be a non-negative integer, "
                "0 = unlimited (got \"ten\")",
                "wrong type for an integer: path, line, allowed, got");
    expect_edit(8, "        rpn: 10", ":8: providers[0].keys[0].rpn: unknown key (allowed: name,",
                "unknown key: path and line, allowed keys listed");
    expect_edit(-1, "bogus: 1", ":27: bogus: unknown key (allowed: listen, workers",
                "unknown top-level key");
    expect_edit(18, "    aliases: one", ":18: models[0].aliases: must be a list (got \"one\")",
                "scalar where a list belongs");
    expect_edit(-1, "limits: 5", ":27: limits: must be a mapping of keys to values (got \"5\")",
                "scalar where a mapping belongs");
    expect_edit(4, "    # no url", ":3: providers[0].base_url: is required but missing",
                "missing required key: path of the key, line of its mapping");
    expect_edit(20, "      - {model: up-m1}",
                ":20: models[0].deployments[0].provider: is required but missing",
                "missing required key in a flow mapping");
    expect_edit(-1, "policy: {strategy: fastest}",
                ":27: policy.strategy: must be one of round_robin, weighted, latency, "
                "least_inflight (got \"fastest\")",
                "unknown enum value lists the allowed ones");
    expect_edit(11, "    auth: basic", ":11: providers[1].auth: must be one of bearer, x-api-key",
                "unknown auth style");
    expect_edit(8, "        name: k9",
                ":8: providers[0].keys[0].name: appears twice (first on line 6",
                "duplicate key in a mapping");
    expect_edit(1, "listen: [\"127.0.0.1:8080\"", ":2: listen: YAML syntax error",
                "syntax error: line and the innermost path");
    expect_edit(22, "    fallbacks: *m2", ":22: models[0].fallbacks: YAML aliases",
                "aliases refused");
}

static void test_scalar_rules(void)
{
    expect_edit(-1, "workers: 1.5",
                ":27: workers: must be an integer from 0 to 1024, 0 = one per CPU core (got "
                "\"1.5\")",
                "an integer with a fraction is refused (libcyaml would truncate it)");
    expect_edit(8, "        rpm: 0x10", ":8: providers[0].keys[0].rpm: must be a non-negative",
                "hex integers refused");
    expect_edit(-1, "allow_inline_secrets: maybe",
                ":27: allow_inline_secrets: must be true or false (got \"maybe\")",
                "boolean other than true/false/yes/no refused");
    expect_edit(8, "        weight: 0",
                ":8: providers[0].keys[0].weight: must be an integer from 1 to 1000000 (got "
                "\"0\")",
                "key weight 0 refused");
    expect_edit(21, "      - {provider: p2, model: up-m1, priority: 0}",
                ":21: models[0].deployments[1].priority: must be an integer from 1 to 1000",
                "priority 0 refused");
    expect_edit(21, "      - {provider: p2, model: up-m1, weight: 0}",
                ":21: models[0].deployments[1].weight: must be an integer from 1",
                "deployment weight 0 refused");
    expect_edit(-1, "limits: {max_body_bytes: 0}",
                ":27: limits.max_body_bytes: must be a positive integer (got \"0\")",
                "max_body_bytes 0 refused");
    expect_edit(-1, "limits:\n  max_header_bytes: 0",
                ":28: limits.max_header_bytes: must be a positive integer",
                "max_header_bytes 0 refused");
    expect_edit(-1, "policy: {request_timeout_ms: 0}",
                ":27: policy.request_timeout_ms: must be a positive integer",
                "request_timeout_ms 0 refused");
    expect_edit(23, "    input_price_per_m: -0.5",
                ":23: models[0].input_price_per_m: must be a number >= 0 (got \"-0.5\")",
                "negative price refused");
    expect_edit(23, "    input_price_per_m: .nan", ":23: models[0].input_price_per_m: must be",
                "NaN price refused");
    expect_edit(14, "      - name:", ":14: providers[1].keys[0].name: has no value",
                "empty value refused");
}

static void test_semantic_rules(void)
{
    const char *no_providers = "listen: \"127.0.0.1:1\"\nproviders: []\n"
                               "models: [{name: m, deployments: [{provider: p, model: m}]}]\n";
    cfg_t *c = NULL;
    int rc;

    expect_edit(1, "# no listen", ":2: listen: is required (at least one address",
                "listen is required (line of the top-level mapping)");
    expect_edit(1, "listen: []", ":1: listen: needs at least one address", "empty listen list");
    expect_edit(1, "listen: [\"127.0.0.1\"]", ":1: listen[0]: needs a port (host:port) (got",
                "listen without port");
    expect_edit(1, "listen: [\"127.0.0.1:8080\", \"127.0.0.1:65536\"]",
                ":1: listen[1]: has an invalid port", "listen port out of range");
    expect_edit(1, "listen: [\"::1:80\"]", ":1: listen[0]: has an IPv6 address without brackets",
                "unbracketed IPv6 listen");
    expect_edit(1, "listen: [\":80\"]", ":1: listen[0]: needs a host name", "listen without host");

    expect_edit(4, "    base_url: ftp://api.example.com",
                ":4: providers[0].base_url: must start with http:// or https://",
                "base_url scheme");
    expect_edit(4, "    base_url: https://api.example.com/v1?x=1",
                ":4: providers[0].base_url: must not have a query", "base_url query refused");
    expect_edit(4, "    base_url: https://api.example.com/v1#f",
                ":4: providers[0].base_url: must not have a query or fragment",
                "base_url fragment refused");
    expect_edit(4, "    base_url: https://user:pw@api.example.com/v1",
                ":4: providers[0].base_url: must not contain user:password@",
                "base_url userinfo refused");
    T_OK(strstr(err, "user:pw") == NULL, "the URL's credentials are not echoed");
    expect_edit(4, "    base_url: https:///v1", ":4: providers[0].base_url: has no host",
                "base_url without host");
    expect_edit(4, "    base_url: https://api.example.com:0/v1",
                ":4: providers[0].base_url: has an invalid port", "base_url port 0");
    expect_edit(4, "    base_url: https://api.example.com:x/v1",
                ":4: providers[0].base_url: has an invalid port", "base_url port not a number");

    expect_edit(12, "    # no auth_header",
                ":9: providers[1].auth_header: is required with auth: header",
                "auth: header needs auth_header");
    expect_edit(11, "    auth: bearer", ":12: providers[1].auth_header: is only used with auth",
                "auth_header without auth: header");
    expect_edit(12, "    auth_header: \"bad header\"",
                ":12: providers[1].auth_header: must be an HTTP header name",
                "auth_header must be a token");
    expect_edit(4, "    base_url: http://api.example.com\n    ca_file: /etc/hostname",
                ":5: providers[0].ca_file: only applies to https://", "ca_file with http");
    expect_edit(4, "    base_url: https://api.example.com\n    ca_file: /nonexistent/ca.pem",
                ":5: providers[0].ca_file: cannot read \"/nonexistent/ca.pem\"",
                "unreadable ca_file names the path");
    expect_edit(4, "    base_url: https://h\n    headers: [{name: Content-Length, value: \"1\"}]",
                ":5: providers[0].headers[0].name: \"Content-Length\" is set by llmgate itself",
                "extra header may not replace a framing header");
    expect_edit(4, "    base_url: https://h\n    headers: [{name: Authorization, value: x}]",
                ":5: providers[0].headers[0].name: \"Authorization\" is set by llmgate itself",
                "extra header may not replace the credential");
    expect_edit(4, "    base_url: https://h\n    headers: [{name: X-A, value: \"a\\nb\"}]",
                ":5: providers[0].headers[0].value: contains a control character",
                "header value without line breaks");

    expect_edit(3, "  - name: \"\"", ":3: providers[0].name: must not be empty",
                "empty provider name");
    expect_edit(9, "  - name: p1",
                ":9: providers[1].name: provider name \"p1\" is already used by providers[0] "
                "(line 3)",
                "duplicate provider name");
    expect_edit(14, "      - name: k1",
                ":14: providers[1].keys[0].name: key name \"k1\" is already used by "
                "providers[0].keys[0] (line 6)",
                "key names unique across providers");
    expect_edit(6, "      - name: \"k 1\"",
                ":6: providers[0].keys[0].name: may contain only letters, digits, '.', '_' and "
                "'-' (got \"k 1\")",
                "key name characters");
    expect_edit(6, "      - name: \"k:1\"", ":6: providers[0].keys[0].name: may contain only",
                "key name without ':'");
    rc = load_edit(&c, 5, "    keys: []", 6, "", 7, "", 8, "", 0);
    expect_err(rc, ":5: providers[0].keys: provider \"p1\" needs at least one key",
               "a provider needs a key");
    cfg_free(c);
    rc = cfg_load_string(no_providers, strlen(no_providers), "t.yaml", &c, err, sizeof(err));
    expect_err(rc, ":2: providers: at least one provider is required", "at least one provider");
    T_OK(strstr(err, ":3: models[0].deployments[0].provider: unknown provider \"p\" (known: "
                     "none)") != NULL,
         "  ... and the deployment's provider is unknown");

    rc = load_edit(&c, 19, "    deployments: []", 20, "", 21, "", 0);
    expect_err(rc, ":19: models[0].deployments: model \"m1\" needs at least one deployment",
               "a model needs a deployment");
    cfg_free(c);
    expect_edit(20, "      - {provider: nope, model: up-m1}",
                ":20: models[0].deployments[0].provider: unknown provider \"nope\" (known: p1, "
                "p2)",
                "deployment references an unknown provider");
    expect_edit(20, "      - {provider: p1, model: \"\"}",
                ":20: models[0].deployments[0].model: must not be empty",
                "upstream model name not empty");
    expect_edit(22, "    fallbacks: [zzz]", ":22: models[0].fallbacks[0]: unknown model \"zzz\"",
                "fallback references an unknown model");
    expect_edit(22, "    fallbacks: [uno]",
                ":22: models[0].fallbacks[0]: model \"uno\" cannot fall back to itself",
                "fallback to itself (through an alias)");
    expect_edit(22, "    fallbacks: [m2, m2]",
                ":22: models[0].fallbacks[1]: \"m2\" is already listed as fallbacks[0]",
                "fallback listed twice");
    expect_edit(24, "  - name: uno",
                ":24: models[1].name: \"uno\" is already used by models[0].aliases[1] (line 18)",
                "model names and aliases unique together");
    expect_edit(18, "    aliases: [m1]",
                ":18: models[0].aliases[0]: \"m1\" is already used by models[0].name (line 17)",
                "alias equal to the own name");
    expect_edit(17, "  - name: \"m 1\"", ":17: models[0].name: may contain only printable ASCII",
                "model name without spaces");
    expect_edit(-1, "state_dir: \"\"", ":27: state_dir: must not be empty", "empty state_dir");

    /* a cycle of fallbacks is allowed: the router visits each model once */
    rc = load_edit(&c, 26, "      - {provider: p2, model: up-m2}\n    fallbacks: [m1]", 0);
    T_EQ_INT(rc, 0, "fallback cycle m1 -> m2 -> m1 is accepted");
    cfg_free(c);
}

/* ---- api, anthropic_version, key groups, responses --------------------------------------- */

/* Loads the base with p1 (lines 3-8) speaking api: anthropic, plus extra lines in it. */
static int load_anthropic(cfg_t **c, const char *extra)
{
    char line[512];

    snprintf(line, sizeof(line),
             "    base_url: https://api.anthropic.com/v1\n    api: anthropic%s%s",
             *extra ? "\n" : "", extra);
    return load_edit(c, 4, line, 0);
}

static void test_provider_api(void)
{
    cfg_t *c = NULL;
    int rc = load_anthropic(&c, "");

    T_EQ_INT(rc, 0, "api: anthropic loads");
    if (rc == 0) {
        const cfg_provider_t *p = &c->providers[0];
        T_EQ_INT(p->api, CFG_API_ANTHROPIC, "api: anthropic parsed");
        T_EQ_INT(p->auth, CFG_AUTH_X_API_KEY, "auth not written: x-api-key for anthropic");
        T_OK(p->anthropic_version && strcmp(p->anthropic_version, "2023-06-01") == 0,
             "anthropic_version default 2023-06-01");
        T_EQ_INT(c->providers[1].api, CFG_API_OPENAI, "the other provider stays openai");
    } else {
        show_err();
    }
    cfg_free(c);
    c = NULL;
    rc = load_anthropic(&c, "    auth: bearer\n    anthropic_version: 2024-10-22-beta");
    T_OK(rc == 0 && c->providers[0].auth == CFG_AUTH_BEARER &&
             strcmp(c->providers[0].anthropic_version, "2024-10-22-beta") == 0,
         "explicit auth: bearer stays bearer (relays); anthropic_version as written");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 11, "    auth: header\n    api: anthropic", 0);
    T_OK(rc == 0 && c->providers[1].auth == CFG_AUTH_HEADER &&
             strcmp(c->providers[1].auth_header, "api-key") == 0,
         "explicit auth: header stays with api: anthropic");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 3,
                   "  - {name: p1, base_url: \"https://h/v1\", api: anthropic, keys: [{name: k1, "
                   "secret_env: T_KEY_1}]}",
                   4, "", 5, "", 6, "", 7, "", 8, "", 0);
    T_OK(rc == 0 && c->providers[0].auth == CFG_AUTH_X_API_KEY,
         "a flow-mapping provider gets the x-api-key default too");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 4, "    base_url: https://h/v1\n    api: openai", 0);
    T_OK(rc == 0 && c->providers[0].api == CFG_API_OPENAI &&
             c->providers[0].auth == CFG_AUTH_BEARER,
         "explicit api: openai, auth bearer");
    cfg_free(c);
    c = NULL;

    /* a chat-completions-only provider (DeepSeek, a relay): bearer, no anthropic_version */
    rc = load_edit(&c, 4, "    base_url: https://api.deepseek.com/v1\n    api: openai-chat", 0);
    T_OK(rc == 0 && c->providers[0].api == CFG_API_OPENAI_CHAT &&
             c->providers[0].auth == CFG_AUTH_BEARER && c->providers[0].anthropic_version == NULL,
         "api: openai-chat parsed, auth bearer by default");
    if (rc != 0)
        show_err();
    cfg_free(c);
    c = NULL;
    expect_edit(4, "    base_url: https://h/v1\n    api: openai-chat\n    anthropic_version: x",
                ":6: providers[0].anthropic_version: is only used with api: anthropic",
                "anthropic_version refused with api: openai-chat");
    expect_edit(4, "    base_url: https://h/v1\n    api: cohere",
                ":5: providers[0].api: must be one of openai, anthropic, gemini, openai-chat (got "
                "\"cohere\")",
                "unknown api lists the allowed ones");
    rc = load_edit(
        &c, 4, "    base_url: https://generativelanguage.googleapis.com/v1beta\n    api: gemini",
        0);
    T_OK(rc == 0 && c->providers[0].api == CFG_API_GEMINI &&
             c->providers[0].auth == CFG_AUTH_HEADER && c->providers[0].auth_header &&
             strcmp(c->providers[0].auth_header, "x-goog-api-key") == 0 &&
             strcmp(c->providers[0].base_path, "/v1beta") == 0 &&
             c->providers[0].anthropic_version == NULL,
         "api: gemini: auth not written is the key in x-goog-api-key, base path /v1beta");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 4, "    base_url: https://relay/v1beta\n    api: gemini\n    auth: bearer",
                   0);
    T_OK(rc == 0 && c->providers[0].auth == CFG_AUTH_BEARER && !c->providers[0].auth_header,
         "api: gemini with an explicit auth: bearer stays bearer (a relay)");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 4,
                   "    base_url: https://relay/v1beta\n    api: gemini\n    auth: header\n"
                   "    auth_header: x-relay-key",
                   0);
    T_OK(rc == 0 && c->providers[0].auth == CFG_AUTH_HEADER &&
             strcmp(c->providers[0].auth_header, "x-relay-key") == 0,
         "api: gemini with an explicit auth: header keeps its header");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 4,
                   "    base_url: https://h/v1beta\n    api: gemini\n"
                   "    headers: [{name: X-Goog-Api-Key, value: x}]",
                   0);
    expect_err(rc, ":6: providers[0].headers[0].name: \"X-Goog-Api-Key\" is set by llmgate itself",
               "the defaulted x-goog-api-key is reserved before the headers are checked");
    expect_edit(4, "    base_url: https://h/v1beta\n    api: gemini\n    anthropic_version: x",
                ":6: providers[0].anthropic_version: is only used with api: anthropic (remove "
                "it, or set api: anthropic)",
                "anthropic_version with api: gemini");
    expect_edit(4, "    base_url: https://h/v1\n    anthropic_version: \"2023-06-01\"",
                ":5: providers[0].anthropic_version: is only used with api: anthropic (remove "
                "it, or set api: anthropic)",
                "anthropic_version without api: anthropic");
    rc = load_anthropic(&c, "    anthropic_version: \"2023-06-01 \"");
    expect_err(rc,
               ":6: providers[0].anthropic_version: may contain only letters, digits and '-' "
               "(got \"2023-06-01 \"; the value of the anthropic-version header, e.g. "
               "2023-06-01)",
               "anthropic_version characters");
    rc = load_anthropic(&c, "    anthropic_version: 2023-06-01-aaaaaaaaaaaaaaaaaaaaaaa");
    expect_err(rc, ":6: providers[0].anthropic_version: must be at most 32 characters",
               "anthropic_version length");
    rc = load_anthropic(&c, "    anthropic_version: \"\"");
    expect_err(rc, ":6: providers[0].anthropic_version: must not be empty",
               "empty anthropic_version");
    rc = load_anthropic(&c, "    anthropic_version:");
    expect_err(rc, ":6: providers[0].anthropic_version: has no value", "anthropic_version: null");
    rc = load_anthropic(&c, "    headers: [{name: Anthropic-Version, value: \"2023-01-01\"}]");
    expect_err(rc,
               ":6: providers[0].headers[0].name: \"Anthropic-Version\" is set by llmgate itself "
               "(not allowed as an extra header; write anthropic_version: instead)",
               "anthropic-version is not an extra header of an anthropic provider");
    rc = load_anthropic(&c, "    headers: [{name: x-api-key, value: x}]");
    expect_err(rc, ":6: providers[0].headers[0].name: \"x-api-key\" is set by llmgate itself",
               "the defaulted x-api-key is reserved before the headers are checked");
    rc = load_anthropic(&c, "    auth: bearer\n    headers: [{name: anthropic-beta, value: x}]");
    T_EQ_INT(rc, 0, "other anthropic headers (anthropic-beta) are allowed");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 4,
                   "    base_url: https://h/v1\n    headers: [{name: anthropic-version, "
                   "value: x}]",
                   0);
    T_EQ_INT(rc, 0, "an openai provider may send anthropic-version as an extra header");
    cfg_free(c);
}

static void test_key_groups(void)
{
    const char *g64 =
        "        group: g123456789012345678901234567890123456789012345678901234567890123";
    cfg_t *c = NULL;
    const char *first;
    int rc = load_edit(&c, 8, "        rpm: 10\n        group: org-a", 15,
                       "        secret_env: T_KEY_2\n        group: org.b_2\n"
                       "      - {name: k3, secret_env: T_KEY_2, group: org.b_2}\n"
                       "      - {name: k4, secret_env: T_KEY_2}",
                       0);

    T_EQ_INT(rc, 0, "key groups load");
    if (rc == 0) {
        const cfg_provider_t *p2 = &c->providers[1];
        T_EQ_STR(c->providers[0].keys[0].group, "org-a", "group as written");
        T_OK(p2->keys_count == 3 && strcmp(p2->keys[0].group, "org.b_2") == 0 &&
                 strcmp(p2->keys[1].group, "org.b_2") == 0 && p2->keys[2].group == NULL,
             "two keys of one provider share a group; a key without one is alone");
    } else {
        show_err();
    }
    cfg_free(c);
    c = NULL;

    expect_edit(8, "        group: \"org a\"",
                ":8: providers[0].keys[0].group: may contain only letters, digits, '.', '_' and "
                "'-' (got \"org a\"; a group is named like a key)",
                "group characters as for key names");
    expect_edit(8, g64, ":8: providers[0].keys[0].group: must be at most 63 characters",
                "group length as for key names");
    expect_edit(8, "        group: \"\"", ":8: providers[0].keys[0].group: must not be empty",
                "empty group");
    expect_edit(8, "        group:", ":8: providers[0].keys[0].group: has no value",
                "group without a value");
    expect_edit(8, "        group: [a]", ":8: providers[0].keys[0].group: must be a single value",
                "group must be a string");
    rc = load_edit(&c, 8, "        group: org-a", 15,
                   "        secret_env: T_KEY_2\n        group: org-a\n"
                   "      - {name: k3, secret_env: T_KEY_2, group: org-a}",
                   0);
    expect_err(rc,
               ":16: providers[1].keys[0].group: group \"org-a\" is already used by provider "
               "\"p1\" (providers[0].keys[0].group, line 8); a group is the keys of one provider "
               "organisation (name this provider's group differently)",
               "one group under two providers names both places");
    first = strstr(err, "is already used by provider");
    T_OK(first && !strstr(first + 1, "is already used by provider"),
         "  ... once per provider, not once per key");
    /* a group name may equal a key or provider name: they are different things */
    rc = load_edit(&c, 8, "        group: k1", 15, "        secret_env: T_KEY_2\n        group: p2",
                   0);
    T_EQ_INT(rc, 0, "a group may be called like a key or a provider");
    cfg_free(c);
}

static void test_responses(void)
{
    cfg_t *c = NULL;
    int rc = load_edit(&c, -1, "responses:\n  affinity_ttl_s: 3600\n  affinity_max: 1", 0);

    T_OK(rc == 0 && c->responses.affinity_ttl_s == 3600 && c->responses.affinity_max == 1,
         "responses values as written");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "responses: {affinity_max: 10000000}", 0);
    T_OK(rc == 0 && c->responses.affinity_max == 10000000 && c->responses.affinity_ttl_s == 2592000,
         "affinity_max at its maximum; the absent ttl keeps its default");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "responses: {affinity_ttl_s: 4294967295}", 0);
    T_OK(rc == 0 && c->responses.affinity_ttl_s == 4294967295u, "affinity_ttl_s up to 2^32-1");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "responses: {}", 0);
    T_OK(rc == 0 && c->responses.affinity_ttl_s == 2592000 && c->responses.affinity_max == 100000,
         "an empty responses: mapping takes the defaults");
    cfg_free(c);
    c = NULL;

    expect_edit(-1, "responses: {affinity_ttl_s: 0}",
                ":27: responses.affinity_ttl_s: must be a positive integer (got \"0\")",
                "affinity_ttl_s 0 refused");
    expect_edit(-1, "responses: {affinity_ttl_s: 4294967296}",
                ":27: responses.affinity_ttl_s: must be a positive integer (got \"4294967296\")",
                "affinity_ttl_s beyond uint32 refused");
    expect_edit(-1, "responses:\n  affinity_max: 10000001",
                ":28: responses.affinity_max: must be an integer from 1 to 10000000 (got "
                "\"10000001\")",
                "affinity_max above its maximum refused");
    expect_edit(-1, "responses: {affinity_max: 0}",
                ":27: responses.affinity_max: must be an integer from 1 to 10000000 (got \"0\")",
                "affinity_max 0 refused");
    expect_edit(-1, "responses: {affinity_ttl_ms: 1000}",
                ":27: responses.affinity_ttl_ms: unknown key (allowed: affinity_ttl_s, "
                "affinity_max)",
                "unknown key under responses lists the allowed ones");
    expect_edit(-1, "responses: 5",
                ":27: responses: must be a mapping of keys to values (got \"5\")",
                "responses must be a mapping");
}

static void test_many_problems(void)
{
    cfg_t *c = NULL;
    char small[120];
    int rc = load_edit(&c, 8, "        weight: 0", 20, "      - {provider: nope, model: up-m1}", 22,
                       "    fallbacks: [zzz]", 4, "    base_url: ftp://x", 0);
    const char *a, *b, *d, *e;
    const char *many = "listen: []\nproviders: []\nmodels: []\nstate_dir: ''\n";

    a = strstr(err, ":4: providers[0].base_url:");
    b = strstr(err, ":8: providers[0].keys[0].weight:");
    d = strstr(err, ":20: models[0].deployments[0].provider:");
    e = strstr(err, ":22: models[0].fallbacks[0]:");
    T_OK(rc == -1 && a && b && d && e, "all problems reported, not only the first");
    T_OK(a < b && b < d && d < e, "one per line, ordered by line");
    T_OK(c == NULL, "no configuration on failure");

    rc = cfg_load_string("bogus: 1\n", strlen("bogus: 1\n"), "t.yaml", &c, small, sizeof(small));
    T_OK(rc == -1 && strlen(small) < sizeof(small), "a short buffer is never overrun");
    rc = cfg_load_string(many, strlen(many), "t.yaml", &c, small, 90);
    T_OK(rc == -1 && strstr(small, "more problem(s) not shown") != NULL && strlen(small) < 90,
         "what does not fit is counted");
}

static void test_empty_and_files(void)
{
    cfg_t *c = NULL;
    int rc;

    rc = cfg_load_string("", 0, "e.yaml", &c, err, sizeof(err));
    expect_err(rc, "config: e.yaml:1: (top level): the file is empty", "empty input");
    rc = cfg_load_string("# only a comment\n", strlen("# only a comment\n"), "e.yaml", &c, err,
                         sizeof(err));
    expect_err(rc, "the file is empty", "comments only");
    rc = cfg_load_string("- a\n", strlen("- a\n"), "e.yaml", &c, err, sizeof(err));
    expect_err(rc, ":1: (top level): must be a mapping of keys to values (got a list)",
               "top level must be a mapping");
    rc = cfg_load_string("a: 1\n---\nb: 2\n", strlen("a: 1\n---\nb: 2\n"), "e.yaml", &c, err,
                         sizeof(err));
    expect_err(rc, ":2: (top level): only one YAML document is allowed", "one document only");
    rc = cfg_load("/nonexistent/llmgate.yaml", &c, err, sizeof(err));
    expect_err(rc, "config: /nonexistent/llmgate.yaml: cannot read the configuration: No such",
               "missing file named");
}

/* ---- secrets ------------------------------------------------------------------------- */

/* Loads the base with T_KEY_1 = value and expects needle, and never the value. */
static void expect_env_secret(const char *value, const char *needle, const char *what)
{
    cfg_t *c = NULL;
    int rc;

    setenv("T_KEY_1", value, 1);
    rc = load_edit(&c, 0);
    expect_err(rc, needle, what);
    T_OK(strstr(err, "sk-live-") == NULL, "  ... and the secret is not in the message");
    cfg_free(c);
    setenv("T_KEY_1", "sk-test-key-1", 1);
}

static char *write_file(const char *content, size_t len)
{
    char *path = strdup("/tmp/llmgate-config-test-XXXXXX");
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, content, len) != (ssize_t)len) {
        perror("temp file");
        exit(2);
    }
    close(fd);
    return path;
}

/* Loads the base with key k1 reading secret_file holding content[0..len). */
static int load_file_secret(cfg_t **c, const char *content, size_t len, char **pathp)
{
    char line[128];
    int rc;

    *pathp = write_file(content, len);
    snprintf(line, sizeof(line), "        secret_file: %s", *pathp);
    rc = load_edit(c, 7, line, 0);
    return rc;
}

static void test_secrets(void)
{
    cfg_t *c = NULL;
    char *path;
    int rc;

    unsetenv("T_KEY_1");
    rc = load_edit(&c, 0);
    expect_err(rc,
               ":7: providers[0].keys[0].secret_env: key \"k1\": environment variable T_KEY_1 "
               "is not set",
               "missing variable: names the variable and the key");
    expect_env_secret("",
                      ":7: providers[0].keys[0].secret_env: key \"k1\": environment "
                      "variable T_KEY_1 is empty",
                      "empty variable");
    expect_env_secret("sk-live-abc ",
                      ":7: providers[0].keys[0].secret_env: the secret of key \"k1\" (from "
                      "environment variable T_KEY_1) has leading or trailing whitespace",
                      "trailing whitespace");
    expect_env_secret(" sk-live-abc",
                      "key \"k1\" (from environment variable T_KEY_1) has "
                      "leading or trailing whitespace",
                      "leading whitespace");
    expect_env_secret("sk-live-abc\n",
                      "key \"k1\" (from environment variable T_KEY_1) ends "
                      "with a newline",
                      "trailing newline in a variable");
    expect_env_secret("Bearer sk-live-abc",
                      "key \"k1\" (from environment variable T_KEY_1) "
                      "starts with \"Bearer \"",
                      "pasted Bearer prefix");
    expect_env_secret("bearer sk-live-abc", "starts with \"Bearer \"", "Bearer prefix in any case");
    expect_env_secret("sk-live-a\x01"
                      "bc",
                      "key \"k1\" (from environment variable T_KEY_1) "
                      "contains control characters",
                      "control character");
    expect_env_secret("sk-live-a bc", "contains a space", "inner space");

    rc = load_edit(&c, 7, "        secret_env: \"BAD-NAME\"", 0);
    expect_err(rc,
               ":7: providers[0].keys[0].secret_env: key \"k1\": must be an environment "
               "variable name",
               "variable name checked");
    rc = load_edit(&c, 7, "        secret: sk-live-inline", 0);
    expect_err(rc,
               ":7: providers[0].keys[0].secret: key \"k1\": inline secrets are refused (use "
               "secret_env or secret_file, or set allow_inline_secrets: true)",
               "inline secret refused by default");
    T_OK(strstr(err, "sk-live-") == NULL, "  ... and the inline secret is not in the message");
    rc = load_edit(&c, 7, "        secret: sk-live-inline", -1, "allow_inline_secrets: true", 0);
    T_OK(rc == 0 && c && strcmp(c->providers[0].keys[0].secret, "sk-live-inline") == 0,
         "inline secret accepted with allow_inline_secrets: true");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, 7, "        secret: [sk-live-inline]", 0);
    expect_err(rc, ":7: providers[0].keys[0].secret: must be a single value",
               "inline secret of the wrong type");
    T_OK(strstr(err, "sk-live-") == NULL, "  ... and its value is not in the message");
    rc = load_edit(&c, 7, "        secret_env: T_KEY_2\n        secret_file: /x", 0);
    expect_err(rc,
               ":6: providers[0].keys[0]: key \"k1\" needs exactly one of secret_env, "
               "secret_file or secret (found 2)",
               "two secret sources refused");
    rc = load_edit(&c, 7, "        # no secret", 0);
    expect_err(rc, "(found 0)", "no secret source refused");

    rc = load_file_secret(&c, "sk-file-secret\n", 15, &path);
    T_OK(rc == 0 && c && strcmp(c->providers[0].keys[0].secret, "sk-file-secret") == 0,
         "secret_file: one final newline stripped");
    T_OK(rc == 0 && c && strcmp(c->providers[0].keys[0].fingerprint, "87561904f77a") == 0,
         "secret_file: fingerprint of the stripped secret");
    cfg_free(c);
    c = NULL;
    unlink(path);
    free(path);
    rc = load_file_secret(&c, "sk-file-secret\r\n", 16, &path);
    T_OK(rc == 0 && c && strcmp(c->providers[0].keys[0].secret, "sk-file-secret") == 0,
         "secret_file: one final CRLF stripped");
    cfg_free(c);
    c = NULL;
    unlink(path);
    free(path);
    {
        /* systemd's LoadCredential=: the file named under ${CREDENTIALS_DIRECTORY} */
        char line[160];
        path = write_file("sk-cred-secret\n", 15);
        snprintf(line, sizeof(line), "        secret_file: ${CREDENTIALS_DIRECTORY}%s",
                 path + strlen("/tmp"));
        setenv("CREDENTIALS_DIRECTORY", "/tmp", 1);
        rc = load_edit(&c, 7, line, 0);
        T_OK(rc == 0 && c && strcmp(c->providers[0].keys[0].secret, "sk-cred-secret") == 0 &&
                 strcmp(c->providers[0].keys[0].secret_file, path) == 0,
             "secret_file: ${CREDENTIALS_DIRECTORY} replaced by the variable");
        cfg_free(c);
        c = NULL;
        unsetenv("CREDENTIALS_DIRECTORY");
        rc = load_edit(&c, 7, line, 0);
        expect_err(rc,
                   ":7: providers[0].keys[0].secret_file: \"${CREDENTIALS_DIRECTORY}/llmgate-"
                   "config-test-",
                   "secret_file: ${CREDENTIALS_DIRECTORY} unset");
        T_OK(strstr(err, "which is not set (systemd sets it for a unit with LoadCredential=") &&
                 !strstr(err, "cannot use"),
             "  ... says it is not set, once");
        unlink(path);
        free(path);
    }
    rc = load_file_secret(&c, "sk-live-file\n\n", 14, &path);
    expect_err(rc,
               ":7: providers[0].keys[0].secret_file: the secret of key \"k1\" (from "
               "secret_file",
               "secret_file with two newlines refused");
    T_OK(strstr(err, "ends with a newline") && !strstr(err, "sk-live-"),
         "  ... naming the problem, not the value");
    unlink(path);
    free(path);
    rc = load_file_secret(&c, "", 0, &path);
    expect_err(rc, "key \"k1\" (from secret_file", "empty secret_file refused");
    T_OK(strstr(err, ") is empty") != NULL, "  ... as empty");
    unlink(path);
    free(path);
    rc = load_edit(&c, 7, "        secret_file: /nonexistent/key", 0);
    expect_err(rc,
               ":7: providers[0].keys[0].secret_file: key \"k1\": cannot use secret_file "
               "\"/nonexistent/key\": No such file or directory",
               "unreadable secret_file names the path");
}

/* CFG_LOAD_NO_SECRETS (llmgatectl): loads where the key variables are unset, holds none. */
static void test_no_secrets(void)
{
    static const char yaml[] = "listen: [\"127.0.0.1:8080\"]\n"
                               "state_dir: /tmp/x-state\n"
                               "providers:\n"
                               "  - name: p1\n"
                               "    base_url: http://127.0.0.1:9/v1\n"
                               "    keys:\n"
                               "      - {name: k1, secret_env: T_UNSET_KEY_9}\n"
                               "      - {name: k2, secret: sk-inline-never-kept}\n"
                               "      - {name: k3, secret_file: /nonexistent/key}\n"
                               "models:\n"
                               "  - {name: m1, deployments: [{provider: p1, model: m}]}\n";
    cfg_t *c = NULL;
    int rc;

    unsetenv("T_UNSET_KEY_9");
    rc = cfg_load_string_ex(yaml, sizeof(yaml) - 1, "t.yaml", CFG_LOAD_NO_SECRETS, &c, err,
                            sizeof(err));
    T_EQ_INT(rc, 0, "no-secrets load succeeds without the variables, files or inline permission");
    if (rc == 0) {
        T_OK(c->providers[0].keys_count == 3 && !c->providers[0].keys[0].secret &&
                 !c->providers[0].keys[1].secret && !c->providers[0].keys[2].secret &&
                 c->providers[0].keys[0].fingerprint[0] == '\0',
             "  ... every secret NULL (the inline one wiped), fingerprints empty");
        T_EQ_STR(c->state_dir, "/tmp/x-state", "  ... the layout is loaded (state_dir)");
    } else {
        show_err();
    }
    cfg_free(c);
    rc = cfg_load_string_ex(yaml, sizeof(yaml) - 1, "t.yaml", 0, &c, err, sizeof(err));
    T_OK(rc == -1 && strstr(err, "T_UNSET_KEY_9") && !strstr(err, "sk-inline-never-kept"),
         "without the flag the same file is refused for its secrets");
    cfg_free(c);
}

/* ---- client keys ---------------------------------------------------------------------------- */

#define SHA_A "5bef590c9b702157b92db28d965b0344addf6549efbdf61dbc9483ce78406083"

static void test_client_keys(void)
{
    static const unsigned char sha_a_head[4] = {0x5b, 0xef, 0x59, 0x0c};
    /* SHA-256("sk-client-b") */
    static const unsigned char sha_b_head[4] = {0xf6, 0x5d, 0x4f, 0xaa};
    cfg_t *c = NULL;
    int rc;

    rc = load_edit(&c, -1, "# no client_keys", 0);
    T_OK(rc == 0 && c->allow_unauthenticated == 0 && c->client_keys_count == 0,
         "no client keys and no allow_unauthenticated: loads, serving only store clients");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "allow_unauthenticated: false", 0);
    T_OK(rc == 0 && c->allow_unauthenticated == 0, "allow_unauthenticated: false is the same");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "allow_unauthenticated: true", 0);
    T_OK(rc == 0 && c->allow_unauthenticated == 1 && c->client_keys_count == 0,
         "allow_unauthenticated: true loads without client keys");
    cfg_free(c);
    c = NULL;

    setenv("T_CLIENT_B", "sk-client-b", 1);
    rc = load_edit(&c, -1,
                   "client_keys:\n"
                   "  - name: app-a\n"
                   "    sha256: " SHA_A "\n"
                   "    models: [m1, uno]\n"
                   "    rpm: 10\n"
                   "    rpd: 100\n"
                   "    tokens_per_day: 5000\n"
                   "    tokens_per_month: 90000\n"
                   "    cost_per_day_usd: 1.5\n"
                   "    cost_per_month_usd: 20\n"
                   "  - {name: app.b, secret_env: T_CLIENT_B}",
                   0);
    T_EQ_INT(rc, 0, "client keys by sha256 and by secret_env load");
    if (rc == 0) {
        const cfg_client_t *a = &c->client_keys[0], *b = &c->client_keys[1];
        T_OK(c->client_keys_count == 2 && c->allow_unauthenticated == 0, "  ... two client keys");
        T_OK(a->has_digest && memcmp(a->digest, sha_a_head, 4) == 0 && a->digest[31] == 0x83,
             "  ... sha256 decoded into the digest");
        T_OK(b->has_digest && memcmp(b->digest, sha_b_head, 4) == 0,
             "  ... secret_env hashed into the digest");
        T_OK(a->models_count == 2 && strcmp(a->models[1], "uno") == 0, "  ... models as written");
        T_OK(a->rpm == 10 && a->rpd == 100 && a->tokens_per_day == 5000 &&
                 a->tokens_per_month == 90000 && a->cost_per_day_usd == 1.5 &&
                 a->cost_per_month_usd == 20,
             "  ... limits as written");
        T_OK(b->models_count == 0 && b->rpm == 0 && b->rpd == 0 && b->tokens_per_day == 0 &&
                 b->tokens_per_month == 0 && b->cost_per_day_usd == 0 && b->cost_per_month_usd == 0,
             "  ... absent: all models, every limit 0 (unlimited)");
        T_OK(cfg_client_find(c, "app.b") == b && cfg_client_find(c, "app") == NULL,
             "cfg_client_find by exact name");
    } else {
        show_err();
    }
    cfg_free(c);
    c = NULL;

    expect_edit(-1, "client_keys:\n  - {name: a1}",
                ":28: client_keys[0]: client key \"a1\" needs exactly one of sha256",
                "a client key without a secret source");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", secret_env: T_CLIENT_B}",
                ":28: client_keys[0]: client key \"a1\" needs exactly one of sha256 (64 hex "
                "digits of the key's SHA-256, e.g. from `printf %s KEY | sha256sum`) or "
                "secret_env (found both)",
                "sha256 and secret_env together");
    rc = load_edit(&c, -1, "client_keys:\n  - name: a1\n    sha256: " SHA_A "0", 0);
    expect_err(rc,
               ":29: client_keys[0].sha256: client key \"a1\": must be exactly 64 hex digits (the "
               "SHA-256 of the key; got 65 characters)",
               "a sha256 of the wrong length: path and line");
    T_OK(strstr(err, "5bef590c") == NULL, "  ... the digest is not echoed");
    expect_edit(-1,
                "client_keys:\n  - {name: a1, sha256: "
                "5bef590c9b702157b92db28d965b0344addf6549efbdf61dbc9483ce7840608g}",
                "client_keys[0].sha256: client key \"a1\": must be exactly 64 hex digits",
                "a sha256 with a non-hex digit");
    unsetenv("T_CLIENT_UNSET");
    expect_edit(-1, "client_keys:\n  - {name: a1, secret_env: T_CLIENT_UNSET}",
                ":28: client_keys[0].secret_env: client key \"a1\": environment variable "
                "T_CLIENT_UNSET is not set",
                "an unset secret_env is named");
    setenv("T_CLIENT_BAD", "sk-with space", 1);
    rc = load_edit(&c, -1, "client_keys:\n  - {name: a1, secret_env: T_CLIENT_BAD}", 0);
    expect_err(rc, "the key in environment variable T_CLIENT_BAD contains whitespace",
               "a client key with a space is refused");
    T_OK(strstr(err, "sk-with") == NULL, "  ... and its value is not shown");
    expect_edit(-1, "client_keys:\n  - {name: a1, secret_env: 1BAD}",
                "client_keys[0].secret_env: client key \"a1\": must be an environment variable",
                "secret_env must be a variable name");
    expect_edit(-1, "client_keys:\n  - {name: \"a 1\", sha256: " SHA_A "}",
                ":28: client_keys[0].name: may contain only letters, digits",
                "client key name characters");
    expect_edit(
        -1,
        "client_keys:\n  - {name: "
        "a123456789012345678901234567890123456789012345678901234567890123, sha256: " SHA_A "}",
        "client_keys[0].name: must be at most 63 characters", "client key name fits the store");
    expect_edit(-1,
                "client_keys:\n  - {name: a1, sha256: " SHA_A "}\n"
                "  - {name: a1, secret_env: T_CLIENT_B}",
                ":29: client_keys[1].name: client key name \"a1\" is already used by "
                "client_keys[0] (line 28)",
                "client key names are unique");
    setenv("T_CLIENT_A", "sk-app-example-not-a-real-key", 1);
    expect_edit(-1,
                "client_keys:\n  - {name: a1, sha256: " SHA_A "}\n"
                "  - {name: a2, secret_env: T_CLIENT_A}",
                ":29: client_keys[1]: client key \"a2\" has the same key as client_keys[0]",
                "two clients with one key are refused");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", models: [m1, zzz]}",
                ":28: client_keys[0].models[1]: unknown model \"zzz\"",
                "a client's model must exist");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", models: [m1, m1]}",
                "client_keys[0].models[1]: \"m1\" is already listed as models[0]",
                "a model listed twice");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", rpm: ten}",
                ":28: client_keys[0].rpm: must be a non-negative integer, 0 = unlimited (got "
                "\"ten\")",
                "client rpm must be an integer");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", cost_per_day_usd: -1}",
                ":28: client_keys[0].cost_per_day_usd: must be a number >= 0 (got \"-1\")",
                "negative cost budget refused");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", cost_per_month_usd: 1e13}",
                "client_keys[0].cost_per_month_usd: must be at most 1e12 USD",
                "absurd cost budget refused");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A ", tpm: 5}",
                ":28: client_keys[0].tpm: unknown key (allowed: name, sha256, secret_env, models, "
                "rpm, rpd, tokens_per_day, tokens_per_month, cost_per_day_usd, "
                "cost_per_month_usd)",
                "unknown key in a client key lists the allowed ones");
    expect_edit(-1, "client_keys:\n  - {name: a1, sha256: " SHA_A "}\nallow_unauthenticated: true",
                ":29: allow_unauthenticated: must not be true when client_keys are configured",
                "client keys and allow_unauthenticated together are refused");
    expect_edit(-1, "allow_unauthenticated: maybe",
                ":27: allow_unauthenticated: must be true or false (got \"maybe\")",
                "allow_unauthenticated is a strict boolean");

    /* llmgatectl reads no secret and needs no client keys */
    {
        static const char yaml[] = "listen: [\"127.0.0.1:8080\"]\n"
                                   "providers:\n"
                                   "  - {name: p1, base_url: \"http://127.0.0.1:9\", keys: "
                                   "[{name: k1, secret_env: T_UNSET_KEY_9}]}\n"
                                   "models:\n"
                                   "  - {name: m1, deployments: [{provider: p1, model: m}]}\n";
        static const char yaml2[] = "listen: [\"127.0.0.1:8080\"]\n"
                                    "providers:\n"
                                    "  - {name: p1, base_url: \"http://127.0.0.1:9\", keys: "
                                    "[{name: k1, secret_env: T_UNSET_KEY_9}]}\n"
                                    "models:\n"
                                    "  - {name: m1, deployments: [{provider: p1, model: m}]}\n"
                                    "client_keys:\n"
                                    "  - {name: a1, secret_env: T_CLIENT_UNSET}\n";
        unsetenv("T_UNSET_KEY_9");
        rc = cfg_load_string_ex(yaml, sizeof(yaml) - 1, "t.yaml", CFG_LOAD_NO_SECRETS, &c, err,
                                sizeof(err));
        T_EQ_INT(rc, 0, "no-secrets load does not require client keys");
        cfg_free(c);
        c = NULL;
        rc = cfg_load_string_ex(yaml2, sizeof(yaml2) - 1, "t.yaml", CFG_LOAD_NO_SECRETS, &c, err,
                                sizeof(err));
        T_OK(rc == 0 && c->client_keys_count == 1 && c->client_keys[0].has_digest == 0,
             "no-secrets load leaves a secret_env client key unresolved");
        cfg_free(c);
        c = NULL;
    }
}

static void test_listen_parse(void)
{
    char host[64];
    uint16_t port = 1;

    T_OK(cfg_listen_parse("127.0.0.1:8080", host, sizeof(host), &port) == 0 &&
             strcmp(host, "127.0.0.1") == 0 && port == 8080,
         "cfg_listen_parse host:port");
    T_OK(cfg_listen_parse("[::1]:0", host, sizeof(host), &port) == 0 && strcmp(host, "::1") == 0 &&
             port == 0,
         "cfg_listen_parse [v6]:0");
    T_OK(cfg_listen_parse("localhost", host, sizeof(host), &port) == -1,
         "cfg_listen_parse refuses a missing port");
    T_OK(cfg_listen_parse("a-very-long-host-name:1", host, 4, &port) == -1,
         "cfg_listen_parse refuses a host that does not fit");
}

/* ---- observability: metrics, access_log, alerts --------------------------------------------- */

static void test_observability(void)
{
    cfg_t *c = NULL;
    int rc = load_edit(&c, 0);

    T_EQ_INT(rc, 0, "obs: the base loads");
    if (rc == 0) {
        T_OK(c->metrics.listen && strcmp(c->metrics.listen, "127.0.0.1:9464") == 0 &&
                 c->metrics.mode == CFG_METRICS_ADMIN && c->metrics.listen_default == 1,
             "obs: metrics.listen defaults to 127.0.0.1:9464 (admin listener, marked default)");
        T_OK(c->access_log.path && strcmp(c->access_log.path, "stdout") == 0 &&
                 c->access_log.mode == CFG_ACCESS_LOG_STDOUT,
             "obs: access_log.path defaults to stdout");
        T_OK(c->alerts.webhook_url == NULL && c->alerts.host == NULL &&
                 c->alerts.min_interval_ms == 10000 && c->alerts.timeout_ms == 2000 &&
                 c->alerts.include_cooling == 0,
             "obs: no webhook; alerts.min_interval_ms 10000, timeout_ms 2000, no cooling");
    }
    cfg_free(c);
    c = NULL;

    rc = load_edit(&c, -1, "metrics: {listen: main}", -1, "access_log: {path: off}", 0);
    T_OK(rc == 0 && c->metrics.mode == CFG_METRICS_MAIN && c->metrics.listen_default == 0 &&
             c->access_log.mode == CFG_ACCESS_LOG_OFF,
         "obs: metrics.listen main, access_log.path off");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "metrics:\n  listen: \"0.0.0.0:0\"", -1,
                   "access_log: {path: ./access.log}", 0);
    T_OK(rc == 0 && c->metrics.mode == CFG_METRICS_ADMIN && c->metrics.listen_default == 0 &&
             strcmp(c->metrics.listen, "0.0.0.0:0") == 0 &&
             c->access_log.mode == CFG_ACCESS_LOG_FILE &&
             strcmp(c->access_log.path, "./access.log") == 0,
         "obs: explicit admin address, access log file in an existing directory");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "metrics: {listen: \"off\"}", 0);
    T_OK(rc == 0 && c->metrics.mode == CFG_METRICS_OFF, "obs: metrics.listen off");
    cfg_free(c);
    c = NULL;

    rc = load_edit(&c, -1,
                   "alerts: {webhook_url: \"http://127.0.0.1:9000/hooks/a/?token=TOPSECRET\", "
                   "min_interval_ms: 0, timeout_ms: 500, include_cooling: true}",
                   0);
    T_EQ_INT(rc, 0, "obs: alerts with a webhook load");
    if (rc == 0) {
        T_OK(strcmp(c->alerts.host, "127.0.0.1") == 0 && c->alerts.port == 9000 &&
                 strcmp(c->alerts.host_header, "127.0.0.1:9000") == 0 &&
                 strcmp(c->alerts.path, "/hooks/a/?token=TOPSECRET") == 0,
             "obs: webhook URL parsed, path and query kept as written");
        T_OK(c->alerts.min_interval_ms == 0 && c->alerts.timeout_ms == 500 &&
                 c->alerts.include_cooling == 1,
             "obs: alerts values as written (min_interval_ms 0 = no rate limit)");
    } else {
        show_err();
    }
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "alerts: {webhook_url: \"http://hooks.example.com\"}", 0);
    T_OK(rc == 0 && c->alerts.port == 80 && strcmp(c->alerts.path, "/") == 0 &&
             strcmp(c->alerts.host_header, "hooks.example.com") == 0,
         "obs: webhook without port or path: 80 and /");
    cfg_free(c);
    c = NULL;

    rc = load_edit(&c, -1, "alerts: {webhook_url: \"https://hooks.example.com/x?k=TOPSECRET\"}", 0);
    expect_err(rc, ":27: alerts.webhook_url: https:// is not supported", "obs: https refused");
    T_OK(!strstr(err, "TOPSECRET") && !strstr(err, "hooks.example.com"),
         "obs: the webhook URL is never shown in a message");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "alerts: {webhook_url: \"http://us:pw@h.example.com/TOPSECRET\"}", 0);
    expect_err(rc, ":27: alerts.webhook_url: must not contain user:password@",
               "obs: credentials in the webhook URL refused");
    T_OK(!strstr(err, "TOPSECRET"), "obs: ... without showing the URL");
    cfg_free(c);
    c = NULL;
    expect_edit(-1, "alerts: {webhook_url: \"ftp://x/TOPSECRET\"}",
                ":27: alerts.webhook_url: must start with http://", "obs: other schemes refused");
    expect_edit(-1, "alerts: {timeout_ms: 0}",
                ":27: alerts.timeout_ms: must be an integer from 1 to 600000 (got \"0\")",
                "obs: alerts.timeout_ms 0 refused");
    expect_edit(-1, "alerts: {include_cooling: maybe}",
                ":27: alerts.include_cooling: must be true or false", "obs: boolean checked");
    expect_edit(-1, "metrics: {listen: localhost}",
                ":27: metrics.listen: needs a port (host:port) (got \"localhost\"; allowed: "
                "host:port, main, off)",
                "obs: metrics.listen without a port refused");
    expect_edit(-1, "metrics: {listen: \"127.0.0.1:8080\"}",
                ":27: metrics.listen: \"127.0.0.1:8080\" is also listen[0] (write main",
                "obs: metrics.listen on a main listen address refused");
    expect_edit(-1, "metrics: {path: /m}",
                ":27: metrics.path: unknown key (allowed: listen, admin_token_sha256)",
                "obs: unknown key under metrics");
    expect_edit(-1, "metrics: {admin_token_sha256: my-secret-token}",
                ":27: metrics.admin_token_sha256: must be 64 hex digits: the SHA-256 of the "
                "admin token",
                "obs: an admin token that is not a SHA-256 refused");
    {
        cfg_t *c = NULL;
        int rc = load_edit(&c, -1,
                           "metrics: {admin_token_sha256: "
                           "\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"}",
                           0);
        T_OK(rc == 0 && c && c->metrics.has_admin_token &&
                 c->metrics.admin_token_digest[0] == 0x9f &&
                 c->metrics.admin_token_digest[31] == 0x08,
             "obs: an admin token's SHA-256 (upper case hex) resolved");
        cfg_free(c);
    }
    expect_edit(-1, "access_log: {path: /nonexistent-llmgate-dir/a.log}",
                ":27: access_log.path: cannot create files in \"/nonexistent-llmgate-dir\"",
                "obs: access log in a missing directory refused");
    expect_edit(-1, "access_log: {path: stderr}",
                ":27: access_log.path: must be stdout, off or a file path (got \"stderr\"",
                "obs: access_log.path stderr refused");
    expect_edit(-1, "access_log: {path: /tmp/}", ":27: access_log.path: names a directory",
                "obs: access_log.path naming a directory refused");
}

/* ---- client-facing TLS ------------------------------------------------------------------- */

static void test_client_tls(void)
{
    char pem[] = "/tmp/llmgate-config-test-XXXXXX", line[600];
    int fd = mkstemp(pem);
    cfg_t *c = NULL;
    int rc;

    T_OK(fd >= 0, "tls: a readable file for the cases");
    if (fd < 0)
        return;
    close(fd);
    rc = load_edit(&c, 0);
    T_OK(rc == 0 && !c->tls.cert_file && !c->tls.key_file, "tls: absent = plain HTTP");
    cfg_free(c);
    c = NULL;
    snprintf(line, sizeof(line), "tls: {cert_file: \"%s\", key_file: \"%s\"}", pem, pem);
    rc = load_edit(&c, -1, line, 0);
    T_OK(rc == 0 && strcmp(c->tls.cert_file, pem) == 0 && strcmp(c->tls.key_file, pem) == 0,
         "tls: cert_file and key_file as written");
    if (rc != 0)
        show_err();
    cfg_free(c);
    c = NULL;
    snprintf(line, sizeof(line), "tls: {cert_file: \"%s\"}", pem);
    expect_edit(-1, line, ":27: tls.key_file: is required but missing",
                "tls: key_file required with cert_file");
    expect_edit(-1, "tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}",
                ":27: tls.cert_file: cannot read \"/nonexistent/c.pem\"",
                "tls: unreadable cert_file refused with its path");
    rc = load_edit(&c, -1, "tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}", 0);
    expect_err(rc, ":27: tls.key_file: cannot read \"/nonexistent/k.pem\"",
               "tls: unreadable key_file refused too");
    cfg_free(c);
    c = NULL;
    snprintf(line, sizeof(line), "tls: {cert_file: \"\", key_file: \"%s\"}", pem);
    expect_edit(-1, line, ":27: tls.cert_file: must not be empty", "tls: empty cert_file refused");
    snprintf(line, sizeof(line), "tls: {cert_file: \"%s\", key_file: \"%s\", ca_file: x}", pem,
             pem);
    expect_edit(-1, line, ":27: tls.ca_file: unknown key (allowed: cert_file, key_file)",
                "tls: unknown key under tls");
    snprintf(line, sizeof(line), "tls: {cert_file: \"%s\", key_file: /nonexistent/k.pem}", pem);
    {
        const char *yaml_fmt = "listen: [\"127.0.0.1:8080\"]\nallow_unauthenticated: true\n"
                               "providers:\n  - name: p\n    base_url: http://h\n    keys:\n"
                               "      - {name: k, secret_env: T_UNSET_KEY}\nmodels:\n"
                               "  - name: m\n    deployments: [{provider: p, model: m}]\n%s\n";
        char yaml[1200];
        int n = snprintf(yaml, sizeof(yaml), yaml_fmt, line);
        rc = cfg_load_string_ex(yaml, (size_t)n, "t.yaml", CFG_LOAD_NO_SECRETS, &c, err,
                                sizeof(err));
        T_OK(rc == 0, "tls: the key file is not read without secrets (llmgatectl)");
        if (rc != 0)
            show_err();
        cfg_free(c);
    }
    unlink(pem);
}

/* ---- the shipped configurations ----------------------------------------------------------- */

/* Whether text has "key:" as a YAML key (or a commented one): not preceded by a letter,
 * digit or '_'. */
static int names_key(const char *text, const char *key)
{
    size_t n = strlen(key);

    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
        char before = p == text ? ' ' : p[-1];
        if (p[n] == ':' && !(before == '_' || (before >= 'a' && before <= 'z') ||
                             (before >= 'A' && before <= 'Z') || (before >= '0' && before <= '9')))
            return 1;
    }
    return 0;
}

/* Every key of mapping schema v (and of the mappings under it) is named in text. */
static void expect_keys_named(const cyaml_schema_value_t *v, const char *path, const char *text)
{
    for (const cyaml_schema_field_t *f = v->mapping.fields; f->key; f++) {
        const cyaml_schema_value_t *sub = &f->value;
        char p[256];

        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", f->key);
        if (!names_key(text, f->key))
            T_OK(0, "example: %s is shown in llmgate.example.yaml", p);
        if (sub->type == CYAML_SEQUENCE)
            sub = sub->sequence.entry;
        if (sub->type == CYAML_MAPPING)
            expect_keys_named(sub, p, text);
    }
}

static void test_cluster(void)
{
    cfg_t *c = NULL;
    int rc = load_edit(&c, 0);
    T_OK(rc == 0 && !c->cluster.enabled, "cluster: absent = one host");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "cluster: {redis: \"redis://10.0.0.5:6390\", expected_nodes: 3}", 0);
    T_OK(rc == 0 && c->cluster.enabled && !strcmp(c->cluster.host, "10.0.0.5") &&
             c->cluster.port == 6390 && !c->cluster.unix_path && c->cluster.lease_ms == 5000 &&
             c->cluster.timeout_ms == 1000 && !strcmp(c->cluster.prefix, "llmgate") &&
             c->cluster.node_id && c->cluster.node_id[0] && c->cluster.safe_share > 0.333 &&
             c->cluster.safe_share < 0.334 && !c->cluster.password,
         "cluster: address parsed, defaults (prefix, lease, timeout, node id, share 1/3)");
    if (rc != 0)
        show_err();
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1,
                   "cluster: {redis: \"unix:/run/redis.sock\", expected_nodes: 2, node_id: gw-1, "
                   "safe_share: 0.25}",
                   0);
    T_OK(rc == 0 && !strcmp(c->cluster.unix_path, "/run/redis.sock") && !c->cluster.host &&
             !strcmp(c->cluster.node_id, "gw-1") && c->cluster.safe_share == 0.25,
         "cluster: a unix socket, a node id, a share");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "cluster: {redis: \"[::1]:7000\", expected_nodes: 1}", 0);
    T_OK(rc == 0 && !strcmp(c->cluster.host, "::1") && c->cluster.port == 7000,
         "cluster: a bracketed IPv6 address");
    cfg_free(c);
    expect_edit(-1, "cluster: {redis: \"127.0.0.1:6379\"}",
                ":27: cluster.expected_nodes: is required but missing",
                "cluster: expected_nodes is required");
    expect_edit(-1, "cluster: {redis: \"127.0.0.1:99999\", expected_nodes: 2}",
                ":27: cluster.redis: the port must be a number 1..65535",
                "cluster: a bad port named");
    expect_edit(-1, "cluster: {redis: \"rediss://h:6379\", expected_nodes: 2}",
                ":27: cluster.redis: rediss:// (TLS) is not supported", "cluster: rediss refused");
    expect_edit(-1, "cluster: {redis: \"redis://u:pw@h:6379\", expected_nodes: 2}",
                "cluster.redis: must not carry credentials", "cluster: credentials in the URL");
    expect_edit(-1, "cluster: {redis: \"h:1\", expected_nodes: 2, tls: true}",
                ":27: cluster.tls: TLS to Redis is not supported", "cluster: tls refused");
    expect_edit(-1, "cluster: {redis: \"h:1\", expected_nodes: 2, node_id: \"a b\"}",
                ":27: cluster.node_id: must be 1..63 of", "cluster: a node id with a space");
    expect_edit(-1, "cluster: {redis: \"h:1\", expected_nodes: 2, safe_share: 1.5}",
                ":27: cluster.safe_share: must be a share of a limit above 0 and at most 1",
                "cluster: a share above 1");
    expect_edit(-1, "cluster: {redis: \"h:1\", expected_nodes: 2, username: u}",
                "cluster.username: needs password_env", "cluster: a user without a password");
    unsetenv("T_REDIS_PW");
    expect_edit(-1, "cluster: {redis: \"h:1\", expected_nodes: 2, password_env: T_REDIS_PW}",
                ":27: cluster.password_env: environment variable T_REDIS_PW is not set",
                "cluster: the password variable must be set");
    setenv("T_REDIS_PW", "s3cret-redis-pw", 1);
    c = NULL;
    rc = load_edit(&c, -1,
                   "cluster: {redis: \"h:1\", expected_nodes: 2, password_env: T_REDIS_PW, "
                   "lease_ms: 50}",
                   0);
    expect_err(rc, "cluster.lease_ms", "cluster: lease_ms below 100 refused");
    T_OK(!strstr(err, "s3cret-redis-pw"), "cluster: the password is in no message");
    cfg_free(c);
    c = NULL;
    rc = load_edit(&c, -1, "cluster: {redis: \"h:1\", expected_nodes: 2, password_env: T_REDIS_PW}",
                   0);
    T_OK(rc == 0 && c->cluster.password && !strcmp(c->cluster.password, "s3cret-redis-pw"),
         "cluster: the password from its variable");
    cfg_free(c);
    unsetenv("T_REDIS_PW");
}

static void test_example_names_every_key(const char *example)
{
    char text[65536];
    FILE *f = example ? fopen(example, "r") : NULL;
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

    if (f)
        fclose(f);
    text[n] = '\0';
    T_OK(n > 0 && n < sizeof(text) - 1, "example: read whole (%zu bytes)", n);
    expect_keys_named(&cfg_schema, "", text);
    T_OK(1, "example: every key of the schema is shown (a missing one fails above)");
}

static char dir[] = "/tmp/llmgate-config-creds-XXXXXX"; /* test_shipped's credentials */

static void test_shipped(void)
{
    const char *example = getenv("EXAMPLE_CONFIG"), *demo = getenv("DEMO_CONFIG");
    const cfg_model_t *m;
    cfg_t *c = NULL;
    int rc;

    setenv("DEEPSEEK_KEY_1", "sk-ds-1", 1);
    setenv("DEEPSEEK_KEY_2", "sk-ds-2", 1);
    setenv("OPENAI_KEY_1", "sk-oai-1", 1);
    setenv("OPENAI_KEY_2", "sk-oai-2", 1);
    setenv("RELAY_KEY_1", "relay-1", 1);
    setenv("RELAY_KEY_2", "relay-2", 1);
    {
        /* the example's file secrets, as systemd's LoadCredential= hands them over */
        char f[96];
        FILE *fp;
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
        snprintf(f, sizeof(f), "%s/anthropic-1", dir);
        if ((fp = fopen(f, "w")) != NULL) {
            fputs("sk-ant-1\n", fp);
            fclose(fp);
        }
        snprintf(f, sizeof(f), "%s/gemini-1", dir);
        if ((fp = fopen(f, "w")) != NULL) {
            fputs("gm-key-1\n", fp);
            fclose(fp);
        }
        setenv("CREDENTIALS_DIRECTORY", dir, 1);
    }
    setenv("LLMGATE_CLIENT_BATCH", "sk-client-batch", 1);
    rc = example ? cfg_load(example, &c, err, sizeof(err)) : -1;
    T_EQ_INT(rc, 0, "llmgate.example.yaml loads with its variables set");
    if (rc == 0) {
        const cfg_provider_t *ant = &c->providers[3];
        const cfg_provider_t *gem = &c->providers[4];
        T_EQ_INT(c->providers_count, 5, "example: five providers");
        T_OK(gem->api == CFG_API_GEMINI && gem->auth == CFG_AUTH_HEADER &&
                 strcmp(gem->auth_header, "x-goog-api-key") == 0 &&
                 strcmp(gem->base_path, "/v1beta") == 0,
             "example: the gemini provider (x-goog-api-key, /v1beta)");
        m = cfg_model_find(c, "gpt-4.1", 7);
        T_OK(m && m->fallbacks_count == 2 &&
                 m->fallback_refs[0]->deployments[0].provider_ref->api == CFG_API_ANTHROPIC &&
                 m->fallback_refs[1]->deployments[0].provider_ref->api == CFG_API_GEMINI,
             "example: gpt-4.1 falls back across formats, to Anthropic then Gemini");
        T_OK(strcmp(c->providers[2].base_path, "/v1") == 0 && c->providers[2].port == 8443 &&
                 strcmp(c->providers[2].host_header, "relay.example.com:8443") == 0,
             "example: relay URL parsed");
        T_OK(ant->api == CFG_API_ANTHROPIC && ant->auth == CFG_AUTH_X_API_KEY &&
                 strcmp(ant->anthropic_version, "2023-06-01") == 0 &&
                 strcmp(ant->base_path, "/v1") == 0,
             "example: the anthropic provider (x-api-key, 2023-06-01)");
        T_OK(strcmp(c->providers[1].keys[0].group, "org-example") == 0 &&
                 strcmp(c->providers[1].keys[1].group, "org-example") == 0 &&
                 c->providers[0].keys[0].group == NULL,
             "example: the openai keys form the group org-example");
        T_OK(c->responses.affinity_ttl_s == 2592000 && c->responses.affinity_max == 100000,
             "example: responses section");
        m = cfg_model_find(c, "r1", 2);
        T_OK(m && strcmp(m->name, "deepseek-reasoner") == 0, "example: alias r1 resolves");
    } else {
        show_err();
    }
    cfg_free(c);
    c = NULL;
    unsetenv("DEEPSEEK_KEY_2");
    rc = example ? cfg_load(example, &c, err, sizeof(err)) : 0;
    expect_err(rc, "environment variable DEEPSEEK_KEY_2 is not set",
               "example: a missing variable is named");
    test_example_names_every_key(example);
    {
        char f[96];
        snprintf(f, sizeof(f), "%s/anthropic-1", dir);
        unlink(f);
        snprintf(f, sizeof(f), "%s/gemini-1", dir);
        unlink(f);
        rmdir(dir);
        unsetenv("CREDENTIALS_DIRECTORY");
    }

    setenv("DEMO_KEY_A1", "demo-a1", 1);
    setenv("DEMO_KEY_A2", "demo-a2", 1);
    setenv("DEMO_KEY_B1", "demo-b1", 1);
    rc = demo ? cfg_load(demo, &c, err, sizeof(err)) : -1;
    T_EQ_INT(rc, 0, "demo.yaml loads with its variables set");
    if (rc == 0) {
        T_OK(c->listen_count == 1 && strcmp(c->listen[0], "127.0.0.1:8080") == 0 &&
                 c->workers == 2 && strcmp(c->state_dir, "./.demo/state") == 0,
             "demo: listen, workers, state_dir");
        T_OK(c->providers_count == 2 && strcmp(c->providers[0].name, "mock-a") == 0 &&
                 strcmp(c->providers[1].name, "mock-b") == 0 &&
                 strcmp(c->providers[0].host_header, "127.0.0.1:18081") == 0 &&
                 strcmp(c->providers[1].base_path, "/v1") == 0,
             "demo: two providers on the mock upstream");
        m = cfg_model_find(c, "mini", 4);
        T_OK(m && strcmp(m->name, "gpt-4o-mini") == 0 && m->fallbacks_count == 1 &&
                 strcmp(m->fallback_refs[0]->name, "deepseek-chat") == 0 &&
                 m->input_price_per_m > 0,
             "demo: mini -> gpt-4o-mini, falls back to deepseek-chat, priced");
    } else {
        show_err();
    }
    cfg_free(c);
}

int main(void)
{
    setenv("T_KEY_1", "sk-test-key-1", 1);
    setenv("T_KEY_2", "sk-test-key-2", 1);
    test_valid_base();
    test_explicit_values();
    test_cyaml_errors();
    test_scalar_rules();
    test_semantic_rules();
    test_provider_api();
    test_key_groups();
    test_responses();
    test_many_problems();
    test_empty_and_files();
    test_secrets();
    test_no_secrets();
    test_client_keys();
    test_listen_parse();
    test_observability();
    test_client_tls();
    test_shipped();
    test_cluster();
    return t_done();
}
