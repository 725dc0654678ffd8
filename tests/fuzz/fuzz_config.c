/* fuzz_config.c - the configuration loader (config/) on arbitrary YAML.
 *
 * Every input is loaded twice, as the server does and as llmgatectl does
 * (CFG_LOAD_NO_SECRETS). Checks: the message is NUL-terminated inside its buffer and names
 * the file; a loaded configuration is internally consistent (references resolved, every
 * model found by its name and aliases, client keys resolved) and frees cleanly.
 *
 * secret_file may name any path; a FIFO or a character device would block the loader (as
 * it would the server, which is the operator's business, not an attacker's), so open() of
 * anything but a regular file outside /proc, /sys and /dev fails here (-Wl,--wrap=open64).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"

int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);
int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);

static int path_safe(const char *path)
{
    char real[PATH_MAX];
    struct stat st;

    if (!realpath(path, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return strncmp(real, "/proc/", 6) && strncmp(real, "/sys/", 5) && strncmp(real, "/dev/", 5);
}

int __wrap_open64(const char *path, int flags, ...)
{
    if (!path_safe(path) || (flags & (O_WRONLY | O_RDWR | O_CREAT))) {
        errno = EACCES;
        return -1;
    }
    return __real_open64(path, flags);
}

int __wrap_open(const char *path, int flags, ...)
{
    if (!path_safe(path) || (flags & (O_WRONLY | O_RDWR | O_CREAT))) {
        errno = EACCES;
        return -1;
    }
    return __real_open(path, flags);
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
        abort();
    }
}

static void check_cfg(const cfg_t *c)
{
    check(c->listen_count >= 1 && c->workers >= 1 && c->state_dir && c->providers_count >= 1 &&
              c->models_count >= 1,
          "a loaded configuration is complete");
    for (unsigned i = 0; i < c->models_count; i++) {
        const cfg_model_t *m = &c->models[i];
        check(cfg_model_find(c, m->name, strlen(m->name)) == m, "model found by its name");
        for (unsigned a = 0; a < m->aliases_count; a++)
            check(cfg_model_find(c, m->aliases[a], strlen(m->aliases[a])) == m,
                  "model found by its alias");
        for (unsigned d = 0; d < m->deployments_count; d++)
            check(m->deployments[d].provider_ref != NULL, "deployment provider resolved");
        for (unsigned f = 0; f < m->fallbacks_count; f++)
            check(m->fallback_refs && m->fallback_refs[f] && m->fallback_refs[f] != m,
                  "fallback resolved");
    }
    for (unsigned p = 0; p < c->providers_count; p++)
        for (unsigned k = 0; k < c->providers[p].keys_count; k++)
            check(cfg_key_find(c, c->providers[p].keys[k].name, NULL) == &c->providers[p].keys[k],
                  "key names unique");
    for (unsigned i = 0; i < c->client_keys_count; i++)
        check(cfg_client_find(c, c->client_keys[i].name) == &c->client_keys[i],
              "client key names unique");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char err[2048];
    cfg_t *c = NULL;

    if (!ready) {
        /* what the seed corpus names, so that valid inputs load all the way */
        setenv("FUZZ_KEY_1", "sk-fuzz-1", 1);
        setenv("FUZZ_KEY_2", "sk-fuzz-2", 1);
        setenv("FUZZ_CLIENT_1", "sk-fuzz-client-1", 1);
        setenv("DEMO_KEY_A1", "demo-a1", 1);
        setenv("DEMO_KEY_A2", "demo-a2", 1);
        setenv("DEMO_KEY_B1", "demo-b1", 1);
        ready = 1;
    }
    for (unsigned flags = 0; flags <= CFG_LOAD_NO_SECRETS; flags += CFG_LOAD_NO_SECRETS) {
        memset(err, 'x', sizeof(err));
        int rc =
            cfg_load_string_ex((const char *)data, size, "fuzz.yaml", flags, &c, err, sizeof(err));
        check(memchr(err, '\0', sizeof(err)) != NULL, "message NUL-terminated in its buffer");
        if (rc == 0) {
            check(c != NULL && err[0] == '\0', "success: a configuration, no message");
            check_cfg(c);
            cfg_free(c);
            c = NULL;
        } else {
            check(rc == -1 && c == NULL, "failure: -1 and no configuration");
            check(strncmp(err, "config: fuzz.yaml:", 18) == 0, "message names the file");
        }
    }
    return 0;
}
