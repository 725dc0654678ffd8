/* schema.c - the YAML schema of cfg_t, the numeric fields' defaults and ranges, and the
 * pass that applies both.
 *
 * libcyaml decides the shape (which keys exist, lists vs mappings, required keys), but it
 * is lenient about scalars: "1.5" or "0x10" load as integers, anything but false/no/0 loads
 * as a true boolean, "nan" loads as a price. The walk below looks at each scalar as it
 * was written (from the libyaml tree) and holds it to the rule in one table, which also
 * gives the default of every numeric field that is absent.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"

#define UNLIMITED_U32 CYAML_UNLIMITED

/* ---- schema ------------------------------------------------------------------------- */

#define F_OPT  CYAML_FLAG_OPTIONAL
#define F_PTR  CYAML_FLAG_POINTER
#define F_OPTP (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_strval_t auth_strings[] = {
    {"bearer", CFG_AUTH_BEARER},
    {"x-api-key", CFG_AUTH_X_API_KEY},
    {"header", CFG_AUTH_HEADER},
};

static const cyaml_strval_t api_strings[] = {
    {"openai", CFG_API_OPENAI},
    {"anthropic", CFG_API_ANTHROPIC},
    {"gemini", CFG_API_GEMINI},
    {"openai-chat", CFG_API_OPENAI_CHAT},
};

static const cyaml_strval_t strategy_strings[] = {
    {"round_robin", CFG_STRATEGY_ROUND_ROBIN},
    {"weighted", CFG_STRATEGY_WEIGHTED},
    {"latency", CFG_STRATEGY_LATENCY},
    {"least_inflight", CFG_STRATEGY_LEAST_INFLIGHT},
};

