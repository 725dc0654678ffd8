/* keypolicy.c - upstream outcome -> key state and request action; see keypolicy.h. */
#include "server/policy/keypolicy.h"
#include "server/upstream/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t keypolicy_parse_duration(const char *s, size_t len)
{
    double total = 0;
    size_t i = 0;
    int any = 0;

    while (i < len) {
        double v = 0, scale = 1;
        int digits = 0;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i++] - '0');
            digits++;
        }
        if (i < len && s[i] == '.') {
            i++;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                scale /= 10;
                v += (s[i++] - '0') * scale;
                digits++;
            }
        }
        if (!digits)
            return -1;
        if (i == len) {
            if (any)
                return -1; /* "1m30" */
            total += v * 1000;
        } else if (len - i >= 2 && s[i] == 'm' && s[i + 1] == 's') {
            total += v;
            i += 2;
        } else if (s[i] == 'h') {
            total += v * 3600000;
            i++;
        } else if (s[i] == 'm') {
            total += v * 60000;
            i++;
        } else if (s[i] == 's') {
            total += v * 1000;
            i++;
        } else {
            return -1;
        }
        any = 1;
    }
    if (!any || total > 1e13)
        return -1;
    return (int64_t)(total + 0.5);
}

int64_t keypolicy_parse_retry_after(const char *s, size_t len, int64_t now_ms)
{
    char buf[64];
    struct tm tm;
    char *end;

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] >= '0' && buf[0] <= '9') {
        double v = strtod(buf, &end);
        if (*end || v < 0 || v > 1e9)
            return -1;
        return (int64_t)(v * 1000 + 0.5);
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    {
        int64_t at = (int64_t)timegm(&tm) * 1000;
        return at > now_ms ? at - now_ms : 0;
    }
}

int64_t keypolicy_next_midnight(int64_t now_ms)
{
    int64_t day = now_ms / 86400000;
    return (day + 1) * 86400000;
}

uint32_t keypolicy_backoff_ms(const cfg_policy_t *pol, unsigned n, uint64_t r)
{
    uint64_t cap = pol->backoff_base_ms;

    for (unsigned i = 0; i < n && cap < pol->backoff_max_ms; i++)
        cap *= 2;
    if (cap > pol->backoff_max_ms)
        cap = pol->backoff_max_ms;
    return cap ? (uint32_t)(r % (cap + 1)) : 0;
}

int64_t keypolicy_parse_rfc3339(const char *s, size_t len, int64_t now_ms)
{
    char buf[64];
    struct tm tm;
    char *end;
    int64_t at, frac_ms = 0;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.') { /* fractional seconds: milliseconds kept */
        int64_t scale = 100;
        for (end++; *end >= '0' && *end <= '9'; end++, scale /= 10)
            frac_ms += (*end - '0') * scale;
    }
    at = (int64_t)timegm(&tm) * 1000 + frac_ms;
    if (*end == 'Z' || *end == 'z') {
        end++;
    } else if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
        int off =
            ((end[1] - '0') * 10 + (end[2] - '0')) * 60 + (end[4] - '0') * 10 + (end[5] - '0');
        at -= (int64_t)(*end == '+' ? off : -off) * 60000;
        end += 6;
    } else {
        return -1;
    }
    if (*end)
        return -1;
    return at > now_ms ? at - now_ms : 0;
}

static int body_has(const char *body, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; body && i + n <= len; i++)
        if (strncasecmp(body + i, needle, n) == 0)
            return 1;
    return 0;
}

static const char *header(const kp_input_t *in, const char *name, size_t *vlen)
{
    return in->hdrs ? hdr_find(in->hdrs, in->nhdrs, name, vlen) : NULL;
}

/* Anthropic's limits (anthropic-ratelimit-<limit>-remaining / -reset, the reset an RFC 3339
 * time): the latest reset of the limits with nothing remaining, or - when none says 0 and
 * !exhausted_only - the latest reset of all; ms from now, -1 if none is readable. */
static int64_t anthropic_reset_ms(const kp_input_t *in, int exhausted_only)
{
    /* names written out: this runs for every 2xx, so no formatting */
    static const char *const reset[] = {
        "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset"};
    static const char *const remaining[] = {"anthropic-ratelimit-requests-remaining",
                                            "anthropic-ratelimit-tokens-remaining",
                                            "anthropic-ratelimit-input-tokens-remaining",
                                            "anthropic-ratelimit-output-tokens-remaining"};
    int64_t any = -1, exhausted = -1;

    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++) {
        size_t vl, rl;
        const char *v, *rem;
        int64_t t;

        if (!(v = header(in, reset[i], &vl)) ||
            (t = keypolicy_parse_rfc3339(v, vl, in->now_ms)) < 0)
            continue;
        if (t > any)
            any = t;
        rem = header(in, remaining[i], &rl);
        if (rem && rl == 1 && rem[0] == '0' && t > exhausted)
            exhausted = t;
    }
    return exhausted >= 0 || exhausted_only ? exhausted : any;
}

