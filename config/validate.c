/* validate.c - what the values of a loaded configuration mean, checked all at once.
 *
 * By the time this pass runs the shape is right (libcyaml) and every number is in range
 * (schema.c). Here: listen addresses, base URLs, names and their uniqueness, references
 * between providers and models and extra headers, what depends on a provider's api (its
 * default auth style, anthropic_version), key groups; secrets are secret.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_int.h"

#define NAME_MAX_LEN       63  /* provider and key names, key groups: store records, labels */
#define MODEL_NAME_MAX_LEN 256 /* client-facing and upstream model names */
#define VERSION_MAX_LEN    32  /* anthropic_version */

/* The anthropic-version llmgate's Messages API support is written against. */
#define ANTHROPIC_VERSION "2023-06-01"

/* ASCII only, whatever the locale. */
static int ascii_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ---- small predicates ------------------------------------------------------------------ */

static int is_tchar(int c) /* RFC 9110 token */
{
    return ascii_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Letters, digits, '.', '-' and '_' (some internal hosts use it). */
static int host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!ascii_alnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
            return 0;
    return 1;
}

static int ipv6_ok(const char *h, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Decimal port of 1 to 5 digits, up to 65535. */
static int port_parse(const char *s, size_t n, unsigned *port)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* Empty, longer than max, or a character other than an ASCII letter, a digit or one of
 * punct: the reason (perhaps written into buf), else NULL. */
static const char *token_problem(const char *s, size_t max, const char *punct, char *buf,
                                 size_t len)
{
    size_t n = strlen(s), o;

    if (n == 0)
        return "must not be empty";
    if (n > max)
        return cfg_path_fmt(buf, len, "must be at most %zu characters", max);
    for (size_t i = 0; i < n; i++) {
        if (ascii_alnum((unsigned char)s[i]) || strchr(punct, s[i]))
            continue;
        o = (size_t)snprintf(buf, len, "may contain only letters, digits");
        for (const char *c = punct; *c && o < len; c++)
            o += (size_t)snprintf(buf + o, len - o, "%s'%c'", c[1] ? ", " : " and ", *c);
        return buf;
    }
    return NULL;
}

/* Provider and key names, key groups: [A-Za-z0-9._-], 1 to 63 bytes. */
static const char *name_problem(const char *s, char *buf, size_t len)
{
    return token_problem(s, NAME_MAX_LEN, "._-", buf, len);
}

/* Model names are what clients send: printable ASCII without spaces. */
static const char *model_name_problem(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return "must not be empty";
    if (n > MODEL_NAME_MAX_LEN)
        return "must be at most 256 characters";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "may contain only printable ASCII characters and no spaces";
    return NULL;
}

/* ---- listen ---------------------------------------------------------------------------- */

static const char *listen_problem(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *h, *colon;
    size_t hn;
    unsigned p;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return "has an unclosed '[' (write [v6-address]:port)";
        h = s + 1;
        hn = (size_t)(close - h);
        if (!ipv6_ok(h, hn))
            return "has an invalid IPv6 address inside [ ]";
        if (close[1] != ':')
            return "needs a port after the address ([v6-address]:port)";
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return "needs a port (host:port)";
        h = s;
        hn = (size_t)(colon - s);
        if (memchr(h, ':', hn))
            return "has an IPv6 address without brackets (write [v6-address]:port)";
        if (!host_name_ok(h, hn))
            return "needs a host name or address before the ':' (e.g. 127.0.0.1:8080)";
    }
    if (port_parse(colon + 1, strlen(colon + 1), &p) < 0)
        return "has an invalid port (0-65535; 0 = any free port)";
    if (hn + 1 > hostlen)
        return "has a host name that is too long";
    if (host) {
        memcpy(host, h, hn);
        host[hn] = '\0';
    }
    if (port)
        *port = (uint16_t)p;
    return NULL;
}

int cfg_listen_parse(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    return listen_problem(s, host, hostlen, port) ? -1 : 0;
}

