/* proxy.c - what a complete request becomes: a local answer (/health, /v1/models, errors)
 * or, for the completion endpoints, a scanned and resolved request handed to attempt.c.
 */
#include "server/proxy/proxy.h"
#include "server/proxy/translated.h"
#include "server/proxy/attempt.h"
#include "server/http/auth.h"
#include "server/common/errors.h"
#include "server/common/log.h"
#include "server/obs/obs.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The request's line in the access log and metrics (once, when it ends either way). */
static void proxy_request_id(conn_t *c, req_t *r);

static void proxy_obs_finish(conn_t *c, req_t *r)
{
    obs_record_t o;
    uint64_t now = loop_clock_ns(conn_px(c)->clock);
    uint64_t up_ns = r->upstream_ns + (r->up ? now - r->attempt_ns : 0);

    if (r->obs_done)
        return;
    r->obs_done = 1;
    if (!r->h.request_id[0])
        proxy_request_id(c, r);
    memset(&o, 0, sizeof(o));
    o.start_ms = loop_clock_wall_ms(conn_px(c)->clock) - (int64_t)((now - r->h.start_ns) / 1000000);
    o.request_id = r->h.request_id;
    o.client = r->client ? r->client->name : NULL;
    o.model = r->scan.model[0] ? r->scan.model : NULL;
    if (r->attempts) {
        o.served_model = r->pick.model->name;
        o.provider = r->pick.dep->provider_ref->name;
        o.key = r->pick.key->name;
    }
    o.attempts = r->attempts;
    o.status = r->h.status_sent ? r->h.status_sent : 499; /* nothing sent: the client left */
    o.upstream_status = r->up_status;
    o.ttfb_s = r->ttfb_ns ? (double)(r->ttfb_ns - r->h.start_ns) / 1e9 : -1;
    o.duration_s = (double)(now - r->h.start_ns) / 1e9;
    o.upstream_s = (double)up_ns / 1e9;
    if (r->attempts) {
        usage_t u;
        if (r->op->flags & API_OP_FREE) {
            /* counting tokens, reading an object: nothing used */
        } else if (req_usage(r, &u)) {
            o.prompt_tokens = u.input;
            /* as attempt.c records it: a cut stream's output is estimated */
            o.completion_tokens = u.partial && r->sse_events > u.output ? r->sse_events : u.output;
            o.cached_tokens = u.cached;
            o.reasoning_tokens = u.reasoning;
            o.tokens_estimated = u.partial;
        } else if (r->response_started && r->scan.stream) {
            /* a stream cut before its usage chunk: about a token per event streamed */
            o.prompt_tokens = (uint32_t)(r->h.body.len / 4);
            o.completion_tokens = r->sse_events;
            o.tokens_estimated = 1;
        }
        o.cost_usd = obs_cost_usd(r->pick.model, o.prompt_tokens, o.completion_tokens);
    }
    o.bytes_in = r->h.head.len + r->h.body.len;
    o.bytes_out = r->h.bytes_out;
    o.stream = r->scan.stream;
    o.api = r->api ? r->api->name : NULL;
    obs_request_done((unsigned)conn_px(c)->id, &o);
}

/* The client's x-request-id when it is usable (1..128 visible ASCII characters), else a
 * new random one; either way it goes upstream and back to the client. */
