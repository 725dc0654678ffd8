/* ctl.h - llmgatectl, the admin CLI: what its modules share.
 *
 * Design note
 * -----------
 * llmgatectl opens the server's LMDB store directly (shm/shm.h), never over HTTP, so it
 * works the same while the server runs and while it is down. Read commands open the store
 * read-only and hold no lock between reads; actions open it read-write and run one shm
 * admin transaction each, which the running servers obey at their next admission because
 * admission reads the same record. The CLI never admits, so it never takes an owner slot.
 *
 * Modules:
 *   main.c     command line, dispatch, keys and providers commands, exit codes
 *   store.c    finding the store (--state > --config > LLMGATE_STATE_DIR > LLMGATE_CONFIG),
 *              opening it, the config for --model and for cluster, messages for each failure
 *   rows.c     the keys' and providers' rows (view/keys.h), filtered and sorted
 *   table.c    aligned tables with optional colour: keys and providers
 *   detail.c   `key NAME`: everything about one key, histogram, history
 *   json.c     --json output (schema documented in cli/README.md)
 *   watch.c    the live view (terminal modes, signals, redraw)
 *   actions.c  cooldown, disable, enable, reset, prune
 *   cluster.c  `cluster`: the nodes and leases of cluster mode, read from Redis (not the
 *              store) with hiredis' synchronous API and short timeouts
 *   clients.c  `clients`, `client NAME` and `client add|set|rotate|revoke`: client keys,
 *              those of the config (budgets and usage only) and those kept in the store
 *              (shm/shm_cdef.h), and the generation of a store client's key
 *   clients_view.c  `clients` and `client NAME`: the read views of clients
 *   usage.c    `usage`: clients' usage by day or month and model (table, CSV, JSON), and
 *              the usage sums the client views show
 *   stats.c    `stats`: the history per model or key over a range (view/stats.h)
 * Below it, view/ (shared with the admin API): fmt.h (formats and the output buffer),
 * keys.h (the rows), json.h (the writer and the keys/providers/events documents), stats.h
 * (the history's series and the stats document).
 *
 * Secrets: the store holds none and the config is loaded with CFG_LOAD_NO_SECRETS, so
 * nothing this program prints can contain one; keys are shown by name and fingerprint.
 * It handles two secrets: `cluster`'s Redis password (from cluster.password_env), sent in
 * AUTH and never put into a message or an output; and the key `client add` and
 * `client rotate` generate, which goes to the store only as its SHA-256 and to stdout once,
 * in that command's one output, and whose buffers are wiped afterwards.
 *
 * Single-threaded. Every command returns an exit code; messages go to stderr prefixed
 * "llmgatectl: ".
 */
#ifndef LLMGATE_CLI_CTL_H
#define LLMGATE_CLI_CTL_H

#include <limits.h>
#include <stdint.h>

#include "view/fmt.h"
#include "config/config.h"
#include "shm/shm.h"
#include "shm/shm_cdef.h"
#include "shm/shm_lease.h"
#include "shm/shm_usage.h"
#include "view/keys.h"

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_USAGE = 1,    /* bad command line (also: option that needs a config without one) */
    CTL_EXIT_STORE = 2,    /* store missing, unreadable, wrong version, or a write failed */
    CTL_EXIT_NOTFOUND = 3, /* no such key (or client) */
    /* cluster: the config has no cluster section, or its Redis cannot be reached or refused
     * a command (exit 1, as the cluster contract says: there is nothing to show) */
    CTL_EXIT_CLUSTER = 1,
};

/* Columns to sort by (--sort). */
enum ctl_sort {
    CTL_SORT_NAME = 0,
    CTL_SORT_PROVIDER,
    CTL_SORT_STATUS,
    CTL_SORT_RPM,
    CTL_SORT_RPD,
    CTL_SORT_TPM,
    CTL_SORT_INFLIGHT,
    CTL_SORT_P50,
    CTL_SORT_P95,
    CTL_SORT_P99,
    CTL_SORT_ERRORS,
    CTL_SORT_REQUESTS,
    CTL_SORT_TOKENS,
    CTL_SORT_COST,
};

