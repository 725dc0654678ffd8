/* clients.c - client keys: `client add|set|rotate|revoke` (the views: clients_view.c).
 *
 * Two kinds of client share the store's budget records (shm.h, "Clients"): the config's
 * client_keys, which the server writes at start and reload (llmgatectl only reads their
 * budgets and usage), and the store's own (shm/shm_cdef.h), whose definitions - status, the
 * digests of their keys, models, expiry, history - only this module writes. A budget record
 * with a definition is a store client; one without is the config's.
 *
 * A new key is CTL_KEY_RAW bytes of getrandom(2) as "lgk-" + base64url: 256 bits, and a
 * prefix that people and secret scanners recognise. The store gets its SHA-256 only. The key
 * goes to stdout once, after the store committed it, in the command's one output: built in a
 * buffer reserved beforehand (so no realloc leaves a copy), written with write(2) (no stdio
 * copy), then wiped with the digest. It is never put into a message: when the write fails the
 * message says to rotate.
 *
 * With a config named (--config or LLMGATE_CONFIG): add refuses a name of its client_keys, add
 * and set refuse a model that is neither a model nor an alias of it, and add, set and rotate
 * warn when it allows unauthenticated use (the server then asks nobody for a key).
 */
#include "cli/ctl.h"

#include <errno.h>
#include <mbedtls/sha256.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- names, keys, options ---------------------------------------------------------------- */

static int name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