static void build_listen(cfg_t *cfg, const ynode_t *root, cfg_report_t *rep)
{
    const ynode_t *n = ytree_child(root, "listen");
    const ynode_t *const *items;
    unsigned count;

    if (!n) {
        cfg_report_add(rep, "listen",
                       "is required (at least one address, e.g. listen: [\"127.0.0.1:8080\"])");
        return;
    }
    if (n->kind == YNODE_MAP) {
        cfg_report_add(rep, "listen",
                       "must be a \"host:port\" string or a list of them (got a mapping)");
        return;
    }
    items = n->kind == YNODE_SEQ ? (const ynode_t *const *)n->kids : &n;
    count = n->kind == YNODE_SEQ ? n->nkids : 1;
    if (count == 0) {
        cfg_report_add(rep, "listen", "needs at least one address (e.g. \"127.0.0.1:8080\")");
        return;
    }
    cfg->listen = calloc(count, sizeof(*cfg->listen));
    if (!cfg->listen) {
        rep->oom = 1;
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        const ynode_t *it = items[i];
        char path[CFG_PATH_MAX], host[256];
        const char *why;

        if (n->kind == YNODE_SEQ)
            cfg_path_fmt(path, sizeof(path), "listen[%u]", i);
        else
            cfg_path_fmt(path, sizeof(path), "listen");
        if (it->kind != YNODE_SCALAR || strlen(it->text) != it->text_len) {
            cfg_report_add(rep, path, "must be a \"host:port\" string");
            continue;
        }
        why = listen_problem(it->text, host, sizeof(host), NULL);
        if (why) {
            char got[96];
            cfg_got(it, path, got, sizeof(got));
            cfg_report_add(rep, path, "%s (got %s)", why, got);
            continue;
        }
        for (unsigned j = 0; j < cfg->listen_count; j++)
            if (strcmp(cfg->listen[j], it->text) == 0)
                cfg_report_add(rep, path, "is listed twice (also listen[%u])", j);
        cfg->listen[cfg->listen_count] = strdup(it->text);
        if (!cfg->listen[cfg->listen_count]) {
            rep->oom = 1;
            return;
        }
        cfg->listen_count++;
    }
}

/* ---- providers ------------------------------------------------------------------------- */

/* Splits base_url into tls/host/port/base_path/host_header. Returns NULL or the reason. */
static const char *parse_base_url(cfg_provider_t *p)
{
    const char *u = p->base_url, *rest, *auth_end, *h, *after, *path;
    size_t hn, pn;
    unsigned port, def_port;
    int v6 = 0;

    if (strncasecmp(u, "https://", 8) == 0) {
        p->tls = 1;
        def_port = 443;
        rest = u + 8;
    } else if (strncasecmp(u, "http://", 7) == 0) {
        p->tls = 0;
        def_port = 80;
        rest = u + 7;
    } else {
        return "must start with http:// or https://";
    }
    port = def_port;
    for (const char *c = u; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return "must not contain spaces, control or non-ASCII characters";
    if (strpbrk(rest, "?#"))
        return "must not have a query or fragment ('?' or '#')";
    auth_end = rest + strcspn(rest, "/");
    if (memchr(rest, '@', (size_t)(auth_end - rest)))
        return "must not contain user:password@ (credentials belong in keys:)";
    if (*rest == '[') {
        const char *close = memchr(rest, ']', (size_t)(auth_end - rest));
        if (!close)
            return "has an unclosed '[' in the host";
        h = rest + 1;
        hn = (size_t)(close - h);
        if (!ipv6_ok(h, hn))
            return "has an invalid IPv6 address inside [ ]";
        v6 = 1;
        after = close + 1;
    } else {
        after = memchr(rest, ':', (size_t)(auth_end - rest));
        if (!after)
            after = auth_end;
        h = rest;
        hn = (size_t)(after - rest);
        if (hn == 0)
            return "has no host (http(s)://host[:port][/path])";
        if (!host_name_ok(h, hn))
            return "has an invalid host name";
    }
    if (after < auth_end) {
        if (*after != ':')
            return "has unexpected characters after the host";
        if (port_parse(after + 1, (size_t)(auth_end - after - 1), &port) < 0 || port == 0)
            return "has an invalid port (1-65535)";
    }
    path = auth_end;
    pn = strlen(path);
    while (pn > 0 && path[pn - 1] == '/')
        pn--;

    p->port = (uint16_t)port;
    p->host = strndup(h, hn);
    p->base_path = strndup(path, pn);
    p->host_header = malloc(hn + 16);
    if (!p->host || !p->base_path || !p->host_header)
        return "could not be stored (out of memory)";
    if (port == def_port)
        snprintf(p->host_header, hn + 16, "%s%.*s%s", v6 ? "[" : "", (int)hn, h, v6 ? "]" : "");
    else
        snprintf(p->host_header, hn + 16, "%s%.*s%s:%u", v6 ? "[" : "", (int)hn, h, v6 ? "]" : "",
                 port);
    return NULL;
}

/* Framing and hop-by-hop headers: llmgate writes them itself, per connection. */
static int header_fixed(const char *name)
{
    static const char *const fixed[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
        "te",   "trailer",        "proxy-connection",
    };

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcasecmp(name, fixed[i]) == 0)
            return 1;
    return 0;
}