/* How long the provider asks us to wait: Retry-After, else the later of the two
 * x-ratelimit-reset-* headers, else Anthropic's resets; -1 if it says nothing readable. */
static int64_t provider_wait_ms(const kp_input_t *in)
{
    size_t vl;
    const char *v = header(in, "retry-after", &vl);
    int64_t best = -1;

    if (v && (best = keypolicy_parse_retry_after(v, vl, in->now_ms)) >= 0)
        return best;
    if ((v = header(in, "retry-after-ms", &vl))) {
        char b[32];
        if (vl < sizeof(b)) {
            memcpy(b, v, vl);
            b[vl] = '\0';
            if (atoll(b) > 0)
                return atoll(b);
        }
    }
    if ((v = header(in, "x-ratelimit-reset-requests", &vl)))
        best = keypolicy_parse_duration(v, vl);
    if ((v = header(in, "x-ratelimit-reset-tokens", &vl))) {
        int64_t t = keypolicy_parse_duration(v, vl);
        if (t > best)
            best = t;
    }
    if (best < 0)
        best = anthropic_reset_ms(in, 0);
    return best;
}

/* Gemini's google.rpc.RetryInfo in an error body: "retryDelay": "30s" (a Duration: seconds
 * with up to nine decimals, "s"); ms, or -1 if there is none (or it is unreadable). */
