/* secret.c - where a key's secret comes from, and what a usable one looks like.
 *
 * A key takes its secret from exactly one of secret_env (an environment variable),
 * secret_file (a file; one final "\n" or "\r\n" is stripped because editors add it) or
 * secret (inline, only with allow_inline_secrets: true). The value must then be fit to go
 * into a header as it is: not empty, no surrounding whitespace or newline, no pasted
 * "Bearer " prefix, no control characters, spaces or non-ASCII bytes.
 *
 * A secret's value never enters a message: problems name the key, and the variable or file
 * it came from. Buffers that held a secret are wiped before they are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_int.h"

#define SECRET_FILE_MAX 65536 /* a key is a few hundred bytes at most */

/* ASCII only, whatever the locale. */
static int ascii_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Reads a secret file whole; strips one final "\n" or "\r\n" (editors add it). Returns the
 * malloc'd value, or NULL with *why set ("" when errno says it). */
static char *read_secret_file(const char *path, size_t *len, const char **why, int *err)
{
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *why = "";
    *err = 0;
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        *why = "out of memory";
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err = errno;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > SECRET_FILE_MAX) {
            *why = "is larger than 64 KiB (it should hold only the key)";
            goto fail;
        }
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    if (buf) {
        explicit_bzero(buf, SECRET_FILE_MAX + 1);
        free(buf);
    }
    close(fd);
    return NULL;
}

/* What is wrong with a secret value, or NULL. Never quotes the value. */
static const char *secret_problem(const char *s, size_t n)
{
    if (n == 0)
        return "is empty";
    if (strlen(s) != n)
        return "contains a NUL byte";
    if (n >= 7 && strncasecmp(s, "bearer", 6) == 0 && (s[6] == ' ' || s[6] == '\t'))
        return "starts with \"Bearer \" (configure the bare key; llmgate adds the prefix)";
    if (s[n - 1] == '\n' || s[n - 1] == '\r')
        return "ends with a newline (remove it)";
    if (ascii_space(s[0]) || ascii_space(s[n - 1]))
        return "has leading or trailing whitespace (remove it)";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return "contains control characters or line breaks (not allowed in a header)";
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ')
            return "contains a space (API keys have none)";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return "contains non-ASCII characters (API keys are plain ASCII)";
    return NULL;
}

int cfg_env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!ascii_alnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static void fingerprint(cfg_key_t *k)
{
    unsigned char sum[32];
    static const char hex[] = "0123456789abcdef";

    mbedtls_sha256_ret((const unsigned char *)k->secret, strlen(k->secret), sum, 0);
    for (int i = 0; i < 6; i++) {
        k->fingerprint[2 * i] = hex[sum[i] >> 4];
        k->fingerprint[2 * i + 1] = hex[sum[i] & 15];
    }
    k->fingerprint[12] = '\0';
    explicit_bzero(sum, sizeof(sum));
}

#define CRED_VAR "${CREDENTIALS_DIRECTORY}"

int cfg_path_expand(char **file, const char *path, cfg_report_t *rep)
{
    const size_t n = sizeof(CRED_VAR) - 1;
    const char *dir;
    char *s;

    if (!*file || strncmp(*file, CRED_VAR, n) != 0)
        return 0;
    dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) {
        if (!(rep->flags & CFG_LOAD_NO_SECRETS))
            cfg_report_add(rep, path,
                           "\"%s\" names ${CREDENTIALS_DIRECTORY}, which is not set (systemd "
                           "sets it for a unit with LoadCredential=; elsewhere export it as "
                           "the directory that holds the files)",
                           *file);
        return -1;
    }
    s = malloc(strlen(dir) + strlen(*file + n) + 1);
    if (!s) {
        rep->oom = 1;
        return -1;
    }
    strcpy(s, dir);
    strcat(s, *file + n);
    free(*file);
    *file = s;
    return 0;
}

void cfg_secret_resolve(const cfg_t *cfg, cfg_key_t *k, const char *kp, cfg_report_t *rep)
{
    char path[CFG_PATH_MAX], from[320], nb[80];
    const char *name = cfg_shown(k->name, nb, sizeof(nb)), *why;
    int sources = !!k->secret_env + !!k->secret_file + !!k->secret;
    size_t len = 0;

    if (sources != 1) {
        cfg_report_add(rep, kp,
                       "key \"%s\" needs exactly one of secret_env, secret_file or secret "
                       "(found %d)",
                       name, sources);
        return;
    }
    if (k->secret) {
        cfg_path_fmt(path, sizeof(path), "%s.secret", kp);
        if (!cfg->allow_inline_secrets) {
            cfg_report_add(rep, path,
                           "key \"%s\": inline secrets are refused (use secret_env or "
                           "secret_file, or set allow_inline_secrets: true)",
                           name);
            return;
        }
        len = strlen(k->secret);
        snprintf(from, sizeof(from), "(inline)");
    } else if (k->secret_env) {
        const char *v;
        cfg_path_fmt(path, sizeof(path), "%s.secret_env", kp);
        if (!cfg_env_name_ok(k->secret_env)) {
            cfg_report_add(rep, path,
                           "key \"%s\": must be an environment variable name "
                           "([A-Za-z_][A-Za-z0-9_]*)",
                           name);
            return;
        }
        v = getenv(k->secret_env);
        if (!v || !*v) {
            cfg_report_add(rep, path,
                           "key \"%s\": environment variable %s is %s (export it with the "
                           "key before starting llmgate)",
                           name, k->secret_env, v ? "empty" : "not set");
            return;
        }
        k->secret = strdup(v);
        if (!k->secret) {
            rep->oom = 1;
            return;
        }
        len = strlen(k->secret);
        snprintf(from, sizeof(from), "(from environment variable %s)", k->secret_env);
    } else {
        int err;
        cfg_path_fmt(path, sizeof(path), "%s.secret_file", kp);
        if (cfg_path_expand(&k->secret_file, path, rep) != 0)
            return;
        k->secret = read_secret_file(k->secret_file, &len, &why, &err);
        if (!k->secret) {
            cfg_report_add(rep, path, "key \"%s\": cannot use secret_file \"%s\": %s", name,
                           k->secret_file, err ? strerror(err) : why);
            return;
        }
        snprintf(from, sizeof(from), "(from secret_file \"%s\")", k->secret_file);
    }
    why = secret_problem(k->secret, len);
    if (why) {
        cfg_report_add(rep, path, "the secret of key \"%s\" %s %s", name, from, why);
        return;
    }
    fingerprint(k);
}