/* Headers an extra header must not replace: the fixed ones and the credential. */
static int header_reserved(const char *name, const cfg_provider_t *p)
{
    if (header_fixed(name))
        return 1;
    if (p->api == CFG_API_ANTHROPIC && strcasecmp(name, "anthropic-version") == 0)
        return 1;
    if (p->auth == CFG_AUTH_BEARER && strcasecmp(name, "authorization") == 0)
        return 1;
    if (p->auth == CFG_AUTH_X_API_KEY && strcasecmp(name, "x-api-key") == 0)
        return 1;
    return p->auth == CFG_AUTH_HEADER && p->auth_header && strcasecmp(name, p->auth_header) == 0;
}

static const char *header_name_problem(const char *name)
{
    if (!*name)
        return "must not be empty";
    for (const char *c = name; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)";
    return NULL;
}

/* What follows from api: the default auth style and anthropic_version. Runs before the
 * auth and header checks, which depend on the auth style. */
static void check_api(cfg_provider_t *p, const char *pp, cfg_report_t *rep)
{
    char path[CFG_PATH_MAX], buf[80], nb[80];
    const char *why;

    /* Anthropic wants x-api-key; the default changes only where the file writes no auth:
     * (a relay in front of Anthropic may want auth: bearer, and says so) */
    cfg_path_fmt(path, sizeof(path), "%s.auth", pp);
    if (p->api == CFG_API_ANTHROPIC && !ytree_get(rep->root, path, NULL))
        p->auth = CFG_AUTH_X_API_KEY;
    /* Gemini wants the key in x-goog-api-key (never in the URL's ?key=, which logs keep) */
    if (p->api == CFG_API_GEMINI && !ytree_get(rep->root, path, NULL)) {
        p->auth = CFG_AUTH_HEADER;
        if (!p->auth_header && !(p->auth_header = strdup("x-goog-api-key")))
            rep->oom = 1;
    }
    cfg_path_fmt(path, sizeof(path), "%s.anthropic_version", pp);
    if (p->api != CFG_API_ANTHROPIC) {
        if (p->anthropic_version)
            cfg_report_add(rep, path,
                           "is only used with api: anthropic (remove it, or set api: anthropic)");
    } else if (!p->anthropic_version) {
        p->anthropic_version = strdup(ANTHROPIC_VERSION);
        if (!p->anthropic_version)
            rep->oom = 1;
    } else if ((why = token_problem(p->anthropic_version, VERSION_MAX_LEN, "-", buf,
                                    sizeof(buf))) != NULL) {
        cfg_report_add(rep, path,
                       "%s (got \"%s\"; the value of the anthropic-version header, e.g. "
                       "%s)",
                       why, cfg_shown(p->anthropic_version, nb, sizeof(nb)), ANTHROPIC_VERSION);
    }
}

static void check_auth(const cfg_provider_t *p, const char *pp, cfg_report_t *rep)
{
    char path[CFG_PATH_MAX];
    const char *why;

    cfg_path_fmt(path, sizeof(path), "%s.auth_header", pp);
    if (p->auth == CFG_AUTH_HEADER && !p->auth_header) {
        cfg_report_add(rep, path,
                       "is required with auth: header (the header that carries the key, "
                       "e.g. api-key)");
    } else if (p->auth != CFG_AUTH_HEADER && p->auth_header) {
        cfg_report_add(rep, path, "is only used with auth: header (remove it, or set auth)");
    } else if (p->auth_header && (why = header_name_problem(p->auth_header)) != NULL) {
        cfg_report_add(rep, path, "%s", why);
    } else if (p->auth_header && header_fixed(p->auth_header)) {
        cfg_report_add(rep, path, "must not be a header llmgate sets itself (got \"%s\")",
                       p->auth_header);
    }
}

