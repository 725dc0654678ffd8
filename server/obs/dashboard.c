/* dashboard.c - the dashboard's page and JSON API (see dashboard.h). */
#include "server/obs/dashboard.h"
#include "server/obs/query.h"

#include <llhttp.h>
#include <mbedtls/sha256.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmgate_version.h"
#include "server/common/clock.h"
#include "server/common/errors.h"
#include "view/json.h"
#include "view/keys.h"
#include "view/stats.h"

#define EVENTS_DEFAULT 50
#define EVENTS_MAX     500
#define ACTOR          "dashboard"

static int fail(buf_t *body, const char **ctype, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(buf_t *body, const char **ctype, int status, const char *code, const char *fmt, ...)
{
    char msg[320], json[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = error_json(json, sizeof(json), msg, error_type_for(status), NULL, code);
    buf_reset(body);
    buf_append(body, json, n);
    *ctype = "application/json";
    return status;
}

/* A document of v into body: 200, or 500 when the text could not be built. */
static int doc(buf_t *body, const char **ctype, vw_buf_t *v)
{
    int rc = 200;
    if (v->failed || !v->p || buf_append(body, v->p, v->len) != 0)
        rc = fail(body, ctype, 500, "out_of_memory", "the document could not be built");
    vw_buf_free(v);
    *ctype = rc == 200 ? "application/json" : *ctype;
    return rc;
}

static int store_fail(buf_t *body, const char **ctype, int rc, const char *what)
{
    return fail(body, ctype, 500, "store_error", "%s failed: %s", what, shm_strerror(rc));
}

static int asset(buf_t *body, const char **ctype, const unsigned char *p, size_t n,
                 const char *type)
{
    if (buf_append(body, p, n) != 0)
        return fail(body, ctype, 500, "out_of_memory", "out of memory");
    *ctype = type;
    return 200;
}

/* ---- the read API ------------------------------------------------------------------------ */

static int api_session(const cfg_t *cfg, buf_t *body, const char **ctype)
{
    vw_buf_t v = {0};
    vw_json_t j;
    vw_json_begin(&j, &v, "session", clock_wall_ms(), cfg->state_dir);
    vw_json_str(&j, "version", LLMGATE_VERSION);
    vw_json_bool(&j, "actions", cfg->metrics.has_admin_token);
    vw_json_end(&j);
    return doc(body, ctype, &v);
}

static int api_keys(shm_t *shm, const cfg_t *cfg, int providers, buf_t *body, const char **ctype)
{
    vw_key_t *rows = NULL;
    vw_prov_t *prov = NULL;
    unsigned n = 0, np = 0;
    const char *what;
    char name[SHM_NAME_MAX + 1];
    int64_t now = clock_wall_ms();
    int rc = vw_keys_load(shm, now, &rows, &n, &what, name);
    if (rc != 0)
        return store_fail(body, ctype, rc, what);
    vw_buf_t v = {0};
    if (providers) {
        rc = vw_provs_load(shm, now, rows, n, &prov, &np);
        if (rc == 0)
            vw_doc_providers(&v, now, cfg->state_dir, prov, np);
        free(prov);
    } else {
        vw_doc_keys(&v, now, cfg->state_dir, rows, n);
    }
    free(rows);
    if (rc != 0) {
        vw_buf_free(&v);
        return store_fail(body, ctype, rc, "reading the providers");
    }
    return doc(body, ctype, &v);
}

static int api_stats(shm_t *shm, const cfg_t *cfg, const char *query, buf_t *body,
                     const char **ctype)
{
    char range[16] = "1h", scope[16] = "model", name[SHM_NAME_MAX + 1];
    vw_range_t r;
    int sc, has_name;

    if (query_param(query, "range", range, sizeof(range)) < 0 || vw_range_parse(range, &r))
        return fail(body, ctype, 400, "invalid_range", "range must be one of %s", vw_range_names);
    if (query_param(query, "scope", scope, sizeof(scope)) < 0 ||
        (strcmp(scope, "model") != 0 && strcmp(scope, "key") != 0))
        return fail(body, ctype, 400, "invalid_scope", "scope must be model or key");
    sc = strcmp(scope, "model") == 0 ? SHM_SS_MODEL : SHM_SS_KEY;
    has_name = query_param(query, "name", name, sizeof(name));
    if (has_name < 0 || (has_name && name[0] == '\0'))
        return fail(body, ctype, 400, "invalid_name", "name must be a key or model name");
    int64_t now = clock_wall_ms();
    vw_stats_t st;
    int rc = vw_stats_load(shm, now, &r, sc, has_name ? name : NULL, &st);
    if (rc != 0)
        return store_fail(body, ctype, rc, "reading the history");
    vw_buf_t v = {0};
    vw_doc_stats(&v, now, cfg->state_dir, &st);
    vw_stats_free(&st);
    return doc(body, ctype, &v);
}

static int api_events(shm_t *shm, const cfg_t *cfg, const char *query, buf_t *body,
                      const char **ctype)
{
    char lim[16];
    unsigned limit = EVENTS_DEFAULT;
    int has = query_param(query, "limit", lim, sizeof(lim));
    if (has) {
        char *end;
        unsigned long l = has > 0 ? strtoul(lim, &end, 10) : 0;
        if (has < 0 || lim[0] < '0' || lim[0] > '9' || *end || l < 1 || l > EVENTS_MAX)
            return fail(body, ctype, 400, "invalid_limit", "limit must be 1 to %d", EVENTS_MAX);
        limit = (unsigned)l;
    }
    vw_buf_t v = {0};
    int rc = vw_doc_events(&v, shm, clock_wall_ms(), cfg->state_dir, limit);
    if (rc != 0) {
        vw_buf_free(&v);
        return store_fail(body, ctype, rc, "reading the key events");
    }
    return doc(body, ctype, &v);
}

/* ---- actions ----------------------------------------------------------------------------- */

/* 1 when authorization is "Bearer T" and SHA-256(T) is the configured digest. */
static int token_ok(const cfg_t *cfg, const char *authorization)
{
    unsigned char d[32];
    unsigned diff = 0;
    const char *t = authorization;

    if (strncasecmp(t, "Bearer ", 7) != 0)
        return 0;
    t += 7;
    while (*t == ' ')
        t++;
    if (!*t || mbedtls_sha256_ret((const unsigned char *)t, strlen(t), d, 0) != 0)
        return 0;
    for (int i = 0; i < 32; i++)
        diff |= (unsigned)(d[i] ^ cfg->metrics.admin_token_digest[i]);
    return diff == 0;
}

static int api_action(shm_t *shm, const cfg_t *cfg, const admin_req_t *req, const char *rest,
                      buf_t *body, const char **ctype)
{
    const char *slash = strrchr(rest, '/');
    char name[SHM_NAME_MAX + 1], dur[32];
    int64_t duration_ms = 0;
    int rc;

    if (!slash || slash == rest ||
        query_unescape(rest, (size_t)(slash - rest), name, sizeof(name)) != 0)
        return fail(body, ctype, 404, "not_found", "no such admin path");
    const char *action = slash + 1;
    if (strcmp(action, "cooldown") != 0 && strcmp(action, "disable") != 0 &&
        strcmp(action, "enable") != 0)
        return fail(body, ctype, 404, "not_found",
                    "unknown action (try cooldown, disable or enable)");
    if (req->method != HTTP_POST)
        return fail(body, ctype, 405, "method_not_allowed", "an action is a POST");
    if (!cfg->metrics.has_admin_token)
        return fail(body, ctype, 403, "actions_disabled",
                    "the dashboard is read-only: set metrics.admin_token_sha256 to allow actions");
    if (!token_ok(cfg, req->authorization))
        return fail(body, ctype, 401, "invalid_admin_token",
                    "an action needs Authorization: Bearer with the admin token");
    if (strcmp(action, "cooldown") == 0) {
        char *end;
        int has = query_param(req->query, "duration_ms", dur, sizeof(dur));
        long long d = has > 0 ? strtoll(dur, &end, 10) : 0;
        if (has <= 0 || dur[0] < '0' || dur[0] > '9' || *end || d < 1 || d > 366LL * 86400 * 1000)
            return fail(body, ctype, 400, "invalid_duration",
                        "cooldown needs duration_ms, 1 ms to 366 days");
        duration_ms = d;
        rc = shm_key_cooldown(shm, name, duration_ms, ACTOR, SHM_NOW);
    } else if (strcmp(action, "disable") == 0) {
        rc = shm_key_disable(shm, name, ACTOR, SHM_NOW);
    } else {
        rc = shm_key_enable(shm, name, ACTOR, SHM_NOW);
    }
    if (rc == SHM_ENOTFOUND || rc == SHM_EINVAL)
        return fail(body, ctype, 404, "key_not_found", "no key \"%s\" in the store", name);
    if (rc != 0)
        return store_fail(body, ctype, rc, action);

    /* the key as it is now */
    vw_key_t *rows = NULL;
    unsigned n = 0;
    const char *what;
    char kname[SHM_NAME_MAX + 1];
    int64_t now = clock_wall_ms();
    if ((rc = vw_keys_load(shm, now, &rows, &n, &what, kname)) != 0)
        return store_fail(body, ctype, rc, what);
    vw_buf_t v = {0};
    vw_json_t j;
    vw_json_begin(&j, &v, "action", now, cfg->state_dir);
    vw_json_str(&j, "action", action);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(rows[i].k.name, name) == 0) {
            vw_json_open(&j, "key", '{');
            vw_json_key_fields(&j, &rows[i]);
            vw_json_close(&j, '}');
        }
    vw_json_end(&j);
    free(rows);
    return doc(body, ctype, &v);
}

/* ---- routing ----------------------------------------------------------------------------- */

int dashboard_route(shm_t *shm, const cfg_t *cfg, const admin_req_t *req, buf_t *body,
                    const char **content_type)
{
    const char *p = req->path;
    int get = req->method == HTTP_GET || req->method == HTTP_HEAD;

    if (strcmp(p, "/favicon.ico") == 0 && get) {
        *content_type = "image/x-icon";
        return 204; /* none: browsers ask for it */
    }
    if (strncmp(p, "/api/keys/", 10) == 0)
        return api_action(shm, cfg, req, p + 10, body, content_type);
    if (strcmp(p, "/") != 0 && strcmp(p, "/dashboard") != 0 && strcmp(p, "/dashboard.css") != 0 &&
        strcmp(p, "/dashboard.js") != 0 && strncmp(p, "/api/", 5) != 0)
        return 0;
    if (!get)
        return fail(body, content_type, 405, "method_not_allowed", "%s is read with GET", p);
    if (strcmp(p, "/") == 0 || strcmp(p, "/dashboard") == 0)
        return asset(body, content_type, dash_html, dash_html_len, "text/html; charset=utf-8");
    if (strcmp(p, "/dashboard.css") == 0)
        return asset(body, content_type, dash_css, dash_css_len, "text/css; charset=utf-8");
    if (strcmp(p, "/dashboard.js") == 0)
        return asset(body, content_type, dash_js, dash_js_len, "text/javascript; charset=utf-8");
    if (strcmp(p, "/api/session") == 0)
        return api_session(cfg, body, content_type);
    if (strcmp(p, "/api/keys") == 0)
        return api_keys(shm, cfg, 0, body, content_type);
    if (strcmp(p, "/api/providers") == 0)
        return api_keys(shm, cfg, 1, body, content_type);
    if (strcmp(p, "/api/stats") == 0)
        return api_stats(shm, cfg, req->query, body, content_type);
    if (strcmp(p, "/api/events") == 0)
        return api_events(shm, cfg, req->query, body, content_type);
    return fail(body, content_type, 404, "not_found",
                "unknown admin API path (try /api/session, /api/keys, /api/providers, "
                "/api/stats, /api/events)");
}
