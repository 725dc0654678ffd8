/* rewrite_test.c - header rewrite both ways. */
#include "server/upstream/rewrite.h"
#include "t.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static int has(const buf_t *b, const char *s)
{
    return b->data && strstr(b->data, s) != NULL;
}

static int has_ci_name(const buf_t *b, const char *name)
{
    /* a header line "name:" at a line start, case-insensitive */
    size_t n = strlen(name);
    for (const char *p = b->data; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':')
            return 1;
    }
    return 0;
}

int main(void)
{
    cfg_key_t key = {.name = "k1", .secret = "sk-SECRET"};
    cfg_header_t extra = {"OpenAI-Organization", "org-1"};
    cfg_provider_t prov = {.name = "p",
                           .base_path = "/v1",
                           .host_header = "api.example.com:8443",
                           .auth = CFG_AUTH_BEARER,
                           .headers = &extra,
                           .headers_count = 1,
                           .keys = &key,
                           .keys_count = 1};
    http_hdr_t in[] = {
        H("Host", "gateway.local"),
        H("Authorization", "Bearer client-key"),
        H("Content-Type", "application/json"),
        H("Connection", "keep-alive, X-Hop"),
        H("X-Hop", "1"),
        H("Keep-Alive", "timeout=5"),
        H("TE", "trailers"),
        H("Transfer-Encoding", "chunked"),
        H("Content-Length", "999"),
        H("Expect", "100-continue"),
        H("Accept-Encoding", "gzip"),
        H("x-api-key", "client-key-2"),
        H("X-Goog-Api-Key", "client-key-3"),
        H("Proxy-Authorization", "Basic xyz"),
        H("openai-organization", "client-org"),
        H("X-Request-Id", "abc"),
        H("User-Agent", "OpenAI/JS 4.95.0"),
    };
    buf_t b = {0};
    int chunked;

    T_EQ_INT(rewrite_request_head(&b, "POST", "/chat/completions", 17, in,
                                  sizeof(in) / sizeof(in[0]), &prov, &key, 42, NULL),
             0, "request head built");
    T_OK(strncmp(b.data, "POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com:8443\r\n",
                 63) == 0,
         "request line with base path, provider Host first");
    T_OK(has(&b, "Authorization: Bearer sk-SECRET\r\n"), "key credential added");
    T_OK(!has(&b, "client-key"), "client credentials never forwarded");
    T_OK(has(&b, "Content-Length: 42\r\n\r\n"), "Content-Length of the new body, head ends");
    T_OK(!has(&b, "999"), "client Content-Length dropped");
    T_OK(!has_ci_name(&b, "connection") && !has_ci_name(&b, "keep-alive") &&
             !has_ci_name(&b, "te") && !has_ci_name(&b, "transfer-encoding") &&
             !has_ci_name(&b, "proxy-authorization"),
         "hop-by-hop headers dropped");
    T_OK(!has_ci_name(&b, "x-hop"), "header named by Connection dropped");
    T_OK(!has_ci_name(&b, "expect") && !has_ci_name(&b, "accept-encoding"),
         "Expect and Accept-Encoding dropped");
    T_OK(has(&b, "OpenAI-Organization: org-1\r\n") && !has(&b, "client-org"),
         "provider header replaces the client's");
    T_OK(has(&b, "X-Request-Id: abc\r\n") && has(&b, "Content-Type: application/json\r\n") &&
             has(&b, "User-Agent: OpenAI/JS 4.95.0\r\n"),
         "end-to-end headers kept");
    T_OK(!has(&b, "gateway.local"), "client Host dropped");

    buf_reset(&b);
    prov.auth = CFG_AUTH_X_API_KEY;
    rewrite_request_head(&b, "POST", "/embeddings", 11, in, 0, &prov, &key, 0, NULL);
    T_OK(has(&b, "x-api-key: sk-SECRET\r\n") && !has(&b, "Authorization"), "x-api-key style");
    buf_reset(&b);
    prov.auth = CFG_AUTH_HEADER;
    prov.auth_header = "api-key";
    rewrite_request_head(&b, "POST", "/embeddings", 11, in, 0, &prov, &key, 0, NULL);
    T_OK(has(&b, "api-key: sk-SECRET\r\n"), "custom header style");
    buf_reset(&b);
    prov.auth_header = "x-goog-api-key"; /* api: gemini's default */
    rewrite_request_head(&b, "POST", "/models/m:generateContent", 25, in,
                         sizeof(in) / sizeof(in[0]), &prov, &key, 0, NULL);
    T_OK(has(&b, "x-goog-api-key: sk-SECRET\r\n") && !has(&b, "client-key") &&
             !has_ci_name(&b, "authorization"),
         "Gemini's x-goog-api-key style; the client's credentials (its x-goog-api-key too) "
         "dropped");

    {
        http_hdr_t resp[] = {
            H("Content-Type", "text/event-stream"),
            H("Transfer-Encoding", "chunked"),
            H("Connection", "keep-alive"),
            H("Content-Length", "10"),
            H("x-ratelimit-remaining-requests", "99"),
        };
        buf_reset(&b);
        T_EQ_INT(rewrite_response_head(&b, 200, resp, 5, -1, RW_HTTP11 | RW_KEEP_ALIVE,
                                       "x-llmgate-key: k1\r\n", &chunked),
                 0, "response head");
        T_OK(strncmp(b.data, "HTTP/1.1 200 OK\r\n", 17) == 0, "status line");
        T_EQ_INT(chunked, 1, "no length: chunked to an HTTP/1.1 client");
        T_OK(has(&b, "Transfer-Encoding: chunked\r\n") && !has(&b, "Content-Length") &&
                 !has(&b, "Connection:"),
             "own framing only, keep-alive implied");
        T_OK(has(&b, "x-ratelimit-remaining-requests: 99\r\n") && has(&b, "x-llmgate-key: k1\r\n"),
             "end-to-end and extra headers kept");
        buf_reset(&b);
        rewrite_response_head(&b, 200, resp, 5, 1234, RW_HTTP11, NULL, &chunked);
        T_OK(chunked == 0 && has(&b, "Content-Length: 1234\r\n") &&
                 has(&b, "Connection: close\r\n"),
             "known length kept, close announced");
        buf_reset(&b);
        rewrite_response_head(&b, 200, resp, 5, -1, RW_KEEP_ALIVE, NULL, &chunked);
        T_OK(chunked == 0 && has(&b, "Connection: close\r\n"), "HTTP/1.0 client: close-delimited");
        buf_reset(&b);
        rewrite_response_head(&b, 204, resp, 0, -1, RW_HTTP11 | RW_KEEP_ALIVE, NULL, &chunked);
        T_OK(chunked == 0 && !has(&b, "Transfer-Encoding"), "204 has no body framing");
    }

    {
        /* Whole heads byte for byte (they were built with printf before: the appends must
         * give the same bytes, up to the widest numbers). */
        http_hdr_t resp[] = {
            H("Content-Type", "text/event-stream"),
            H("Transfer-Encoding", "chunked"),
            H("Connection", "keep-alive"),
            H("Content-Length", "10"),
            H("x-ratelimit-remaining-requests", "99"),
        };
        http_hdr_t named[] = {
            H("Connection", "close, X-Drop"),
            H("X-Drop", "1"),
            H("close", "2"),
            H("X-Keep", "3"),
            H("Connection", "x-none, "),
            H("", "empty name"),
        };

        prov.auth = CFG_AUTH_BEARER;
        buf_reset(&b);
        rewrite_request_head(&b, "POST", "/chat/completions", 17, in, sizeof(in) / sizeof(in[0]),
                             &prov, &key, 18446744073709551615ULL, "x-request-id: r-9\r\n");
        T_EQ_STR(b.data,
                 "POST /v1/chat/completions HTTP/1.1\r\n"
                 "Host: api.example.com:8443\r\n"
                 "Content-Type: application/json\r\n"
                 "X-Request-Id: abc\r\n"
                 "User-Agent: OpenAI/JS 4.95.0\r\n"
                 "Authorization: Bearer sk-SECRET\r\n"
                 "OpenAI-Organization: org-1\r\n"
                 "x-request-id: r-9\r\n"
                 "Content-Length: 18446744073709551615\r\n"
                 "\r\n",
                 "request head exact, the widest Content-Length");
        prov.auth = CFG_AUTH_HEADER;
        prov.auth_header = "api-key";
        buf_reset(&b);
        rewrite_request_head(&b, "GET", "/models\0junk", 12, in, 0, &prov, &key, 0, NULL);
        T_EQ_STR(b.data,
                 "GET /v1/models HTTP/1.1\r\n"
                 "Host: api.example.com:8443\r\n"
                 "api-key: sk-SECRET\r\n"
                 "OpenAI-Organization: org-1\r\n"
                 "Content-Length: 0\r\n"
                 "\r\n",
                 "request head exact: custom auth header, suffix ends at a NUL as \"%%.*s\" did");
        buf_reset(&b);
        rewrite_request_head(&b, "POST", "/x", 2, named, 6, &prov, &key, 5, NULL);
        T_OK(strstr(b.data, "Host: api.example.com:8443\r\nX-Keep: 3\r\napi-key: sk-SECRET\r\n") &&
                 !has(&b, "X-Drop") && !has(&b, "close") && !has(&b, "empty name"),
             "headers named by Connection dropped, \"close\" and an empty name too");
        buf_reset(&b);
        rewrite_response_head(&b, 200, resp, 5, 9223372036854775807LL, RW_HTTP11,
                              "x-llmgate-key: k1\r\n", &chunked);
        T_EQ_STR(b.data,
                 "HTTP/1.1 200 OK\r\n"
                 "Content-Type: text/event-stream\r\n"
                 "x-ratelimit-remaining-requests: 99\r\n"
                 "x-llmgate-key: k1\r\n"
                 "Content-Length: 9223372036854775807\r\n"
                 "Connection: close\r\n"
                 "\r\n",
                 "response head exact, the widest Content-Length");
        buf_reset(&b);
        rewrite_response_head(&b, 599, resp, 5, -1, RW_HTTP11 | RW_KEEP_ALIVE, NULL, &chunked);
        T_EQ_STR(b.data,
                 "HTTP/1.1 599 Unknown\r\n"
                 "Content-Type: text/event-stream\r\n"
                 "x-ratelimit-remaining-requests: 99\r\n"
                 "Transfer-Encoding: chunked\r\n"
                 "\r\n",
                 "response head exact, chunked");
        buf_reset(&b);
        rewrite_response_head(&b, -7, named, 6, 3, RW_HTTP11 | RW_KEEP_ALIVE, NULL, &chunked);
        T_EQ_STR(b.data, "HTTP/1.1 -7 Unknown\r\nX-Keep: 3\r\n\r\n",
                 "response: named headers dropped, a negative status printed as %%d did");
    }

    {
        /* A client key's own budgets replace the provider's rate-limit headers. */
        http_hdr_t rl[] = {H("X-RateLimit-Remaining-Requests", "9"),
                           H("anthropic-ratelimit-tokens-reset", "2026-12-03T12:00:00Z"),
                           H("x-ratelimit-", "bare prefix"), H("X-Ratelimit-Limit-Tokens", "1000"),
                           H("Content-Type", "application/json")};
        buf_reset(&b);
        rewrite_response_head(&b, 200, rl, 5, 2, RW_HTTP11 | RW_KEEP_ALIVE | RW_OWN_RATELIMIT,
                              "x-ratelimit-limit-requests: 5\r\n", &chunked);
        T_EQ_STR(b.data,
                 "HTTP/1.1 200 OK\r\nx-ratelimit-: bare prefix\r\n"
                 "Content-Type: application/json\r\nx-ratelimit-limit-requests: 5\r\n"
                 "Content-Length: 2\r\n\r\n",
                 "own rate limits: the provider's x-ratelimit-* and anthropic-ratelimit-* dropped");
        buf_reset(&b);
        rewrite_response_head(&b, 200, rl, 5, 2, RW_HTTP11 | RW_KEEP_ALIVE, NULL, &chunked);
        T_OK(has(&b, "X-RateLimit-Remaining-Requests: 9\r\n") &&
                 has(&b, "anthropic-ratelimit-tokens-reset: ") &&
                 has(&b, "X-Ratelimit-Limit-Tokens: 1000\r\n"),
             "without a client key they pass");
    }
    buf_free(&b);
    return t_done();
}