static void check_headers(const cfg_provider_t *p, const char *pp, cfg_report_t *rep)
{
    for (unsigned i = 0; i < p->headers_count; i++) {
        const cfg_header_t *h = &p->headers[i];
        char path[CFG_PATH_MAX];
        const char *why = header_name_problem(h->name);
        int version = strcasecmp(h->name, "anthropic-version") == 0;

        cfg_path_fmt(path, sizeof(path), "%s.headers[%u].name", pp, i);
        if (why)
            cfg_report_add(rep, path, "%s", why);
        else if (header_reserved(h->name, p))
            cfg_report_add(rep, path,
                           "\"%s\" is set by llmgate itself (not allowed as an extra header%s)",
                           h->name, version ? "; write anthropic_version: instead" : "");
        cfg_path_fmt(path, sizeof(path), "%s.headers[%u].value", pp, i);
        for (const char *c = h->value; *c; c++) {
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
                /* the value is not shown: extra headers may carry tokens too */
                cfg_report_add(rep, path,
                               "contains a control character or line break (not allowed in "
                               "a header)");
                break;
            }
        }
    }
}

static void check_ca_file(cfg_provider_t *p, const char *pp, cfg_report_t *rep)
{
    char path[CFG_PATH_MAX];

    if (!p->ca_file)
        return;
    cfg_path_fmt(path, sizeof(path), "%s.ca_file", pp);
    if (cfg_path_expand(&p->ca_file, path, rep) != 0)
        return;
    if (!p->tls)
        cfg_report_add(rep, path, "only applies to https:// providers (remove it)");
    else if (!*p->ca_file)
        cfg_report_add(rep, path, "must not be empty (remove it to use the system bundle)");
    else if (access(p->ca_file, R_OK) != 0)
        cfg_report_add(rep, path, "cannot read \"%s\": %s (a PEM file of CA certificates)",
                       p->ca_file, strerror(errno));
}

/* ---- the pass -------------------------------------------------------------------------- */

static const char *key_field(const cfg_key_t *k, int group)
{
    return group ? k->group : k->name;
}

/* The first key, in file order, before providers[pi].keys[ki] whose name (group: whose group)
 * equals that key's: 1 and its place in *pj, *kj, or 0. */
static int key_before(const cfg_t *cfg, unsigned pi, unsigned ki, int group, unsigned *pj,
                      unsigned *kj)
{
    const char *s = key_field(&cfg->providers[pi].keys[ki], group);

    for (*pj = 0; s && *pj <= pi; (*pj)++) {
        const cfg_provider_t *q = &cfg->providers[*pj];
        unsigned end = *pj == pi ? ki : q->keys_count;
        for (*kj = 0; *kj < end; (*kj)++) {
            const char *t = key_field(&q->keys[*kj], group);
            if (t && strcmp(t, s) == 0)
                return 1;
        }
    }
    return 0;
}

/* A group is one provider's organisation: the first key of a provider that names a group an
 * earlier provider has is reported, naming both places (later keys of the same group are
 * not reported again). */
static void check_group(const cfg_t *cfg, unsigned pi, unsigned ki, const char *kp,
                        cfg_report_t *rep)
{
    const cfg_key_t *keys = cfg->providers[pi].keys, *k = &keys[ki];
    char path[CFG_PATH_MAX], other[CFG_PATH_MAX], buf[80], nb[80];
    const char *why;
    unsigned pj, kj;

    if (!k->group)
        return;
    cfg_path_fmt(path, sizeof(path), "%s.group", kp);
    why = name_problem(k->group, buf, sizeof(buf));
    if (why) {
        cfg_report_add(rep, path, "%s (got \"%s\"; a group is named like a key)", why,
                       cfg_shown(k->group, nb, sizeof(nb)));
        return;
    }
    if (!key_before(cfg, pi, ki, 1, &pj, &kj) || pj == pi)
        return;
    for (unsigned i = 0; i < ki; i++)
        if (keys[i].group && strcmp(keys[i].group, k->group) == 0)
            return;
    cfg_path_fmt(other, sizeof(other), "providers[%u].keys[%u].group", pj, kj);
    cfg_report_add(rep, path,
                   "group \"%s\" is already used by provider \"%s\" (%s, line %u); a group is "
                   "the keys of one provider organisation (name this provider's group "
                   "differently)",
                   k->group, cfg_shown(cfg->providers[pj].name, nb, sizeof(nb)), other,
                   ytree_line(rep->root, other));
}

