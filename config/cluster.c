/* cluster.c - the cluster: section: where Redis is, who this node is, how much each host may
 * admit without Redis, and the Redis password (from the environment, never the file).
 */
#include "config/config_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Node ids and prefixes: [A-Za-z0-9._-], 1..63 bytes (they are parts of Redis key names and of
 * grant ids, "node/pid/seq"). */
static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* redis as written -> host/port or unix_path; NULL or what is wrong. */
static const char *parse_redis(cfg_cluster_t *c)
{
    const char *s = c->redis, *colon;
    char *end;
    unsigned long port = 6379;

    if (!strncmp(s, "unix:", 5)) {
        const char *p = s + 5;
        if (!strncmp(p, "//", 2))
            p += 2;
        if (*p != '/')
            return "a unix socket must be an absolute path (unix:/run/redis/redis.sock)";
        c->unix_path = strdup(p);
        return c->unix_path ? NULL : "out of memory";
    }
    if (!strncmp(s, "rediss://", 9))
        return "rediss:// (TLS) is not supported: Debian's hiredis 0.14 has no TLS";
    if (!strncmp(s, "redis://", 8))
        s += 8;
    if (strchr(s, '@'))
        return "must not carry credentials (use username and password_env)";
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb == s + 1)
            return "an IPv6 address must be in brackets ([::1]:6379)";
        c->host = strndup(s + 1, (size_t)(rb - s - 1));
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] && !colon)
            return "expected :port after the bracketed address";
    } else {
        colon = strrchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strcspn(s, "/");
        if (n == 0)
            return "has no host";
        c->host = strndup(s, n);
    }
    if (!c->host)
        return "out of memory";
    if (colon) {
        const char *p = colon + 1;
        if (*p < '0' || *p > '9')
            return "the port must be a number 1..65535";
        port = strtoul(p, &end, 10);
        if ((*end && strcmp(end, "/") && strcmp(end, "/0")) || port < 1 || port > 65535)
            return "the port must be a number 1..65535 (database numbers other than 0 are "
                   "not supported)";
    }
    c->port = (uint16_t)port;
    return NULL;
}

void cfg_cluster_validate(cfg_t *cfg, cfg_report_t *rep)
{
    cfg_cluster_t *c = &cfg->cluster;
    const char *why;
    char nb[80];

    if (!c->redis)
        return;
    c->enabled = 1;
    if ((why = parse_redis(c)) != NULL)
        cfg_report_add(rep, "cluster.redis",
                       "%s (allowed: host:port, redis://host:port, "
                       "unix:/path)",
                       why);
    if (c->tls)
        cfg_report_add(rep, "cluster.tls",
                       "TLS to Redis is not supported: Debian's hiredis 0.14 has no TLS (run "
                       "Redis on a private network or a unix socket, or through a TLS tunnel)");
    if (!c->node_id) {
        char host[HOST_NAME_MAX + 1];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "node");
        host[sizeof(host) - 1] = '\0';
        for (char *p = host; *p; p++)
            if (!id_char((unsigned char)*p))
                *p = '-';
        if (strlen(host) > 63)
            host[63] = '\0';
        c->node_id = strdup(host);
        if (!c->node_id)
            rep->oom = 1;
    } else if (!id_ok(c->node_id)) {
        cfg_report_add(rep, "cluster.node_id",
                       "must be 1..63 of A-Z a-z 0-9 . _ - (got \"%s\"; default: the hostname)",
                       cfg_shown(c->node_id, nb, sizeof(nb)));
    }
    if (!c->prefix) {
        c->prefix = strdup("llmgate");
        if (!c->prefix)
            rep->oom = 1;
    } else if (!id_ok(c->prefix)) {
        cfg_report_add(rep, "cluster.prefix",
                       "must be 1..63 of A-Z a-z 0-9 . _ - (default llmgate)");
    }
    if (c->safe_share == 0.0 && c->expected_nodes)
        c->safe_share = 1.0 / (double)c->expected_nodes;
    else if (!(c->safe_share > 0.0 && c->safe_share <= 1.0))
        cfg_report_add(rep, "cluster.safe_share",
                       "must be a share of a limit above 0 and at most 1 (default 1 / "
                       "expected_nodes)");
    if (c->username && !*c->username)
        cfg_report_add(rep, "cluster.username", "must not be empty (leave it out for no user)");
    if (c->password_env) {
        if (!cfg_env_name_ok(c->password_env)) {
            cfg_report_add(rep, "cluster.password_env",
                           "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
        } else if (!(rep->flags & CFG_LOAD_NO_SECRETS)) {
            const char *v = getenv(c->password_env);
            if (!v || !*v)
                cfg_report_add(rep, "cluster.password_env",
                               "environment variable %s is %s (export the Redis password "
                               "before starting llmgate)",
                               c->password_env, v ? "empty" : "not set");
            else if (!(c->password = strdup(v)))
                rep->oom = 1;
        }
    } else if (c->username) {
        cfg_report_add(rep, "cluster.username", "needs password_env (AUTH takes both)");
    }
}
