/* attempt.c - one client request, as many upstream attempts as the key policy allows.
 *
 * Design note
 * -----------
 * An attempt is: admit a key through the store (route groups in failover order, the
 * strategy choosing inside the admission transaction), send, and judge the answer
 * (keypolicy.h). A 2xx streams to the client as it arrives. Anything else is held back
 * (head and body, up to FAIL_BODY_MAX) until it is judged; only then does it either go to
 * the client or lead to the next attempt:
 *   KP_ROTATE           another key at once (429, quota, auth): bounded by the keys;
 *   KP_RETRY            another key after a jittered exponential backoff (5xx, timeouts,
 *                       connect errors), at most policy.max_retries times;
 *   KP_NEXT_DEPLOYMENT  the deployment is skipped by every worker for a while.
 * A key tried once is not tried again by the same request, and nothing is retried once a
 * byte of the response went out. The whole request has policy.request_timeout_ms.
 *
 * When no key is admissible the request waits (the connection's timer) up to
 * policy.wait_for_capacity_ms for the earliest one to come back; then it gets the last
 * upstream failure as it was, or 429 with Retry-After (keys limited or cooling), or 503
 * (every key disabled, invalid or depleted) - naming the model, never a key.
 *
 * Every admitted reservation is finished exactly once: by the judged outcome, by
 * SHM_CL_CANCELLED when the client goes away, or by a refunding release when the request
 * never left. Streaming backpressure: see on_up_body_cb.
 *
 * One store transaction per loop iteration, not two per request: a request that needs a
 * key joins the worker's admission queue (attempt_next), and the worker's check admits the
 * whole queue in one transaction (attempt_run_admissions, shm_key_batch), in arrival order,
 * each over its route groups, then goes on with each request. Plain successes (no status or
 * circuit change) are held back in the worker (hold_success) and recorded at the start of
 * that same transaction, or alone at the end of the iteration when nothing waits for
 * admission - always before the responses of the iteration are written. Every admission
 * still sees every earlier outcome and admission, exact limits hold across workers and
 * processes (the transaction is the writer lock), and others see an outcome at most one loop
 * iteration late. Failures, and outcomes that change a key or a provider, are recorded at
 * once. If the batch transaction fails, nothing of it was written: the outcomes are recorded
 * alone and each request is admitted alone.
 */
#include "server/proxy/attempt.h"
#include "server/common/errors.h"
#include "server/policy/keypolicy.h"
#include "server/common/log.h"
#include "server/obs/obs.h"
#include "server/policy/policy.h"
#include "server/proxy/proxy.h"
#include "server/proxy/translated.h"
#include "shm/shm_obj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH_WATER    (256 * 1024) /* client write queue that pauses the upstream */
#define LOW_WATER     (64 * 1024)  /* ... and that resumes it */
#define FAIL_BODY_MAX (256 * 1024) /* an error body larger than this is passed as it streams */
#define WAIT_POLL_MS  100          /* re-try admission this often when only in-flight blocks */

static void attempt_next(conn_t *c, req_t *r);
static void attempt_admitted(conn_t *c, req_t *r, int rc, int64_t retry_at, int busy);
static void update_idle(proxy_t *w);

