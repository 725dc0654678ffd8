/* rewrite.c - request and response header rewrite; see rewrite.h for the rules. */
#include "server/upstream/rewrite.h"
#include "server/common/errors.h"

#include <string.h>
#include <strings.h>

/* hdr_name_is for a literal lowercase name: the length is compared first, without strlen
 * (the filters below run for every header of every request and response). */
#define NAME_IS(name, len, lit)                                                                    \
    ((len) == sizeof(lit) - 1 && strncasecmp((name), (lit), sizeof(lit) - 1) == 0)

int rewrite_is_hop_by_hop(const char *name, size_t len)
{
    return NAME_IS(name, len, "connection") || NAME_IS(name, len, "keep-alive") ||
           NAME_IS(name, len, "proxy-connection") || NAME_IS(name, len, "te") ||
           NAME_IS(name, len, "trailer") || NAME_IS(name, len, "transfer-encoding") ||
           NAME_IS(name, len, "upgrade") || NAME_IS(name, len, "proxy-authorization") ||
           NAME_IS(name, len, "proxy-authenticate");
}

/* The next token of the comma-separated list v[0..vlen) from *pos: its start in *start,
 * its length returned (0 for an empty element). *pos moves past it; the list ends when
 * *pos reaches vlen. */
static size_t next_token(const char *v, size_t vlen, size_t *pos, size_t *start)
{
    size_t i = *pos, s, e;

    while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
        i++;
    s = i;
    while (i < vlen && v[i] != ',')
        i++;
    e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    *pos = i;
    *start = s;
    return e - s;
}

/* 1 if the comma-separated token list v[0..vlen) names name[0..len). */
static int token_list_has(const char *v, size_t vlen, const char *name, size_t len)
{
    size_t i = 0, s;

    while (i < vlen)
        if (next_token(v, vlen, &i, &s) == len && strncasecmp(v + s, name, len) == 0)
            return 1;
    return 0;
}

/* Whether a header listed in any Connection header must be dropped too. */
static int named_by_connection(const http_hdr_t *hdrs, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (NAME_IS(hdrs[i].name, hdrs[i].name_len, "connection") &&
            token_list_has(hdrs[i].value, hdrs[i].value_len, name, len))
            return 1;
    return 0;
}

/* 1 if a Connection header names a header that is not hop-by-hop. Only then can
 * named_by_connection drop a header the other rules keep; the usual "Connection:
 * keep-alive" names a hop-by-hop header, so the per-header lookup is skipped. */
static int connection_names_others(const http_hdr_t *hdrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t pos = 0, s, len;

        if (!NAME_IS(hdrs[i].name, hdrs[i].name_len, "connection"))
            continue;
        while (pos < hdrs[i].value_len) {
            len = next_token(hdrs[i].value, hdrs[i].value_len, &pos, &s);
            if (!rewrite_is_hop_by_hop(hdrs[i].value + s, len)) /* an empty token too */
                return 1;
        }
    }
    return 0;
}

static int is_client_credential(const char *name, size_t len, const cfg_provider_t *prov)
{
    if (NAME_IS(name, len, "authorization") || NAME_IS(name, len, "x-api-key") ||
        NAME_IS(name, len, "api-key") || NAME_IS(name, len, "x-goog-api-key"))
        return 1;
    return prov->auth == CFG_AUTH_HEADER && prov->auth_header && len == strlen(prov->auth_header) &&
           strncasecmp(name, prov->auth_header, len) == 0;
}

static int is_provider_header(const char *name, size_t len, const cfg_provider_t *prov)
{
    for (unsigned i = 0; i < prov->headers_count; i++) {
        const char *h = prov->headers[i].name;
        if (len == strlen(h) && strncasecmp(name, h, len) == 0)
            return 1;
    }
    return 0;
}

