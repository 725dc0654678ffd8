/* proxy.c - what a complete request becomes: a local answer (/health, /v1/models, errors)
 * or, for the completion endpoints, a scanned and resolved request handed to attempt.c.
 */
#include "server/conn.h"
#include "server/errors.h"
#include "server/log.h"
#include "server/attempt.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void req_free(req_t *r)
{
    if (!r)
        return;
    if (r->admitted) /* never expected: every path records; do not leave in-flight behind */
        shm_key_release(r->conn->w->shm, &r->resv, 0, SHM_NOW);
    cfgref_put(r->cfgref);
    buf_free(&r->head);
    buf_free(&r->body);
    buf_free(&r->up_head);
    buf_free(&r->fail_head);
    buf_free(&r->fail_body);
    free(r->spans);
    free(r->hdrs);
    free(r->up_body);
    free(r);
}

static void proxy_completion(conn_t *c, req_t *r, const char *suffix)
{
    int rc;

    r->suffix = suffix;
    r->cfgref = cfgref_get(c->w->cfgref);
    rc = scan_body(r->body.data ? r->body.data : "", r->body.len, &r->scan);
    if (rc != 0) {
        const char *param = rc == SCAN_ENOMODEL ? "model" : r->scan.bad_field;
        conn_respond_error(c, 400, "invalid_request_error", param, "%s",
                           scan_strerror(rc, &r->scan));
        return;
    }
    r->model = cfg_model_find(r->cfgref->cfg, r->scan.model, r->scan.model_len);
    /* TPM reservation: about four bytes a token for the prompt, plus what may come back. */
    r->tokens_estimate =
        (uint32_t)(r->body.len / 4) + (r->scan.max_tokens > 0 ? (uint32_t)r->scan.max_tokens : 0);
    if (!r->model) {
        conn_respond_error(c, 404, "model_not_found", "model",
                           "The model `%s` does not exist or is not served by this gateway",
                           r->scan.model);
        return;
    }
    attempt_start(c, r);
}

static void respond_models(conn_t *c)
{
    const cfg_t *cfg = c->w->cfg;
    buf_t b = {0};
    int first = 1;

    buf_appends(&b, "{\"object\":\"list\",\"data\":[");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        const cfg_model_t *m = &cfg->models[i];
        for (unsigned j = 0; j <= m->aliases_count; j++) {
            const char *id = j == 0 ? m->name : m->aliases[j - 1];
            char esc[600];
            json_escape(esc, sizeof(esc), id, strlen(id));
            buf_printf(&b,
                       "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":0,\"owned_by\":"
                       "\"llmgate\"}",
                       first ? "" : ",", esc);
            first = 0;
        }
    }
    buf_appends(&b, "]}");
    if (!b.data)
        conn_respond_error(c, 500, "internal_error", NULL, "out of memory");
    else
        conn_respond(c, 200, "application/json", b.data, b.len, NULL);
    buf_free(&b);
}

static int path_is(const char *path, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(path, want, len) == 0;
}

void proxy_handle(conn_t *c, req_t *r)
{
    static const struct {
        const char *path, *suffix;
    } completions[] = {
        {"/v1/chat/completions", "/chat/completions"},
        {"/v1/completions", "/completions"},
        {"/v1/embeddings", "/embeddings"},
    };
    const char *url = r->head.data ? r->head.data + r->url_off : "";
    size_t len = r->url_len, plen = 0;

    while (plen < len && url[plen] != '?' && url[plen] != '#')
        plen++;
    for (size_t i = 0; i < sizeof(completions) / sizeof(completions[0]); i++) {
        if (!path_is(url, plen, completions[i].path))
            continue;
        if (r->method != HTTP_POST) {
            conn_respond_error(c, 405, "method_not_allowed", NULL, "%s accepts POST only",
                               completions[i].path);
            return;
        }
        proxy_completion(c, r, completions[i].suffix);
        return;
    }
    if (path_is(url, plen, "/v1/models") || path_is(url, plen, "/health")) {
        if (r->method != HTTP_GET) {
            conn_respond_error(c, 405, "method_not_allowed", NULL, "this path accepts GET only");
            return;
        }
        if (path_is(url, plen, "/health"))
            conn_respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL);
        else
            respond_models(c);
        return;
    }
    /* The path only: a query string may carry something the client should not see echoed. */
    conn_respond_error(c, 404, "unknown_url", NULL, "Unknown request URL: %s %.*s",
                       llhttp_method_name((llhttp_method_t)r->method),
                       (int)(plen > 120 ? 120 : plen), url);
}
