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
 * All times are milliseconds (except responses.affinity_ttl_s: 30 days of milliseconds do not
 * fit a uint32_t), all sizes bytes, limits of 0 mean "unlimited".
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

/* The wire format a provider speaks. Values are stable: a new format is appended. */
enum cfg_api {
    CFG_API_OPENAI = 0, /* OpenAI-compatible: /chat/completions, /responses, ... (default) */
    CFG_API_ANTHROPIC,  /* Anthropic's native Messages API: /messages */
    CFG_API_GEMINI,     /* Google's Gemini API: /models/{model}:generateContent (chat only) */
    /* OpenAI-compatible without /responses (DeepSeek, most relays): chat completions,
     * completions, embeddings, models; Responses clients are translated to chat completions */
    CFG_API_OPENAI_CHAT,
    CFG_API_COUNT /* not a format: how many there are */
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
    char *group;           /* the provider organisation the key belongs to, or NULL (the key
                              alone): stateful objects (Responses API responses) created with
                              one key of a group may be used with every key of it. A group
                              belongs to one provider; same characters as key names */
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

    enum cfg_api api; /* default CFG_API_OPENAI */
    /* Default CFG_AUTH_BEARER; CFG_AUTH_X_API_KEY for CFG_API_ANTHROPIC, and CFG_AUTH_HEADER
     * with auth_header "x-goog-api-key" for CFG_API_GEMINI, when auth: is not written (an
     * explicit auth: bearer stays, as relays want it). */
    enum cfg_auth_style auth;
    char *auth_header;              /* header name for CFG_AUTH_HEADER */
    char *ca_file;                  /* PEM bundle to verify the provider; NULL = system bundle */
    uint32_t connect_timeout_ms;    /* default 5000 */
    uint32_t first_byte_timeout_ms; /* default 60000 */
    uint32_t idle_timeout_ms;       /* between body bytes, default 30000 */
    uint32_t pool_max_idle;         /* idle keep-alive connections per worker, default 64 */
    /* Dynamic first-byte timeout (0 = off): first_byte_timeout_ms plus this much per 1,000
     * tokens of prompt (bytes / 4) and max_tokens, capped at first_byte_timeout_max_ms. */
    uint32_t first_byte_timeout_per_1k_tokens_ms;
    uint32_t first_byte_timeout_max_ms; /* default 600000 */
    /* The anthropic-version header of CFG_API_ANTHROPIC, default "2023-06-01"; NULL for the
     * other formats (refused there). */
    char *anthropic_version;
    cfg_header_t *headers; /* extra headers sent upstream */
    unsigned headers_count;
    cfg_key_t *keys;
    unsigned keys_count;
} cfg_provider_t;

typedef struct cfg_deployment_s {
    char *provider;               /* provider name as written */
    char *model;                  /* upstream model name */
    uint32_t weight;              /* default 1 */
    uint32_t priority;            /* tier, 1 = first (default) */
    uint32_t max_output_tokens;   /* the most max_tokens a request translated to it asks for
                                     (DeepSeek: 8192); 0 = no cap (default) */
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
    uint32_t send_timeout_ms;   /* a response waits this long for the client to read, 60000 */
    uint32_t max_connections;   /* per worker, default 20000 */
} cfg_limits_t;

typedef struct cfg_policy_s {
    enum cfg_strategy strategy;     /* default round_robin */
    uint32_t max_retries;           /* retries of transient errors, default 2 */
    uint32_t request_timeout_ms;    /* overall deadline for one client request, default 300000 */
    uint32_t cooldown_ms;           /* default cooldown after a 429 without Retry-After, 60000 */
    uint32_t failure_threshold;     /* 5xx/timeout/connect failures in a row that cool a key, 3 */
    uint32_t failure_cooldown_ms;   /* that cooldown, doubled per relapse, default 10000 */
    uint32_t cooldown_max_ms;       /* cap of the doubling, default 300000 */
    uint32_t half_open_probes;      /* requests at a time to a key whose cooldown ended, 1 */
    uint32_t recovery_successes;    /* successes in a row that make it active again, 2 */
    uint32_t backoff_base_ms;       /* retry backoff: base * 2^n with full jitter, default 100 */
    uint32_t backoff_max_ms;        /* cap of one backoff, default 2000 */
    uint32_t wait_for_capacity_ms;  /* wait for a key to come back before a 429, default 3000 */
    uint32_t depleted_ms;           /* depleted this long; 0 = until the next UTC midnight */
    uint32_t model_unavailable_ms;  /* a deployment answering model-not-found is skipped, 60000 */
    uint32_t circuit_min_requests;  /* circuit breaker: outcomes in 60 s before it may open, 20;
                                       0 = no circuit breaker */
    uint32_t circuit_error_percent; /* error share that opens it, default 50 */
    uint32_t circuit_open_ms;       /* how long it stays open, default 30000 */
    uint32_t probe_interval_ms;     /* active health probes, default 30000; 0 = none */
} cfg_policy_t;

