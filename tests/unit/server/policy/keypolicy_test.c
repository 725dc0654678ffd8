/* keypolicy_test.c - what an upstream answer means for the key: OpenAI's, Anthropic's and
 * Gemini's signals (rate-limit headers, RetryInfo, overloaded, out of credit, bad keys), RFC
 * 3339 resets. */
#include "server/policy/keypolicy.h"
#include "t.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */

static cfg_policy_t pol = {.cooldown_ms = 60000, .max_retries = 2, .failure_threshold = 3};

static kp_action_t judge(int status, const http_hdr_t *h, size_t n, const char *body,
                         shm_outcome_t *o)
{
    const char *why;
    kp_input_t in = {status, 0, h, n, body, body ? strlen(body) : 0, NOW};
    return keypolicy_judge(&pol, &in, o, &why);
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

int main(void)
{
    shm_outcome_t o;

    T_EQ_INT(keypolicy_parse_rfc3339("2026-01-01T00:00:30Z", 20, NOW), 30000, "Z time");
    T_EQ_INT(keypolicy_parse_rfc3339("2026-01-01T00:00:01.250Z", 24, NOW), 1250, "fraction");
    T_EQ_INT(keypolicy_parse_rfc3339("2026-01-01T01:00:10+01:00", 25, NOW), 10000, "offset");
    T_EQ_INT(keypolicy_parse_rfc3339("2025-12-31T23:59:00Z", 20, NOW), 0, "past is 0");
    T_EQ_INT(keypolicy_parse_rfc3339("yesterday", 9, NOW), -1, "unreadable");
    T_EQ_INT(keypolicy_parse_rfc3339("2026-01-01T00:00:30", 19, NOW), -1, "no zone");

    {
        /* Anthropic 429: retry-after wins */
        http_hdr_t h[] = {H("retry-after", "12"),
                          H("anthropic-ratelimit-requests-reset", "2026-01-01T00:01:00Z")};
        T_EQ_INT(
            judge(429, h, 2, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}", &o),
            KP_ROTATE, "429 rotates");
        T_EQ_INT(o.cooldown_until_ms, NOW + 12000, "retry-after first");
    }
    {
        /* no retry-after: the reset of the exhausted limit */
        http_hdr_t h[] = {H("anthropic-ratelimit-requests-remaining", "5"),
                          H("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:10Z"),
                          H("anthropic-ratelimit-tokens-remaining", "0"),
                          H("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:45Z")};
        judge(429, h, 4, NULL, &o);
        T_EQ_INT(o.cooldown_until_ms, NOW + 45000, "cools until the exhausted limit resets");
        T_EQ_INT(o.reason, SHM_RS_RATE_LIMITED, "as rate limited");
    }
    {
        http_hdr_t h[] = {H("anthropic-ratelimit-requests-remaining", "0"),
                          H("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z")};
        T_EQ_INT(judge(200, h, 2, NULL, &o), KP_PASS, "2xx passes");
        T_EQ_INT(o.cooldown_until_ms, NOW + 20000, "a 2xx with nothing left cools the key");
        http_hdr_t ok[] = {H("anthropic-ratelimit-requests-remaining", "7"),
                           H("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:20Z")};
        judge(200, ok, 2, NULL, &o);
        T_EQ_INT(o.cooldown_until_ms, 0, "something left: no cooldown");
    }
    T_EQ_INT(
        judge(529, NULL, 0, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}", &o),
        KP_RETRY, "529 overloaded is transient");
    T_EQ_INT(judge(400, NULL, 0,
                   "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                   "\"Your credit balance is too low to access the Anthropic API. Please go to "
                   "Plans & Billing to upgrade or purchase credits.\"}}",
                   &o),
             KP_ROTATE, "credit balance too low rotates");
    T_EQ_INT(o.set_status, SHM_ST_DEPLETED, "and depletes the key");
    T_EQ_INT(judge(400, NULL, 0,
                   "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                   "\"max_tokens: Field required\"}}",
                   &o),
             KP_PASS, "another 400 is the client's");
    T_EQ_INT(judge(401, NULL, 0, NULL, &o), KP_ROTATE, "401 rotates");
    T_EQ_INT(o.set_status, SHM_ST_INVALID, "401 invalid");
    T_EQ_INT(judge(403, NULL, 0, "{\"error\":{\"type\":\"permission_error\"}}", &o), KP_ROTATE,
             "403 permission rotates");
    T_EQ_INT(o.set_status, SHM_ST_INVALID, "403 invalid");
    {
        /* OpenAI still as before */
        http_hdr_t h[] = {H("x-ratelimit-reset-requests", "6m0s")};
        judge(429, h, 1, NULL, &o);
        T_EQ_INT(o.cooldown_until_ms, NOW + 360000, "OpenAI reset duration");
    }
    { /* Gemini */
        static const char ratelimit[] =
            "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota, please "
            "check your plan and billing details.\",\"status\":\"RESOURCE_EXHAUSTED\","
            "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
            "\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinutePerProjectPerModel\"}]},"
            "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\": \"30s\"}]}}";
        static const char frac[] = "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\","
                                   "\"details\":[{\"@type\":\"type.googleapis.com/"
                                   "google.rpc.RetryInfo\",\"retryDelay\":\"1.5s\"}]}}";
        static const char badkey[] =
            "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API "
            "key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis."
            "com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":"
            "\"googleapis.com\"}]}}";
        static const char invalid[] = "{\"error\":{\"code\":400,\"message\":\"Invalid JSON "
                                      "payload received.\",\"status\":\"INVALID_ARGUMENT\"}}";
        static const char denied[] = "{\"error\":{\"code\":403,\"message\":\"Method doesn't "
                                     "allow unregistered callers.\",\"status\":"
                                     "\"PERMISSION_DENIED\"}}";
        static const char unavailable[] = "{\"error\":{\"code\":503,\"message\":\"The model is "
                                          "overloaded.\",\"status\":\"UNAVAILABLE\"}}";
        static const char notfound[] =
            "{\"error\":{\"code\":404,\"message\":\"models/gemini-9 is not found for API "
            "version v1beta, or is not supported for generateContent.\",\"status\":"
            "\"NOT_FOUND\"}}";
        T_EQ_INT(judge(429, NULL, 0, ratelimit, &o), KP_ROTATE,
                 "Gemini 429 RESOURCE_EXHAUSTED rotates");
        T_OK(o.cooldown_until_ms == NOW + 30000 && o.reason == SHM_RS_RATE_LIMITED &&
                 o.set_status < 0,
             "... cooling for its retryDelay 30s, rate limited (not depleted by its message)");
        judge(429, NULL, 0, frac, &o);
        T_EQ_INT(o.cooldown_until_ms, NOW + 1500, "retryDelay 1.5s: 1500 ms");
        {
            http_hdr_t h[] = {H("retry-after", "7")};
            judge(429, h, 1, ratelimit, &o);
            T_EQ_INT(o.cooldown_until_ms, NOW + 30000, "the body's retryDelay is Gemini's word");
        }
        T_EQ_INT(
            judge(429, NULL, 0, "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\"}}", &o),
            KP_ROTATE, "a 429 without RetryInfo rotates");
        T_EQ_INT(o.cooldown_until_ms, NOW + 60000, "... with policy.cooldown_ms");
        T_EQ_INT(judge(400, NULL, 0, badkey, &o), KP_ROTATE, "400 API_KEY_INVALID rotates");
        T_OK(o.set_status == SHM_ST_INVALID && o.cls == SHM_CL_AUTH && o.reason == SHM_RS_AUTH,
             "... and makes the key invalid, as a 401");
        T_EQ_INT(judge(400, NULL, 0, invalid, &o), KP_PASS,
                 "another INVALID_ARGUMENT is the client's");
        T_EQ_INT(judge(403, NULL, 0, denied, &o), KP_ROTATE, "403 PERMISSION_DENIED rotates");
        T_EQ_INT(o.set_status, SHM_ST_INVALID, "... the key invalid");
        T_EQ_INT(judge(503, NULL, 0, unavailable, &o), KP_RETRY, "503 UNAVAILABLE is transient");
        T_EQ_INT(o.reason, SHM_RS_SERVER_ERROR, "... a provider error");
        T_EQ_INT(judge(500, NULL, 0, "{\"error\":{\"code\":500,\"status\":\"INTERNAL\"}}", &o),
                 KP_RETRY, "500 INTERNAL is transient");
        T_EQ_INT(judge(404, NULL, 0, notfound, &o), KP_NEXT_DEPLOYMENT,
                 "404 model is not found for API version: the next deployment");
    }
    return t_done();
}
