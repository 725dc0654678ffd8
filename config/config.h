/* config.h - the llmgate configuration: one YAML file, loaded and validated once.
 *
 * Design note
 * -----------
 * cfg_load() reads the YAML with libcyaml against a strict schema (unknown keys are
 * errors), fills in defaults, resolves secrets from environment variables or files, and
 * validates every value. Every error names the YAML path and line of the offending value,
 * what was wrong and what is allowed, for example:
 *
 *     config: llmgate.yaml:23: providers[1].keys[0].rpm: must be a positive integer (got "ten")
 *
 * A secret's value never appears in a message; the key is named instead.
 *
 * The loaded cfg_t is immutable and owned by the caller; it may be read from any thread
 * without locks. cfg_free() releases it. Pointers inside (provider_ref, fallback_refs)
 * point into the same cfg_t.
 *
 * All times are milliseconds, all sizes bytes, limits of 0 mean "unlimited".
 */
#ifndef LLMGATE_CONFIG_H
#define LLMGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* How a provider expects its credential. */
enum cfg_auth_style {
    CFG_AUTH_BEARER = 0, /* Authorization: Bearer <secret> (default) */
    CFG_AUTH_X_API_KEY,  /* x-api-key: <secret> */
    CFG_AUTH_HEADER,     /* <auth_header>: <secret> */
};

/* Key selection strategy inside a deployment (the key-policy issue uses it). */
enum cfg_strategy {
    CFG_STRATEGY_ROUND_ROBIN = 0,
    CFG_STRATEGY_WEIGHTED,
    CFG_STRATEGY_LATENCY,
    CFG_STRATEGY_LEAST_INFLIGHT,
};

typedef struct cfg_header_s {
    char *name;
    char *value;
} cfg_header_t;

typedef struct cfg_key_s {
    char *name;            /* unique across all providers; how the store, logs and CLI know it */
    char *secret_env;      /* name of the environment variable that holds the secret, or NULL */
    char *secret_file;     /* path of a file that holds the secret, or NULL */
    char *secret;          /* resolved at load; NEVER logged, stored or printed */
    uint32_t rpm;          /* requests per rolling minute, 0 = unlimited */
    uint32_t rpd;          /* requests per day, 0 = unlimited */
    uint32_t tpm;          /* tokens per rolling minute, 0 = unlimited */
    uint32_t max_inflight; /* concurrent requests, 0 = unlimited */
    uint32_t weight;       /* default 1 */
    char fingerprint[13];  /* first 12 hex digits of SHA-256(secret): safe to show */
} cfg_key_t;

typedef struct cfg_provider_s {
    char *name;     /* unique */
    char *base_url; /* as written: http(s)://host[:port][/path] */
    /* parsed from base_url at load */
    int tls;           /* 1 for https */
    char *host;        /* without brackets for IPv6 literals */
    uint16_t port;     /* defaulted from the scheme */
    char *base_path;   /* "" or "/v1" etc., never a trailing slash */
    char *host_header; /* value for the Host header: host or host:port */

    enum cfg_auth_style auth;
    char *auth_header;              /* header name for CFG_AUTH_HEADER */
    char *ca_file;                  /* PEM bundle to verify the provider; NULL = system bundle */
    uint32_t connect_timeout_ms;    /* default 5000 */
    uint32_t first_byte_timeout_ms; /* default 60000 */
    uint32_t idle_timeout_ms;       /* between body bytes, default 30000 */
    uint32_t pool_max_idle;         /* idle keep-alive connections per worker, default 64 */
    cfg_header_t *headers;          /* extra headers sent upstream */
    unsigned headers_count;
    cfg_key_t *keys;
    unsigned keys_count;
} cfg_provider_t;

typedef struct cfg_deployment_s {
    char *provider;               /* provider name as written */
    char *model;                  /* upstream model name */
    uint32_t weight;              /* default 1 */
    uint32_t priority;            /* tier, 1 = first (default) */
    cfg_provider_t *provider_ref; /* resolved at load */
} cfg_deployment_t;