/* Stateful Responses API objects (responses:). llmgate remembers which key created each
 * response id, so that a request naming it (previous_response_id, GET /responses/{id}) goes
 * to a key that can see it: the same key, or one of its group (cfg_key_t.group). */
typedef struct cfg_responses_s {
    uint32_t affinity_ttl_s; /* how long a response id is remembered, seconds; default 2592000
                                (30 days: how long OpenAI keeps a stored response) */
    uint32_t affinity_max;   /* response ids remembered at most (oldest forgotten first),
                                default 100000, 1 to 10000000 */
} cfg_responses_t;

/* Requests translated to a provider of another format (translation:, server/xlate/). */
typedef struct cfg_translation_s {
    uint32_t default_max_tokens; /* max_tokens sent to a provider that requires it (Anthropic)
                                    when the client gave none; default 4096, 1 to 1000000 */
} cfg_translation_t;

/* A client key: the gateway's own API key for one application. The secret itself is never
 * kept: the loader holds only its SHA-256, from `sha256:` (64 hex digits) or computed from the
 * environment variable `secret_env:` names. server/http/auth.h compares presented keys with it. */
typedef struct cfg_client_s {
    char *name;       /* unique among client keys; how logs, the store and CLI know it */
    char *sha256;     /* as written (64 hex digits), or NULL */
    char *secret_env; /* variable holding the key itself, or NULL */
    char **models;    /* client-facing model names or aliases allowed; none = all */
    unsigned models_count;
    uint32_t rpm;              /* requests per rolling minute, 0 = unlimited */
    uint32_t rpd;              /* requests per UTC day, 0 = unlimited */
    uint32_t tokens_per_day;   /* prompt + completion tokens per UTC day, 0 = unlimited */
    uint32_t tokens_per_month; /* per UTC calendar month, 0 = unlimited */
    double cost_per_day_usd;   /* USD per UTC day, 0 = unlimited */
    double cost_per_month_usd; /* USD per UTC calendar month, 0 = unlimited */
    unsigned char digest[32];  /* resolved at load: SHA-256 of the key */
    int has_digest;            /* 0 only with CFG_LOAD_NO_SECRETS and secret_env */
} cfg_client_t;

/* Where GET /metrics, /health and /health/full are served (server/obs/obs.h). */
enum cfg_metrics_mode {
    CFG_METRICS_ADMIN = 0, /* an own small HTTP listener at metrics.listen (default) */
    CFG_METRICS_MAIN,      /* on the main listeners, next to the API (listen: main) */
    CFG_METRICS_OFF,       /* not served (listen: off) */
};

typedef struct cfg_metrics_s {
    char *listen;               /* as written: "host:port", "main" or "off"; default
                                   "127.0.0.1:9464" (loopback only) */
    enum cfg_metrics_mode mode; /* resolved at load */
    int listen_default;         /* 1 if listen was absent: failing to bind the default port is
                                   a warning (another llmgate may hold it), not an error */
    /* The dashboard's actions (cool down, disable, enable) on the admin listener need a
     * bearer token whose SHA-256 this is (64 hex digits, as written); NULL = read-only. */
    char *admin_token_sha256;
    unsigned char admin_token_digest[32]; /* resolved at load */
    int has_admin_token;
} cfg_metrics_t;

enum cfg_access_log_mode {
    CFG_ACCESS_LOG_STDOUT = 0, /* path: stdout (default) */
    CFG_ACCESS_LOG_OFF,        /* path: off */
    CFG_ACCESS_LOG_FILE,       /* any other path: appended to, reopened on SIGUSR1 */
};

typedef struct cfg_access_log_s {
    char *path;                    /* as written; default "stdout" */
    enum cfg_access_log_mode mode; /* resolved at load */
} cfg_access_log_t;

typedef struct cfg_alerts_s {
    char *webhook_url;        /* http://host[:port][/path], or NULL = no webhook. May carry a
                                 token: never logged or shown, only host:port is */
    uint32_t min_interval_ms; /* at most one POST per interval, events coalesce; default 10000 */
    uint32_t timeout_ms;      /* connect + send + response of one POST, default 2000 */
    int include_cooling;      /* also alert on active/cooling/half_open moves; default false */
    /* parsed from webhook_url at load (NULL/0 without a webhook) */
    char *host;        /* without brackets for IPv6 literals */
    uint16_t port;     /* default 80 */
    char *path;        /* "/" when the URL has no path */
    char *host_header; /* host or host:port */
} cfg_alerts_t;