#define APPEND_LIT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/* "name: value\r\n" with one copy each (the heads are built per request: no printf). */
static int put_header(buf_t *b, const char *name, size_t nlen, const char *value, size_t vlen)
{
    char *w;

    if (buf_reserve(b, nlen + vlen + 4) != 0)
        return -1;
    w = b->data + b->len;
    memcpy(w, name, nlen);
    w += nlen;
    *w++ = ':';
    *w++ = ' ';
    memcpy(w, value, vlen);
    w += vlen;
    *w++ = '\r';
    *w++ = '\n';
    *w = '\0';
    b->len = (size_t)(w - b->data);
    return 0;
}

/* Room for every header of hdrs as "name: value\r\n" (an upper bound of what is kept). */
static size_t headers_size(const http_hdr_t *hdrs, size_t n)
{
    size_t size = 0;

    for (size_t i = 0; i < n; i++)
        size += hdrs[i].name_len + hdrs[i].value_len + 4;
    return size;
}

int rewrite_request_head(buf_t *out, const char *method, const char *suffix, size_t suffix_len,
                         const http_hdr_t *hdrs, size_t nhdrs, const cfg_provider_t *prov,
                         const cfg_key_t *key, size_t body_len, const char *extra)
{
    size_t method_len = strlen(method), base_len = strlen(prov->base_path),
           host_len = strlen(prov->host_header), secret_len = strlen(key->secret),
           extra_len = extra ? strlen(extra) : 0, size;
    int rc = 0, by_conn = connection_names_others(hdrs, nhdrs);

    suffix_len = strnlen(suffix, suffix_len); /* as "%.*s" did: up to a NUL */
    /* One reservation for the whole head (bounds: all client headers, the longest auth
     * line, 20 digits of length). */
    size = method_len + base_len + suffix_len + host_len + sizeof(" HTTP/1.1\r\nHost: \r\n") +
           headers_size(hdrs, nhdrs) + sizeof("Authorization: Bearer \r\n") + secret_len +
           (prov->auth_header ? strlen(prov->auth_header) + 4 : 0) + extra_len +
           sizeof("Content-Length: 18446744073709551615\r\n\r\n");
    for (unsigned i = 0; i < prov->headers_count; i++)
        size += strlen(prov->headers[i].name) + strlen(prov->headers[i].value) + 4;
    if (prov->anthropic_version)
        size += sizeof("anthropic-version: \r\n") + strlen(prov->anthropic_version);
    rc |= buf_reserve(out, size);
    rc |= buf_append(out, method, method_len);
    rc |= APPEND_LIT(out, " ");
    rc |= buf_append(out, prov->base_path, base_len);
    rc |= buf_append(out, suffix, suffix_len);
    rc |= APPEND_LIT(out, " HTTP/1.1\r\n");
    rc |= put_header(out, "Host", 4, prov->host_header, host_len);
    for (size_t i = 0; i < nhdrs; i++) {
        const char *n = hdrs[i].name;
        size_t l = hdrs[i].name_len;

        if (rewrite_is_hop_by_hop(n, l) || NAME_IS(n, l, "host") ||
            NAME_IS(n, l, "content-length") || NAME_IS(n, l, "expect") ||
            NAME_IS(n, l, "accept-encoding") || is_client_credential(n, l, prov) ||
            is_provider_header(n, l, prov) || (by_conn && named_by_connection(hdrs, nhdrs, n, l)))
            continue;
        rc |= put_header(out, n, l, hdrs[i].value, hdrs[i].value_len);
    }
    switch (prov->auth) {
    case CFG_AUTH_BEARER:
        rc |= APPEND_LIT(out, "Authorization: Bearer ");
        rc |= buf_append(out, key->secret, secret_len);
        rc |= APPEND_LIT(out, "\r\n");
        break;
    case CFG_AUTH_X_API_KEY:
        rc |= put_header(out, "x-api-key", 9, key->secret, secret_len);
        break;
    case CFG_AUTH_HEADER:
        rc |=
            put_header(out, prov->auth_header, strlen(prov->auth_header), key->secret, secret_len);
        break;
    }
    for (unsigned i = 0; i < prov->headers_count; i++)
        rc |= put_header(out, prov->headers[i].name, strlen(prov->headers[i].name),
                         prov->headers[i].value, strlen(prov->headers[i].value));
    if (prov->api == CFG_API_ANTHROPIC && prov->anthropic_version &&
        !hdr_find(hdrs, nhdrs, "anthropic-version", &(size_t){0}))
        rc |= put_header(out, "anthropic-version", 17, prov->anthropic_version,
                         strlen(prov->anthropic_version));
    if (extra)
        rc |= buf_append(out, extra, extra_len);
    rc |= APPEND_LIT(out, "Content-Length: ");
    rc |= buf_append_u64(out, body_len);
    rc |= APPEND_LIT(out, "\r\n\r\n");
    return rc ? -1 : 0;
}

