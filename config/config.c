/* config.c - loading a configuration: the passes in order, libcyaml's errors in our words,
 * the problem report, cfg_free() and the lookups.
 *
 * libcyaml stops at the first problem it meets and tells it through its log callback as a
 * message ("Unexpected key: bogus") followed by a backtrace ("in mapping field 'rpm'",
 * "in sequence entry '2'", ...). The backtrace gives the YAML path; the libyaml tree gives
 * the line and the value as written; the schema gives what would have been allowed. The
 * message we print is built from those three, never from libcyaml's text, so a value is
 * quoted only where we decide it may be.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"

#define CONFIG_FILE_MAX (16u << 20) /* no configuration comes near this */

/* ---- helpers shared by the passes ----------------------------------------------------- */

char *cfg_path_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0 && len)
        buf[0] = '\0';
    va_end(ap);
    return buf;
}

static int path_is_secret(const char *path)
{
    size_t n = strlen(path);

    return n >= 6 && strcmp(path + n - 6, "secret") == 0 && (n == 6 || path[n - 7] == '.');
}

void cfg_got(const ynode_t *node, const char *path, char *buf, size_t len)
{
    size_t o = 0, i;

    if (!node) {
        snprintf(buf, len, "nothing");
    } else if (path_is_secret(path)) {
        snprintf(buf, len, "a value that is not shown");
    } else if (node->kind == YNODE_SEQ) {
        snprintf(buf, len, "a list");
    } else if (node->kind == YNODE_MAP) {
        snprintf(buf, len, "a mapping");
    } else if (node->plain && (node->text_len == 0 || strcmp(node->text, "~") == 0 ||
                               strcasecmp(node->text, "null") == 0)) {
        snprintf(buf, len, "nothing");
    } else if (len > 8) {
        buf[o++] = '"';
        for (i = 0; i < node->text_len && i < 40 && o + 6 < len; i++) {
            unsigned char c = (unsigned char)node->text[i];
            if (c == '"' || c == '\\')
                buf[o++] = '\\';
            buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        if (i < node->text_len) {
            memcpy(buf + o, "...", 3);
            o += 3;
        }
        buf[o++] = '"';
        buf[o] = '\0';
    } else if (len) {
        buf[0] = '\0';
    }
}

/* A name in a message: names are not secret, but keep them short and printable. */
const char *cfg_shown(const char *s, char *buf, size_t len)
{
    size_t i = 0;

    for (; s[i] && i < 64 && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* ---- the report ------------------------------------------------------------------------ */

static void report_vadd(cfg_report_t *r, unsigned line, const char *path, const char *fmt,
                        va_list ap)
{
    char msg[1024], text[1400];
    cfg_problem_t *p;

    if (r->n == r->cap) {
        unsigned cap = r->cap ? r->cap * 2 : 16;
        cfg_problem_t *v = realloc(r->v, cap * sizeof(*v));
        if (!v) {
            r->oom = 1;
            return;
        }
        r->v = v;
        r->cap = cap;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(text, sizeof(text), "config: %s:%u: %s: %s", r->file, line,
             *path ? path : "(top level)", msg);
    p = &r->v[r->n];
    p->text = strdup(text);
    if (!p->text) {
        r->oom = 1;
        return;
    }
    p->line = line;
    p->seq = r->n++;
}

void cfg_report_add(cfg_report_t *r, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_vadd(r, ytree_line(r->root, path), path, fmt, ap);
    va_end(ap);
}

void cfg_report_add_line(cfg_report_t *r, unsigned line, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_vadd(r, line, path, fmt, ap);
    va_end(ap);
}

static int problem_cmp(const void *a, const void *b)
{
    const cfg_problem_t *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* All problems, one per line, by line number; what does not fit is counted instead. */
static void report_format(cfg_report_t *r, char *err, size_t errlen)
{
    size_t o = 0;
    unsigned i;

    if (!err || !errlen)
        return;
    err[0] = '\0';
    qsort(r->v, r->n, sizeof(*r->v), problem_cmp);
    for (i = 0; i < r->n; i++) {
        size_t len = strlen(r->v[i].text) + (o ? 1 : 0);
        if (o + len + 64 >= errlen && i + 1 < r->n)
            break; /* keep room for the count */
        if (o + len >= errlen)
            break;
        o += (size_t)snprintf(err + o, errlen - o, "%s%s", o ? "\n" : "", r->v[i].text);
    }
    if (i < r->n)
        snprintf(err + o, errlen - o, "%sconfig: %s: %u more problem(s) not shown", o ? "\n" : "",
                 r->file, r->n - i);
}

static void report_free(cfg_report_t *r)
{
    for (unsigned i = 0; i < r->n; i++)
        free(r->v[i].text);
    free(r->v);
}

/* ---- libcyaml -------------------------------------------------------------------------- */

/* libcyaml allocates through this; zeroed new blocks, and the same heap as strdup(), so
 * cfg_free() can hand everything to cyaml_free() including strings set after loading. */
static void *cfg_mem(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return ptr ? realloc(ptr, size) : calloc(1, size);
}

static const cyaml_config_t free_config = {
    .mem_fn = cfg_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_NO_ALIAS,
};

typedef struct cy_log_s {
    char buf[4096];
    size_t len;
} cy_log_t;

static void on_cyaml_log_cb(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    cy_log_t *l = ctx;
    int n;

    if (level < CYAML_LOG_ERROR || l->len + 1 >= sizeof(l->buf))
        return;
    n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, args);
    if (n > 0)
        l->len += (size_t)n < sizeof(l->buf) - l->len ? (size_t)n : sizeof(l->buf) - l->len - 1;
}

/* Turns libcyaml's backtrace into a path. Frames come innermost first; for a missing key the
 * innermost frame is the mapping itself (naming whichever field it saw last), so it is
 * skipped when drop_inner is set. */
static void backtrace_path(const char *log, int drop_inner, char *path, size_t len)
{
    struct {
        int seq;
        char name[64];
        unsigned idx;
    } fr[64];
    unsigned n = 0;
    size_t o = 0;

    for (const char *line = log; *line && n < 64;) {
        const char *eol = line + strcspn(line, "\n");
        const char *in = strstr(line, "in ");
        if (in && in < eol) {
            const char *p;
            if (strncmp(in, "in mapping field", 16) == 0) {
                size_t k;
                p = in + 16;
                p += strspn(p, " :'");
                k = strcspn(p, "'\n (");
                if (k >= sizeof(fr[n].name))
                    k = sizeof(fr[n].name) - 1;
                memcpy(fr[n].name, p, k);
                fr[n].name[k] = '\0';
                fr[n].seq = 0;
                n++;
            } else if (strncmp(in, "in sequence entry", 17) == 0) {
                p = in + 17;
                p += strspn(p, " :'");
                fr[n].idx = (unsigned)strtoul(p, NULL, 10);
                fr[n].seq = 1;
                n++;
            } else if (strncmp(in, "in mapping", 10) == 0) {
                fr[n].name[0] = '\0';
                fr[n].seq = 0;
                n++;
            }
        }
        line = *eol ? eol + 1 : eol;
    }
    if (drop_inner && n > 0 && !fr[0].seq)
        memmove(fr, fr + 1, --n * sizeof(fr[0]));
    path[0] = '\0';
    while (n-- > 0 && o < len) {
        int w = 0;
        if (fr[n].seq) /* libcyaml counts entries from 1 */
            w = snprintf(path + o, len - o, "[%u]", fr[n].idx ? fr[n].idx - 1 : 0);
        else if (fr[n].name[0])
            w = snprintf(path + o, len - o, "%s%s", o ? "." : "", fr[n].name);
        if (w > 0)
            o += (size_t)w;
    }
}

/* The first key of mapping node at path that the schema does not know, or that the schema
 * requires and the node lacks. */
static const char *first_key(const ynode_t *map, const cyaml_schema_value_t *v, int missing)
{
    const cyaml_schema_field_t *f;

    if (!v || v->type != CYAML_MAPPING)
        return NULL;
    if (missing) {
        for (f = v->mapping.fields; f->key; f++)
            if (!(f->value.flags & CYAML_FLAG_OPTIONAL) && !ytree_child(map, f->key))
                return f->key;
        return NULL;
    }
    for (unsigned i = 0; map && map->kind == YNODE_MAP && i < map->nkids; i++) {
        for (f = v->mapping.fields; f->key; f++)
            if (strcmp(f->key, map->kids[i]->key) == 0)
                break;
        if (!f->key)
            return map->kids[i]->key;
    }
    return NULL;
}

static void report_cyaml_error(cfg_report_t *rep, cyaml_err_t e, const cy_log_t *log)
{
    char path[CFG_PATH_MAX], sub[CFG_PATH_MAX], expect[200], got[96], allowed[512];
    const cyaml_schema_value_t *v;
    const ynode_t *node;
    const char *key;

    backtrace_path(log->buf, e == CYAML_ERR_MAPPING_FIELD_MISSING, path, sizeof(path));
    node = ytree_get(rep->root, path, NULL);
    if (e == CYAML_ERR_INVALID_KEY && (!node || node->kind != YNODE_MAP)) {
        /* the innermost frame named a field of the mapping, not the mapping */
        backtrace_path(log->buf, 1, path, sizeof(path));
        node = ytree_get(rep->root, path, NULL);
    }
    v = cfg_schema_at(path);
    switch (e) {
    case CYAML_ERR_INVALID_KEY:
        key = first_key(node, v, 0);
        cfg_schema_keys(v, allowed, sizeof(allowed));
        if (key) {
            char k[48];
            size_t i = 0;
            for (; key[i] && i < 40; i++)
                k[i] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
            k[i] = '\0';
            cfg_path_fmt(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
            cfg_report_add_line(rep, ytree_child(node, key)->line, sub, "unknown key (%s)",
                                allowed);
        } else {
            cfg_report_add(rep, path, "has an unknown key (%s)", allowed);
        }
        break;
    case CYAML_ERR_MAPPING_FIELD_MISSING:
        key = first_key(node, v, 1);
        cfg_path_fmt(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key ? key : "?");
        cfg_report_add_line(rep, ytree_line(rep->root, path), sub, "is required but missing");
        break;
    case CYAML_ERR_INVALID_VALUE:
    case CYAML_ERR_UNEXPECTED_EVENT:
    case CYAML_ERR_STRING_LENGTH_MIN:
    case CYAML_ERR_STRING_LENGTH_MAX:
    case CYAML_ERR_SEQUENCE_ENTRIES_MIN:
    case CYAML_ERR_SEQUENCE_ENTRIES_MAX:
        cfg_schema_expect(path, v, expect, sizeof(expect));
        cfg_got(node, path, got, sizeof(got));
        cfg_report_add(rep, path, "%s (got %s)", expect, got);
        break;
    case CYAML_ERR_OOM:
        cfg_report_add(rep, path, "out of memory while loading");
        break;
    default:
        cfg_report_add(rep, path, "cannot be loaded: %s", cyaml_strerror(e));
        break;
    }
}

static int load_cyaml(const char *yaml, size_t len, cfg_report_t *rep, cfg_t **cfg)
{
    cy_log_t log = {.len = 0};
    cyaml_config_t config = free_config;
    cyaml_err_t e;

    config.log_fn = on_cyaml_log_cb;
    config.log_ctx = &log;
    e = cyaml_load_data((const uint8_t *)yaml, len, &config, &cfg_schema, (cyaml_data_t **)cfg,
                        NULL);
    if (e == CYAML_OK)
        return 0;
    *cfg = NULL;
    report_cyaml_error(rep, e, &log);
    explicit_bzero(log.buf, sizeof(log.buf));
    return -1;
}

/* ---- public ---------------------------------------------------------------------------- */

int cfg_load_string(const char *yaml, size_t len, const char *name, cfg_t **out, char *err,
                    size_t errlen)
{
    return cfg_load_string_ex(yaml, len, name, 0, out, err, errlen);
}

int cfg_load_string_ex(const char *yaml, size_t len, const char *name, unsigned flags, cfg_t **out,
                       char *err, size_t errlen)
{
    cfg_report_t rep = {.file = name ? name : "(string)", .flags = flags};
    ynode_t *root = NULL;
    ytree_error_t yerr;
    cfg_t *cfg = NULL;
    int rc = -1;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (ytree_parse(yaml, len, &root, &yerr) < 0) {
        cfg_report_add_line(&rep, yerr.line, yerr.path, "%s", yerr.msg);
        goto exit;
    }
    rep.root = root;
    if (!root || (root->kind == YNODE_SCALAR && root->plain && root->text_len == 0)) {
        cfg_report_add_line(&rep, 1, "",
                            "the file is empty (expected a mapping with listen, providers and "
                            "models)");
        goto exit;
    }
    if (load_cyaml(yaml, len, &rep, &cfg) < 0)
        goto exit;
    if (!cfg) {
        cfg_report_add_line(&rep, 1, "", "the file holds no configuration");
        goto exit;
    }
    cfg->path = strdup(rep.file);
    if (!cfg->path)
        rep.oom = 1;
    cfg_schema_check(cfg, root, &rep);
    cfg_validate(cfg, root, &rep);
    if (rep.oom)
        cfg_report_add_line(&rep, 1, "", "out of memory while loading");
    if (rep.n == 0) {
        *out = cfg;
        cfg = NULL;
        rc = 0;
    }
exit:
    if (rc)
        report_format(&rep, err, errlen);
    cfg_free(cfg);
    ytree_free(root);
    report_free(&rep);
    return rc;
}

int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen)
{
    return cfg_load_ex(path, 0, out, err, errlen);
}

int cfg_load_ex(const char *path, unsigned flags, cfg_t **out, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd, rc = -1;
    const char *why = NULL;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        why = strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if ((unsigned long long)st.st_size > CONFIG_FILE_MAX) {
        why = "larger than 16 MiB";
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        why = "out of memory";
    } else {
        while (n < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                why = r < 0 ? strerror(errno) : "file shrank while being read";
                break;
            }
            n += (size_t)r;
        }
    }
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "config: %s: cannot read the configuration: %s", path, why);
        goto exit;
    }
    rc = cfg_load_string_ex(buf, n, path, flags, out, err, errlen);
exit:
    if (fd >= 0)
        close(fd);
    if (buf) {
        explicit_bzero(buf, n); /* inline secrets, if allowed, were in it */
        free(buf);
    }
    return rc;
}

void cfg_free(cfg_t *cfg)
{
    if (!cfg)
        return;
    for (unsigned i = 0; i < cfg->providers_count; i++) {
        cfg_provider_t *p = &cfg->providers[i];
        free(p->host);
        free(p->base_path);
        free(p->host_header);
        for (unsigned k = 0; k < p->keys_count; k++)
            if (p->keys[k].secret)
                explicit_bzero(p->keys[k].secret, strlen(p->keys[k].secret));
    }
    for (unsigned i = 0; i < cfg->models_count; i++)
        free(cfg->models[i].fallback_refs);
    for (unsigned i = 0; i < cfg->listen_count; i++)
        free(cfg->listen[i]);
    free(cfg->listen);
    free(cfg->path);
    free(cfg->alerts.host); /* parsed from webhook_url, not in the schema */
    free(cfg->alerts.path);
    free(cfg->alerts.host_header);
    free(cfg->cluster.host); /* resolved from the cluster section, not in the schema */
    free(cfg->cluster.unix_path);
    if (cfg->cluster.password) {
        explicit_bzero(cfg->cluster.password, strlen(cfg->cluster.password));
        free(cfg->cluster.password);
    }
    /* what the schema describes, including secrets and state_dir set after loading */
    cyaml_free(&free_config, &cfg_schema, cfg, 0);
}

static int name_eq(const char *s, const char *name, size_t len)
{
    return strlen(s) == len && memcmp(s, name, len) == 0;
}

const cfg_model_t *cfg_model_find(const cfg_t *cfg, const char *name, size_t len)
{
    for (unsigned i = 0; i < cfg->models_count; i++) {
        const cfg_model_t *m = &cfg->models[i];
        if (name_eq(m->name, name, len))
            return m;
        for (unsigned a = 0; a < m->aliases_count; a++)
            if (name_eq(m->aliases[a], name, len))
                return m;
    }
    return NULL;
}

const cfg_key_t *cfg_key_find(const cfg_t *cfg, const char *name, const cfg_provider_t **prov)
{
    for (unsigned i = 0; i < cfg->providers_count; i++) {
        const cfg_provider_t *p = &cfg->providers[i];
        for (unsigned k = 0; k < p->keys_count; k++) {
            if (strcmp(p->keys[k].name, name) == 0) {
                if (prov)
                    *prov = p;
                return &p->keys[k];
            }
        }
    }
    if (prov)
        *prov = NULL;
    return NULL;
}