/* Client-facing TLS (server/http/conn.c): when set, every listener speaks HTTPS only. */
typedef struct cfg_tls_s {
    char *cert_file; /* PEM certificate chain, leaf first; NULL = plain HTTP */
    char *key_file;  /* PEM private key of the leaf (checked against it at start) */
} cfg_tls_t;

/* Several hosts (server/cluster/cluster.h): limits shared over one Redis by leases. The
 * section is optional; redis is required in it. */
typedef struct cfg_cluster_s {
    char *redis;             /* as written: "host:port", "redis://host:port" or "unix:/path" */
    char *username;          /* Redis 6 ACL user for AUTH, or NULL */
    char *password_env;      /* environment variable with the Redis password, or NULL */
    char *node_id;           /* default: the hostname; [A-Za-z0-9._-], 1..63 bytes */
    char *prefix;            /* of every Redis key, default "llmgate"; same characters */
    uint32_t expected_nodes; /* required: hosts that share the limits, 1..1000 */
    double safe_share;       /* degraded: each host admits this share of a limit, (0, 1];
                                default 1 / expected_nodes */
    uint32_t lease_ms;       /* a grant may be used for this long, default 5000 */
    uint32_t timeout_ms;     /* a Redis reply slower than this: Redis unreachable, default 1000 */
    int tls;                 /* refused when true: Debian's hiredis 0.14 has no TLS */
    /* resolved at load */
    int enabled;     /* 1 when the section is present */
    char *host;      /* TCP host (no brackets), or NULL for a unix socket */
    uint16_t port;   /* default 6379 */
    char *unix_path; /* unix socket path, or NULL */
    char *password;  /* from password_env (NULL with CFG_LOAD_NO_SECRETS); NEVER logged */
} cfg_cluster_t;

typedef struct cfg_s {
    char *path;    /* the file it was loaded from */
    char **listen; /* "host:port" / "[v6]:port", at least one */
    unsigned listen_count;
    uint32_t workers;             /* 0 in YAML = one per core; resolved at load to >= 1 */
    char *state_dir;              /* default "./llmgate-state" */
    uint32_t shutdown_timeout_ms; /* graceful drain on SIGTERM/SIGINT, default 10000 */
    int allow_inline_secrets;     /* keys may carry `secret:` in the file; default false */
    int allow_core_dumps;         /* keep the core size limit (cores hold the secrets); false */
    int stream_include_usage;     /* ask providers for the usage chunk of every stream (and
                                     strip it for clients that did not ask); default false */
    cfg_limits_t limits;
    cfg_policy_t policy;
    cfg_responses_t responses;     /* responses: {affinity_ttl_s, affinity_max} */
    cfg_translation_t translation; /* translation: {default_max_tokens} */
    cfg_provider_t *providers;
    unsigned providers_count;
    cfg_model_t *models;
    unsigned models_count;
    cfg_client_t *client_keys; /* the gateway's own API keys; see cfg_client_t */
    unsigned client_keys_count;
    /* Serve without client keys: must be said explicitly (default false); refused together
     * with client_keys. Without either only the store's clients are served (shm_cdef.h). */
    int allow_unauthenticated;
    cfg_metrics_t metrics;       /* metrics: {listen} */
    cfg_access_log_t access_log; /* access_log: {path} */
    cfg_alerts_t alerts;         /* alerts: {webhook_url, min_interval_ms, timeout_ms, ...} */
    cfg_tls_t tls;               /* tls: {cert_file, key_file}; both NULL = plain HTTP */
    cfg_cluster_t cluster;       /* cluster: {redis, node_id, expected_nodes, ...} */
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

/* The client key called name, or NULL. */
const cfg_client_t *cfg_client_find(const cfg_t *cfg, const char *name);

/* The model whose name or one of whose aliases equals name[0..len), or NULL. */
const cfg_model_t *cfg_model_find(const cfg_t *cfg, const char *name, size_t len);

/* The key called name across all providers (and its provider through *prov), or NULL. */
const cfg_key_t *cfg_key_find(const cfg_t *cfg, const char *name, const cfg_provider_t **prov);

/* Splits a listen address as the loader accepted it ("host:port", "[v6]:port"; port 0 =
 * any free port) into host (without brackets, NUL terminated, hostlen bytes at most) and
 * port. Returns 0, or -1 if s is not such an address or host does not fit. Any thread. */
int cfg_listen_parse(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