/* x-ratelimit-* or anthropic-ratelimit-* (case-insensitive). */
static int is_ratelimit(const char *n, size_t l)
{
    static const char a[] = "x-ratelimit-", b[] = "anthropic-ratelimit-";
    return (l > sizeof(a) - 1 && strncasecmp(n, a, sizeof(a) - 1) == 0) ||
           (l > sizeof(b) - 1 && strncasecmp(n, b, sizeof(b) - 1) == 0);
}

int rewrite_response_head(buf_t *out, int status, const http_hdr_t *hdrs, size_t nhdrs,
                          long long content_length, unsigned flags, const char *extra,
                          int *chunked_out)
{
    int keep_alive = (flags & RW_KEEP_ALIVE) != 0;
    const char *reason = http_reason(status);
    size_t reason_len = strlen(reason), extra_len = extra ? strlen(extra) : 0;
    int rc = 0, chunked = 0, by_conn = connection_names_others(hdrs, nhdrs);

    /* One reservation for the whole head (bounds: all provider headers, the longest
     * framing and connection lines). */
    rc |= buf_reserve(out, sizeof("HTTP/1.1 -2147483648 \r\n") + reason_len +
                               headers_size(hdrs, nhdrs) + sizeof("x-upstream-") + extra_len +
                               sizeof("Content-Length: -9223372036854775808\r\n") +
                               sizeof("Connection: close\r\n\r\n"));
    rc |= APPEND_LIT(out, "HTTP/1.1 ");
    rc |= buf_append_i64(out, status);
    rc |= APPEND_LIT(out, " ");
    rc |= buf_append(out, reason, reason_len);
    rc |= APPEND_LIT(out, "\r\n");
    for (size_t i = 0; i < nhdrs; i++) {
        const char *n = hdrs[i].name;
        size_t l = hdrs[i].name_len;

        if (rewrite_is_hop_by_hop(n, l) || NAME_IS(n, l, "content-length") ||
            (by_conn && named_by_connection(hdrs, nhdrs, n, l)))
            continue;
        if ((flags & RW_OWN_RATELIMIT) && is_ratelimit(n, l))
            continue;
        if (NAME_IS(n, l, "x-request-id")) { /* the gateway's is the one x-request-id */
            n = "x-upstream-request-id";
            l = sizeof("x-upstream-request-id") - 1;
        }
        rc |= put_header(out, n, l, hdrs[i].value, hdrs[i].value_len);
    }
    if (extra)
        rc |= buf_append(out, extra, extra_len);
    if (status < 200 || status == 204 || status == 304) {
        /* no body by definition: no framing header */
    } else if (content_length >= 0) {
        rc |= APPEND_LIT(out, "Content-Length: ");
        rc |= buf_append_i64(out, content_length);
        rc |= APPEND_LIT(out, "\r\n");
    } else if (flags & RW_HTTP11) {
        rc |= APPEND_LIT(out, "Transfer-Encoding: chunked\r\n");
        chunked = 1;
    } else {
        keep_alive = 0; /* close-delimited for HTTP/1.0 */
    }
    if (!keep_alive)
        rc |= APPEND_LIT(out, "Connection: close\r\n");
    rc |= APPEND_LIT(out, "\r\n");
    *chunked_out = chunked;
    return rc ? -1 : 0;
}