typedef struct ctl_s {
    /* command line */
    const char *state_opt, *config_opt;
    int json;
    int color;              /* resolved: 1 = emit ANSI colours */
    const char *f_provider; /* comma list or NULL */
    const char *f_model;
    unsigned f_states; /* bit (1 << state); 0 = all */
    int sort, reverse;
    int64_t interval_ms; /* watch */
    int64_t duration_ms; /* cooldown */
    unsigned reset_what; /* reset: SHM_RESET_* */
    /* client add / set: the options given (cset: their SHM_CDEF_SET_* bits); --expires as a
     * duration from now (0 = never), made a time when the command runs */
    shm_cdef_spec_t cspec;
    unsigned cset;
    int64_t expires_in_ms;
    int64_t grace_ms; /* client rotate --grace, default 1 h */
    /* usage: --client, --from / --to (day indexes; *_set: given), --by (enum ctl_by), --csv */
    const char *u_client;
    int64_t u_from_day, u_to_day;
    int u_from_set, u_to_set;
    int u_by;
    int u_csv;
    /* stats: --model (a series name, not checked against a config), --key, --range */
    const char *s_model, *s_key, *s_range;

    /* resolved by ctl_open */
    char state_dir[PATH_MAX];
    char state_from[PATH_MAX + 64]; /* how it was found, for messages */
    const char *config_path;        /* --config or LLMGATE_CONFIG, NULL if neither */
    cfg_t *cfg;                     /* loaded if config_path is (no secrets) */
    const char **model_providers;   /* --model: providers of its deployments */
    unsigned n_model_providers;
    shm_t *shm;
    int64_t now_ms;
} ctl_t;

/* ---- store.c ---- */

/* Prints "llmgatectl: MESSAGE" to stderr; returns code. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* While b is set, ctl_fail appends its messages to b instead (watch holds them until the
 * terminal is back); NULL stops that. */
void ctl_fail_defer(vw_buf_t *b);

/* Finds the store, loads the config if one is named (and --model's providers), opens the
 * store (write: read-write, and never creates one). Returns CTL_EXIT_OK or the exit code
 * after printing why. */
int ctl_open(ctl_t *c, int write);
void ctl_close(ctl_t *c);

/* Loads the config (--config, else LLMGATE_CONFIG; no secrets) for command cmd, which needs it
 * for what (words for the messages: "its cluster section"). Returns 0 or the exit code after
 * a message: 1 without a config, 2 when it cannot be loaded. */
int ctl_config_load(ctl_t *c, const char *cmd, const char *what);

/* Exit code and message for an shm error rc while doing what on key name (may be NULL). */
int ctl_store_error(ctl_t *c, int rc, const char *what, const char *name);

/* Loads the config if one is named (--config or LLMGATE_CONFIG; no secrets), for purpose
 * (words for the message: "to check the client's models"). Returns 0 (also when none is
 * named: c->cfg stays NULL) or CTL_EXIT_STORE after a message. Call after ctl_open. */
int ctl_config_if_named(ctl_t *c, const char *purpose);

/* Wall clock, ms since the epoch. */
int64_t ctl_now_ms(void);

/* ---- rows.c ---- */

/* Parses a --sort column name; -1 if unknown. */
int ctl_sort_parse(const char *s);
/* The --sort names, for messages. */
extern const char ctl_sort_names[];

/* All keys as rows, filtered (--provider, --model, --status) and sorted (--sort,
 * --reverse). *rows is malloc'ed. Returns 0 or the exit code after a message. */
int ctl_rows_load(ctl_t *c, vw_key_t **rows, unsigned *n);