static int64_t gemini_retry_delay_ms(const kp_input_t *in)
{
    static const char key[] = "\"retryDelay\"";
    const char *p = in->body ? memmem(in->body, in->body_len, key, sizeof(key) - 1) : NULL;
    const char *end = in->body + in->body_len, *q;

    if (!p)
        return -1;
    for (p += sizeof(key) - 1;
         p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t' || *p == '\r'); p++)
        ;
    if (p >= end || *p != '"' || !(q = memchr(p + 1, '"', (size_t)(end - p - 1))))
        return -1;
    return keypolicy_parse_duration(p + 1, (size_t)(q - p - 1));
}

/* Gemini's 400 for a key that does not exist: an ErrorInfo with reason API_KEY_INVALID. */
static int is_gemini_bad_key(const kp_input_t *in)
{
    return body_has(in->body, in->body_len, "API_KEY_INVALID");
}

static int is_quota_error(const kp_input_t *in)
{
    return body_has(in->body, in->body_len, "insufficient_quota") ||
           body_has(in->body, in->body_len, "insufficient balance") ||
           body_has(in->body, in->body_len, "insufficient_balance") ||
           body_has(in->body, in->body_len, "exceeded your current quota") ||
           body_has(in->body, in->body_len, "credit balance is too low") ||
           body_has(in->body, in->body_len, "billing");
}

static int is_model_not_found(const kp_input_t *in)
{
    return body_has(in->body, in->body_len, "model_not_found") ||
           body_has(in->body, in->body_len, "model not found") ||
           body_has(in->body, in->body_len, "model not supported") ||
           body_has(in->body, in->body_len, "model_not_supported") ||
           (body_has(in->body, in->body_len, "model") &&
            body_has(in->body, in->body_len, "does not exist")) ||
           /* Gemini: "models/x is not found for API version v1beta, or is not supported..." */
           body_has(in->body, in->body_len, "is not found for API version");
}

static void policy_knobs(const cfg_policy_t *pol, shm_outcome_t *o)
{
    o->fail_threshold = pol->failure_threshold;
    o->fail_cooldown_ms = pol->failure_cooldown_ms;
    o->cooldown_max_ms = pol->cooldown_max_ms;
    o->recovery_successes = pol->recovery_successes;
    o->circuit_min_requests = pol->circuit_min_requests;
    o->circuit_error_ratio = pol->circuit_error_percent / 100.0;
    o->circuit_open_ms = pol->circuit_open_ms;
}

kp_action_t keypolicy_judge(const cfg_policy_t *pol, const kp_input_t *in, shm_outcome_t *o,
                            const char **reason)
{
    int st = in->status;
    int64_t wait;

    if (in->err) {
        int timeout = in->err == UPSTREAM_ETIMEDOUT_CONNECT ||
                      in->err == UPSTREAM_ETIMEDOUT_FIRSTBYTE || in->err == UPSTREAM_ETIMEDOUT_IDLE;
        int connect = in->err == UPSTREAM_ECONNECT || in->err == UPSTREAM_ETLS ||
                      in->err == UPSTREAM_ETLS_VERIFY;
        shm_outcome_init(o, timeout ? SHM_CL_TIMEOUT : connect ? SHM_CL_CONNECT : SHM_CL_5XX);
        policy_knobs(pol, o);
        o->reason = timeout ? SHM_RS_TIMEOUT : connect ? SHM_RS_CONNECT : SHM_RS_SERVER_ERROR;
        *reason = timeout ? "timeout" : connect ? "connect" : "server_error";
        return KP_RETRY;
    }
    if (st >= 200 && st < 300) {
        size_t vl;
        const char *rem = header(in, "x-ratelimit-remaining-requests", &vl);

        shm_outcome_init(o, SHM_CL_SUCCESS);
        policy_knobs(pol, o);
        o->code = st;
        *reason = "ok";
        /* Adaptive: the provider says this key has nothing left in its window. */
        if (rem && vl == 1 && rem[0] == '0') {
            const char *reset = header(in, "x-ratelimit-reset-requests", &vl);
            int64_t ms = reset ? keypolicy_parse_duration(reset, vl) : -1;
            o->cooldown_until_ms = in->now_ms + (ms > 0 ? ms : (int64_t)pol->cooldown_ms);
            o->reason = SHM_RS_RATE_LIMITED;
        } else {
            /* Anthropic: a limit with nothing left cools the key until that limit resets */
            int64_t ms = anthropic_reset_ms(in, 1);
            if (ms > 0) {
                o->cooldown_until_ms = in->now_ms + ms;
                o->reason = SHM_RS_RATE_LIMITED;
            }
        }
        return KP_PASS;
    }
    if (st == 429 && (wait = gemini_retry_delay_ms(in)) >= 0) {
        /* Gemini's RESOURCE_EXHAUSTED says when the limit resets in its RetryInfo, whatever
         * its message says of quota and billing: cooling exactly that long, as Retry-After */
        shm_outcome_init(o, SHM_CL_429);
        policy_knobs(pol, o);
        o->code = st;
        o->reason = SHM_RS_RATE_LIMITED;
        o->cooldown_until_ms = in->now_ms + (wait > 0 ? wait : (int64_t)pol->cooldown_ms);
        *reason = "rate_limited";
        return KP_ROTATE;
    }
    if (st == 400 && is_gemini_bad_key(in)) {
        shm_outcome_init(o, SHM_CL_AUTH);
        policy_knobs(pol, o);
        o->code = st;
        o->set_status = SHM_ST_INVALID;
        o->reason = SHM_RS_AUTH;
        *reason = "auth";
        return KP_ROTATE;
    }
    if (st == 402 || ((st == 429 || st == 403 || st == 400) && is_quota_error(in))) {
        shm_outcome_init(o, SHM_CL_429);
        policy_knobs(pol, o);
        o->code = st;
        o->set_status = SHM_ST_DEPLETED;
        o->reason = SHM_RS_QUOTA;
        o->cooldown_until_ms =
            pol->depleted_ms ? in->now_ms + pol->depleted_ms : keypolicy_next_midnight(in->now_ms);
        *reason = "quota";
        return KP_ROTATE;
    }
    if (st == 429) {
        shm_outcome_init(o, SHM_CL_429);
        policy_knobs(pol, o);
        o->code = st;
        o->reason = SHM_RS_RATE_LIMITED;
        wait = provider_wait_ms(in);
        o->cooldown_until_ms = in->now_ms + (wait > 0 ? wait : (int64_t)pol->cooldown_ms);
        *reason = "rate_limited";
        return KP_ROTATE;
    }
    if (st == 401 || st == 403) {
        shm_outcome_init(o, SHM_CL_AUTH);
        policy_knobs(pol, o);
        o->code = st;
        o->set_status = SHM_ST_INVALID;
        o->reason = SHM_RS_AUTH;
        *reason = "auth";
        return KP_ROTATE;
    }
    if (st >= 500) {
        shm_outcome_init(o, SHM_CL_5XX);
        policy_knobs(pol, o);
        o->code = st;
        o->reason = SHM_RS_SERVER_ERROR;
        *reason = "server_error";
        return KP_RETRY;
    }
    shm_outcome_init(o, SHM_CL_OTHER);
    policy_knobs(pol, o);
    o->code = st;
    if ((st == 404 || st == 400) && is_model_not_found(in)) {
        *reason = "model_not_found";
        return KP_NEXT_DEPLOYMENT;
    }
    *reason = "client_error";
    return KP_PASS;
}
