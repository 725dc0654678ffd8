/* store.c - finding and opening the store, the config behind --model, and the message for
 * every way that can fail (exit 2 unless the command line itself was wrong).
 *
 * Where the store is: --state DIR, else the state_dir of --config FILE, else the
 * environment variable LLMGATE_STATE_DIR, else the state_dir of LLMGATE_CONFIG. A relative
 * state_dir is taken relative to the current directory, as the server takes it.
 *
 * Actions open the store read-write, which in LMDB would create an empty store where none
 * is: that would hide an operator's typo, so a missing data.mdb is refused first.
 */
#include "cli/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static vw_buf_t *g_defer;

void ctl_fail_defer(vw_buf_t *b)
{
    g_defer = b;
}

int ctl_fail(int code, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g_defer)
        vw_buf_printf(g_defer, "llmgatectl: %s\n", msg);
    else
        fprintf(stderr, "llmgatectl: %s\n", msg);
    return code;
}

int64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* shm's messages start with "shm: "; ours already say who we are. */
static const char *shm_msg(const char *err)
{
    return strncmp(err, "shm: ", 5) == 0 ? err + 5 : err;
}

static int load_config_for(ctl_t *c, const char *purpose)
{
    char err[4096];
    if (c->cfg)
        return 0;
    if (cfg_load_ex(c->config_path, CFG_LOAD_NO_SECRETS, &c->cfg, err, sizeof(err)) != 0)
        return ctl_fail(CTL_EXIT_STORE, "cannot use the config %s %s:\n%s", c->config_path, purpose,
                        err);
    return 0;
}

static int load_config(ctl_t *c)
{
    return load_config_for(c, "to find the store");
}

int ctl_config_load(ctl_t *c, const char *cmd, const char *what)
{
    const char *env_cfg = getenv("LLMGATE_CONFIG");
    char purpose[256];

    c->config_path = c->config_opt ? c->config_opt : env_cfg && *env_cfg ? env_cfg : NULL;
    if (!c->config_path)
        return ctl_fail(CTL_EXIT_USAGE,
                        "%s needs the server's config for %s: add --config FILE (or set "
                        "LLMGATE_CONFIG)",
                        cmd, what);
    snprintf(purpose, sizeof(purpose), "for %s", what);
    int rc = load_config_for(c, purpose);
    c->now_ms = ctl_now_ms();
    return rc;
}

int ctl_config_if_named(ctl_t *c, const char *purpose)
{
    return c->config_path ? load_config_for(c, purpose) : 0;
}

static int set_dir(ctl_t *c, const char *dir, const char *from)
{
    if (!dir || !*dir)
        return ctl_fail(CTL_EXIT_USAGE, "empty state directory (from %s)", from);
    if (strlen(dir) >= sizeof(c->state_dir))
        return ctl_fail(CTL_EXIT_USAGE, "state directory path too long (from %s)", from);
    snprintf(c->state_dir, sizeof(c->state_dir), "%s", dir);
    snprintf(c->state_from, sizeof(c->state_from), "%s", from);
    return 0;
}

static int locate(ctl_t *c)
{
    const char *env_state = getenv("LLMGATE_STATE_DIR");
    const char *env_cfg = getenv("LLMGATE_CONFIG");
    char from[PATH_MAX + 64];
    int rc = 0;

    if (env_state && !*env_state)
        env_state = NULL;
    if (env_cfg && !*env_cfg)
        env_cfg = NULL;
    c->config_path = c->config_opt ? c->config_opt : env_cfg;
    if (c->f_model && !c->config_path)
        return ctl_fail(CTL_EXIT_USAGE,
                        "--model needs the server's config to know which providers serve a "
                        "model: add --config FILE (or set LLMGATE_CONFIG)");
    if (c->state_opt) {
        rc = set_dir(c, c->state_opt, "--state");
    } else if (c->config_opt || (!env_state && env_cfg)) {
        if ((rc = load_config(c)) != 0)
            return rc;
        snprintf(from, sizeof(from), "state_dir of %s%s", c->config_path,
                 c->config_opt ? "" : " (LLMGATE_CONFIG)");
        rc = set_dir(c, c->cfg->state_dir, from);
    } else if (env_state) {
        rc = set_dir(c, env_state, "LLMGATE_STATE_DIR");
    } else {
        return ctl_fail(CTL_EXIT_USAGE,
                        "where is the store? give --state DIR or --config FILE (the server's "
                        "config), or set LLMGATE_STATE_DIR or LLMGATE_CONFIG");
    }
    if (rc == 0 && c->f_model)
        rc = load_config(c);
    return rc;
}