static void proxy_request_id(conn_t *c, req_t *r)
{
    size_t vlen = 0;
    const char *v = r->h.hdrs ? hdr_find(r->h.hdrs, r->h.nhdrs, "x-request-id", &vlen) : NULL;
    int ok = v && vlen > 0 && vlen < sizeof(r->h.request_id) - 4 && vlen <= 128;

    for (size_t i = 0; ok && i < vlen; i++)
        ok = v[i] > 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\';
    if (ok) {
        memcpy(r->h.request_id, v, vlen);
        r->h.request_id[vlen] = '\0';
        r->request_id_generated = 0;
        return;
    }
    /* "req-" and 24 hex digits: 64 + 32 random bits (as "req-%016llx%08llx") */
    static const char hex[] = "0123456789abcdef";
    uint64_t hi = route_rand(&conn_px(c)->route), lo = route_rand(&conn_px(c)->route) & 0xffffffffu;
    char *p = r->h.request_id;
    memcpy(p, "req-", 4);
    for (int i = 0; i < 16; i++)
        p[4 + i] = hex[(hi >> (60 - 4 * i)) & 15];
    for (int i = 0; i < 8; i++)
        p[20 + i] = hex[(lo >> (28 - 4 * i)) & 15];
    p[28] = '\0';
    r->request_id_generated = 1;
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a finished request still holds besides the buffers a recycled one keeps (head,
 * body, up_head, spans, hdrs_mem): its queue place, reservation, config and the rest. */
static void req_release(proxy_t *w, req_t *r)
{
    attempt_forget(r); /* never expected: a request ends off the admission queue */
    attempt_obj_detach(r);
    tr_end(r);
    if (r->admitted) /* never expected: every path records; do not leave in-flight behind */
        shm_key_release(w->shm, &r->resv, 0, SHM_NOW);
    cfgref_put(r->cfgref);
    buf_free(&r->fail_head);
    buf_free(&r->fail_body);
    buf_free(&r->sse_held);
    free(r->up_body);
}

static void req_free(req_t *r)
{
    if (!r)
        return;
    /* a cached request (conn NULL after its reset) holds nothing to release */
    if (r->h.conn)
        req_release(r->px, r);
    buf_free(&r->h.head);
    buf_free(&r->h.body);
    buf_free(&r->up_head);
    free(r->h.spans);
    free(r->h.hdrs_mem);
    free(r);
}

/* Buffers bigger than this are not kept with a cached request (a large body would otherwise
 * stay allocated); the cache holds at most REQ_CACHE_MAX requests per worker. */
#define REQ_KEEP_BUF  (16 * 1024)
#define REQ_CACHE_MAX 64

static void keep_buf(buf_t *b)
{
    if (b->cap > REQ_KEEP_BUF)
        buf_free(b);
    else
        b->len = 0;
}

static http_req_t *req_new(conn_t *c)
{
    proxy_t *w = conn_px(c);
    req_t *r = w->req_cache;

    if (r) {
        w->req_cache = r->cache_next;
        r->cache_next = NULL;
        w->nreq_cache--;
    } else if (!(r = calloc(1, sizeof(*r)))) {
        return NULL;
    }
    r->h.conn = c;
    r->px = w;
    return &r->h;
}

static void req_recycle(proxy_t *w, req_t *r)
{
    if (!r)
        return;
    if (w->nreq_cache >= REQ_CACHE_MAX) {
        req_free(r);
        return;
    }
    req_release(w, r);
    keep_buf(&r->h.head);
    keep_buf(&r->h.body);
    keep_buf(&r->up_head);
    buf_t head = r->h.head, body = r->h.body, up_head = r->up_head;
    hdr_span_t *spans = r->h.spans;
    http_hdr_t *hdrs_mem = r->h.hdrs_mem;
    size_t spans_cap = r->h.spans_cap, hdrs_cap = r->h.hdrs_cap;
    memset(r, 0, sizeof(*r));
    r->h.head = head;
    r->h.body = body;
    r->up_head = up_head;
    r->h.spans = spans;
    r->h.spans_cap = spans_cap;
    r->h.hdrs_mem = hdrs_mem;
    r->h.hdrs_cap = hdrs_cap;
    r->cache_next = w->req_cache;
    w->req_cache = r;
    w->nreq_cache++;
}

void proxy_free(proxy_t *w)
{
    while (w->req_cache) {
        req_t *r = w->req_cache;
        w->req_cache = r->cache_next;
        req_free(r);
    }
    w->nreq_cache = 0;
}

/* The stored object a request names (the path's {id}, or previous_response_id): the key
 * that created it, and only that key or its group, serve the request. 0, or an answer was
 * sent. */
static int resolve_object(conn_t *c, req_t *r, const char *id, size_t id_len, int in_body)
{
    proxy_t *px = conn_px(c);
    const cfg_t *cfg = r->cfgref->cfg;
    int rc;

    memcpy(r->object_id, id, id_len);
    r->object_id[id_len] = '\0';
    rc = shm_obj_get(px->shm, id, id_len, &r->object, SHM_NOW);
    /* another client's object is as unknown as one that never was */
    if (rc == 0 && strcmp(r->object.client, r->client ? r->client->name : "") != 0)
        rc = SHM_ENOTFOUND;
    if (rc == SHM_ENOTFOUND) {
        if (in_body)
            conn_respond_error(c, 400, "previous_response_not_found", "previous_response_id",
                               "Previous response with id '%s' not found: it was not created "
                               "through this gateway, or it expired (responses.affinity_ttl_s)",
                               r->object_id);
        else
            conn_respond_error(c, 404, "response_not_found", NULL,
                               "No response found with id '%s': it was not created through this "
                               "gateway, or it expired (responses.affinity_ttl_s)",
                               r->object_id);
        return -1;
    }
    if (rc != 0) {
        char why[320];
        log_error("store: looking up response %s failed: %s", r->object_id,
                  shm_explain(px->shm, rc, why, sizeof(why)));
        conn_respond_error(c, 500, "internal_error", NULL, "the gateway's state store failed");
        return -1;
    }
    r->filter.provider = r->object.provider;
    r->filter.key = r->object.key;
    r->filter.group = r->object.group[0] ? r->object.group : NULL;
    if (!r->model) {
        r->model = cfg_model_find(cfg, r->object.model, strlen(r->object.model));
        if (!r->model) {
            conn_respond_error(c, 404, "response_not_found", NULL,
                               "response '%s' was created for model %s, which is no longer "
                               "configured",
                               r->object_id, r->object.model);
            return -1;
        }
    }
    if (!route_serves(r->model, &r->filter)) {
        conn_respond_error(c, in_body ? 400 : 404, "response_key_unavailable",
                           in_body ? "previous_response_id" : NULL,
                           "response '%s' belongs to key %s of provider %s, which %s", r->object_id,
                           r->object.key, r->object.provider,
                           in_body ? "does not serve this model"
                                   : "is no longer configured (its responses cannot be reached)");
        return -1;
    }
    return 0;
}

/* A request of a client API that goes upstream: authenticate, scan, resolve, attempt. */
/* The query string goes upstream as the client sent it (the parser let only visible
 * characters in): ?order, ?limit, ?after and ?include[] of input_items and of a retrieval,
 * ?beta=true of Anthropic's beta paths. -1 if it does not fit up_path. */
static int add_query(req_t *r)
{
    size_t plen, qlen = 0;
    const char *url = http_req_path(&r->h, &plen);

    while (plen + qlen < r->h.url_len && url[plen + qlen] != '#')
        qlen++;
    if (!qlen || url[plen] != '?')
        return 0;
    if (r->up_path_len + qlen >= sizeof(r->up_path))
        return -1;
    memcpy(r->up_path + r->up_path_len, url + plen, qlen);
    r->up_path_len += qlen;
    r->up_path[r->up_path_len] = '\0';
    return 0;
}

/* A token count for a model whose providers cannot count (an OpenAI-compatible one serving
 * Anthropic Messages through translation): the gateway's estimate, said to be one. 1 if
 * answered. */
static int count_locally(conn_t *c, req_t *r, const api_op_t *op)
{
    for (int p = CFG_API_OPENAI; p < CFG_API_COUNT; p++) {
        const xlate_pair_t *x = xlate_find_count(r->api, op, (enum cfg_api)p);
        route_filter_t f = r->filter;
        uint32_t tokens = 0;
        char body[64];

        f.apis = API_PROVIDER(p);
        if (!x || !route_serves(r->model, &f))
            continue;
        if (x->count_tokens(r->h.body.data ? r->h.body.data : "", r->h.body.len, &tokens) != 0) {
            conn_respond_error(c, 400, "invalid_request_error", NULL,
                               "the request body is not a JSON object");
            return 1;
        }
        snprintf(body, sizeof(body), "{\"input_tokens\":%u}", tokens);
        conn_respond(c, 200, "application/json", body, strlen(body),
                     "x-llmgate-estimate: true\r\n");
        return 1;
    }
    return 0;
}

/* Who is asking: a client of the configuration (auth.h), else of the store (auth_store.h;
 * also the only ones when the configuration has none and does not allow anonymous use).
 * 0 with r->client set (NULL: anonymous), or -1 with the 401 (500) answered. The answer never
 * echoes what was presented. */
static int authenticate(conn_t *c, req_t *r, const cfg_t *cfg, unsigned gen)
{
    int rc = gen ? auth_check_cached(cfg, gen, r->h.hdrs, r->h.nhdrs, &c->auth, &r->client)
                 : auth_check(cfg, r->h.hdrs, r->h.nhdrs, &r->client);
    if (rc == AUTH_EUNKNOWN || (rc == AUTH_EMISSING && cfg->client_keys_count == 0)) {
        rc = auth_store_check(conn_px(c)->shm, r->h.hdrs, r->h.nhdrs, &r->store_client);
        if (rc == 0) {
            r->client = &r->store_client.client;
            return 0;
        }
        if (rc == AUTH_ESTORE) {
            log_error("store: a client key lookup failed");
            conn_respond_error(c, 500, "internal_error", NULL, "%s", r->store_client.why);
            return -1;
        }
        conn_respond_error_hdr(c, 401, r->api->auth_challenge, auth_code(rc), NULL, "%s",
                               r->store_client.why);
        return -1;
    }
    if (rc != 0) {
        conn_respond_error_hdr(c, 401, r->api->auth_challenge, auth_code(rc), NULL, "%s",
                               auth_message(rc));
        return -1;
    }
    return 0;
}

static void proxy_api(conn_t *c, req_t *r, const api_match_t *m)
{
    const api_adapter_t *api = m->api;
    int rc;

    r->cfgref = cfgref_get(conn_px(c)->cfgref);
    if (authenticate(c, r, r->cfgref->cfg, r->cfgref->generation) != 0)
        return;
    r->filter.apis = tr_formats(api, m->op); /* as it is, or translated */
    if (api_upstream_path(m, r->up_path, sizeof(r->up_path), &r->up_path_len) != 0) {
        conn_respond_error(c, 414, "invalid_request_error", NULL, "request path too long");
        return;
    }
    if (add_query(r) != 0) {
        conn_respond_error(c, 414, "invalid_request_error", NULL,
                           "request query string too long (at most %zu bytes with the path)",
                           sizeof(r->up_path) - 1);
        return;
    }
    if (m->op->flags & API_OP_MODEL) {
        rc = scan_body(r->h.body.data ? r->h.body.data : "", r->h.body.len, api->scan, &r->scan);
        if (rc != 0) {
            const char *param = rc == SCAN_ENOMODEL ? "model" : r->scan.bad_field;
            conn_respond_error(c, 400, "invalid_request_error", param, "%s",
                               scan_strerror(rc, &r->scan));
            return;
        }
        r->model = cfg_model_find(r->cfgref->cfg, r->scan.model, r->scan.model_len);
        if (!r->model) {
            conn_respond_error(c, 404, "model_not_found", "model",
                               "The model `%s` does not exist or is not served by this gateway",
                               r->scan.model);
            return;
        }
    } else {
        r->scan.max_tokens = -1;
        r->scan.store = -1;
    }
    if (m->op->flags & API_OP_OBJECT) {
        if (resolve_object(c, r, m->id, m->id_len, 0) != 0)
            return;
    } else if (r->scan.previous_id_len) {
        route_filter_t f = r->filter;
        f.apis = api->providers; /* a stored response lives only where the API is native */
        if (!route_serves(r->model, &f)) {
            conn_respond_error(c, 400, "invalid_request_error", "previous_response_id",
                               "previous_response_id: model %s is served by providers without "
                               "the %s API (api: openai-chat, translated to chat completions), "
                               "where llmgate cannot continue a stored response; send the whole "
                               "conversation in input instead (as with store: false)",
                               r->model->name, api->name);
            return;
        }
        if (resolve_object(c, r, r->scan.previous_id, r->scan.previous_id_len, 1) != 0)
            return;
    }
    if (!auth_model_allowed(r->client, r->model)) {
        conn_respond_error(c, 403, "model_not_allowed", "model",
                           "client key %s may not use model %s", r->client->name, r->model->name);
        return;
    }
    if (!r->object_id[0] && !route_serves(r->model, &r->filter)) {
        if (count_locally(c, r, m->op))
            return;
        conn_respond_error(c, 400, "api_not_supported", "model",
                           "model %s has no provider that serves the %s API (%s %s); use an API "
                           "its providers speak",
                           r->model->name, api->name,
                           llhttp_method_name((llhttp_method_t)m->op->method), m->op->path);
        return;
    }
    /* TPM reservation: about four bytes a token for the prompt, plus what may come back. */
    if (m->op->flags & API_OP_FREE)
        r->tokens_estimate = 0;
    else
        r->tokens_estimate = (uint32_t)(r->h.body.len / 4) +
                             (r->scan.max_tokens > 0 ? (uint32_t)r->scan.max_tokens : 0);
    attempt_start(c, r);
}

static void respond_models(conn_t *c, req_t *r)
{
    const cfg_t *cfg = conn_px(c)->cfg;
    const cfg_client_t *client;
    buf_t b = {0};
    int first = 1;

    if (authenticate(c, r, cfg, 0) != 0)
        return;
    client = r->client;

    buf_appends(&b, "{\"object\":\"list\",\"data\":[");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        const cfg_model_t *m = &cfg->models[i];
        if (!auth_model_allowed(client, m))
            continue;
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

static void proxy_serve(conn_t *c, http_req_t *hr)
{
    req_t *r = (req_t *)hr;
    size_t plen;
    const char *url = http_req_path(hr, &plen);
    api_match_t m;
    int rc;

    proxy_request_id(c, r);
    rc = api_find(r->h.method, url, plen, &m);
    if (rc != API_ENOPATH) {
        r->api = m.api;
        r->op = m.op;
        r->h.error_json = m.api->error_json;
    }
    if (rc == API_EMETHOD) {
        conn_respond_error(c, 405, "method_not_allowed", NULL, "%s does not accept %s", m.op->path,
                           llhttp_method_name((llhttp_method_t)r->h.method));
        return;
    }
    if (rc == 0 && (m.op->flags & API_OP_LOCAL)) {
        respond_models(c, r);
        return;
    }
    if (rc == 0) {
        proxy_api(c, r, &m);
        return;
    }
    if (path_is(url, plen, "/metrics") && conn_px(c)->cfg->metrics.mode == CFG_METRICS_MAIN) {
        buf_t b = {0};
        int st = obs_render_metrics(&b) == 0 ? 200 : 500;
        conn_respond(c, st, OBS_METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len, NULL);
        buf_free(&b);
        return;
    }
    if (path_is(url, plen, "/health/full") && conn_px(c)->cfg->metrics.mode == CFG_METRICS_MAIN) {
        buf_t b = {0};
        int st = obs_render_readiness(&b);
        conn_respond(c, st, "application/json", b.data ? b.data : "", b.len, NULL);
        buf_free(&b);
        return;
    }
    if (path_is(url, plen, "/health")) {
        if (r->h.method != HTTP_GET)
            conn_respond_error(c, 405, "method_not_allowed", NULL, "this path accepts GET only");
        else
            conn_respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL);
        return;
    }
    /* The path only: a query string may carry something the client should not see echoed. */
    conn_respond_error(c, 404, "unknown_url", NULL, "Unknown request URL: %s %.*s",
                       llhttp_method_name((llhttp_method_t)r->h.method),
                       (int)(plen > 120 ? 120 : plen), url);
}

static void proxy_abort(http_req_t *r)
{
    attempt_abort((req_t *)r);
}

static void proxy_drain(http_req_t *r, size_t queued)
{
    attempt_drain((req_t *)r, queued);
}

static void proxy_end(conn_t *c, http_req_t *hr)
{
    req_t *r = (req_t *)hr;

    proxy_obs_finish(c, r);
    req_recycle(r->px, r);
}

const http_handler_t proxy_handler = {
    .req_new = req_new,
    .serve = proxy_serve,
    .abort = proxy_abort,
    .drain = proxy_drain,
    .end = proxy_end,
};

int proxy_init(proxy_t *p, uv_loop_t *loop)
{
    route_state_init(&p->route, (uint64_t)uv_hrtime() ^ ((uint64_t)(p->id + 1) << 32));
    p->held_idle.data = p;
    return uv_idle_init(loop, &p->held_idle);
}

void proxy_check(proxy_t *p)
{
    /* admissions (with the held outcomes) and outcomes first: a client that has its answer
     * finds it counted in the store */
    attempt_flush_objects(p);
    attempt_run_admissions(p);
    attempt_flush_records(p);
}

void proxy_close(proxy_t *p)
{
    attempt_flush_objects(p);
    attempt_flush_records(p);
    p->finishing = 1;
    uv_close((uv_handle_t *)&p->held_idle, NULL);
}