static uint32_t ms_between(uint64_t from_ns, uint64_t to_ns)
{
    uint64_t ms = to_ns > from_ns ? (to_ns - from_ns) / 1000000 : 0;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static const cfg_policy_t *policy(const req_t *r)
{
    return &r->px->cfg->policy;
}

/* ---- recording ---------------------------------------------------------------------- */

static void on_hold_idle_cb(uv_idle_t *h)
{
    (void)h; /* only there so that poll does not block while outcomes wait for the check */
}

/* Record one outcome now; a failure is logged (the reservation is the store's to reclaim). */
static void record_now(proxy_t *w, shm_resv_t *resv, const shm_outcome_t *o)
{
    int rc = shm_key_record(w->shm, resv, o, SHM_NOW);
    char why[320];
    if (rc != 0)
        log_error("store: recording the outcome of key %s failed: %s", resv->name,
                  shm_explain(w->shm, rc, why, sizeof(why)));
}

/* Record the held outcomes one by one (a batch refused as a whole loses none of them). */
static void record_each(proxy_t *w)
{
    for (unsigned i = 0; i < w->nheld; i++)
        record_now(w, &w->held_resv[i], &w->held_o[i]);
    w->nheld = 0;
}

/* Pointers to the held reservations, as the store's batch calls take them. */
static void held_ptrs(proxy_t *w, shm_resv_t **ptr)
{
    for (unsigned i = 0; i < w->nheld; i++)
        ptr[i] = &w->held_resv[i];
}

void attempt_flush_records(proxy_t *w)
{
    shm_resv_t *ptr[PROXY_HELD_MAX];

    if (w->nheld == 0)
        return;
    held_ptrs(w, ptr);
    if (shm_key_record_batch(w->shm, ptr, w->held_o, w->nheld, SHM_NOW) == 0)
        w->nheld = 0;
    else
        record_each(w);
    update_idle(w);
}

/* Keep a plain success for the worker's next transaction (see the design note). */
static void hold_success(proxy_t *w, const shm_resv_t *resv, const shm_outcome_t *o)
{
    if (w->nheld == PROXY_HELD_MAX)
        attempt_flush_records(w);
    w->held_resv[w->nheld] = *resv;
    if (w->finishing) { /* the loop is closing: no check will come */
        record_now(w, &w->held_resv[w->nheld], o);
        return;
    }
    w->held_o[w->nheld] = *o;
    w->nheld++;
    update_idle(w);
}

/* Finish the attempt's reservation with outcome o (latency, usage and cost filled here). */
static void record(req_t *r, shm_outcome_t *o)
{
    proxy_t *w = r->px;
    uint64_t now = loop_clock_ns(w->clock);
    usage_t u;

    if (!r->admitted)
        return;
    r->admitted = 0;
    if (r->ttfb_ns)
        o->ttfb_ms = ms_between(r->attempt_ns, r->ttfb_ns);
    if (o->cls == SHM_CL_SUCCESS) {
        o->total_ms = ms_between(r->attempt_ns, now);
        if (o->total_ms == 0)
            o->total_ms = 1;
    }
    if (r->op->flags & API_OP_FREE) {
        o->prompt_tokens = o->completion_tokens = 0; /* counting tokens, reading an object */
        o->cost_micro_usd = 0;
    } else if (req_usage(r, &u)) {
        const cfg_model_t *m = r->pick.model;
        o->prompt_tokens = u.input;
        o->completion_tokens = u.output;
        o->cost_micro_usd = (uint64_t)((double)o->prompt_tokens * m->input_price_per_m +
                                       (double)o->completion_tokens * m->output_price_per_m + 0.5);
    } else {
        /* No usage seen (an error, an early end): keep the estimate reserved for TPM; a
         * cut stream has spent about one token per event streamed. */
        o->prompt_tokens = o->cls == SHM_CL_SUCCESS || o->cls == SHM_CL_CANCELLED
                               ? (uint32_t)(r->h.body.len / 4)
                               : 0;
        o->completion_tokens = o->cls == SHM_CL_CANCELLED ? r->sse_events : 0;
        if (o->cls == SHM_CL_SUCCESS || o->cls == SHM_CL_CANCELLED) {
            const cfg_model_t *m = r->pick.model;
            o->cost_micro_usd =
                (uint64_t)((double)o->prompt_tokens * m->input_price_per_m +
                           (double)o->completion_tokens * m->output_price_per_m + 0.5);
        }
    }
    if (o->cls == SHM_CL_SUCCESS && o->set_status < 0 && o->circuit < 0 &&
        o->cooldown_until_ms == 0) {
        hold_success(w, &r->resv, o);
        return;
    }
    record_now(w, &r->resv, o);
}

static void record_class(req_t *r, int cls, int code)
{
    shm_outcome_t o;

    shm_outcome_init(&o, cls);
    o.code = code;
    record(r, &o);
}

void attempt_abort(req_t *r)
{
    attempt_forget(r);
    attempt_obj_detach(r);
    if (r->up) {
        r->upstream_ns += loop_clock_ns(r->px->clock) - r->attempt_ns;
        upstream_req_abort(r->up);
        r->up = NULL;
    }
    record_class(r, SHM_CL_CANCELLED, 0);
}

/* The client took nothing for send_timeout_ms (or the request's deadline passed) while the
 * upstream was paused for it: close; conn_close aborts the upstream request and releases
 * the reservation as cancelled, so a client that stops reading holds no slot for long. */
static void on_send_timeout(conn_t *c)
{
    req_t *r = (req_t *)c->req;

    if (!r || !r->up_paused)
        return;
    log_warn("request %s for %s: the client took no response bytes for %u ms, closing",
             r->h.request_id, r->model ? r->model->name : "?", r->send_wait_ms);
    conn_close(c);
}

/* While paused, the connection's timer (free once a response streams) bounds the client's
 * silence: send_timeout_ms from its last progress, never past the request's deadline. */
static void arm_send_timeout(conn_t *c, req_t *r)
{
    uint64_t now = loop_clock_ns(conn_px(c)->clock), ms = conn_px(c)->cfg->limits.send_timeout_ms;

    if (r->deadline_ns <= now)
        ms = 1;
    else if ((r->deadline_ns - now) / 1000000 < ms)
        ms = (r->deadline_ns - now) / 1000000 + 1;
    r->send_wait_ms = (uint32_t)ms;
    conn_wait(c, ms, on_send_timeout);
}

void attempt_drain(req_t *r, size_t queued)
{
    if (!r->up || !r->up_paused)
        return;
    if (queued >= LOW_WATER) { /* the client took some: it has send_timeout_ms again */
        arm_send_timeout(r->h.conn, r);
        return;
    }
    r->up_paused = 0;
    r->h.want_drain = 0;
    conn_wait_cancel(r->h.conn);
    upstream_req_resume(r->up);
}

/* ---- final answers ------------------------------------------------------------------ */

/* Appends s at out[*o], never past len - 1 (cut, like snprintf); out stays terminated. */
static void put_str(char *out, size_t len, size_t *o, const char *s)
{
    size_t n = strlen(s);

    if (*o + n >= len)
        n = *o < len ? len - 1 - *o : 0;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

#define EXTRA_MAX 1024 /* the gateway's own header lines of one answer */

static void put_u64(char *out, size_t len, size_t *o, uint64_t v)
{
    char num[24];

    num[sizeof(num) - 1] = '\0';
    put_str(out, len, o, u64_digits(num + sizeof(num) - 1, v));
}

/* A duration as OpenAI writes x-ratelimit-reset-*: "250ms", "17s", "6m0s", "2h3m0s" (whole
 * seconds rounded up from one second on). */
static void put_duration(char *out, size_t len, size_t *o, int64_t ms)
{
    if (ms < 1000) {
        put_u64(out, len, o, ms > 0 ? (uint64_t)ms : 0);
        put_str(out, len, o, "ms");
        return;
    }
    uint64_t sec = ((uint64_t)ms + 999) / 1000;
    if (sec >= 3600) {
        put_u64(out, len, o, sec / 3600);
        put_str(out, len, o, "h");
    }
    if (sec >= 60) {
        put_u64(out, len, o, sec / 60 % 60);
        put_str(out, len, o, "m");
    }
    put_u64(out, len, o, sec % 60);
    put_str(out, len, o, "s");
}

static void put_limit(char *out, size_t len, size_t *o, const char *kind, uint64_t limit,
                      uint64_t remaining, int64_t reset_in_ms)
{
    put_str(out, len, o, "x-ratelimit-limit-");
    put_str(out, len, o, kind);
    put_str(out, len, o, ": ");
    put_u64(out, len, o, limit);
    put_str(out, len, o, "\r\nx-ratelimit-remaining-");
    put_str(out, len, o, kind);
    put_str(out, len, o, ": ");
    put_u64(out, len, o, remaining);
    put_str(out, len, o, "\r\nx-ratelimit-reset-");
    put_str(out, len, o, kind);
    put_str(out, len, o, ": ");
    put_duration(out, len, o, reset_in_ms);
    put_str(out, len, o, "\r\n");
}

/* The client key's own budgets as x-ratelimit-* lines (the admission's view of them). */
static void put_budget(char *out, size_t len, size_t *o, const req_t *r)
{
    const shm_budget_t *b = &r->budget;
    int64_t now;

    if (!r->client || !r->has_budget || (!b->req_limit && !b->tok_limit))
        return;
    now = loop_clock_wall_ms(conn_px(r->h.conn)->clock);
    if (b->req_limit)
        put_limit(out, len, o, "requests", b->req_limit, b->req_remaining, b->req_reset_ms - now);
    if (b->tok_limit)
        put_limit(out, len, o, "tokens", b->tok_limit, b->tok_remaining, b->tok_reset_ms - now);
}

/* The headers of an answer the gateway makes itself: Retry-After (secs > 0) and the client
 * key's budgets. */
static void gateway_headers(const req_t *r, long secs, char *out, size_t len)
{
    size_t o = 0;

    out[0] = '\0';
    if (secs > 0) {
        put_str(out, len, &o, "Retry-After: ");
        put_u64(out, len, &o, (uint64_t)secs);
        put_str(out, len, &o, "\r\n");
    }
    put_budget(out, len, &o, r);
}

/* The flags of a proxied answer's head (rewrite.h). */
static unsigned head_flags(const req_t *r, int keep)
{
    return (r->h.http11 ? RW_HTTP11 : 0) | (keep ? RW_KEEP_ALIVE : 0) |
           (r->client ? RW_OWN_RATELIMIT : 0);
}

/* The x-llmgate-* lines of an answer, the client key's budgets, and x-request-id unless
 * conn_respond adds it (per request: no printf). */
static void attempt_headers(const req_t *r, const cfg_provider_t *prov, const cfg_key_t *key,
                            int with_request_id, char *out, size_t len)
{
    char num[24], *p;
    size_t o = 0;

    num[sizeof(num) - 1] = '\0';
    p = u64_digits(num + sizeof(num) - 1, r->attempts > 0 ? (uint64_t)r->attempts : 0);
    out[0] = '\0';
    put_str(out, len, &o, "x-llmgate-provider: ");
    put_str(out, len, &o, prov->name);
    put_str(out, len, &o, "\r\nx-llmgate-key: ");
    put_str(out, len, &o, key->name);
    put_str(out, len, &o, "\r\nx-llmgate-attempts: ");
    put_str(out, len, &o, p);
    put_str(out, len, &o, "\r\n");
    put_budget(out, len, &o, r);
    if (with_request_id) {
        put_str(out, len, &o, "x-request-id: ");
        put_str(out, len, &o, r->h.request_id);
        put_str(out, len, &o, "\r\n");
    }
}

/* Headers of a held answer, as views into fail_head ("Name: value\r\n" lines). */
static size_t held_headers(const req_t *r, http_hdr_t *out, size_t max)
{
    const char *p = r->fail_head.data, *end = p + r->fail_head.len;
    size_t n = 0;

    while (p && p < end && n < max) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            break;
        out[n].name = p;
        out[n].name_len = (size_t)(colon - p);
        out[n].value = colon + 2;
        out[n].value_len = (size_t)(eol - colon - 2);
        n++;
        p = eol + 2;
    }
    return n;
}

/* The last upstream failure goes to the client as the provider sent it - but for a refused
 * credential: that answer is about the gateway's key, not the client's (and OpenAI's 401
 * echoes a masked fragment of the key), so the client gets the gateway's own 502. */
static void deliver_failure(conn_t *c, req_t *r)
{
    if (r->fail_status == 401 || r->fail_status == 403) {
        char extra[EXTRA_MAX];
        attempt_headers(r, r->fail_prov, r->fail_key, 0, extra, sizeof(extra));
        conn_respond_error_hdr(c, 502, extra, "upstream_auth_failed", NULL,
                               "provider %s refused the gateway's credential for model %s (HTTP "
                               "%d); an operator must check the key",
                               r->fail_prov->name, r->model->name, r->fail_status);
        return;
    }
    if (r->fail_status && r->fail_xpair) {
        /* the provider's error in the client API's shape */
        char extra[EXTRA_MAX];
        buf_t out = {0};
        int st = r->fail_status;
        attempt_headers(r, r->fail_prov, r->fail_key, 0, extra, sizeof(extra));
        if (tr_error(r, r->fail_status, r->fail_body.data ? r->fail_body.data : "",
                     r->fail_body.len, &out, &st) == 0)
            conn_respond(c, st, "application/json", out.data ? out.data : "", out.len, extra);
        else
            conn_respond_error_hdr(c, 502, extra, "upstream_error", NULL,
                                   "upstream provider %s failed (HTTP %d)", r->fail_prov->name,
                                   r->fail_status);
        buf_free(&out);
        return;
    }
    if (r->fail_status) {
        http_hdr_t hdrs[128];
        size_t n = held_headers(r, hdrs, 128);
        char extra[EXTRA_MAX];
        buf_t head = {0};
        int chunked;

        attempt_headers(r, r->fail_prov, r->fail_key, 1, extra, sizeof(extra));
        if (rewrite_response_head(&head, r->fail_status, hdrs, n, (long long)r->fail_body.len,
                                  head_flags(r, r->h.keep_alive && !c->close_after), extra,
                                  &chunked) == 0) {
            r->response_started = 1;
            conn_write(c, head.data, head.len);
            conn_write_body(c, 0, r->fail_body.data, r->fail_body.len);
            buf_free(&head);
            conn_request_done(c, 0);
            return;
        }
        buf_free(&head);
        conn_respond_error(c, 500, "internal_error", NULL, "out of memory");
        return;
    }
    if (r->fail_err == UPSTREAM_ETIMEDOUT_CONNECT || r->fail_err == UPSTREAM_ETIMEDOUT_FIRSTBYTE)
        conn_respond_error(c, 504, "upstream_timeout", NULL, "upstream provider %s timed out: %s",
                           r->fail_prov->name, upstream_strerror(r->fail_err));
    else
        conn_respond_error(c, 502, "upstream_error", NULL, "upstream provider %s failed: %s",
                           r->fail_prov->name, upstream_strerror(r->fail_err));
}

/* ---- upstream callbacks ------------------------------------------------------------- */

static void on_up_response_cb(upstream_req_t *up, int status, const http_hdr_t *hdrs, size_t nhdrs,
                              long long content_length, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->h.conn;
    char extra[EXTRA_MAX];
    buf_t head = {0};
    int keep = r->h.keep_alive && !c->close_after && !conn_px(c)->http->draining;
    const char *why;

    (void)up;
    r->ttfb_ns = loop_clock_ns(conn_px(c)->clock);
    r->up_status = status;
    r->up_content_length = content_length;
    if (status < 200 || status >= 300) {
        /* Held back until judged: it may lead to another attempt instead. */
        r->buffering = 1;
        buf_reset(&r->fail_head);
        buf_reset(&r->fail_body);
        for (size_t i = 0; i < nhdrs; i++) {
            buf_append(&r->fail_head, hdrs[i].name, hdrs[i].name_len);
            buf_append(&r->fail_head, ": ", 2);
            buf_append(&r->fail_head, hdrs[i].value, hdrs[i].value_len);
            buf_append(&r->fail_head, "\r\n", 2);
        }
        return;
    }
    {
        kp_input_t in = {status, 0, hdrs, nhdrs, NULL, 0, loop_clock_wall_ms(conn_px(c)->clock)};
        keypolicy_judge(policy(r), &in, &r->ok_outcome, &why);
    }
    attempt_headers(r, r->pick.dep->provider_ref, r->pick.key, 1, extra, sizeof(extra));
    /* A body the gateway changes (the usage event it asked for is taken out) cannot keep the
     * provider's Content-Length: it is framed anew (chunked, or to the close for HTTP/1.0). */
    if (r->strip_usage || r->xpair)
        content_length = -1;
    if (rewrite_response_head(&head, status, hdrs, nhdrs, content_length, head_flags(r, keep),
                              extra, &r->chunked) != 0) {
        buf_free(&head);
        attempt_abort(r);
        conn_request_done(c, 1);
        return;
    }
    if (!keep || (content_length < 0 && !r->chunked))
        c->close_after = 1;
    r->response_started = 1;
    conn_write(c, head.data, head.len);
    buf_free(&head);
}

/* ---- stream_include_usage ---------------------------------------------------------- */

/* The end of the first SSE event in p[0..n) (just past its blank line), or NULL. */
static const char *event_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\n' && p[i + 1] == '\n')
            return p + i + 2;
        if (i + 3 < n && p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i + 4;
    }
    return NULL;
}