static void check_keys(cfg_t *cfg, unsigned pi, cfg_report_t *rep)
{
    cfg_provider_t *p = &cfg->providers[pi];
    char path[CFG_PATH_MAX], buf[80], nb[80];

    for (unsigned ki = 0; ki < p->keys_count; ki++) {
        cfg_key_t *k = &p->keys[ki];
        char kp[CFG_PATH_MAX];
        const char *why = name_problem(k->name, buf, sizeof(buf));
        unsigned pj, kj;

        cfg_path_fmt(kp, sizeof(kp), "providers[%u].keys[%u]", pi, ki);
        cfg_path_fmt(path, sizeof(path), "%s.name", kp);
        if (why) {
            cfg_report_add(rep, path, "%s (got \"%s\")", why, cfg_shown(k->name, nb, sizeof(nb)));
        } else if (key_before(cfg, pi, ki, 0, &pj, &kj)) {
            char other[CFG_PATH_MAX];
            cfg_path_fmt(other, sizeof(other), "providers[%u].keys[%u]", pj, kj);
            cfg_report_add(rep, path,
                           "key name \"%s\" is already used by %s (line %u); key names "
                           "are unique across all providers",
                           k->name, other, ytree_line(rep->root, other));
        }
        check_group(cfg, pi, ki, kp, rep);
        if (!(rep->flags & CFG_LOAD_NO_SECRETS)) {
            cfg_secret_resolve(cfg, k, kp, rep);
        } else if (k->secret) {
            explicit_bzero(k->secret, strlen(k->secret));
            free(k->secret); /* libcyaml allocated it with the same heap (cfg_mem) */
            k->secret = NULL;
        }
    }
}

static void check_providers(cfg_t *cfg, cfg_report_t *rep)
{
    if (cfg->providers_count == 0)
        cfg_report_add(rep, "providers", "at least one provider is required");
    for (unsigned i = 0; i < cfg->providers_count; i++) {
        cfg_provider_t *p = &cfg->providers[i];
        char pp[CFG_PATH_MAX], path[CFG_PATH_MAX], buf[80], nb[80];
        const char *why = name_problem(p->name, buf, sizeof(buf));

        cfg_path_fmt(pp, sizeof(pp), "providers[%u]", i);
        cfg_path_fmt(path, sizeof(path), "%s.name", pp);
        if (why)
            cfg_report_add(rep, path, "%s (got \"%s\")", why, cfg_shown(p->name, nb, sizeof(nb)));
        for (unsigned j = 0; j < i && !why; j++) {
            if (strcmp(cfg->providers[j].name, p->name) == 0) {
                char other[CFG_PATH_MAX];
                cfg_path_fmt(other, sizeof(other), "providers[%u]", j);
                cfg_report_add(rep, path, "provider name \"%s\" is already used by %s (line %u)",
                               p->name, other, ytree_line(rep->root, other));
                break;
            }
        }
        cfg_path_fmt(path, sizeof(path), "%s.base_url", pp);
        why = parse_base_url(p);
        if (why)
            cfg_report_add(rep, path, "%s (allowed: http(s)://host[:port][/path])", why);
        check_api(p, pp, rep);
        check_auth(p, pp, rep);
        check_ca_file(p, pp, rep);
        check_headers(p, pp, rep);
        if (p->keys_count == 0) {
            cfg_path_fmt(path, sizeof(path), "%s.keys", pp);
            cfg_report_add(rep, path, "provider \"%s\" needs at least one key",
                           cfg_shown(p->name, nb, sizeof(nb)));
        }
        check_keys(cfg, i, rep);
    }
}

/* The path of the first name or alias before (mi, ai) that equals s; ai = -1 for a name. */
static int name_taken(const cfg_t *cfg, unsigned mi, int ai, const char *s, char *other, size_t len)
{
    for (unsigned j = 0; j <= mi; j++) {
        const cfg_model_t *m = &cfg->models[j];
        int last = j == mi ? ai : (int)m->aliases_count;
        if (j < mi && strcmp(m->name, s) == 0) {
            cfg_path_fmt(other, len, "models[%u].name", j);
            return 1;
        }
        if (j == mi && ai >= 0 && strcmp(m->name, s) == 0) {
            cfg_path_fmt(other, len, "models[%u].name", j);
            return 1;
        }
        for (int a = 0; a < last; a++) {
            if (strcmp(m->aliases[a], s) == 0) {
                cfg_path_fmt(other, len, "models[%u].aliases[%d]", j, a);
                return 1;
            }
        }
    }
    return 0;
}