static const cyaml_schema_field_t header_fields[] = {
    CYAML_FIELD_STRING_PTR("name", F_PTR, cfg_header_t, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("value", F_PTR, cfg_header_t, value, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t header_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_header_t, header_fields),
};

static const cyaml_schema_field_t key_fields[] = {
    CYAML_FIELD_STRING_PTR("name", F_PTR, cfg_key_t, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret_env", F_OPTP, cfg_key_t, secret_env, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret_file", F_OPTP, cfg_key_t, secret_file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret", F_OPTP, cfg_key_t, secret, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("group", F_OPTP, cfg_key_t, group, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("rpm", F_OPT, cfg_key_t, rpm),
    CYAML_FIELD_UINT("rpd", F_OPT, cfg_key_t, rpd),
    CYAML_FIELD_UINT("tpm", F_OPT, cfg_key_t, tpm),
    CYAML_FIELD_UINT("max_inflight", F_OPT, cfg_key_t, max_inflight),
    CYAML_FIELD_UINT("weight", F_OPT, cfg_key_t, weight),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t key_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_key_t, key_fields),
};

static const cyaml_schema_field_t provider_fields[] = {
    CYAML_FIELD_STRING_PTR("name", F_PTR, cfg_provider_t, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("base_url", F_PTR, cfg_provider_t, base_url, 0, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("api", F_OPT | CYAML_FLAG_STRICT, cfg_provider_t, api, api_strings,
                     CYAML_ARRAY_LEN(api_strings)),
    CYAML_FIELD_STRING_PTR("anthropic_version", F_OPTP, cfg_provider_t, anthropic_version, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("auth", F_OPT | CYAML_FLAG_STRICT, cfg_provider_t, auth, auth_strings,
                     CYAML_ARRAY_LEN(auth_strings)),
    CYAML_FIELD_STRING_PTR("auth_header", F_OPTP, cfg_provider_t, auth_header, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("ca_file", F_OPTP, cfg_provider_t, ca_file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("connect_timeout_ms", F_OPT, cfg_provider_t, connect_timeout_ms),
    CYAML_FIELD_UINT("first_byte_timeout_ms", F_OPT, cfg_provider_t, first_byte_timeout_ms),
    CYAML_FIELD_UINT("idle_timeout_ms", F_OPT, cfg_provider_t, idle_timeout_ms),
    CYAML_FIELD_UINT("pool_max_idle", F_OPT, cfg_provider_t, pool_max_idle),
    CYAML_FIELD_UINT("first_byte_timeout_per_1k_tokens_ms", F_OPT, cfg_provider_t,
                     first_byte_timeout_per_1k_tokens_ms),
    CYAML_FIELD_UINT("first_byte_timeout_max_ms", F_OPT, cfg_provider_t, first_byte_timeout_max_ms),
    CYAML_FIELD_SEQUENCE("headers", F_OPTP, cfg_provider_t, headers, &header_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("keys", F_OPTP, cfg_provider_t, keys, &key_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t provider_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_provider_t, provider_fields),
};

static const cyaml_schema_field_t deployment_fields[] = {
    CYAML_FIELD_STRING_PTR("provider", F_PTR, cfg_deployment_t, provider, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("model", F_PTR, cfg_deployment_t, model, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("weight", F_OPT, cfg_deployment_t, weight),
    CYAML_FIELD_UINT("priority", F_OPT, cfg_deployment_t, priority),
    CYAML_FIELD_UINT("max_output_tokens", F_OPT, cfg_deployment_t, max_output_tokens),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t deployment_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_deployment_t, deployment_fields),
};

static const cyaml_schema_field_t model_fields[] = {
    CYAML_FIELD_STRING_PTR("name", F_PTR, cfg_model_t, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("aliases", F_OPTP, cfg_model_t, aliases, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("deployments", F_OPTP, cfg_model_t, deployments, &deployment_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("fallbacks", F_OPTP, cfg_model_t, fallbacks, &string_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT("input_price_per_m", F_OPT, cfg_model_t, input_price_per_m),
    CYAML_FIELD_FLOAT("output_price_per_m", F_OPT, cfg_model_t, output_price_per_m),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t model_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_model_t, model_fields),
};

static const cyaml_schema_field_t client_fields[] = {
    CYAML_FIELD_STRING_PTR("name", F_PTR, cfg_client_t, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("sha256", F_OPTP, cfg_client_t, sha256, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret_env", F_OPTP, cfg_client_t, secret_env, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("models", F_OPTP, cfg_client_t, models, &string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("rpm", F_OPT, cfg_client_t, rpm),
    CYAML_FIELD_UINT("rpd", F_OPT, cfg_client_t, rpd),
    CYAML_FIELD_UINT("tokens_per_day", F_OPT, cfg_client_t, tokens_per_day),
    CYAML_FIELD_UINT("tokens_per_month", F_OPT, cfg_client_t, tokens_per_month),
    CYAML_FIELD_FLOAT("cost_per_day_usd", F_OPT, cfg_client_t, cost_per_day_usd),
    CYAML_FIELD_FLOAT("cost_per_month_usd", F_OPT, cfg_client_t, cost_per_month_usd),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t client_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_client_t, client_fields),
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_UINT("max_header_bytes", F_OPT, cfg_limits_t, max_header_bytes),
    CYAML_FIELD_UINT("max_headers", F_OPT, cfg_limits_t, max_headers),
    CYAML_FIELD_UINT("max_body_bytes", F_OPT, cfg_limits_t, max_body_bytes),
    CYAML_FIELD_UINT("max_url_bytes", F_OPT, cfg_limits_t, max_url_bytes),
    CYAML_FIELD_UINT("header_timeout_ms", F_OPT, cfg_limits_t, header_timeout_ms),
    CYAML_FIELD_UINT("body_timeout_ms", F_OPT, cfg_limits_t, body_timeout_ms),
    CYAML_FIELD_UINT("idle_timeout_ms", F_OPT, cfg_limits_t, idle_timeout_ms),
    CYAML_FIELD_UINT("send_timeout_ms", F_OPT, cfg_limits_t, send_timeout_ms),
    CYAML_FIELD_UINT("max_connections", F_OPT, cfg_limits_t, max_connections),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t policy_fields[] = {
    CYAML_FIELD_ENUM("strategy", F_OPT | CYAML_FLAG_STRICT, cfg_policy_t, strategy,
                     strategy_strings, CYAML_ARRAY_LEN(strategy_strings)),
    CYAML_FIELD_UINT("max_retries", F_OPT, cfg_policy_t, max_retries),
    CYAML_FIELD_UINT("request_timeout_ms", F_OPT, cfg_policy_t, request_timeout_ms),
    CYAML_FIELD_UINT("cooldown_ms", F_OPT, cfg_policy_t, cooldown_ms),
    CYAML_FIELD_UINT("failure_threshold", F_OPT, cfg_policy_t, failure_threshold),
    CYAML_FIELD_UINT("failure_cooldown_ms", F_OPT, cfg_policy_t, failure_cooldown_ms),
    CYAML_FIELD_UINT("cooldown_max_ms", F_OPT, cfg_policy_t, cooldown_max_ms),
    CYAML_FIELD_UINT("half_open_probes", F_OPT, cfg_policy_t, half_open_probes),
    CYAML_FIELD_UINT("recovery_successes", F_OPT, cfg_policy_t, recovery_successes),
    CYAML_FIELD_UINT("backoff_base_ms", F_OPT, cfg_policy_t, backoff_base_ms),
    CYAML_FIELD_UINT("backoff_max_ms", F_OPT, cfg_policy_t, backoff_max_ms),
    CYAML_FIELD_UINT("wait_for_capacity_ms", F_OPT, cfg_policy_t, wait_for_capacity_ms),
    CYAML_FIELD_UINT("depleted_ms", F_OPT, cfg_policy_t, depleted_ms),
    CYAML_FIELD_UINT("model_unavailable_ms", F_OPT, cfg_policy_t, model_unavailable_ms),
    CYAML_FIELD_UINT("circuit_min_requests", F_OPT, cfg_policy_t, circuit_min_requests),
    CYAML_FIELD_UINT("circuit_error_percent", F_OPT, cfg_policy_t, circuit_error_percent),
    CYAML_FIELD_UINT("circuit_open_ms", F_OPT, cfg_policy_t, circuit_open_ms),
    CYAML_FIELD_UINT("probe_interval_ms", F_OPT, cfg_policy_t, probe_interval_ms),
    CYAML_FIELD_END,
};

/* Requests translated between formats (config.h, cfg_translation_t). */
static const cyaml_schema_field_t translation_fields[] = {
    CYAML_FIELD_UINT("default_max_tokens", F_OPT, cfg_translation_t, default_max_tokens),
    CYAML_FIELD_END,
};

/* Which key created a Responses API object (config.h, cfg_responses_t). */
static const cyaml_schema_field_t responses_fields[] = {
    CYAML_FIELD_UINT("affinity_ttl_s", F_OPT, cfg_responses_t, affinity_ttl_s),
    CYAML_FIELD_UINT("affinity_max", F_OPT, cfg_responses_t, affinity_max),
    CYAML_FIELD_END,
};

/* Observability (server/obs/obs.h): where /metrics is served, the access log, the alert webhook.
 * Their strings are given meaning in validate.c. */
static const cyaml_schema_field_t metrics_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", F_OPTP, cfg_metrics_t, listen, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("admin_token_sha256", F_OPTP, cfg_metrics_t, admin_token_sha256, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t access_log_fields[] = {
    CYAML_FIELD_STRING_PTR("path", F_OPTP, cfg_access_log_t, path, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t alerts_fields[] = {
    CYAML_FIELD_STRING_PTR("webhook_url", F_OPTP, cfg_alerts_t, webhook_url, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("min_interval_ms", F_OPT, cfg_alerts_t, min_interval_ms),
    CYAML_FIELD_UINT("timeout_ms", F_OPT, cfg_alerts_t, timeout_ms),
    CYAML_FIELD_BOOL("include_cooling", F_OPT, cfg_alerts_t, include_cooling),
    CYAML_FIELD_END,
};

/* Client-facing TLS: both files are required once the mapping is there. */
static const cyaml_schema_field_t tls_fields[] = {
    CYAML_FIELD_STRING_PTR("cert_file", F_PTR, cfg_tls_t, cert_file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("key_file", F_PTR, cfg_tls_t, key_file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

/* Several hosts: redis is required once the mapping is there; meaning in cluster.c. */
static const cyaml_schema_field_t cluster_fields[] = {
    CYAML_FIELD_STRING_PTR("redis", F_PTR, cfg_cluster_t, redis, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("username", F_OPTP, cfg_cluster_t, username, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("password_env", F_OPTP, cfg_cluster_t, password_env, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("node_id", F_OPTP, cfg_cluster_t, node_id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("prefix", F_OPTP, cfg_cluster_t, prefix, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("expected_nodes", CYAML_FLAG_DEFAULT, cfg_cluster_t, expected_nodes),
    CYAML_FIELD_FLOAT("safe_share", F_OPT, cfg_cluster_t, safe_share),
    CYAML_FIELD_UINT("lease_ms", F_OPT, cfg_cluster_t, lease_ms),
    CYAML_FIELD_UINT("timeout_ms", F_OPT, cfg_cluster_t, timeout_ms),
    CYAML_FIELD_BOOL("tls", F_OPT, cfg_cluster_t, tls),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t top_fields[] = {
    /* a string or a list of strings: libcyaml cannot say "either", validate.c reads it */
    CYAML_FIELD_IGNORE("listen", F_OPT),
    CYAML_FIELD_UINT("workers", F_OPT, cfg_t, workers),
    CYAML_FIELD_STRING_PTR("state_dir", F_OPTP, cfg_t, state_dir, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("shutdown_timeout_ms", F_OPT, cfg_t, shutdown_timeout_ms),
    CYAML_FIELD_BOOL("allow_inline_secrets", F_OPT, cfg_t, allow_inline_secrets),
    CYAML_FIELD_BOOL("stream_include_usage", F_OPT, cfg_t, stream_include_usage),
    CYAML_FIELD_BOOL("allow_core_dumps", F_OPT, cfg_t, allow_core_dumps),
    CYAML_FIELD_MAPPING("limits", F_OPT, cfg_t, limits, limits_fields),
    CYAML_FIELD_MAPPING("policy", F_OPT, cfg_t, policy, policy_fields),
    CYAML_FIELD_MAPPING("responses", F_OPT, cfg_t, responses, responses_fields),
    CYAML_FIELD_MAPPING("translation", F_OPT, cfg_t, translation, translation_fields),
    CYAML_FIELD_SEQUENCE("providers", F_OPTP, cfg_t, providers, &provider_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("models", F_OPTP, cfg_t, models, &model_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("client_keys", F_OPTP, cfg_t, client_keys, &client_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_BOOL("allow_unauthenticated", F_OPT, cfg_t, allow_unauthenticated),
    CYAML_FIELD_MAPPING("metrics", F_OPT, cfg_t, metrics, metrics_fields),
    CYAML_FIELD_MAPPING("access_log", F_OPT, cfg_t, access_log, access_log_fields),
    CYAML_FIELD_MAPPING("alerts", F_OPT, cfg_t, alerts, alerts_fields),
    CYAML_FIELD_MAPPING("tls", F_OPT, cfg_t, tls, tls_fields),
    CYAML_FIELD_MAPPING("cluster", F_OPT, cfg_t, cluster, cluster_fields),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t cfg_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, cfg_t, top_fields),
};

/* ---- numeric rules -------------------------------------------------------------------- */

/* Every integer field of the schema, by path without indices. Fields not listed take any
 * value of uint32_t and default to 0. */
typedef struct num_rule_s {
    const char *path;
    uint32_t min, max, def;
    const char *zero; /* what 0 means, if min is 0 */
} num_rule_t;

static const num_rule_t num_rules[] = {
    {"workers", 0, 1024, 0, "one per CPU core"},
    {"shutdown_timeout_ms", 0, UNLIMITED_U32, 10000, "stop without draining"},
    {"limits.max_header_bytes", 1, UNLIMITED_U32, 16384, NULL},
    {"limits.max_headers", 1, UNLIMITED_U32, 100, NULL},
    {"limits.max_body_bytes", 1, UNLIMITED_U32, 4u << 20, NULL},
    {"limits.max_url_bytes", 1, UNLIMITED_U32, 8192, NULL},
    {"limits.header_timeout_ms", 1, UNLIMITED_U32, 10000, NULL},
    {"limits.body_timeout_ms", 1, UNLIMITED_U32, 30000, NULL},
    {"limits.idle_timeout_ms", 1, UNLIMITED_U32, 75000, NULL},
    {"limits.send_timeout_ms", 1, UNLIMITED_U32, 60000, NULL},
    {"limits.max_connections", 0, UNLIMITED_U32, 20000, "unlimited"},
    {"policy.max_retries", 0, 100, 2, "no retries"},
    {"policy.request_timeout_ms", 1, UNLIMITED_U32, 300000, NULL},
    {"policy.cooldown_ms", 1, UNLIMITED_U32, 60000, NULL},
    {"policy.failure_threshold", 0, 1000, 3, "never cool a key for failures in a row"},
    {"policy.failure_cooldown_ms", 1, UNLIMITED_U32, 10000, NULL},
    {"policy.cooldown_max_ms", 1, UNLIMITED_U32, 300000, NULL},
    {"policy.half_open_probes", 1, 1000, 1, NULL},
    {"policy.recovery_successes", 1, 1000, 2, NULL},
    {"policy.backoff_base_ms", 0, 60000, 100, "retry at once"},
    {"policy.backoff_max_ms", 0, 600000, 2000, "retry at once"},
    {"policy.wait_for_capacity_ms", 0, 600000, 3000, "answer 429 at once"},
    {"policy.depleted_ms", 0, UNLIMITED_U32, 0, "until the next UTC midnight"},
    {"policy.model_unavailable_ms", 1, UNLIMITED_U32, 60000, NULL},
    {"policy.circuit_min_requests", 0, UNLIMITED_U32, 20, "no circuit breaker"},
    {"policy.circuit_error_percent", 1, 100, 50, NULL},
    {"policy.circuit_open_ms", 1, UNLIMITED_U32, 30000, NULL},
    {"policy.probe_interval_ms", 0, UNLIMITED_U32, 30000, "no active health probes"},
    {"responses.affinity_ttl_s", 1, UNLIMITED_U32, 2592000, NULL},
    {"responses.affinity_max", 1, 10000000, 100000, NULL},
    {"translation.default_max_tokens", 1, 1000000, 4096, NULL},
    {"providers.connect_timeout_ms", 1, UNLIMITED_U32, 5000, NULL},
    {"providers.first_byte_timeout_ms", 1, UNLIMITED_U32, 60000, NULL},
    {"providers.idle_timeout_ms", 1, UNLIMITED_U32, 30000, NULL},
    {"providers.pool_max_idle", 0, UNLIMITED_U32, 64, "unlimited"},
    {"providers.first_byte_timeout_per_1k_tokens_ms", 0, UNLIMITED_U32, 0, "a fixed timeout"},
    {"providers.first_byte_timeout_max_ms", 1, UNLIMITED_U32, 600000, NULL},
    {"providers.keys.rpm", 0, UNLIMITED_U32, 0, "unlimited"},
    {"providers.keys.rpd", 0, UNLIMITED_U32, 0, "unlimited"},
    {"providers.keys.tpm", 0, UNLIMITED_U32, 0, "unlimited"},
    {"providers.keys.max_inflight", 0, UNLIMITED_U32, 0, "unlimited"},
    {"providers.keys.weight", 1, 1000000, 1, NULL},
    {"models.deployments.weight", 1, 1000000, 1, NULL},
    {"models.deployments.priority", 1, 1000, 1, NULL},
    {"models.deployments.max_output_tokens", 0, 10000000, 0, "no cap"},
    {"client_keys.rpm", 0, UNLIMITED_U32, 0, "unlimited"},
    {"client_keys.rpd", 0, UNLIMITED_U32, 0, "unlimited"},
    {"client_keys.tokens_per_day", 0, UNLIMITED_U32, 0, "unlimited"},
    {"client_keys.tokens_per_month", 0, UNLIMITED_U32, 0, "unlimited"},
    {"alerts.min_interval_ms", 0, UNLIMITED_U32, 10000, "no rate limit"},
    {"alerts.timeout_ms", 1, 600000, 2000, NULL},
    {"cluster.expected_nodes", 1, 1000, 1, NULL},
    {"cluster.lease_ms", 100, 60000, 5000, NULL},
    {"cluster.timeout_ms", 10, 60000, 1000, NULL},
};

static const num_rule_t default_rule = {"", 0, UNLIMITED_U32, 0, NULL};

/* "providers[0].keys[12].rpm" -> "providers.keys.rpm" */
static void strip_indices(const char *path, char *buf, size_t len)
{
    size_t o = 0;

    for (const char *p = path; *p && o + 1 < len; p++) {
        if (*p == '[') {
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
            continue;
        }
        buf[o++] = *p;
    }
    buf[o] = '\0';
}

static const num_rule_t *num_rule(const char *path)
{
    char norm[CFG_PATH_MAX];

    strip_indices(path, norm, sizeof(norm));
    for (size_t i = 0; i < sizeof(num_rules) / sizeof(num_rules[0]); i++)
        if (strcmp(num_rules[i].path, norm) == 0)
            return &num_rules[i];
    return &default_rule;
}

int cfg_schema_default(const char *path, uint32_t *def)
{
    const num_rule_t *r = num_rule(path);

    *def = r->def;
    return r != &default_rule;
}

static void num_expect(const num_rule_t *r, char *buf, size_t len)
{
    if (r->max == UNLIMITED_U32)
        snprintf(buf, len, "must be a %s integer", r->min ? "positive" : "non-negative");
    else
        snprintf(buf, len, "must be an integer from %u to %u", r->min, r->max);
    if (r->min == 0 && r->zero) {
        size_t o = strlen(buf);
        snprintf(buf + o, len - o, ", 0 = %s", r->zero);
    }
}

void cfg_schema_expect(const char *path, const cyaml_schema_value_t *v, char *buf, size_t len)
{
    size_t o;

    if (!v) {
        snprintf(buf, len, "is not valid here");
        return;
    }
    switch (v->type) {
    case CYAML_UINT:
    case CYAML_INT:
        num_expect(num_rule(path), buf, len);
        break;
    case CYAML_FLOAT:
        snprintf(buf, len, "must be a number >= 0");
        break;
    case CYAML_BOOL:
        snprintf(buf, len, "must be true or false");
        break;
    case CYAML_STRING:
        snprintf(buf, len, "must be a single value (text)");
        break;
    case CYAML_ENUM:
        o = (size_t)snprintf(buf, len, "must be one of");
        for (uint32_t i = 0; i < v->enumeration.count && o < len; i++)
            o += (size_t)snprintf(buf + o, len - o, "%s %s", i ? "," : "",
                                  v->enumeration.strings[i].str);
        break;
    case CYAML_MAPPING:
        snprintf(buf, len, "must be a mapping of keys to values");
        break;
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
        snprintf(buf, len, "must be a list");
        break;
    default:
        snprintf(buf, len, "is not valid here");
        break;
    }
}

void cfg_schema_keys(const cyaml_schema_value_t *v, char *buf, size_t len)
{
    size_t o;

    if (!v || v->type != CYAML_MAPPING) {
        snprintf(buf, len, "no keys allowed here");
        return;
    }
    o = (size_t)snprintf(buf, len, "allowed:");
    for (const cyaml_schema_field_t *f = v->mapping.fields; f->key && o < len; f++)
        o += (size_t)snprintf(buf + o, len - o, "%s %s", f == v->mapping.fields ? "" : ",", f->key);
}

const cyaml_schema_value_t *cfg_schema_at(const char *path)
{
    const cyaml_schema_value_t *v = &cfg_schema;
    const char *p = path;

    while (v && *p) {
        if (*p == '[') {
            p = strchr(p, ']');
            if (!p || (v->type != CYAML_SEQUENCE && v->type != CYAML_SEQUENCE_FIXED))
                return NULL;
            v = v->sequence.entry;
            p++;
        } else {
            const cyaml_schema_field_t *f;
            size_t n;
            if (*p == '.')
                p++;
            n = strcspn(p, ".[");
            if (v->type != CYAML_MAPPING)
                return NULL;
            for (f = v->mapping.fields; f->key; f++)
                if (strlen(f->key) == n && memcmp(f->key, p, n) == 0)
                    break;
            if (!f->key)
                return NULL;
            v = &f->value;
            p += n;
        }
    }
    return v;
}

/* ---- the walk ------------------------------------------------------------------------- */

typedef struct walk_s {
    const ynode_t *root;
    cfg_report_t *rep;
} walk_t;

static int is_null_word(const ynode_t *n)
{
    static const char *const words[] = {"", "~", "null", "Null", "NULL"};

    if (!n->plain)
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(n->text, words[i]) == 0)
            return 1;
    return 0;
}

static void bad_value(walk_t *w, const ynode_t *n, const char *path, const char *expect)
{
    char got[96];

    cfg_got(n, path, got, sizeof(got));
    cfg_report_add(w->rep, path, "%s (got %s)", expect, got);
}

/* Checks the scalar n (present in the file) against schema v. */
static void check_scalar(walk_t *w, const cyaml_schema_value_t *v, const ynode_t *n,
                         const char *path)
{
    char expect[160];

    if (n->kind != YNODE_SCALAR)
        return; /* libcyaml has rejected it already */
    cfg_schema_expect(path, v, expect, sizeof(expect));
    switch (v->type) {
    case CYAML_UINT: {
        const num_rule_t *r = num_rule(path);
        unsigned long long x;
        size_t digits = strspn(n->text, "0123456789");
        if (digits == 0 || digits != n->text_len || digits > 10) {
            bad_value(w, n, path, expect);
            break;
        }
        x = strtoull(n->text, NULL, 10);
        if (x < r->min || x > r->max)
            bad_value(w, n, path, expect);
        break;
    }
    case CYAML_FLOAT: {
        char *end;
        double d;
        errno = 0;
        d = strtod(n->text, &end);
        if (n->text_len == 0 || end != n->text + n->text_len || errno || !isfinite(d) || d < 0 ||
            strchr("+-.0123456789", n->text[0]) == NULL)
            bad_value(w, n, path, expect);
        break;
    }
    case CYAML_BOOL:
        /* libcyaml reads everything but false/no/0/disable as true: allow only the words
         * whose meaning nobody can mistake */
        if (strcasecmp(n->text, "true") && strcasecmp(n->text, "false") &&
            strcasecmp(n->text, "yes") && strcasecmp(n->text, "no"))
            bad_value(w, n, path, expect);
        break;
    case CYAML_STRING:
        if (is_null_word(n))
            cfg_report_add(w->rep, path, "has no value (write a value, or remove the key)");
        else if (strlen(n->text) != n->text_len)
            cfg_report_add(w->rep, path, "contains a NUL byte (not allowed)");
        break;
    default:
        break;
    }
}

static void walk_mapping(walk_t *w, const cyaml_schema_field_t *fields, const ynode_t *map,
                         uint8_t *data, const char *path);

static void walk_sequence(walk_t *w, const cyaml_schema_field_t *f, const ynode_t *seq,
                          uint8_t *data, const char *path)
{
    const cyaml_schema_value_t *entry = f->value.sequence.entry;
    uint8_t *items = *(uint8_t **)(data + f->data_offset);
    unsigned count = 0;

    if (!seq || seq->kind != YNODE_SEQ)
        return;
    if (f->count_size == sizeof(unsigned))
        memcpy(&count, data + f->count_offset, sizeof(count));
    for (unsigned i = 0; i < count && i < seq->nkids; i++) {
        char sub[CFG_PATH_MAX];
        cfg_path_fmt(sub, sizeof(sub), "%s[%u]", path, i);
        if (entry->type == CYAML_MAPPING && !(entry->flags & CYAML_FLAG_POINTER))
            walk_mapping(w, entry->mapping.fields, seq->kids[i], items + i * entry->data_size, sub);
        else
            check_scalar(w, entry, seq->kids[i], sub);
    }
}

static void walk_mapping(walk_t *w, const cyaml_schema_field_t *fields, const ynode_t *map,
                         uint8_t *data, const char *path)
{
    for (const cyaml_schema_field_t *f = fields; f->key; f++) {
        const ynode_t *n = ytree_child(map, f->key);
        char sub[CFG_PATH_MAX];

        cfg_path_fmt(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", f->key);
        switch (f->value.type) {
        case CYAML_UINT:
            if (n) {
                check_scalar(w, &f->value, n, sub);
            } else if (f->value.data_size == sizeof(uint32_t)) {
                uint32_t def = num_rule(sub)->def;
                memcpy(data + f->data_offset, &def, sizeof(def));
            }
            break;
        case CYAML_MAPPING:
            /* nested in place (limits, policy, responses): walked even when absent, for
             * defaults */
            walk_mapping(w, f->value.mapping.fields, n, data + f->data_offset, sub);
            break;
        case CYAML_SEQUENCE:
            walk_sequence(w, f, n, data, sub);
            break;
        case CYAML_IGNORE:
            break;
        default:
            if (n)
                check_scalar(w, &f->value, n, sub);
            break;
        }
    }
}

void cfg_schema_check(cfg_t *cfg, const ynode_t *root, cfg_report_t *rep)
{
    walk_t w = {root, rep};

    walk_mapping(&w, cfg_schema.mapping.fields, root, (uint8_t *)cfg, "");
}