static int contains(const char *p, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (p[i] == needle[0] && memcmp(p + i, needle, m) == 0)
            return 1;
    return 0;
}

/* The usage-only chunk we asked for (no choices, a usage object). */
static int usage_only_event(const char *p, size_t n)
{
    return contains(p, n, "\"usage\"") &&
           (contains(p, n, "\"choices\":[]") || contains(p, n, "\"choices\": []"));
}

/* Forward complete events except the usage-only one; keep an incomplete one for later. */
static void write_events(conn_t *c, req_t *r, const char *data, size_t len)
{
    const char *b, *e;
    size_t start = 0, out = 0, n;

    if (buf_append(&r->sse_held, data, len) != 0) {
        conn_write_body(c, r->chunked, data, len); /* no memory: pass it as it is */
        return;
    }
    b = r->sse_held.data;
    n = r->sse_held.len;
    while ((e = event_end(b + start, n - start))) {
        size_t end = (size_t)(e - b);
        if (usage_only_event(b + start, end - start)) {
            if (start > out)
                conn_write_body(c, r->chunked, b + out, start - out);
            out = end;
        }
        start = end;
    }
    if (start > out)
        conn_write_body(c, r->chunked, b + out, start - out);
    memmove(r->sse_held.data, b + start, n - start);
    r->sse_held.len = n - start;
}