static void check_model_names(const cfg_t *cfg, unsigned mi, cfg_report_t *rep)
{
    const cfg_model_t *m = &cfg->models[mi];

    for (int ai = -1; ai < (int)m->aliases_count; ai++) {
        const char *s = ai < 0 ? m->name : m->aliases[ai];
        char path[CFG_PATH_MAX], other[CFG_PATH_MAX], nb[80];
        const char *why = model_name_problem(s);

        if (ai < 0)
            cfg_path_fmt(path, sizeof(path), "models[%u].name", mi);
        else
            cfg_path_fmt(path, sizeof(path), "models[%u].aliases[%d]", mi, ai);
        if (why)
            cfg_report_add(rep, path, "%s (got \"%s\")", why, cfg_shown(s, nb, sizeof(nb)));
        else if (name_taken(cfg, mi, ai, s, other, sizeof(other)))
            cfg_report_add(rep, path,
                           "\"%s\" is already used by %s (line %u); model names and aliases "
                           "are unique together",
                           s, other, ytree_line(rep->root, other));
    }
}

static void check_deployments(cfg_t *cfg, unsigned mi, cfg_report_t *rep)
{
    cfg_model_t *m = &cfg->models[mi];
    char path[CFG_PATH_MAX], nb[80];

    if (m->deployments_count == 0) {
        cfg_path_fmt(path, sizeof(path), "models[%u].deployments", mi);
        cfg_report_add(rep, path,
                       "model \"%s\" needs at least one deployment ({provider: ..., model: ...})",
                       cfg_shown(m->name, nb, sizeof(nb)));
    }
    for (unsigned di = 0; di < m->deployments_count; di++) {
        cfg_deployment_t *d = &m->deployments[di];
        const char *why;

        for (unsigned pi = 0; pi < cfg->providers_count; pi++)
            if (strcmp(cfg->providers[pi].name, d->provider) == 0)
                d->provider_ref = &cfg->providers[pi];
        if (!d->provider_ref) {
            char known[512];
            size_t o = 0;
            known[0] = '\0';
            for (unsigned pi = 0; pi < cfg->providers_count && o < sizeof(known); pi++)
                o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", pi ? ", " : "",
                                      cfg_shown(cfg->providers[pi].name, nb, sizeof(nb)));
            cfg_path_fmt(path, sizeof(path), "models[%u].deployments[%u].provider", mi, di);
            cfg_report_add(rep, path, "unknown provider \"%s\" (known: %s)",
                           cfg_shown(d->provider, nb, sizeof(nb)), *known ? known : "none");
        }
        why = model_name_problem(d->model);
        if (why) {
            cfg_path_fmt(path, sizeof(path), "models[%u].deployments[%u].model", mi, di);
            cfg_report_add(rep, path, "%s (got \"%s\")", why, cfg_shown(d->model, nb, sizeof(nb)));
        }
    }
}

static void check_fallbacks(cfg_t *cfg, unsigned mi, cfg_report_t *rep)
{
    cfg_model_t *m = &cfg->models[mi];

    if (m->fallbacks_count == 0)
        return;
    m->fallback_refs = calloc(m->fallbacks_count, sizeof(*m->fallback_refs));
    if (!m->fallback_refs) {
        rep->oom = 1;
        return;
    }
    for (unsigned fi = 0; fi < m->fallbacks_count; fi++) {
        const char *f = m->fallbacks[fi];
        const cfg_model_t *t = cfg_model_find(cfg, f, strlen(f));
        char path[CFG_PATH_MAX], nb[80];

        cfg_path_fmt(path, sizeof(path), "models[%u].fallbacks[%u]", mi, fi);
        if (!t) {
            cfg_report_add(rep, path, "unknown model \"%s\" (a fallback names another model)",
                           cfg_shown(f, nb, sizeof(nb)));
            continue;
        }
        if (t == m) {
            cfg_report_add(rep, path, "model \"%s\" cannot fall back to itself",
                           cfg_shown(f, nb, sizeof(nb)));
            continue;
        }
        for (unsigned j = 0; j < fi; j++) {
            if (m->fallback_refs[j] == t) {
                cfg_report_add(rep, path, "\"%s\" is already listed as fallbacks[%u]",
                               cfg_shown(f, nb, sizeof(nb)), j);
                t = NULL;
                break;
            }
        }
        m->fallback_refs[fi] = (cfg_model_t *)t;
    }
}