static int model_providers(ctl_t *c)
{
    const cfg_model_t *m = cfg_model_find(c->cfg, c->f_model, strlen(c->f_model));
    vw_buf_t names = {0};

    if (!m) {
        for (unsigned i = 0; i < c->cfg->models_count; i++)
            vw_buf_printf(&names, "%s%s", i ? ", " : "", c->cfg->models[i].name);
        int rc = ctl_fail(CTL_EXIT_USAGE, "no model or alias \"%s\" in %s (models: %s)", c->f_model,
                          c->config_path, names.p ? names.p : "none");
        vw_buf_free(&names);
        return rc;
    }
    c->model_providers = calloc(m->deployments_count + 1, sizeof(*c->model_providers));
    if (!c->model_providers)
        return ctl_fail(CTL_EXIT_STORE, "out of memory");
    for (unsigned i = 0; i < m->deployments_count; i++) {
        const char *p = m->deployments[i].provider;
        unsigned j = 0;
        while (j < c->n_model_providers && strcmp(c->model_providers[j], p) != 0)
            j++;
        if (j == c->n_model_providers)
            c->model_providers[c->n_model_providers++] = p;
    }
    return 0;
}

static int missing(ctl_t *c)
{
    return ctl_fail(CTL_EXIT_STORE,
                    "no store in %s (from %s; is llmgate configured with state_dir: %s? start it "
                    "once to create the store)",
                    c->state_dir, c->state_from, c->state_dir);
}

int ctl_open(ctl_t *c, int write)
{
    shm_opts_t o = {0};
    char err[1024], path[PATH_MAX + 16];
    struct stat st;
    int rc;

    if ((rc = locate(c)) != 0)
        return rc;
    if (c->f_model && (rc = model_providers(c)) != 0)
        return rc;
    if (stat(c->state_dir, &st) != 0 && errno == ENOENT)
        return missing(c);
    snprintf(path, sizeof(path), "%s/data.mdb", c->state_dir);
    if (write && stat(path, &st) != 0 && errno == ENOENT)
        return missing(c);
    o.dir = c->state_dir;
    o.readonly = !write;
    rc = shm_store_open(&o, SHM_NOW, &c->shm, err, sizeof(err));
    if (rc == SHM_ENOTFOUND)
        return missing(c);
    if (rc == SHM_EVERSION)
        return ctl_fail(CTL_EXIT_STORE,
                        "%s\n(this llmgatectl reads store schema %d: use the llmgatectl of the "
                        "same release as the server)",
                        shm_msg(err), SHM_SCHEMA_VERSION);
    if (rc != 0)
        return ctl_fail(
            CTL_EXIT_STORE, "cannot open the store in %s (from %s): %s%s", c->state_dir,
            c->state_from, err[0] ? shm_msg(err) : shm_strerror(rc),
            strstr(err, "owned by") ? "\n(run llmgatectl as the user the server runs as)" : "");
    c->now_ms = ctl_now_ms();
    return 0;
}

void ctl_close(ctl_t *c)
{
    shm_store_close(c->shm);
    c->shm = NULL;
    cfg_free(c->cfg);
    c->cfg = NULL;
    free(c->model_providers);
    c->model_providers = NULL;
}

int ctl_store_error(ctl_t *c, int rc, const char *what, const char *name)
{
    char nb[SHM_NAME_MAX * 2 + 2], rec[256];
    if (rc == SHM_ECORRUPT && shm_store_corrupt(c->shm, rec, sizeof(rec)))
        return ctl_fail(CTL_EXIT_STORE,
                        "%s%s%s: store %s: %s: %s\n(the store is damaged: stop the server, "
                        "remove the state dir and start the server again: it starts afresh)",
                        what, name ? " " : "", name ? vw_printable(name, nb, sizeof(nb)) : "",
                        c->state_dir, shm_strerror(rc), rec);
    if (rc == SHM_ENOTFOUND && name)
        return ctl_fail(CTL_EXIT_NOTFOUND,
                        "no key \"%s\" in the store %s (`llmgatectl keys` lists them)",
                        vw_printable(name, nb, sizeof(nb)), c->state_dir);
    if (rc == SHM_EINVAL && name)
        return ctl_fail(CTL_EXIT_USAGE, "\"%s\" is not a key name (1 to %d bytes)",
                        vw_printable(name, nb, sizeof(nb)), SHM_NAME_MAX);
    return ctl_fail(CTL_EXIT_STORE, "%s%s%s: store %s: %s", what, name ? " " : "",
                    name ? vw_printable(name, nb, sizeof(nb)) : "", c->state_dir, shm_strerror(rc));
}

int ctl_write_out(const vw_buf_t *b)
{
    size_t off = 0;
    fflush(stdout);
    while (off < b->len) {
        size_t n = fwrite(b->p + off, 1, b->len - off, stdout);
        if (n == 0)
            return -1;
        off += n;
    }
    return fflush(stdout) == 0 ? 0 : -1;
}