/* A held error body grew past FAIL_BODY_MAX: give up judging, pass it on as it streams. */
static void stream_held(req_t *r)
{
    conn_t *c = r->h.conn;
    http_hdr_t hdrs[128];
    size_t n = held_headers(r, hdrs, 128);
    char extra[EXTRA_MAX];
    buf_t head = {0};

    attempt_headers(r, r->pick.dep->provider_ref, r->pick.key, 1, extra, sizeof(extra));
    r->buffering = 0;
    r->strip_usage = 0; /* an error body is passed as it is */
    memset(&r->ok_outcome, 0, sizeof(r->ok_outcome));
    shm_outcome_init(&r->ok_outcome, SHM_CL_OTHER);
    r->ok_outcome.code = r->up_status;
    rewrite_response_head(&head, r->up_status, hdrs, n, r->up_content_length,
                          head_flags(r, r->h.keep_alive && !c->close_after), extra, &r->chunked);
    if (r->up_content_length < 0 && !r->chunked)
        c->close_after = 1;
    r->response_started = 1;
    conn_write(c, head.data, head.len);
    conn_write_body(c, r->chunked, r->fail_body.data, r->fail_body.len);
    buf_free(&head);
}

static void copy_name(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* A 2xx that creates a stored object: remember which key created it as soon as its id is in
 * the first bytes of the body (a stream's first event), so that a follow-up never races the
 * end of the stream. Not for "store": false (nothing is stored upstream).
 * The affinity is written with the loop iteration's others in one transaction at the check
 * (attempt_flush_objects); until it is, the bytes from the one that completed the id on are
 * held back: no client can name the id before the store knows it, in any process. */
static void note_object(req_t *r)
{
    proxy_t *w = r->px;
    proxy_obj_t *q;

    if (w->nobjq == PROXY_OBJ_MAX)
        attempt_flush_objects(w);
    q = &w->objq[w->nobjq];
    if (!r->api->object_id(r->usage.head, r->usage.head_len, q->id, sizeof(q->id))) {
        if (r->usage.head_len >= USAGE_HEAD)
            r->object_seen = 1; /* not in the first bytes: nothing to remember */
        return;
    }
    r->object_seen = 1;
    memset(&q->o, 0, sizeof(q->o));
    copy_name(q->o.key, sizeof(q->o.key), r->pick.key->name);
    copy_name(q->o.group, sizeof(q->o.group), r->pick.key->group);
    copy_name(q->o.provider, sizeof(q->o.provider), r->pick.dep->provider_ref->name);
    copy_name(q->o.client, sizeof(q->o.client), r->client ? r->client->name : NULL);
    copy_name(q->o.model, sizeof(q->o.model), r->model->name);
    q->o.expires_ms =
        loop_clock_wall_ms(w->clock) + (int64_t)w->cfg->responses.affinity_ttl_s * 1000;
    q->r = r;
    r->obj_slot = ++w->nobjq;
    if (w->finishing) /* the loop is closing: no check will come */
        attempt_flush_objects(w);
    else
        update_idle(w);
}

void attempt_obj_detach(req_t *r)
{
    if (r->obj_slot) {
        r->px->objq[r->obj_slot - 1].r = NULL;
        r->obj_slot = 0;
    }
    buf_free(&r->obj_held);
    r->obj_done = 0;
}

/* Body bytes to the client (usage events taken out when the gateway asked for them), and
 * the upstream paused while the client lags. */
static void body_out(conn_t *c, req_t *r, const char *data, size_t len)
{
    if (r->strip_usage)
        write_events(c, r, data, len);
    else
        conn_write_body(c, r->chunked, data, len);
    if (r->up && !r->up_paused && conn_write_queued(c) > HIGH_WATER) {
        r->up_paused = 1;
        r->h.want_drain = 1;
        upstream_req_pause(r->up);
        arm_send_timeout(c, r);
    }
}

static void finish_response(conn_t *c, req_t *r, int err);

/* A translated answer's bytes: the client's to send, or gathered (a JSON answer). Bytes that
 * are not the provider's format end the response as a protocol error (finish_response). */
static void translated_out(conn_t *c, req_t *r, const char *data, size_t len)
{
    buf_t out = {0};

    if (r->x_bad)
        return;
    if (tr_body(r, data, len, &out) != 0) {
        r->x_bad = 1;
        log_warn("upstream %s (key %s): an answer the %s translation cannot read",
                 r->pick.dep->provider_ref->name, r->pick.key->name, r->api->name);
    } else if (out.len) {
        body_out(c, r, out.data, out.len);
    }
    buf_free(&out);
}

void attempt_flush_objects(proxy_t *w)
{
    shm_obj_put_t items[PROXY_OBJ_MAX];
    unsigned n = w->nobjq;
    char why[320];
    int rc;

    if (n == 0)
        return;
    for (unsigned i = 0; i < n; i++)
        items[i] = (shm_obj_put_t){w->objq[i].id, strlen(w->objq[i].id), &w->objq[i].o};
    rc = shm_obj_put_batch(w->shm, items, n, w->cfg->responses.affinity_max, SHM_NOW);
    for (unsigned i = 0; rc != 0 && i < n; i++) {
        /* refused as a whole: each on its own, so that only a bad one is lost */
        int one = shm_obj_put(w->shm, items[i].id, items[i].id_len, items[i].o,
                              w->cfg->responses.affinity_max, SHM_NOW);
        if (one != 0)
            log_error("store: remembering response %s of key %s failed: %s", items[i].id,
                      items[i].o->key, shm_explain(w->shm, one, why, sizeof(why)));
    }
    w->nobjq = 0;
    for (unsigned i = 0; i < n; i++) {
        req_t *r = w->objq[i].r;
        if (!r)
            continue;
        r->obj_slot = 0;
        if (r->obj_held.len)
            body_out(r->h.conn, r, r->obj_held.data, r->obj_held.len);
        buf_reset(&r->obj_held);
        if (r->obj_done) {
            r->obj_done = 0;
            finish_response(r->h.conn, r, r->obj_done_err);
        }
    }
    update_idle(w);
}

static void on_up_body_cb(upstream_req_t *up, const char *data, size_t len, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->h.conn;

    usage_tail_feed(&r->usage, data, len);
    if (r->buffering) {
        buf_append(&r->fail_body, data, len);
        if (r->fail_body.len > FAIL_BODY_MAX)
            stream_held(r);
        return;
    }
    if (!r->object_seen)
        note_object(r);
    if (r->scan.stream)
        r->sse_events += usage_count_events(data, len);
    (void)up;
    if (r->xpair) {
        translated_out(c, r, data, len);
        return;
    }
    if (r->obj_slot) { /* its object is not written yet: held for the check */
        buf_append(&r->obj_held, data, len);
        return;
    }
    body_out(c, r, data, len);
}

static void on_wait_done(conn_t *c)
{
    if (c->req)
        attempt_next(c, (req_t *)c->req);
}

static const char *why_reason(const req_t *r)
{
    int s = r->fail_status;
    if (s == 429)
        return "rate_limited";
    if (s == 402)
        return "quota";
    if (s == 401 || s == 403)
        return "auth";
    if (s >= 500)
        return "server_error";
    if (r->fail_err == UPSTREAM_ETIMEDOUT_CONNECT || r->fail_err == UPSTREAM_ETIMEDOUT_FIRSTBYTE ||
        r->fail_err == UPSTREAM_ETIMEDOUT_IDLE)
        return "timeout";
    if (r->fail_err)
        return "connect";
    return "other";
}

/* Act on a judged failure (held answer or transport error) of the current attempt. */
static void after_failure(conn_t *c, req_t *r, kp_action_t act, const char *why)
{
    const cfg_policy_t *pol = policy(r);
    const cfg_deployment_t *dep = r->pick.dep;

    r->fail_prov = dep->provider_ref;
    r->fail_key = r->pick.key;
    if (act == KP_PASS) {
        deliver_failure(c, r);
        return;
    }
    if (loop_clock_ns(conn_px(c)->clock) >= r->deadline_ns) {
        log_warn("request for %s: deadline of %u ms reached after %d attempts (%s)", r->model->name,
                 pol->request_timeout_ms, r->attempts, why);
        deliver_failure(c, r);
        return;
    }
    if (act == KP_ROTATE)
        obs_rotation((unsigned)conn_px(c)->id, why_reason(r));
    if (act == KP_NEXT_DEPLOYMENT)
        obs_rotation((unsigned)conn_px(c)->id, "model_not_found");
    if (act == KP_RETRY && r->retries < pol->max_retries)
        obs_retry((unsigned)conn_px(c)->id, why_reason(r));
    if (act == KP_NEXT_DEPLOYMENT) {
        log_warn("provider %s does not serve model %s: skipping that deployment for %u ms",
                 dep->provider_ref->name, dep->model, pol->model_unavailable_ms);
        route_mark_unavailable(dep,
                               loop_clock_wall_ms(conn_px(c)->clock) + pol->model_unavailable_ms);
    }
    if (act == KP_RETRY) {
        uint32_t ms;
        if (r->retries >= pol->max_retries) {
            deliver_failure(c, r);
            return;
        }
        ms = keypolicy_backoff_ms(pol, r->retries++, route_rand(&conn_px(c)->route));
        conn_wait(c, ms ? ms : 1, on_wait_done);
        return;
    }
    attempt_next(c, r);
}

static void on_up_done_cb(upstream_req_t *up, int err, void *ud)
{
    req_t *r = ud;
    conn_t *c = r->h.conn;
    shm_outcome_t o;
    const char *why = "";
    kp_action_t act;

    (void)up;
    r->up = NULL; /* freed by upstream.c when this returns */
    r->upstream_ns += loop_clock_ns(conn_px(c)->clock) - r->attempt_ns;
    if (r->response_started) {
        if (r->obj_slot) { /* bytes held for its object: the end waits for them */
            r->obj_done = 1;
            r->obj_done_err = err;
            return;
        }
        finish_response(c, r, err);
        return;
    }
    if (r->buffering && !err) {
        http_hdr_t hdrs[128];
        size_t n = held_headers(r, hdrs, 128);
        int64_t now_ms = loop_clock_wall_ms(conn_px(c)->clock);
        kp_input_t in = {r->up_status, 0, hdrs, n, r->fail_body.data, r->fail_body.len, now_ms};
        act = keypolicy_judge(policy(r), &in, &o, &why);
        r->fail_status = r->up_status;
        r->fail_xpair = r->xpair;
        r->fail_err = 0;
    } else {
        /* No (complete) answer: a transport failure of this key. */
        kp_input_t in = {0, err, NULL, 0, NULL, 0, loop_clock_wall_ms(conn_px(c)->clock)};
        act = keypolicy_judge(policy(r), &in, &o, &why);
        r->fail_status = 0;
        r->fail_err = err;
    }
    r->buffering = 0;
    record(r, &o);
    if (act != KP_PASS)
        log_info("model %s: key %s of %s: %s (%s), trying another", r->model->name,
                 r->pick.key->name, r->pick.dep->provider_ref->name,
                 r->fail_status ? http_reason(r->fail_status) : upstream_strerror(err), why);
    after_failure(c, r, act, why);
}

/* The end of a response that was passing to the client: recorded, terminated, done. */
static void finish_response(conn_t *c, req_t *r, int err)
{
    shm_outcome_t o;
    const char *why = "";

    if (r->xpair && !err && !r->x_bad) {
        buf_t out = {0};
        if (tr_finish(r, 1, &out) == 0)
            conn_write_body(c, r->chunked, out.data, out.len);
        else
            r->x_bad = 1;
        buf_free(&out);
    }
    if (r->x_bad && !err)
        err = UPSTREAM_EPROTO;
    if (r->xpair && err && r->response_started) {
        /* a translated stream cut (or unreadable): the events that tell the client it failed,
         * where its API has them (a Responses client's), then the cut */
        buf_t out = {0};
        if (tr_finish(r, 0, &out) == 0 && out.len)
            conn_write_body(c, r->chunked, out.data, out.len);
        buf_free(&out);
    }
    if (err) {
        /* Cut mid-response: the key's failure; the client sees the cut. */
        kp_input_t in = {0, err, NULL, 0, NULL, 0, loop_clock_wall_ms(conn_px(c)->clock)};
        keypolicy_judge(policy(r), &in, &o, &why);
        record(r, &o);
        log_warn("upstream %s (key %s) failed mid-response: %s", r->pick.dep->provider_ref->name,
                 r->pick.key->name, upstream_strerror(err));
    } else {
        if ((r->op->flags & API_OP_DELETES) && r->up_status >= 200 && r->up_status < 300 &&
            r->object_id[0])
            shm_obj_del(r->px->shm, r->object_id, strlen(r->object_id));
        record(r, &r->ok_outcome);
        if (r->sse_held.len) /* a last event without its blank line */
            conn_write_body(c, r->chunked, r->sse_held.data, r->sse_held.len);
        if (r->chunked)
            conn_write(c, "0\r\n\r\n", 5);
    }
    conn_request_done(c, err != 0);
}

static const upstream_cbs_t up_cbs = {
    .on_response_cb = on_up_response_cb,
    .on_body_cb = on_up_body_cb,
    .on_done_cb = on_up_done_cb,
};

/* ---- admission ---------------------------------------------------------------------- */

/* Admit one key of the first group that has an admissible one: 0 (*pick and *resv set),
 * SHM_NONE (*retry_at: earliest wall time a candidate frees up by time alone, 0 if none
 * will; *busy: some candidate only waits for requests in flight), or an SHM_E* code.
 * Inside a batch transaction (b), or on its own transactions (b NULL: the fallback when a
 * batch failed). r is not changed: a batch may run this more than once. */
static int admit_groups(proxy_t *w, const req_t *r, shm_batch_t *b, int64_t *retry_at, int *busy,
                        route_cand_t *pick, shm_resv_t *resv, shm_budget_t *budget)
{
    route_cand_t cands[ROUTE_MAX_GROUP];
    const char *names[ROUTE_MAX_GROUP];
    uint8_t skip[ROUTE_MAX_GROUP];

    *retry_at = 0;
    *busy = 0;
    for (unsigned g = 0;; g++) {
        unsigned n =
            route_group(&w->route, r->model, &r->tried, &r->filter, g, cands, ROUTE_MAX_GROUP);
        policy_ctx_t pc = {w->cfg->policy.strategy, &w->route, cands};
        shm_admit_req_t ar;
        int64_t t = 0;
        int rc;

        if (n == 0)
            return SHM_NONE;
        for (unsigned i = 0; i < n; i++)
            names[i] = cands[i].key->name;
        memset(&ar, 0, sizeof(ar));
        ar.names = names;
        ar.count = n;
        ar.tokens = r->tokens_estimate;
        ar.half_open_probes = w->cfg->policy.half_open_probes;
        ar.choose = policy_choose;
        ar.choose_arg = &pc;
        ar.skip = skip;
        ar.model = r->model->name;
        if (r->client) {
            /* USD per million tokens = micro-USD per token */
            ar.client = r->client->name;
            ar.budget = budget;
            ar.cost_micro_usd =
                (uint64_t)((double)(r->h.body.len / 4) * r->model->input_price_per_m +
                           (double)(r->scan.max_tokens > 0 ? r->scan.max_tokens : 0) *
                               r->model->output_price_per_m +
                           0.5);
        }
        rc = b ? shm_batch_admit(b, &ar, resv, &t) : shm_key_admit(w->shm, &ar, SHM_NOW, resv, &t);
        if (rc == 0) {
            *pick = cands[resv->index];
            return 0;
        }
        if (rc != SHM_NONE) {
            *retry_at = t;
            return rc;
        }
        if (t && (!*retry_at || t < *retry_at))
            *retry_at = t;
        for (unsigned i = 0; i < n; i++)
            *busy |= skip[i] == SHM_SKIP_INFLIGHT || skip[i] == SHM_SKIP_PROBE;
    }
}

static void admit_apply(req_t *r, const route_cand_t *pick, const shm_resv_t *resv)
{
    r->pick = *pick;
    r->resv = *resv;
    r->admitted = 1;
    route_tried_add(&r->tried, r->pick.key);
}

/* ---- admissions of one loop iteration, in one store transaction ------------------------ */

static void update_idle(proxy_t *w)
{
    if (w->nheld || w->admit_head || w->nobjq)
        uv_idle_start(&w->held_idle, on_hold_idle_cb);
    else
        uv_idle_stop(&w->held_idle);
}

/* A request waits for the worker's next batch (attempt_run_admissions, from the check). */
static void attempt_next(conn_t *c, req_t *r)
{
    proxy_t *w = conn_px(c);

    if (r->admit_queued)
        return;
    r->admit_queued = 1;
    r->admit_q_next = NULL;
    r->admit_q_prev = w->admit_tail;
    if (w->admit_tail)
        w->admit_tail->admit_q_next = r;
    else
        w->admit_head = r;
    w->admit_tail = r;
    update_idle(w);
}

void attempt_forget(req_t *r)
{
    proxy_t *w;

    if (!r->admit_queued)
        return;
    w = r->px;
    if (r->admit_q_prev)
        r->admit_q_prev->admit_q_next = r->admit_q_next;
    else
        w->admit_head = r->admit_q_next;
    if (r->admit_q_next)
        r->admit_q_next->admit_q_prev = r->admit_q_prev;
    else
        w->admit_tail = r->admit_q_prev;
    r->admit_queued = 0;
    r->admit_q_next = r->admit_q_prev = NULL;
    update_idle(w);
}

#define ADMIT_BATCH_MAX 64

typedef struct adm_slot_s {
    req_t *r;
    int rc, busy;
    int64_t retry_at;
    route_cand_t pick;
    shm_resv_t resv;
    shm_budget_t budget;
} adm_slot_t;

typedef struct adm_batch_s {
    proxy_t *w;
    adm_slot_t slot[ADMIT_BATCH_MAX];
    unsigned n;
} adm_batch_t;

static int fatal_admit(int rc)
{
    return rc != 0 && rc != SHM_NONE && rc != SHM_ECLIENT_BUDGET && rc != SHM_ENOTFOUND &&
           rc != SHM_EINVAL;
}

static int batch_fn(shm_batch_t *b, void *arg)
{
    adm_batch_t *ab = arg;

    for (unsigned i = 0; i < ab->n; i++) {
        adm_slot_t *s = &ab->slot[i];
        s->rc =
            admit_groups(ab->w, s->r, b, &s->retry_at, &s->busy, &s->pick, &s->resv, &s->budget);
        if (fatal_admit(s->rc))
            return s->rc;
    }
    return 0;
}

/* Admit every queued request (and record the held successes) in one transaction, then go on
 * with each. Requests queued meanwhile wait for the next round (at most a few per check). */
void attempt_run_admissions(proxy_t *w)
{
    static __thread adm_batch_t ab;
    shm_resv_t *held[PROXY_HELD_MAX];

    for (int round = 0; round < 4 && w->admit_head; round++) {
        ab.w = w;
        ab.n = 0;
        while (w->admit_head && ab.n < ADMIT_BATCH_MAX) {
            req_t *r = w->admit_head;
            attempt_forget(r);
            ab.slot[ab.n++].r = r;
        }
        held_ptrs(w, held);
        int rc = shm_key_batch(w->shm, held, w->held_o, w->nheld, SHM_NOW, batch_fn, &ab);
        if (rc == 0) {
            w->nheld = 0;
        } else {
            /* Nothing was written: the outcomes on their own, then each admission alone. */
            record_each(w);
            for (unsigned i = 0; i < ab.n; i++) {
                adm_slot_t *s = &ab.slot[i];
                s->rc = admit_groups(w, s->r, NULL, &s->retry_at, &s->busy, &s->pick, &s->resv,
                                     &s->budget);
            }
        }
        update_idle(w);
        for (unsigned i = 0; i < ab.n; i++) {
            adm_slot_t *s = &ab.slot[i];
            if (s->rc == 0 || s->rc == SHM_NONE || s->rc == SHM_ECLIENT_BUDGET) {
                /* the admission read the client's budgets (shm.h: shm_admit_req_t.budget) */
                s->r->budget = s->budget;
                s->r->has_budget = s->r->client != NULL;
            }
            if (s->rc == 0)
                admit_apply(s->r, &s->pick, &s->resv);
            attempt_admitted(s->r->h.conn, s->r, s->rc, s->retry_at, s->busy);
        }
    }
}

/* Nothing admissible now: wait for capacity, or answer. */
static void no_capacity(conn_t *c, req_t *r, int64_t retry_at, int busy)
{
    const cfg_policy_t *pol = policy(r);
    uint64_t now = loop_clock_ns(conn_px(c)->clock);
    int64_t wall = loop_clock_wall_ms(conn_px(c)->clock);

    if (retry_at || busy) {
        if (!r->wait_deadline_ns)
            r->wait_deadline_ns = now + (uint64_t)pol->wait_for_capacity_ms * 1000000;
        if (r->wait_deadline_ns > r->deadline_ns)
            r->wait_deadline_ns = r->deadline_ns;
        if (now < r->wait_deadline_ns) {
            uint64_t left_ms = (r->wait_deadline_ns - now) / 1000000;
            uint64_t ms =
                retry_at ? (uint64_t)(retry_at > wall ? retry_at - wall : 1) : WAIT_POLL_MS;
            if (ms <= left_ms || !retry_at) {
                conn_wait(c, ms < left_ms ? ms : (left_ms ? left_ms : 1), on_wait_done);
                return;
            }
        }
    }
    if (r->fail_status || r->fail_err) {
        deliver_failure(c, r);
        return;
    }
    if (retry_at || busy) {
        char hdr[EXTRA_MAX];
        int64_t wait_ms = retry_at ? retry_at - wall : 1000;
        long secs = wait_ms <= 0 ? 1 : (long)((wait_ms + 999) / 1000);
        gateway_headers(r, secs, hdr, sizeof(hdr));
        conn_respond_error_hdr(c, 429, hdr, "rate_limit_exceeded", NULL,
                               "every upstream key for model %s is at its limit or cooling "
                               "down; retry in %ld s",
                               r->model->name, secs);
        return;
    }
    {
        /* Nothing frees by time alone: a probe (or an operator) brings a key back. */
        char hdr[EXTRA_MAX];
        gateway_headers(r, pol->probe_interval_ms ? (pol->probe_interval_ms + 999) / 1000 : 60, hdr,
                        sizeof(hdr));
        conn_respond_error_hdr(c, 503, hdr, "no_upstream_available", NULL,
                               "no upstream key is available for model %s (all disabled, invalid "
                               "or depleted)",
                               r->model->name);
    }
}

/* The admission's result for r (rc from admit_groups, r->pick and r->resv set on 0): send,
 * wait for capacity, or answer. */
static void attempt_admitted(conn_t *c, req_t *r, int rc, int64_t retry_at, int busy)
{
    proxy_t *w = conn_px(c);
    const char *body = r->h.body.data ? r->h.body.data : "";
    size_t body_len = r->h.body.len;
    const cfg_provider_t *prov;
    const char *path = r->up_path;
    size_t path_len = r->up_path_len;
    unsigned fb = 0;

    if (rc == SHM_NONE) {
        no_capacity(c, r, retry_at, busy);
        return;
    }
    if (rc == SHM_ECLIENT_BUDGET) {
        char hdr[EXTRA_MAX];
        int64_t wait_ms = retry_at - loop_clock_wall_ms(w->clock);
        long secs = wait_ms <= 0 ? 1 : (long)((wait_ms + 999) / 1000);
        gateway_headers(r, secs, hdr, sizeof(hdr));
        conn_respond_error_hdr(c, 429, hdr, "client_budget_exceeded", NULL,
                               "client key %s has spent its budget; retry in %ld s",
                               r->client->name, secs);
        return;
    }
    if (rc == SHM_ENOTFOUND && r->client) {
        conn_respond_error(c, 401, "invalid_api_key", NULL,
                           "this client key was revoked or is no longer configured");
        return;
    }
    if (rc != 0) {
        char why[320];
        log_error("store: admission failed: %s", shm_explain(w->shm, rc, why, sizeof(why)));
        conn_respond_error(c, 500, "internal_error", NULL, "the gateway's state store failed");
        return;
    }
    prov = r->pick.dep->provider_ref;
    free(r->up_body);
    r->up_body = NULL;
    r->strip_usage = 0;
    buf_reset(&r->sse_held);
    r->x_bad = 0;
    {
        /* A provider of another format: the translated body to its path (translated.h). */
        xlate_error_t xe = {{0}, {0}};
        int t = tr_begin(r, prov, r->pick.dep->model, &path, &xe);
        if (t == XLATE_EREFUSE) {
            shm_key_release(w->shm, &r->resv, 1, SHM_NOW);
            r->admitted = 0;
            conn_respond_error(c, 400, "invalid_request_error", xe.param[0] ? xe.param : NULL,
                               "%s (model %s is served by provider %s, which speaks another API)",
                               xe.message, r->model->name, prov->name);
            return;
        }
        if (t < 0)
            goto oom;
        if (t == 1) {
            body = r->up_body;
            body_len = r->up_body_len;
            path_len = strlen(path);
            goto head;
        }
    }
    if (r->scan.model_len && strcmp(r->pick.dep->model, r->scan.model) != 0) {
        if (scan_splice_model(body, body_len, &r->scan, r->pick.dep->model, &r->up_body,
                              &r->up_body_len) != 0)
            goto oom;
        body = r->up_body;
        body_len = r->up_body_len;
    }
    if (w->cfg->stream_include_usage && r->api->stream_options && r->scan.stream &&
        !r->scan.has_stream_options) {
        /* Ask for the usage chunk so the stream is accounted exactly; the client, who did
         * not ask for it, will not see it (write_events). */
        static const char ins[] = "\"stream_options\":{\"include_usage\":true},";
        const char *brace = memchr(body, '{', body_len);
        char *nb = brace ? malloc(body_len + sizeof(ins) - 1) : NULL;
        if (nb) {
            size_t pre = (size_t)(brace - body) + 1;
            memcpy(nb, body, pre);
            memcpy(nb + pre, ins, sizeof(ins) - 1);
            memcpy(nb + pre + sizeof(ins) - 1, body + pre, body_len - pre);
            body_len += sizeof(ins) - 1;
            free(r->up_body); /* body may have pointed into it: nb is a full copy */
            r->up_body = nb;
            r->up_body_len = body_len;
            body = nb;
            r->strip_usage = 1;
        }
    }
head:
    buf_reset(&r->up_head);
    {
        /* A generated request id goes upstream too; a client's is forwarded as it came. */
        char rid[160];
        size_t o = 0;
        put_str(rid, sizeof(rid), &o, "x-request-id: ");
        put_str(rid, sizeof(rid), &o, r->h.request_id);
        put_str(rid, sizeof(rid), &o, "\r\n");
        if (rewrite_request_head(&r->up_head, llhttp_method_name((llhttp_method_t)r->op->method),
                                 path, path_len, r->h.hdrs, r->h.nhdrs, prov, r->pick.key, body_len,
                                 r->request_id_generated ? rid : NULL) != 0)
            goto oom;
    }
    if (prov->first_byte_timeout_per_1k_tokens_ms) {
        /* Bigger requests take longer to a first token: base + per 1k tokens, capped. */
        uint64_t t =
            prov->first_byte_timeout_ms +
            (uint64_t)prov->first_byte_timeout_per_1k_tokens_ms * r->tokens_estimate / 1000;
        fb = (unsigned)(t < prov->first_byte_timeout_max_ms ? t : prov->first_byte_timeout_max_ms);
    }
    r->attempts++;
    r->attempt_ns = loop_clock_ns(w->clock);
    r->ttfb_ns = 0;
    usage_tail_reset(&r->usage);
    /* a translated answer is stored nowhere (its ids are made up): nothing to remember */
    r->object_seen =
        r->xpair || !((r->op->flags & API_OP_CREATES) && r->scan.store != 0 && r->api->object_id);
    r->buffering = 0;
    rc = upstream_request(w->pool, prov, r->up_head.data, r->up_head.len, body, body_len, fb,
                          &up_cbs, r, &r->up);
    if (rc != 0) {
        r->up = NULL;
        record_class(r, rc == UPSTREAM_ENOMEM ? SHM_CL_CANCELLED : SHM_CL_CONNECT, 0);
        r->fail_status = 0;
        r->fail_err = rc;
        r->fail_prov = prov;
        r->fail_key = r->pick.key;
        deliver_failure(c, r);
    }
    return;
oom:
    shm_key_release(w->shm, &r->resv, 1, SHM_NOW);
    r->admitted = 0;
    conn_respond_error(c, 500, "internal_error", NULL, "out of memory");
}

void attempt_start(conn_t *c, req_t *r)
{
    r->deadline_ns = r->h.start_ns + (uint64_t)conn_px(c)->cfg->policy.request_timeout_ms * 1000000;
    attempt_next(c, r);
}