int ctl_client_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SHM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int ctl_key_new(char key[CTL_KEY_LEN + 1], unsigned char digest[32])
{
    unsigned char raw[CTL_KEY_RAW];
    size_t got = 0;
    int e;

    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = r < 0 ? errno : EIO;
            explicit_bzero(raw, sizeof(raw));
            errno = e;
            return -1;
        }
        got += (size_t)r;
    }
    memcpy(key, CTL_KEY_PREFIX, sizeof(CTL_KEY_PREFIX) - 1);
    size_t n = vw_b64url(raw, sizeof(raw), key + sizeof(CTL_KEY_PREFIX) - 1,
                         CTL_KEY_LEN + 2 - sizeof(CTL_KEY_PREFIX));
    explicit_bzero(raw, sizeof(raw));
    if (n + sizeof(CTL_KEY_PREFIX) - 1 != CTL_KEY_LEN ||
        mbedtls_sha256_ret((const unsigned char *)key, CTL_KEY_LEN, digest, 0) != 0) {
        explicit_bzero(key, CTL_KEY_LEN + 1);
        explicit_bzero(digest, 32);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static int model_char(int ch)
{
    return name_char(ch) || ch == ':' || ch == '/';
}

/* --models: names of [A-Za-z0-9._:/-] split by ',' (what the store keeps); '' = all. */
static int models_option(ctl_t *c, const char *v)
{
    size_t n = strlen(v), len = 0, names = 0;

    if (n > SHM_CDEF_MODELS_MAX)
        return ctl_fail(CTL_EXIT_USAGE, "--models: the list is %zu bytes long, at most %d fit", n,
                        SHM_CDEF_MODELS_MAX);
    for (size_t i = 0; n && i <= n; i++) {
        if (v[i] == ',' || v[i] == '\0') {
            if (len == 0)
                return ctl_fail(CTL_EXIT_USAGE,
                                "--models: an empty name in \"%s\" (give model names or aliases "
                                "separated by commas, or '' for all models)",
                                v);
            names++;
            len = 0;
        } else if (!model_char((unsigned char)v[i])) {
            char b[SHM_CDEF_MODELS_MAX + 1];
            return ctl_fail(CTL_EXIT_USAGE,
                            "--models: \"%s\": a model name of the store may contain only "
                            "letters, digits, '.', '_', ':', '/' and '-'",
                            vw_printable(v, b, sizeof(b)));
        } else {
            len++;
        }
    }
    if (names > SHM_CDEF_MODELS_N)
        return ctl_fail(CTL_EXIT_USAGE, "--models: %zu names, at most %d", names,
                        SHM_CDEF_MODELS_N);
    snprintf(c->cspec.models, sizeof(c->cspec.models), "%s", v);
    c->cset |= SHM_CDEF_SET_MODELS;
    return 0;
}

int ctl_client_option(ctl_t *c, int opt, const char *v)
{
    static const struct {
        const char *name;
        unsigned bit;
    } o[] = {
        [CTL_CO_MODELS] = {"models", SHM_CDEF_SET_MODELS},
        [CTL_CO_RPM] = {"rpm", SHM_CDEF_SET_RPM},
        [CTL_CO_RPD] = {"rpd", SHM_CDEF_SET_RPD},
        [CTL_CO_TOK_DAY] = {"tokens-per-day", SHM_CDEF_SET_TOK_DAY},
        [CTL_CO_TOK_MON] = {"tokens-per-month", SHM_CDEF_SET_TOK_MON},
        [CTL_CO_COST_DAY] = {"cost-per-day-usd", SHM_CDEF_SET_COST_DAY},
        [CTL_CO_COST_MON] = {"cost-per-month-usd", SHM_CDEF_SET_COST_MON},
        [CTL_CO_EXPIRES] = {"expires", SHM_CDEF_SET_EXPIRES},
        [CTL_CO_GRACE] = {"grace", 0},
    };
    char b[128];
    uint64_t u = 0;
    int64_t ms = 0;

    vw_printable(v, b, sizeof(b));
    switch (opt) {
    case CTL_CO_MODELS:
        return models_option(c, v);
    case CTL_CO_RPM:
    case CTL_CO_RPD:
        if (vw_parse_uint(v, UINT32_MAX, &u) != 0)
            return ctl_fail(CTL_EXIT_USAGE,
                            "--%s: \"%s\" is not a count of requests (0 for unlimited, at most "
                            "%u)",
                            o[opt].name, b, UINT32_MAX);
        if (opt == CTL_CO_RPM)
            c->cspec.rpm = (uint32_t)u;
        else
            c->cspec.rpd = (uint32_t)u;
        break;
    case CTL_CO_TOK_DAY:
    case CTL_CO_TOK_MON:
        if (vw_parse_uint(v, INT64_MAX, &u) != 0)
            return ctl_fail(CTL_EXIT_USAGE,
                            "--%s: \"%s\" is not a count of tokens (0 for unlimited)", o[opt].name,
                            b);
        if (opt == CTL_CO_TOK_DAY)
            c->cspec.tokens_per_day = u;
        else
            c->cspec.tokens_per_month = u;
        break;
    case CTL_CO_COST_DAY:
    case CTL_CO_COST_MON:
        if (vw_parse_usd(v, &u) != 0)
            return ctl_fail(CTL_EXIT_USAGE,
                            "--%s: \"%s\" is not an amount of USD (e.g. 5, 12.50, 0.25; 0 for "
                            "unlimited)",
                            o[opt].name, b);
        if (opt == CTL_CO_COST_DAY)
            c->cspec.cost_per_day_micro_usd = u;
        else
            c->cspec.cost_per_month_micro_usd = u;
        break;
    case CTL_CO_EXPIRES:
        if (strcmp(v, "never") != 0 && vw_parse_duration(v, &ms) != 0)
            return ctl_fail(CTL_EXIT_USAGE,
                            "--expires: \"%s\" is neither a duration from now (e.g. 30d, 12h, "
                            "1d12h; at most 366d) nor never",
                            b);
        c->expires_in_ms = ms;
        break;
    case CTL_CO_GRACE:
        if (strcmp(v, "0") != 0 && strcmp(v, "0s") != 0 && vw_parse_duration(v, &ms) != 0)
            return ctl_fail(CTL_EXIT_USAGE,
                            "--grace: \"%s\" is not a duration (e.g. 1h, 10m, 1d; 0 stops the old "
                            "key at once)",
                            b);
        c->grace_ms = ms;
        return 0;
    default:
        return ctl_fail(CTL_EXIT_USAGE, "unknown client option");
    }
    c->cset |= o[opt].bit;
    return 0;
}

/* ---- rows --------------------------------------------------------------------------------- */

const char *ctl_cstate_name(int state)
{
    static const char *const n[] = {"active", "expired", "revoked", "orphaned"};
    return state >= 0 && state <= CTL_CS_ORPHANED ? n[state] : "unknown";
}

const char *const ctl_cset_names[8] = {
    "rpm",     "rpd",   "tokens_per_day", "tokens_per_month", "cost_per_day", "cost_per_month",
    "expires", "models"};

void ctl_crow_derive(ctl_crow_t *r, int64_t now_ms)
{
    if (r->store && r->d.status == SHM_CDEF_REVOKED) {
        r->state = CTL_CS_REVOKED;
        r->status_color = VW_C_RED;
    } else if (r->store && r->d.spec.expires_ms && now_ms >= r->d.spec.expires_ms) {
        r->state = CTL_CS_EXPIRED; /* as authentication judges it */
        r->status_color = VW_C_YELLOW;
    } else if (!r->store && r->u.orphaned) {
        r->state = CTL_CS_ORPHANED;
        r->status_color = VW_C_DIM;
    } else {
        r->state = CTL_CS_ACTIVE;
        r->status_color = VW_C_GREEN;
    }
}

/* A store client's row: its definition and (u, may be NULL) its budget record. */
static void row_store(ctl_crow_t *r, const shm_cdef_t *d, const shm_client_t *u)
{
    memset(r, 0, sizeof(*r));
    r->store = 1;
    r->d = *d;
    if (u) {
        r->u = *u;
        r->has_usage = 1;
        return;
    }
    snprintf(r->u.name, sizeof(r->u.name), "%s", d->name);
    r->u.rpm = d->spec.rpm;
    r->u.rpd = d->spec.rpd;
    r->u.tokens_per_day = d->spec.tokens_per_day;
    r->u.tokens_per_month = d->spec.tokens_per_month;
    r->u.cost_per_day_micro_usd = d->spec.cost_per_day_micro_usd;
    r->u.cost_per_month_micro_usd = d->spec.cost_per_month_micro_usd;
}

static int cmp_client(const void *a, const void *b)
{
    return strcmp(((const shm_client_t *)a)->name, ((const shm_client_t *)b)->name);
}

static int cmp_crow(const void *a, const void *b)
{
    return strcmp(((const ctl_crow_t *)a)->u.name, ((const ctl_crow_t *)b)->u.name);
}

int ctl_crows_load(ctl_t *c, ctl_crow_t **rows, unsigned *n)
{
    shm_client_t *cl = NULL;
    shm_cdef_t *defs = NULL;
    unsigned ncl = 0, nd = 0, k = 0;
    unsigned char *is_store = NULL;
    ctl_crow_t *out = NULL;
    int rc;

    *rows = NULL;
    *n = 0;
    c->now_ms = ctl_now_ms();
    if ((rc = shm_clients(c->shm, c->now_ms, &cl, &ncl)) != 0) {
        rc = ctl_store_error(c, rc, "reading the clients", NULL);
        goto done;
    }
    if ((rc = shm_cdefs(c->shm, &defs, &nd)) != 0) {
        rc = ctl_store_error(c, rc, "reading the store's clients", NULL);
        goto done;
    }
    if (ncl)
        qsort(cl, ncl, sizeof(*cl), cmp_client); /* sorted already; bsearch relies on it */
    out = calloc((size_t)ncl + nd + 1, sizeof(*out));
    is_store = calloc((size_t)ncl + 1, 1);
    if (!out || !is_store) {
        rc = ctl_fail(CTL_EXIT_STORE, "out of memory");
        goto done;
    }
    for (unsigned i = 0; i < nd; i++) {
        shm_client_t key;
        snprintf(key.name, sizeof(key.name), "%s", defs[i].name);
        const shm_client_t *u = ncl ? bsearch(&key, cl, ncl, sizeof(*cl), cmp_client) : NULL;
        if (u)
            is_store[u - cl] = 1;
        row_store(&out[k], &defs[i], u);
        ctl_crow_derive(&out[k++], c->now_ms);
    }
    for (unsigned i = 0; i < ncl; i++) {
        if (is_store[i])
            continue;
        out[k].u = cl[i];
        out[k].has_usage = 1;
        ctl_crow_derive(&out[k++], c->now_ms);
    }
    qsort(out, k, sizeof(*out), cmp_crow);
    if ((rc = ctl_usage_sums(c, out, k)) != 0) {
        rc = ctl_store_error(c, rc, "reading the clients' usage", NULL);
        goto done;
    }
    *rows = out;
    *n = k;
    out = NULL;
    rc = 0;
done:
    free(out);
    free(is_store);
    shm_snapshot_free(cl);
    shm_snapshot_free(defs);
    return rc;
}

/* One client as of now: 0, SHM_ENOTFOUND (neither the config's nor the store's), or an shm
 * error. */
int ctl_crow_get(ctl_t *c, const char *name, ctl_crow_t *r)
{
    shm_cdef_t d;
    shm_client_t u;
    int rd, ru;

    memset(r, 0, sizeof(*r));
    c->now_ms = ctl_now_ms();
    if ((rd = shm_cdef_get(c->shm, name, &d)) != 0 && rd != SHM_ENOTFOUND)
        return rd;
    if ((ru = shm_client_get(c->shm, name, c->now_ms, &u)) != 0 && ru != SHM_ENOTFOUND)
        return ru;
    if (rd != 0 && ru != 0)
        return SHM_ENOTFOUND;
    if (rd == 0) {
        row_store(r, &d, ru == 0 ? &u : NULL);
    } else {
        r->u = u;
        r->has_usage = 1;
    }
    ctl_crow_derive(r, c->now_ms);
    return ctl_usage_sums(c, r, 1);
}

/* ---- messages ----------------------------------------------------------------------------- */

static void actor_init(char actor[40])
{
    snprintf(actor, 40, "llmgatectl uid %u", (unsigned)getuid());
}

int ctl_client_not_found(ctl_t *c, const char *name)
{
    return ctl_fail(CTL_EXIT_NOTFOUND,
                    "no client \"%s\" in the store %s (`llmgatectl clients` lists them)", name,
                    c->state_dir);
}

/* The index of name in the config's client_keys, or -1 (also without a config). */
static int config_client(const ctl_t *c, const char *name)
{
    for (unsigned i = 0; c->cfg && i < c->cfg->client_keys_count; i++)
        if (strcmp(c->cfg->client_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* cmd on a client of the config (r->store 0): not this program's to change. */
static int config_owned(ctl_t *c, const char *cmd, const char *name, const ctl_crow_t *r)
{
    char where[PATH_MAX + 64] = "";
    int i = config_client(c, name);
    if (i >= 0)
        snprintf(where, sizeof(where), " (%s: client_keys[%d])", c->config_path, i);
    if (r->u.orphaned)
        return ctl_fail(CTL_EXIT_USAGE,
                        "client \"%s\" was a client of the config%s and is gone from it "
                        "(orphaned): there is nothing to %s; `client add %s` makes it a client "
                        "of the store",
                        name, where, cmd, name);
    return ctl_fail(CTL_EXIT_USAGE,
                    "client \"%s\" is a client of the config%s, not of the store: %s the "
                    "config's client_keys and reload the server",
                    name, where, strcmp(cmd, "revoke") == 0 ? "remove it from" : "change it in");
}

static int revoked_already(const char *cmd, const char *name, const ctl_crow_t *r)
{
    char t[40];
    if (strcmp(cmd, "revoke") == 0)
        return ctl_fail(CTL_EXIT_USAGE, "client \"%s\" was revoked already, at %s: nothing changed",
                        name, vw_fmt_time(r->d.revoked_ms, VW_T_FULL, t, sizeof(t)));
    return ctl_fail(CTL_EXIT_USAGE,
                    "client \"%s\" was revoked at %s: a revoked client cannot be changed or get "
                    "a new key (`client add` another name)",
                    name, vw_fmt_time(r->d.revoked_ms, VW_T_FULL, t, sizeof(t)));
}

/* A store client to change with cmd: 0 with *r, or the exit code after a message. */
static int live_store_client(ctl_t *c, const char *cmd, const char *name, ctl_crow_t *r)
{
    int rc = ctl_crow_get(c, name, r);
    if (rc == SHM_ENOTFOUND)
        return ctl_client_not_found(c, name);
    if (rc != 0)
        return ctl_store_error(c, rc, "reading client", name);
    if (!r->store)
        return config_owned(c, cmd, name, r);
    if (r->state == CTL_CS_REVOKED)
        return revoked_already(cmd, name, r);
    return 0;
}

/* With a config named: add's name must not be one of its client_keys, --models must name its
 * models or aliases; a warning when it serves without keys. 0 or the exit code. */
static int config_checks(ctl_t *c, const char *name, int is_add)
{
    int rc = ctl_config_if_named(c, "to check the client against it"), i;
    vw_buf_t names = {0};

    if (rc != 0 || !c->cfg)
        return rc;
    if (is_add && (i = config_client(c, name)) >= 0)
        return ctl_fail(CTL_EXIT_USAGE,
                        "client \"%s\" is in %s (client_keys[%d]): a client is the config's or "
                        "the store's, not both; choose another name",
                        name, c->config_path, i);
    for (const char *p = c->cspec.models; (c->cset & SHM_CDEF_SET_MODELS) && *p;) {
        size_t n = strcspn(p, ",");
        if (!cfg_model_find(c->cfg, p, n)) {
            for (unsigned m = 0; m < c->cfg->models_count; m++) {
                const cfg_model_t *md = &c->cfg->models[m];
                vw_buf_printf(&names, "%s%s", m ? ", " : "", md->name);
                for (unsigned a = 0; a < md->aliases_count; a++)
                    vw_buf_printf(&names, "%s%s%s", a ? ", " : " (aliases ", md->aliases[a],
                                  a + 1 == md->aliases_count ? ")" : "");
            }
            rc = ctl_fail(CTL_EXIT_USAGE, "--models: no model or alias \"%.*s\" in %s (models: %s)",
                          (int)n, p, c->config_path, names.p ? names.p : "none");
            vw_buf_free(&names);
            return rc;
        }
        p += n + (p[n] == ',');
    }
    if (c->cfg->allow_unauthenticated)
        fprintf(stderr,
                "llmgatectl: warning: %s has allow_unauthenticated: true: the server asks no "
                "client for a key and does not consult the store's clients (their keys and "
                "budgets do nothing while it says so)\n",
                c->config_path);
    return 0;
}

/* ---- add, rotate: the key's one output ---------------------------------------------------- */

/* All of b to stdout with write(2): no stdio buffer keeps a copy. 0 or -1 (errno). */
static int write_secret(const vw_buf_t *b)
{
    size_t off = 0;
    fflush(stdout);
    while (off < b->len) {
        ssize_t w = write(STDOUT_FILENO, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Prints the key of client name just added or rotated (verb), once; wipes what held it. */
static int print_key(ctl_t *c, const char *verb, const char *name, const char *key)
{
    ctl_crow_t r;
    vw_buf_t o = {0};
    char t[40], d[32];
    int rc;

    if (ctl_crow_get(c, name, &r) != 0 || !r.store) {
        /* it was committed: the key must still be shown, with what is known */
        memset(&r, 0, sizeof(r));
        r.store = 1;
        snprintf(r.u.name, sizeof(r.u.name), "%s", name);
        snprintf(r.d.name, sizeof(r.d.name), "%s", name);
        r.d.status = SHM_CDEF_ACTIVE;
        c->now_ms = ctl_now_ms();
    }
    vw_buf_reserve(&o, 16384); /* more than the output: the buffer never moves */
    if (c->json) {
        ctl_json_client_key(c, strcmp(verb, "added") == 0 ? "client_add" : "client_rotate", &r, key,
                            &o);
    } else if (strcmp(verb, "added") == 0) {
        vw_buf_printf(&o,
                      "client %s added; its key, shown only now (store it in your secret "
                      "manager):\n",
                      name);
        vw_buf_printf(&o, "%s\n", key);
    } else {
        vw_buf_printf(&o, "client %s rotated: ", name);
        if (r.d.prev_fingerprint[0])
            vw_buf_printf(&o, "the old key (fingerprint %s) works until %s (%s more)",
                          r.d.prev_fingerprint,
                          vw_fmt_time(r.d.prev_until_ms, VW_T_FULL, t, sizeof(t)),
                          vw_fmt_dur(r.d.prev_until_ms - c->now_ms, d, sizeof(d)));
        else
            vw_buf_puts(&o, "the old key stopped working now");
        vw_buf_puts(&o, "; its new key, shown only now (store it in your secret manager):\n");
        vw_buf_printf(&o, "%s\n", key);
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a message, not a silent death */
    if (write_secret(&o) == 0)
        rc = 0;
    else
        rc = ctl_fail(CTL_EXIT_STORE,
                      "client %s was %s, but its key could not be written to stdout (%s): run "
                      "`llmgatectl client rotate %s --grace 0` for a new one",
                      name, verb, strerror(errno), name);
    vw_buf_wipe(&o);
    return rc;
}

static void expires_from_now(ctl_t *c)
{
    c->cspec.expires_ms = c->expires_in_ms ? ctl_now_ms() + c->expires_in_ms : 0;
}

int ctl_cmd_client_add(ctl_t *c, const char *name)
{
    char actor[40], key[CTL_KEY_LEN + 1], t[40];
    unsigned char digest[32];
    ctl_crow_t r;
    int rc;

    actor_init(actor);
    if ((rc = config_checks(c, name, 1)) != 0)
        return rc;
    expires_from_now(c);
    if (ctl_key_new(key, digest) != 0)
        return ctl_fail(CTL_EXIT_STORE, "cannot generate a key: getrandom: %s", strerror(errno));
    rc = shm_cdef_add(c->shm, name, digest, &c->cspec, actor, SHM_NOW);
    explicit_bzero(digest, sizeof(digest));
    if (rc == 0) {
        rc = print_key(c, "added", name, key);
        explicit_bzero(key, sizeof(key));
        return rc;
    }
    explicit_bzero(key, sizeof(key));
    if (rc == SHM_EEXIST) {
        if (ctl_crow_get(c, name, &r) == 0 && r.store && r.state == CTL_CS_REVOKED)
            return ctl_fail(CTL_EXIT_USAGE,
                            "client \"%s\" is in the store %s already, revoked at %s (a revoked "
                            "client keeps its name and usage): choose another name",
                            name, c->state_dir,
                            vw_fmt_time(r.d.revoked_ms, VW_T_FULL, t, sizeof(t)));
        return ctl_fail(CTL_EXIT_USAGE,
                        "client \"%s\" is in the store %s already: `llmgatectl client %s` shows "
                        "it, `client set` changes it, `client rotate` gives it a new key",
                        name, c->state_dir, name);
    }
    if (rc == SHM_ECONFLICT)
        return ctl_fail(CTL_EXIT_USAGE,
                        "\"%s\" is a client of the config a server runs with (its budget record "
                        "in the store %s is live): choose another name, or remove it from that "
                        "config's client_keys and reload the server first",
                        name, c->state_dir);
    return ctl_store_error(c, rc, "client add", name);
}

static void changed_used(vw_buf_t *o, const char *what, uint64_t before, uint64_t after, int *first)
{
    char a[32], b[32];
    vw_buf_printf(o, "%s%s %s -> %s", *first ? "" : ", ", what,
                  before ? vw_fmt_count(before, a, sizeof(a)) : "-",
                  after ? vw_fmt_count(after, b, sizeof(b)) : "-");
    *first = 0;
}

/* A budget in USD as given: "$5.00", "$12.50", "$0.000001" (to the micro-USD); "-" for 0. */
static const char *usd_text(uint64_t micro, char *buf, size_t len)
{
    if (!micro) {
        snprintf(buf, len, "-");
        return buf;
    }
    snprintf(buf, len, "$%llu.%06llu", (unsigned long long)(micro / 1000000),
             (unsigned long long)(micro % 1000000));
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0' && buf[n - 3] != '.')
        buf[--n] = '\0';
    return buf;
}

static void changed_cost(vw_buf_t *o, const char *what, uint64_t before, uint64_t after, int *first)
{
    char a[32], b[32];
    vw_buf_printf(o, "%s%s %s -> %s", *first ? "" : ", ", what, usd_text(before, a, sizeof(a)),
                  usd_text(after, b, sizeof(b)));
    *first = 0;
}

const char *ctl_models_text(const char *m, char *buf, size_t len)
{
    size_t o = 0;
    if (!m[0]) {
        snprintf(buf, len, "all");
        return buf;
    }
    for (; *m && o + 3 < len; m++) {
        buf[o++] = *m;
        if (*m == ',')
            buf[o++] = ' ';
    }
    buf[o] = '\0';
    return buf;
}

const char *ctl_expiry_text(int64_t ms, char *buf, size_t len)
{
    if (ms)
        return vw_fmt_time(ms, VW_T_FULL, buf, len);
    snprintf(buf, len, "never");
    return buf;
}

int ctl_cmd_client_set(ctl_t *c, const char *name)
{
    char actor[40], a[SHM_CDEF_MODELS_MAX * 2 + 2], b[SHM_CDEF_MODELS_MAX * 2 + 2];
    ctl_crow_t before, after;
    vw_buf_t o = {0};
    unsigned w = c->cset;
    int rc, first = 1;

    actor_init(actor);
    if ((rc = config_checks(c, name, 0)) != 0 ||
        (rc = live_store_client(c, "change", name, &before)) != 0)
        return rc;
    expires_from_now(c);
    rc = shm_cdef_set(c->shm, name, &c->cspec, w, actor, SHM_NOW);
    if (rc == SHM_ENOTFOUND)
        return ctl_client_not_found(c, name);
    if (rc == SHM_EINVAL && ctl_crow_get(c, name, &after) == 0 && after.state == CTL_CS_REVOKED)
        return revoked_already("change", name, &after);
    if (rc != 0)
        return ctl_store_error(c, rc, "client set", name);
    if ((rc = ctl_crow_get(c, name, &after)) != 0)
        return ctl_store_error(c, rc, "reading client", name);

    vw_buf_printf(&o, "%s: ", name);
    if (w & SHM_CDEF_SET_RPM)
        changed_used(&o, "rpm", before.u.rpm, after.u.rpm, &first);
    if (w & SHM_CDEF_SET_RPD)
        changed_used(&o, "rpd", before.u.rpd, after.u.rpd, &first);
    if (w & SHM_CDEF_SET_TOK_DAY)
        changed_used(&o, "tokens/day", before.u.tokens_per_day, after.u.tokens_per_day, &first);
    if (w & SHM_CDEF_SET_TOK_MON)
        changed_used(&o, "tokens/month", before.u.tokens_per_month, after.u.tokens_per_month,
                     &first);
    if (w & SHM_CDEF_SET_COST_DAY)
        changed_cost(&o, "cost/day", before.u.cost_per_day_micro_usd,
                     after.u.cost_per_day_micro_usd, &first);
    if (w & SHM_CDEF_SET_COST_MON)
        changed_cost(&o, "cost/month", before.u.cost_per_month_micro_usd,
                     after.u.cost_per_month_micro_usd, &first);
    if (w & SHM_CDEF_SET_EXPIRES) {
        vw_buf_printf(&o, "%sexpires %s", first ? "" : ", ",
                      ctl_expiry_text(before.d.spec.expires_ms, a, sizeof(a)));
        vw_buf_printf(&o, " -> %s", ctl_expiry_text(after.d.spec.expires_ms, b, sizeof(b)));
        first = 0;
    }
    if (w & SHM_CDEF_SET_MODELS) {
        vw_buf_printf(&o, "%smodels %s", first ? "" : ", ",
                      ctl_models_text(before.d.spec.models, a, sizeof(a)));
        vw_buf_printf(&o, " -> %s", ctl_models_text(after.d.spec.models, b, sizeof(b)));
    }
    vw_buf_printf(&o, "; status %s\n", ctl_cstate_name(after.state));
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&o);
    return rc;
}

int ctl_cmd_client_rotate(ctl_t *c, const char *name)
{
    char actor[40], key[CTL_KEY_LEN + 1];
    unsigned char digest[32];
    ctl_crow_t r;
    int rc;

    actor_init(actor);
    if ((rc = config_checks(c, name, 0)) != 0 ||
        (rc = live_store_client(c, "rotate", name, &r)) != 0)
        return rc;
    if (ctl_key_new(key, digest) != 0)
        return ctl_fail(CTL_EXIT_STORE, "cannot generate a key: getrandom: %s", strerror(errno));
    rc = shm_cdef_rotate(c->shm, name, digest, c->grace_ms, actor, SHM_NOW);
    explicit_bzero(digest, sizeof(digest));
    if (rc == 0) {
        rc = print_key(c, "rotated", name, key);
        explicit_bzero(key, sizeof(key));
        return rc;
    }
    explicit_bzero(key, sizeof(key));
    if (rc == SHM_ENOTFOUND)
        return ctl_client_not_found(c, name);
    if (rc == SHM_EINVAL && ctl_crow_get(c, name, &r) == 0 && r.state == CTL_CS_REVOKED)
        return revoked_already("rotate", name, &r);
    return ctl_store_error(c, rc, "client rotate", name);
}

int ctl_cmd_client_revoke(ctl_t *c, const char *name)
{
    char actor[40];
    ctl_crow_t before, after;
    vw_buf_t o = {0};
    int rc;

    actor_init(actor);
    if ((rc = ctl_config_if_named(c, "to check the client against it")) != 0 ||
        (rc = live_store_client(c, "revoke", name, &before)) != 0)
        return rc;
    rc = shm_cdef_revoke(c->shm, name, actor, SHM_NOW);
    if (rc == SHM_ENOTFOUND)
        return ctl_client_not_found(c, name);
    if (rc == SHM_EINVAL && ctl_crow_get(c, name, &after) == 0 && after.state == CTL_CS_REVOKED)
        return revoked_already("revoke", name, &after);
    if (rc != 0)
        return ctl_store_error(c, rc, "client revoke", name);
    if ((rc = ctl_crow_get(c, name, &after)) != 0)
        return ctl_store_error(c, rc, "reading client", name);
    vw_buf_printf(&o,
                  "%s: %s -> %s: its keys are refused from now on (requests in flight finish); "
                  "its usage stays readable\n",
                  name, ctl_cstate_name(before.state), ctl_cstate_name(after.state));
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    vw_buf_free(&o);
    return rc;
}