/* Sorts rows by column sort (numbers largest first, names A-Z), reverse flips. Pure. */
void ctl_rows_sort(vw_key_t *rows, unsigned n, int sort, int reverse);

/* All providers with their keys' totals (--provider filter applies). Returns 0 or exit. */
int ctl_prows_load(ctl_t *c, vw_prov_t **rows, unsigned *n);

/* ---- table.c ---- */

void ctl_render_keys(const vw_key_t *rows, unsigned n, int color, vw_buf_t *out);
void ctl_render_providers(const vw_prov_t *rows, unsigned n, int color, vw_buf_t *out);

/* ---- json.c ---- */

void ctl_json_keys(ctl_t *c, const vw_key_t *rows, unsigned n, vw_buf_t *out);
void ctl_json_providers(ctl_t *c, const vw_prov_t *rows, unsigned n, vw_buf_t *out);
/* `key NAME --json`: the row plus provider circuit, histogram and history. */
void ctl_json_key(ctl_t *c, const vw_key_t *r, const shm_provider_t *prov, const shm_latency_t *lat,
                  const shm_event_t *ev, unsigned nev, vw_buf_t *out);

/* ---- cluster.c ---- */

/* One node: a member of PREFIX:nodes (or a node id seen only in a grant id) and its hash
 * PREFIX:node:<id>, which the node refreshes every second and which expires 30 s after. */
typedef struct ctl_cnode_s {
    char id[SHM_NAME_MAX + 1];
    int listed;              /* in PREFIX:nodes */
    int gone;                /* no PREFIX:node:<id>: the node stopped (or never reported) */
    char mode[16];           /* "leased", "degraded", ...; "" when gone */
    int64_t last_contact_ms; /* the node's wall clock at its last heartbeat; 0 when gone */
    int64_t pid;
    uint64_t grants, units, refills, refill_p50_us, refill_max_us;
    char version[32];
} ctl_cnode_t;

/* What one node holds of one entity: live units and grants per dimension (SHM_LD_*). */
typedef struct ctl_cuse_s {
    unsigned node; /* index into ctl_cluster_t.nodes */
    uint64_t units[SHM_LD_COUNT];
    unsigned grants[SHM_LD_COUNT];
} ctl_cuse_t;

/* A key or client key of the config with a limit: an entity whose limits are leased. */
typedef struct ctl_cent_s {
    int kind;                     /* SHM_LK_KEY or SHM_LK_CLIENT */
    const char *name;             /* the config's */
    const char *provider;         /* a key's provider; NULL for a client key */
    uint64_t limit[SHM_LD_COUNT]; /* 0: no limit (not read); costs in micro-USD */
    uint64_t units[SHM_LD_COUNT]; /* live units of all nodes */
    unsigned grants[SHM_LD_COUNT];
    unsigned first_use, n_uses; /* its ctl_cluster_t.uses, by node id */
} ctl_cent_t;

/* Everything `cluster` shows, read in one go (nodes sorted by id, entities in config order:
 * keys, then client keys). */
typedef struct ctl_cluster_s {
    char redis[PATH_MAX + 16]; /* "host:port", "[v6]:port" or "unix:/path" */
    const char *prefix;
    uint32_t expected_nodes;
    int64_t redis_now_ms; /* Redis TIME: a grant is live while its score is above it */
    int64_t now_ms;       /* our wall clock (node contact ages) */
    ctl_cnode_t *nodes;
    unsigned n_nodes;
    ctl_cent_t *ents;
    unsigned n_ents;
    ctl_cuse_t *uses;
    unsigned n_uses;
} ctl_cluster_t;

/* The name of a lease dimension in Redis keys and output: "rpm", "tpm", "rpd", "tokd",
 * "tokm", "costd", "costm". */
extern const char *const ctl_dim_names[SHM_LD_COUNT];

void ctl_cluster_free(ctl_cluster_t *v);

