/* obs_tutil.h - helpers of the observability unit tests: configurations from text, temp
 * dirs, a checker of the Prometheus text format, series lookup, and a tiny HTTP receiver
 * that records what is POSTed to it. */
#ifndef LLMGATE_OBS_TUTIL_H
#define LLMGATE_OBS_TUTIL_H

#include <arpa/inet.h>
#include <ctype.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"

static inline cfg_t *tu_cfg(const char *yaml)
{
    static char err[8192];
    cfg_t *c = NULL;

    if (cfg_load_string(yaml, strlen(yaml), "t.yaml", &c, err, sizeof(err)) != 0) {
        printf("# config: %s\n", err);
        return NULL;
    }
    return c;
}

static int tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tu_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/obs-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline void tu_rmtree(const char *dir)
{
    nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static inline uint64_t tu_ms(void)
{
    return uv_hrtime() / 1000000;
}

static inline void tu_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the Prometheus text format ------------------------------------------------------- */

static int tu_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

/* Checks text line by line: HELP then TYPE once per family, before its samples; samples of
 * a family together; names and labels well formed, label values escaped (only \\ \" \n);
 * values are numbers. Returns the number of problems (each printed as a TAP comment);
 * *samples gets the number of samples. */
static inline int tu_prom_check(const char *text, int *samples)
{
    char family[256] = "", type[32] = "", seen[64][128];
    int nseen = 0, bad = 0, lineno = 0;
    const char *p = text;

    *samples = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[4096];

        lineno++;
        if (!eol) {
            printf("#   line %d: no final line feed\n", lineno);
            bad++;
        }
        if (len >= sizeof(line)) {
            printf("#   line %d: too long\n", lineno);
            bad++;
            break;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (eol ? 1 : 0);
        if (strncmp(line, "# HELP ", 7) == 0) {
            char name[256];
            if (sscanf(line + 7, "%255s", name) != 1 || !tu_name_ok(name, strlen(name))) {
                printf("#   line %d: bad HELP: %s\n", lineno, line);
                bad++;
            }
            for (const char *c = line + 7; *c; c++)
                if (c[0] == '\\' && c[1] != '\\' && c[1] != 'n') {
                    printf("#   line %d: bad escape in HELP\n", lineno);
                    bad++;
                    break;
                } else if (c[0] == '\\')
                    c++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            if (sscanf(line + 7, "%255s %31s", family, type) != 2 ||
                (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
                 strcmp(type, "summary") && strcmp(type, "untyped"))) {
                printf("#   line %d: bad TYPE: %s\n", lineno, line);
                bad++;
            }
            for (int i = 0; i < nseen; i++)
                if (strcmp(seen[i], family) == 0) {
                    printf("#   line %d: family %s announced twice\n", lineno, family);
                    bad++;
                }
            if (nseen < 64)
                snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') {
            printf("#   line %d: unexpected: %s\n", lineno, line);
            bad++;
            continue;
        }
        {
            size_t n = strcspn(line, "{ ");
            const char *c = line + n;
            char *end;
            int ok = tu_name_ok(line, n);
            size_t fl = strlen(family);

            /* the sample belongs to the family announced last */
            if (ok && !(n == fl && strncmp(line, family, n) == 0)) {
                const char *suf = line + fl;
                ok = strcmp(type, "histogram") == 0 && n > fl && strncmp(line, family, fl) == 0 &&
                     ((n - fl == 7 && strncmp(suf, "_bucket", 7) == 0) ||
                      (n - fl == 4 && strncmp(suf, "_sum", 4) == 0) ||
                      (n - fl == 6 && strncmp(suf, "_count", 6) == 0));
            }
            if (ok && *c == '{') {
                c++;
                while (ok && *c != '}') {
                    size_t ln = strcspn(c, "=");
                    ok = tu_name_ok(c, ln) && c[ln] == '=' && c[ln + 1] == '"';
                    c += ln + 2;
                    while (ok && *c && *c != '"') {
                        if (*c == '\\') {
                            ok = c[1] == '\\' || c[1] == '"' || c[1] == 'n';
                            c++;
                        }
                        c++;
                    }
                    ok = ok && *c == '"';
                    c++;
                    if (ok && *c == ',')
                        c++;
                    else
                        ok = ok && *c == '}';
                }
                c++;
            }
            ok = ok && *c == ' ';
            if (ok) {
                c++;
                if (strcmp(c, "+Inf") && strcmp(c, "-Inf") && strcmp(c, "NaN")) {
                    strtod(c, &end);
                    ok = end != c && *end == '\0';
                }
            }
            if (!ok) {
                printf("#   line %d: bad sample (family %s): %s\n", lineno, family, line);
                bad++;
            }
            (*samples)++;
        }
    }
    return bad;
}

/* The value of the sample whose name and labels are exactly series, NAN if absent. */
static inline double tu_prom_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while (p && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NAN;
}

/* ---- an HTTP receiver: records each request body, answers `status` ------------------- */

#define TU_RX_MAX 64

typedef struct tu_rx_s {
    int fd, port;
    int status; /* what to answer */
    uv_thread_t thread;
    uv_mutex_t lock;
    int stop;
    int n;
    char *body[TU_RX_MAX];
    char *head[TU_RX_MAX];
    uint64_t at_ms[TU_RX_MAX];
} tu_rx_t;

static void tu_rx_main(void *arg)
{
    tu_rx_t *rx = arg;

    for (;;) {
        char buf[65536];
        size_t got = 0;
        long clen = -1;
        char *hend = NULL;
        int c = accept(rx->fd, NULL, NULL);
        int stop;

        uv_mutex_lock(&rx->lock);
        stop = rx->stop;
        uv_mutex_unlock(&rx->lock);
        if (c < 0 || stop) {
            if (c >= 0)
                close(c);
            if (stop)
                return;
            continue;
        }
        while (got < sizeof(buf) - 1) {
            ssize_t r = recv(c, buf + got, sizeof(buf) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            if (!hend && (hend = strstr(buf, "\r\n\r\n")) != NULL) {
                const char *cl = strcasestr(buf, "content-length:");
                clen = cl && cl < hend ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (hend && (long)(got - (size_t)(hend + 4 - buf)) >= clen)
                break;
        }
        buf[got] = '\0';
        uv_mutex_lock(&rx->lock);
        if (rx->n < TU_RX_MAX && hend) {
            rx->head[rx->n] = strndup(buf, (size_t)(hend - buf));
            rx->body[rx->n] = strdup(hend + 4);
            rx->at_ms[rx->n] = tu_ms();
            rx->n++;
        }
        uv_mutex_unlock(&rx->lock);
        {
            char resp[128];
            int n = snprintf(resp, sizeof(resp),
                             "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                             rx->status);
            if (send(c, resp, (size_t)n, MSG_NOSIGNAL) < 0)
                perror("send");
        }
        close(c);
    }
}

static inline int tu_rx_start(tu_rx_t *rx, int status)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    memset(rx, 0, sizeof(*rx));
    rx->status = status;
    rx->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rx->fd < 0 || bind(rx->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(rx->fd, 16) != 0 || getsockname(rx->fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    rx->port = ntohs(a.sin_port);
    uv_mutex_init(&rx->lock);
    return uv_thread_create(&rx->thread, tu_rx_main, rx);
}

static inline int tu_rx_count(tu_rx_t *rx)
{
    int n;

    uv_mutex_lock(&rx->lock);
    n = rx->n;
    uv_mutex_unlock(&rx->lock);
    return n;
}

/* Occurrences of needle in all bodies received. */
static inline int tu_rx_find(tu_rx_t *rx, const char *needle)
{
    int hits = 0;

    uv_mutex_lock(&rx->lock);
    for (int i = 0; i < rx->n; i++)
        for (const char *p = rx->body[i]; (p = strstr(p, needle)) != NULL; p++)
            hits++;
    uv_mutex_unlock(&rx->lock);
    return hits;
}

static inline void tu_rx_stop(tu_rx_t *rx)
{
    struct sockaddr_in a;
    int c;

    uv_mutex_lock(&rx->lock);
    rx->stop = 1;
    uv_mutex_unlock(&rx->lock);
    /* wake accept() */
    c = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)rx->port);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
        perror("connect");
    close(c);
    uv_thread_join(&rx->thread);
    close(rx->fd);
    uv_mutex_destroy(&rx->lock);
    for (int i = 0; i < rx->n; i++) {
        free(rx->body[i]);
        free(rx->head[i]);
    }
}

#endif
