/* proxy.c - what a complete request becomes: a local answer (/health, /v1/models, errors)
 * or an upstream request whose response streams back to the client.
 *
 * Streaming: response bytes are written to the client as the upstream delivers them,
 * never collected. When more than HIGH_WATER bytes wait in the client's write queue, the
 * upstream is paused (upstream_req_pause) and resumed once the queue drains below the low
 * watermark (proxy_on_drain, from the write callback) - a slow client slows the upstream
 * read instead of growing memory.
 */
#include "server/conn.h"
#include "server/errors.h"
#include "server/log.h"
#include "server/policy.h"
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HIGH_WATER (256 * 1024)

void req_free(req_t *r)
{
    if (!r)
        return;
    if (r->admitted) /* never expected: every path records; do not leave in-flight behind */
        shm_key_release(r->conn->w->shm, &r->resv, 0, SHM_NOW);
    buf_free(&r->head);
    buf_free(&r->body);
    buf_free(&r->up_head);
    free(r->spans);
    free(r->hdrs);
    free(r->up_body);
    free(r);
}

/* ---- the store: outcomes --------------------------------------------------------- */

static uint32_t ms_between(uint64_t from_ns, uint64_t to_ns)
{
    uint64_t ms = to_ns > from_ns ? (to_ns - from_ns) / 1000000 : 0;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static int class_of_status(int status)
{
    if (status >= 200 && status < 300)
        return SHM_CL_SUCCESS;
    if (status == 429)
        return SHM_CL_429;
    if (status == 401 || status == 403)
        return SHM_CL_AUTH;
    if (status >= 500)
        return SHM_CL_5XX;
    return SHM_CL_OTHER;
}

static int class_of_error(int err)
{
    switch (err) {
    case UPSTREAM_ETIMEDOUT_CONNECT:
    case UPSTREAM_ETIMEDOUT_FIRSTBYTE:
    case UPSTREAM_ETIMEDOUT_IDLE:
        return SHM_CL_TIMEOUT;
    case UPSTREAM_ECONNECT:
    case UPSTREAM_ETLS_VERIFY:
    case UPSTREAM_ETLS:
        return SHM_CL_CONNECT;
    case UPSTREAM_ECANCELED:
        return SHM_CL_CANCELLED;
    default:
        return SHM_CL_5XX; /* reset, truncated or unparseable response */
    }
}

/* Finish the attempt's reservation with its outcome (once). */
static void record_outcome(req_t *r, int cls, int code)
{
    worker_t *w = r->conn->w;
    shm_outcome_t o;
    uint64_t now = uv_hrtime();
    int rc;

    if (!r->admitted)
        return;
    r->admitted = 0;
    shm_outcome_init(&o, cls);
    o.code = code;
    if (r->ttfb_ns)
        o.ttfb_ms = ms_between(r->attempt_ns, r->ttfb_ns);
    if (cls == SHM_CL_SUCCESS) {
        o.total_ms = ms_between(r->attempt_ns, now);
        if (o.total_ms == 0)
            o.total_ms = 1;
    }
    if (!usage_tail_scan(&r->usage, &o.prompt_tokens, &o.completion_tokens)) {
        /* No usage seen (an error, an early end): keep the estimate reserved for TPM. */
        o.prompt_tokens = r->tokens_estimate;
        o.completion_tokens = 0;
    } else {
        const cfg_model_t *m = r->pick.model;
        o.cost_micro_usd = (uint64_t)((double)o.prompt_tokens * m->input_price_per_m +
                                      (double)o.completion_tokens * m->output_price_per_m + 0.5);
    }
    rc = shm_key_record(w->shm, &r->resv, &o, SHM_NOW);
    if (rc != 0)
        log_error("store: recording the outcome of key %s failed: %s", r->pick.key->name,
                  shm_strerror(rc));
}

void proxy_abort(req_t *r)
{
    if (r->up) {
        upstream_req_abort(r->up);
        r->up = NULL;
    }
    record_outcome(r, SHM_CL_CANCELLED, 0);
}

void proxy_on_drain(req_t *r)
{
    if (r->up && r->up_paused) {
        r->up_paused = 0;
        upstream_req_resume(r->up);
    }
}

/* ---- upstream callbacks ----------------------------------------------------------- */

static void on_up_response_cb(upstream_req_t *up, int status, const upstream_hdr_t *hdrs,
                              size_t nhdrs, long long content_length, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->conn;
    char extra[512];
    buf_t head = {0};
    int keep = r->keep_alive && !c->close_after && !c->w->draining;

    (void)up;
    r->ttfb_ns = uv_hrtime();
    r->up_status = status;
    snprintf(extra, sizeof(extra),
             "x-llmgate-provider: %s\r\nx-llmgate-key: %s\r\nx-llmgate-attempts: %d\r\n",
             r->pick.dep->provider_ref->name, r->pick.key->name, r->attempts);
    if (rewrite_response_head(&head, status, hdrs, nhdrs, content_length, r->http11, keep, extra,
                              &r->chunked) != 0) {
        buf_free(&head);
        proxy_abort(r);
        conn_request_done(c, 1);
        return;
    }
    if (!keep || (content_length < 0 && !r->chunked))
        c->close_after = 1;
    r->response_started = 1;
    conn_write(c, head.data, head.len);
    buf_free(&head);
}

static void on_up_body_cb(upstream_req_t *up, const char *data, size_t len, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->conn;

    usage_tail_feed(&r->usage, data, len);
    conn_write_body(c, r->chunked, data, len);
    if (!r->up_paused && conn_write_queued(c) > HIGH_WATER) {
        r->up_paused = 1;
        upstream_req_pause(up);
    }
}

static void on_up_done_cb(upstream_req_t *up, int err, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->conn;
    const char *prov = r->pick.dep->provider_ref->name;

    (void)up;
    r->up = NULL; /* freed by upstream.c when this returns */
    if (r->response_started) {
        record_outcome(r, err ? class_of_error(err) : class_of_status(r->up_status),
                       err ? 0 : r->up_status);
        if (err == 0 && r->chunked)
            conn_write(c, "0\r\n\r\n", 5);
        if (err != 0)
            log_warn("upstream %s (key %s) failed mid-response: %s", prov, r->pick.key->name,
                     upstream_strerror(err));
        conn_request_done(c, err != 0);
        return;
    }
    record_outcome(r, class_of_error(err), 0);
    log_warn("upstream %s (key %s): %s", prov, r->pick.key->name, upstream_strerror(err));
    if (err == UPSTREAM_ETIMEDOUT_CONNECT || err == UPSTREAM_ETIMEDOUT_FIRSTBYTE)
        conn_respond_error(c, 504, "upstream_timeout", NULL, "upstream provider %s timed out: %s",
                           prov, upstream_strerror(err));
    else
        conn_respond_error(c, 502, "upstream_error", NULL, "upstream provider %s failed: %s", prov,
                           upstream_strerror(err));
}

static const upstream_cbs_t up_cbs = {
    .on_response_cb = on_up_response_cb,
    .on_body_cb = on_up_body_cb,
    .on_done_cb = on_up_done_cb,
};

/* ---- the proxied endpoints -------------------------------------------------------- */

/* Admit one key of the first group that has an admissible one. 0 and r->pick/r->resv set,
 * SHM_NONE (*retry_at: earliest time a candidate frees up by time alone, 0 if none will;
 * *busy: some candidate is only waiting for its requests in flight to finish), or another
 * SHM_E* error. */
static int admit_next(worker_t *w, req_t *r, int64_t *retry_at, int *busy)
{
    route_cand_t cands[ROUTE_MAX_GROUP];
    const char *names[ROUTE_MAX_GROUP];
    uint8_t skip[ROUTE_MAX_GROUP];

    *retry_at = 0;
    *busy = 0;
    for (unsigned g = 0;; g++) {
        unsigned n = route_group(&w->route, r->model, &r->tried, g, cands, ROUTE_MAX_GROUP);
        policy_ctx_t pc = {w->cfg->policy.strategy, &w->route, cands};
        shm_admit_req_t ar = {names, n, r->tokens_estimate, policy_choose, &pc, skip};
        int64_t t = 0;
        int rc;

        if (n == 0)
            return SHM_NONE;
        for (unsigned i = 0; i < n; i++)
            names[i] = cands[i].key->name;
        rc = shm_key_admit(w->shm, &ar, SHM_NOW, &r->resv, &t);
        if (rc == 0) {
            r->pick = cands[r->resv.index];
            r->admitted = 1;
            route_tried_add(&r->tried, r->pick.key);
            return 0;
        }
        if (rc != SHM_NONE)
            return rc;
        if (t && (!*retry_at || t < *retry_at))
            *retry_at = t;
        for (unsigned i = 0; i < n; i++)
            *busy |= skip[i] == SHM_SKIP_INFLIGHT || skip[i] == SHM_SKIP_PROBE;
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One attempt on the next admitted (deployment, key). */
static void proxy_attempt(conn_t *c, req_t *r)
{
    worker_t *w = c->w;
    const char *body = r->body.data ? r->body.data : "";
    size_t body_len = r->body.len;
    int64_t retry_at;
    int rc, busy;

    rc = admit_next(w, r, &retry_at, &busy);
    if (rc == SHM_NONE) {
        /* Keys that only wait for time or for requests in flight: 429, come back later.
         * Keys that are all disabled, invalid or depleted: 503. */
        if (retry_at || busy) {
            char hdr[64];
            int64_t wait_ms = retry_at ? retry_at - wall_ms() : 1000;
            long secs = wait_ms <= 0 ? 1 : (long)((wait_ms + 999) / 1000);
            snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", secs);
            conn_respond_error_hdr(c, 429, hdr, "rate_limit_exceeded", NULL,
                                   "every upstream key for model %s is at its limit or cooling "
                                   "down; retry in %ld s",
                                   r->model->name, secs);
        } else {
            conn_respond_error(c, 503, "no_upstream_available", NULL,
                               "no upstream key is available for model %s", r->model->name);
        }
        return;
    }
    if (rc != 0) {
        log_error("store: admission failed: %s", shm_strerror(rc));
        conn_respond_error(c, 500, "internal_error", NULL, "the gateway's state store failed");
        return;
    }
    free(r->up_body);
    r->up_body = NULL;
    if (strcmp(r->pick.dep->model, r->scan.model) != 0) {
        if (scan_splice_model(body, body_len, &r->scan, r->pick.dep->model, &r->up_body,
                              &r->up_body_len) != 0)
            goto oom;
        body = r->up_body;
        body_len = r->up_body_len;
    }
    buf_reset(&r->up_head);
    if (rewrite_request_head(&r->up_head, "POST", r->suffix, strlen(r->suffix), r->hdrs, r->nhdrs,
                             r->pick.dep->provider_ref, r->pick.key, body_len) != 0)
        goto oom;
    r->attempts++;
    r->attempt_ns = uv_hrtime();
    r->ttfb_ns = 0;
    r->usage.len = 0;
    rc = upstream_request(w->pool, r->pick.dep->provider_ref, r->up_head.data, r->up_head.len,
                          body, body_len, 0, &up_cbs, r, &r->up);
    if (rc != 0) {
        r->up = NULL;
        record_outcome(r, class_of_error(rc), 0);
        conn_respond_error(c, 502, "upstream_error", NULL, "upstream provider %s failed: %s",
                           r->pick.dep->provider_ref->name, upstream_strerror(rc));
    }
    return;
oom:
    shm_key_release(w->shm, &r->resv, 1, SHM_NOW);
    r->admitted = 0;
    conn_respond_error(c, 500, "internal_error", NULL, "out of memory");
}

static void proxy_completion(conn_t *c, req_t *r, const char *suffix)
{
    int rc;

    r->suffix = suffix;
    rc = scan_body(r->body.data ? r->body.data : "", r->body.len, &r->scan);
    if (rc != 0) {
        const char *param = rc == SCAN_ENOMODEL ? "model" : r->scan.bad_field;
        conn_respond_error(c, 400, "invalid_request_error", param, "%s",
                           scan_strerror(rc, &r->scan));
        return;
    }
    r->model = cfg_model_find(c->w->cfg, r->scan.model, r->scan.model_len);
    /* TPM reservation: about four bytes a token for the prompt, plus what may come back. */
    r->tokens_estimate = (uint32_t)(r->body.len / 4) +
                         (r->scan.max_tokens > 0 ? (uint32_t)r->scan.max_tokens : 0);
    if (!r->model) {
        conn_respond_error(c, 404, "model_not_found", "model",
                           "The model `%s` does not exist or is not served by this gateway",
                           r->scan.model);
        return;
    }
    proxy_attempt(c, r);
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