/* table.c / json.c */
void ctl_render_cluster(const ctl_cluster_t *v, int color, vw_buf_t *out);
void ctl_json_cluster(ctl_t *c, const ctl_cluster_t *v, vw_buf_t *out);

/* ---- clients.c ---- */

#define CTL_KEY_PREFIX "lgk-"
#define CTL_KEY_RAW    32      /* random bytes in a key */
#define CTL_KEY_LEN    47      /* "lgk-" + 43 base64url characters */
#define CTL_GRACE_MS   3600000 /* client rotate: the old key works this long by default */

/* A client name: [A-Za-z0-9._-], 1 to SHM_NAME_MAX bytes (config and store alike). */
int ctl_client_name_ok(const char *s);

/* A new key: CTL_KEY_RAW bytes of getrandom(2) (retried on EINTR and short reads) as
 * CTL_KEY_PREFIX + base64url, and its SHA-256. The raw bytes are wiped before it returns;
 * the caller wipes key and digest. Returns 0, or -1 with errno set (nothing filled). */
int ctl_key_new(char key[CTL_KEY_LEN + 1], unsigned char digest[32]);

/* The options of client add / set (enum ctl_copt) with their value: checked, into c->cspec
 * and c->cset (c->expires_in_ms for --expires, c->grace_ms for --grace). Returns 0, or
 * CTL_EXIT_USAGE after a message. */
enum ctl_copt {
    CTL_CO_MODELS,
    CTL_CO_RPM,
    CTL_CO_RPD,
    CTL_CO_TOK_DAY,
    CTL_CO_TOK_MON,
    CTL_CO_COST_DAY,
    CTL_CO_COST_MON,
    CTL_CO_EXPIRES,
    CTL_CO_GRACE,
};
int ctl_client_option(ctl_t *c, int opt, const char *val);

/* A client's effective state. */
enum ctl_cstate { CTL_CS_ACTIVE, CTL_CS_EXPIRED, CTL_CS_REVOKED, CTL_CS_ORPHANED };
const char *ctl_cstate_name(int state);

/* One client: a config client (store 0: its budget record only) or a store client (store 1:
 * its definition d and its budget record u). */
typedef struct ctl_crow_s {
    shm_client_t u; /* budgets and usage (has_usage 0: none recorded; limits from d) */
    int has_usage;
    int store;
    shm_cdef_t d; /* store clients */
    int state;    /* enum ctl_cstate */
    int status_color;
    shm_usage_row_t today, month; /* its usage rows of today and of this month, summed */
} ctl_crow_t;

/* state and status_color from the rest of r at now_ms. Pure. */
void ctl_crow_derive(ctl_crow_t *r, int64_t now_ms);

/* All clients (config and store), sorted by name; *rows malloc'ed. 0 or the exit code. */
int ctl_crows_load(ctl_t *c, ctl_crow_t **rows, unsigned *n);
/* One client as a row: 0, SHM_ENOTFOUND, or another shm error (no message). */
int ctl_crow_get(ctl_t *c, const char *name, ctl_crow_t *r);
/* The message and exit code (3) of a client that is not there. */
int ctl_client_not_found(ctl_t *c, const char *name);
/* A store client's models ("all" when none is named) and expiry ("never"), for people. */
const char *ctl_models_text(const char *models, char *buf, size_t len);
const char *ctl_expiry_text(int64_t ms, char *buf, size_t len);

/* table.c / json.c */
void ctl_render_clients(const ctl_crow_t *rows, unsigned n, int64_t now_ms, int color,
                        vw_buf_t *out);
void ctl_json_clients(ctl_t *c, const ctl_crow_t *rows, unsigned n, vw_buf_t *out);
/* `client NAME --json`; ev NULL: a config client (no history kept); by_model: its usage of
 * today and of this month per model (ctl_usage_t is below). */
struct ctl_usage_s;
void ctl_json_client(ctl_t *c, const ctl_crow_t *r, const shm_event_t *ev, unsigned nev,
                     const struct ctl_usage_s *by_model, vw_buf_t *out);