typedef struct cfg_model_s {
    char *name; /* client-facing */
    char **aliases;
    unsigned aliases_count;
    cfg_deployment_t *deployments;
    unsigned deployments_count;
    char **fallbacks; /* other client-facing model names, tried in order */
    unsigned fallbacks_count;
    struct cfg_model_s **fallback_refs; /* resolved at load, fallbacks_count entries */
    double input_price_per_m;           /* USD per million prompt tokens, default 0 */
    double output_price_per_m;          /* USD per million completion tokens, default 0 */
} cfg_model_t;

typedef struct cfg_limits_s {
    uint32_t max_header_bytes;  /* request line + headers, default 16384 */
    uint32_t max_headers;       /* header count, default 100 */
    uint32_t max_body_bytes;    /* default 4 MiB */
    uint32_t max_url_bytes;     /* default 8192 */
    uint32_t header_timeout_ms; /* whole head must arrive within, default 10000 */
    uint32_t body_timeout_ms;   /* whole body must arrive within, default 30000 */
    uint32_t idle_timeout_ms;   /* keep-alive idle, default 75000 */
    uint32_t max_connections;   /* per worker, default 20000 */
} cfg_limits_t;

typedef struct cfg_policy_s {
    enum cfg_strategy strategy;  /* default round_robin */
    uint32_t max_retries;        /* retries of transient errors, default 2 */
    uint32_t request_timeout_ms; /* overall deadline for one client request, default 300000 */
    uint32_t cooldown_ms;        /* default cooldown after a 429 without Retry-After, 60000 */
} cfg_policy_t;

typedef struct cfg_s {
    char *path;    /* the file it was loaded from */
    char **listen; /* "host:port" / "[v6]:port", at least one */
    unsigned listen_count;
    uint32_t workers;             /* 0 in YAML = one per core; resolved at load to >= 1 */
    char *state_dir;              /* default "./llmgate-state" */
    uint32_t shutdown_timeout_ms; /* graceful drain on SIGTERM/SIGINT, default 10000 */
    int allow_inline_secrets;     /* keys may carry `secret:` in the file; default false */
    cfg_limits_t limits;
    cfg_policy_t policy;
    cfg_provider_t *providers;
    unsigned providers_count;
    cfg_model_t *models;
    unsigned models_count;
} cfg_t;

/* Load and validate PATH. On success returns 0 and sets *out (free with cfg_free()).
 * On failure returns -1 and writes a human-readable message (possibly several lines, one
 * per problem, each starting with "config: FILE:LINE: yaml.path: ") into err (NUL
 * terminated, truncated to errlen). Never puts a secret into err. */
int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen);

/* Same as cfg_load but from a string; name is used in messages. For tests. */
int cfg_load_string(const char *yaml, size_t len, const char *name, cfg_t **out, char *err,
                    size_t errlen);

/* Flags of cfg_load_ex(). CFG_LOAD_NO_SECRETS: read no secret - secret_env and secret_file
 * are neither read nor checked, an inline secret is wiped; every key's secret is NULL and its
 * fingerprint "". For tools that need only the layout (llmgatectl), run where the key
 * variables are unset. */
#define CFG_LOAD_NO_SECRETS 1u

/* cfg_load / cfg_load_string with flags (0 = the same as without _ex). */
int cfg_load_ex(const char *path, unsigned flags, cfg_t **out, char *err, size_t errlen);
int cfg_load_string_ex(const char *yaml, size_t len, const char *name, unsigned flags, cfg_t **out,
                       char *err, size_t errlen);

void cfg_free(cfg_t *cfg);

/* The model whose name or one of whose aliases equals name[0..len), or NULL. */
const cfg_model_t *cfg_model_find(const cfg_t *cfg, const char *name, size_t len);

/* The key called name across all providers (and its provider through *prov), or NULL. */
const cfg_key_t *cfg_key_find(const cfg_t *cfg, const char *name, const cfg_provider_t **prov);

/* Splits a listen address as the loader accepted it ("host:port", "[v6]:port"; port 0 =
 * any free port) into host (without brackets, NUL terminated, hostlen bytes at most) and
 * port. Returns 0, or -1 if s is not such an address or host does not fit. Any thread. */
int cfg_listen_parse(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