static void check_models(cfg_t *cfg, cfg_report_t *rep)
{
    if (cfg->models_count == 0)
        cfg_report_add(rep, "models", "at least one model is required");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        check_model_names(cfg, i, rep);
        check_deployments(cfg, i, rep);
    }
    /* after every name is known */
    for (unsigned i = 0; i < cfg->models_count; i++)
        check_fallbacks(cfg, i, rep);
}

/* ---- observability: metrics, access_log, alerts (server/obs/obs.h) ------------------------- */

static void check_metrics(cfg_t *cfg, cfg_report_t *rep)
{
    cfg_metrics_t *m = &cfg->metrics;
    char host[256], nb[80];
    uint16_t port = 0;
    const char *why;

    m->mode = CFG_METRICS_ADMIN;
    if (m->admin_token_sha256) {
        m->has_admin_token = cfg_parse_sha256(m->admin_token_sha256, m->admin_token_digest) == 0;
        if (!m->has_admin_token)
            cfg_report_add(rep, "metrics.admin_token_sha256",
                           "must be 64 hex digits: the SHA-256 of the admin token (e.g. from "
                           "`printf %%s TOKEN | sha256sum`), not the token itself");
    }
    if (!m->listen) {
        m->listen = strdup("127.0.0.1:9464");
        m->listen_default = 1;
        if (!m->listen)
            rep->oom = 1;
        return;
    }
    if (strcmp(m->listen, "main") == 0) {
        m->mode = CFG_METRICS_MAIN;
        return;
    }
    if (strcmp(m->listen, "off") == 0) {
        m->mode = CFG_METRICS_OFF;
        return;
    }
    why = listen_problem(m->listen, host, sizeof(host), &port);
    if (why) {
        cfg_report_add(rep, "metrics.listen", "%s (got \"%s\"; allowed: host:port, main, off)", why,
                       cfg_shown(m->listen, nb, sizeof(nb)));
        return;
    }
    for (unsigned i = 0; i < cfg->listen_count && port != 0; i++)
        if (strcmp(cfg->listen[i], m->listen) == 0)
            cfg_report_add(rep, "metrics.listen",
                           "\"%s\" is also listen[%u] (write main to serve /metrics on the "
                           "main listeners)",
                           m->listen, i);
}

static void check_access_log(cfg_t *cfg, cfg_report_t *rep)
{
    cfg_access_log_t *a = &cfg->access_log;
    char dir[4096], nb[80];
    const char *slash;

    a->mode = CFG_ACCESS_LOG_STDOUT;
    if (!a->path) {
        a->path = strdup("stdout");
        if (!a->path)
            rep->oom = 1;
        return;
    }
    if (strcmp(a->path, "stdout") == 0)
        return;
    if (strcmp(a->path, "off") == 0) {
        a->mode = CFG_ACCESS_LOG_OFF;
        return;
    }
    if (!*a->path || strcmp(a->path, "stderr") == 0) {
        cfg_report_add(rep, "access_log.path",
                       "must be stdout, off or a file path (got \"%s\"; stderr carries the "
                       "server's own log)",
                       cfg_shown(a->path, nb, sizeof(nb)));
        return;
    }
    a->mode = CFG_ACCESS_LOG_FILE;
    slash = strrchr(a->path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == a->path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - a->path), a->path);
    if (slash && slash[1] == '\0')
        cfg_report_add(rep, "access_log.path", "names a directory, not a file (got \"%s\")",
                       cfg_shown(a->path, nb, sizeof(nb)));
    else if (access(dir, W_OK | X_OK) != 0)
        cfg_report_add(rep, "access_log.path",
                       "cannot create files in \"%s\": %s (the directory must exist and be "
                       "writable)",
                       cfg_shown(dir, nb, sizeof(nb)), strerror(errno));
}