/* The one output of client add / rotate (command "client_add", "client_rotate") with the key
 * (out should be reserved and wiped by the caller). */
void ctl_json_client_key(ctl_t *c, const char *command, const ctl_crow_t *r, const char *key,
                         vw_buf_t *out);
/* Names of the SHM_CDEF_SET_* bits ("rpm", ..., "models"), by bit index. */
extern const char *const ctl_cset_names[8];

/* ---- usage.c ---- */

/* How usage rows are summed: as stored (per day), per UTC month, or per model only. */
enum ctl_by { CTL_BY_DAY, CTL_BY_MONTH, CTL_BY_MODEL };

/* What `usage` shows: rows sorted by client, period, model (row.day: the day index, the
 * month index with CTL_BY_MONTH), and their total. */
typedef struct ctl_usage_s {
    int by;
    int64_t from_day, to_day;
    shm_usage_row_t *rows; /* malloc'ed */
    unsigned n;
    shm_usage_row_t total;
} ctl_usage_t;

/* The usage rows of client (NULL: all) from from_day to to_day (UTC day indexes), summed as
 * by says (CTL_BY_MODEL: row.day is -1), sorted; free *rows. 0 or the exit code. */
int ctl_usage_load(ctl_t *c, const char *client, int64_t from_day, int64_t to_day, int by,
                   shm_usage_row_t **rows, unsigned *n);
/* Adds r's counts to *to (saturating). */
void ctl_usage_add(shm_usage_row_t *to, const shm_usage_row_t *r);
/* Today's UTC day index (of c->now_ms); the first day of day's month. */
int64_t ctl_today(const ctl_t *c);
int64_t ctl_month_first(int64_t day);
/* Fills today and month of rows[0..n) (sorted by name) from one read of the usage rows (of
 * rows[0]'s client alone when n is 1). 0 or an shm error (no message). */
int ctl_usage_sums(ctl_t *c, ctl_crow_t *rows, unsigned n);
/* table.c / json.c */
void ctl_render_usage(const ctl_usage_t *u, int color, vw_buf_t *out);
void ctl_json_usage(ctl_t *c, const ctl_usage_t *u, vw_buf_t *out);

/* ---- commands ---- */
int ctl_cmd_usage(ctl_t *c); /* usage.c */

int ctl_cmd_clients(ctl_t *c);                  /* clients.c */
int ctl_cmd_client(ctl_t *c, const char *name); /* clients.c: `client NAME` */
int ctl_cmd_client_add(ctl_t *c, const char *name);
int ctl_cmd_client_set(ctl_t *c, const char *name);
int ctl_cmd_client_rotate(ctl_t *c, const char *name);
int ctl_cmd_client_revoke(ctl_t *c, const char *name);
int ctl_cmd_key(ctl_t *c, const char *name);                     /* detail.c */
int ctl_cmd_watch(ctl_t *c);                                     /* watch.c */
int ctl_cmd_action(ctl_t *c, const char *cmd, const char *name); /* actions.c */
int ctl_cmd_prune(ctl_t *c);                                     /* actions.c */
int ctl_cmd_cluster(ctl_t *c); /* cluster.c: loads the config itself; never opens the store */

/* Latency histogram buckets shared by `key` text and JSON: upper bounds in ms of all but
 * the last bucket (which is "more"). */
#define CTL_HIST_BUCKETS 11
extern const uint32_t ctl_hist_le[CTL_HIST_BUCKETS - 1];
void ctl_histogram(const uint32_t *samples, unsigned n, uint64_t counts[CTL_HIST_BUCKETS]);

/* Writes all of b to stdout and flushes; returns 0 or -1. */
int ctl_write_out(const vw_buf_t *b);

/* ---- stats.c ---- */

int ctl_cmd_stats(ctl_t *c);

#endif
