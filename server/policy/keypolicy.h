/* keypolicy.h - what an upstream answer means for the key and for the request.
 *
 * Design note
 * -----------
 * keypolicy_judge() is a pure function: from the upstream status (or transport error),
 * the response headers and the start of an error body, it fills the outcome the state
 * plane records (class, cooldown, status change, the policy knobs the store applies inside
 * its record transaction) and says what the request does next:
 *
 * It knows the signals of every provider format at once (their header names do not clash):
 * OpenAI's x-ratelimit-*, Anthropic's anthropic-ratelimit-*-remaining/-reset (RFC 3339
 * times), 529 overloaded_error (a 5xx), and its "credit balance is too low" 400; Gemini's
 * errors in the body: a 429 RESOURCE_EXHAUSTED with a google.rpc.RetryInfo "retryDelay"
 * ("30s", "1.5s") cools the key for exactly that long (its "exceeded your current quota"
 * message is a rate limit then, not depletion), a 400 with the ErrorInfo reason
 * API_KEY_INVALID makes the key invalid like a 401, its 403 PERMISSION_DENIED is a 403, its
 * 500 INTERNAL / 503 UNAVAILABLE / 504 DEADLINE_EXCEEDED are 5xx, and its 404 "is not found
 * for API version" is a model not found.
 *
 *   upstream says                               key becomes                    request
 *   429 + Retry-After / x-ratelimit-reset-* /    cooling until then (else       KP_ROTATE
 *   anthropic-ratelimit-*-reset / Gemini's       policy.cooldown_ms)
 *   RetryInfo retryDelay
 *   429 insufficient_quota, 402, "quota"/        depleted until the next UTC    KP_ROTATE
 *   "balance"/"billing" errors, Anthropic's      midnight (or depleted_ms)
 *   400 "credit balance is too low"
 *   401, 403, Gemini's 400 API_KEY_INVALID       invalid (operator enables)     KP_ROTATE
 *   5xx, connect error/reset, first-byte         failure counted; after          KP_RETRY
 *   timeout, TLS failure                         failure_threshold in a row,
 *                                                cooling, doubled per relapse
 *   404 model_not_found / model not supported    (key untouched; deployment     KP_NEXT_DEPLOYMENT
 *                                                skipped for model_unavailable_ms)
 *   other 4xx                                    untouched                      KP_PASS
 *   2xx                                          success (a half-open key        KP_PASS
 *                                                counts toward recovery);
 *                                                x-ratelimit-remaining-requests
 *                                                0 (or an anthropic-ratelimit-
 *                                                *-remaining 0): cooling until
 *                                                its reset
 *
 * Rotation and retry happen only before any byte went to the client (proxy.c).
 */
#ifndef LLMGATE_KEYPOLICY_H
#define LLMGATE_KEYPOLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "server/upstream/rewrite.h"
#include "shm/shm.h"

typedef enum kp_action_e {
    KP_PASS = 0,        /* the answer goes to the client as it is */
    KP_ROTATE,          /* another key now */
    KP_RETRY,           /* another key after a jittered backoff, within max_retries */
    KP_NEXT_DEPLOYMENT, /* another deployment (then fallback models) */
} kp_action_t;

typedef struct kp_input_s {
    int status;             /* upstream HTTP status, 0 when there was no response */
    int err;                /* UPSTREAM_E* when there was no (complete) response, else 0 */
    const http_hdr_t *hdrs; /* response headers, may be NULL */
    size_t nhdrs;
    const char *body; /* the error body as buffered (may be cut), may be NULL */
    size_t body_len;
    int64_t now_ms; /* wall clock */
} kp_input_t;

/* Fill o (shm_outcome_init'ed here) and return the action. *reason gets a short static
 * word for logs and metrics: "rate_limited", "quota", "auth", "server_error", "timeout",
 * "connect", "model_not_found", "client_error", "ok". */
kp_action_t keypolicy_judge(const cfg_policy_t *pol, const kp_input_t *in, shm_outcome_t *o,
                            const char **reason);

/* Milliseconds in a duration as providers write them: "20ms", "1s", "6m0s", "1h2m3.5s",
 * or plain seconds "7" / "0.5". -1 if unreadable. */
int64_t keypolicy_parse_duration(const char *s, size_t len);

/* Retry-After: delta seconds or an HTTP-date; ms from now_ms, or -1. */
int64_t keypolicy_parse_retry_after(const char *s, size_t len, int64_t now_ms);

/* The jittered exponential backoff before retry number n (0-based): uniform in
 * [0, min(max_ms, base_ms * 2^n)] ("full jitter"), from the random value r. */
uint32_t keypolicy_backoff_ms(const cfg_policy_t *pol, unsigned n, uint64_t r);

/* An RFC 3339 time ("2026-01-02T03:04:05.5Z", "...+01:00"): ms from now_ms (0 if past), or
 * -1 if unreadable. */
int64_t keypolicy_parse_rfc3339(const char *s, size_t len, int64_t now_ms);

/* Next UTC midnight after now_ms. */
int64_t keypolicy_next_midnight(int64_t now_ms);

#endif