/* The URL is not shown in any message: webhook URLs often carry a token. */
static void check_alerts(cfg_t *cfg, cfg_report_t *rep)
{
    cfg_alerts_t *a = &cfg->alerts;
    cfg_provider_t tmp;
    const char *why, *rest, *path;
    char *cut;

    if (!a->webhook_url)
        return;
    if (strncasecmp(a->webhook_url, "https://", 8) == 0) {
        cfg_report_add(rep, "alerts.webhook_url",
                       "https:// is not supported for the webhook (use http://, e.g. a relay "
                       "on the same host; the value is not shown)");
        return;
    }
    if (strncasecmp(a->webhook_url, "http://", 7) != 0) {
        cfg_report_add(rep, "alerts.webhook_url",
                       "must start with http:// (http://host[:port][/path]; the value is not "
                       "shown)");
        return;
    }
    if (strchr(a->webhook_url, '#')) {
        cfg_report_add(rep, "alerts.webhook_url",
                       "must not have a fragment ('#') (the value is not shown)");
        return;
    }
    cut = strndup(a->webhook_url, strcspn(a->webhook_url, "?"));
    if (!cut) {
        rep->oom = 1;
        return;
    }
    memset(&tmp, 0, sizeof(tmp));
    tmp.base_url = cut;
    why = parse_base_url(&tmp);
    free(cut);
    free(tmp.base_path);
    if (why) {
        free(tmp.host);
        free(tmp.host_header);
        cfg_report_add(rep, "alerts.webhook_url",
                       "%s (allowed: http://host[:port][/path][?query]; the value is not shown)",
                       why);
        return;
    }
    a->host = tmp.host;
    a->host_header = tmp.host_header;
    a->port = tmp.port;
    /* the path as written (trailing slash and query kept): receivers may tell them apart */
    rest = a->webhook_url + 7;
    path = rest + strcspn(rest, "/?");
    a->path = *path == '/' ? strdup(path) : malloc(strlen(path) + 2);
    if (a->path && *path != '/')
        snprintf(a->path, strlen(path) + 2, "/%s", path);
    if (!a->path)
        rep->oom = 1;
}

static void check_observability(cfg_t *cfg, cfg_report_t *rep)
{
    check_metrics(cfg, rep);
    check_access_log(cfg, rep);
    check_alerts(cfg, rep);
}

/* ---- client-facing TLS (server/http/conn.c) -------------------------------------------- */

/* Readable files only: whether they parse and the key belongs to the certificate is decided
 * by mbedTLS when the server starts (tls_conf_server_new). The key is not read at all by
 * tools that load without secrets (llmgatectl may run as another user). */
static void check_tls_file(const char *file, const char *path, const char *what, cfg_report_t *rep)
{
    if (!*file)
        cfg_report_add(rep, path, "must not be empty (the path of a PEM %s)", what);
    else if (access(file, R_OK) != 0)
        cfg_report_add(rep, path, "cannot read \"%s\": %s (the path of a PEM %s)", file,
                       strerror(errno), what);
}

static void check_tls(cfg_t *cfg, cfg_report_t *rep)
{
    if (cfg->tls.cert_file && cfg_path_expand(&cfg->tls.cert_file, "tls.cert_file", rep) == 0)
        check_tls_file(cfg->tls.cert_file, "tls.cert_file", "certificate chain", rep);
    if (cfg->tls.key_file && !(rep->flags & CFG_LOAD_NO_SECRETS) &&
        cfg_path_expand(&cfg->tls.key_file, "tls.key_file", rep) == 0)
        check_tls_file(cfg->tls.key_file, "tls.key_file", "private key", rep);
}

void cfg_validate(cfg_t *cfg, const ynode_t *root, cfg_report_t *rep)
{
    build_listen(cfg, root, rep);
    if (!cfg->state_dir) {
        cfg->state_dir = strdup("./llmgate-state");
        if (!cfg->state_dir)
            rep->oom = 1;
    } else if (!*cfg->state_dir) {
        cfg_report_add(rep, "state_dir", "must not be empty (default ./llmgate-state)");
    }
    check_providers(cfg, rep);
    check_models(cfg, rep);
    check_observability(cfg, rep);
    check_tls(cfg, rep);
    cfg_clients_validate(cfg, rep);
    cfg_cluster_validate(cfg, rep);
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 1024 ? 1024 : (uint32_t)n;
    }
}
