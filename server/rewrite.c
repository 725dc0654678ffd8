/* rewrite.c - request and response header rewrite; see rewrite.h for the rules. */
#include "server/rewrite.h"
#include "server/errors.h"

#include <string.h>
#include <strings.h>

int hdr_name_is(const char *name, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    return len == n && strncasecmp(name, lower, n) == 0;
}

const char *hdr_find(const http_hdr_t *hdrs, size_t n, const char *lower, size_t *vlen)
{
    for (size_t i = 0; i < n; i++) {
        if (hdr_name_is(hdrs[i].name, hdrs[i].name_len, lower)) {
            *vlen = hdrs[i].value_len;
            return hdrs[i].value;
        }
    }
    return NULL;
}

int rewrite_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection",
                                      "keep-alive",
                                      "proxy-connection",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "proxy-authorization",
                                      "proxy-authenticate",
                                      NULL};
    for (int i = 0; hop[i]; i++)
        if (hdr_name_is(name, len, hop[i]))
            return 1;
    return 0;
}

/* 1 if the comma-separated token list v[0..vlen) names name[0..len). */
static int token_list_has(const char *v, size_t vlen, const char *name, size_t len)
{
    size_t i = 0;

    while (i < vlen) {
        size_t s, e;
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < vlen && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == len && strncasecmp(v + s, name, len) == 0)
            return 1;
    }
    return 0;
}

/* Whether a header listed in any Connection header must be dropped too. */
static int named_by_connection(const http_hdr_t *hdrs, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (hdr_name_is(hdrs[i].name, hdrs[i].name_len, "connection") &&
            token_list_has(hdrs[i].value, hdrs[i].value_len, name, len))
            return 1;
    return 0;
}

static int is_client_credential(const char *name, size_t len, const cfg_provider_t *prov)
{
    if (hdr_name_is(name, len, "authorization") || hdr_name_is(name, len, "x-api-key") ||
        hdr_name_is(name, len, "api-key"))
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

int rewrite_request_head(buf_t *out, const char *method, const char *suffix, size_t suffix_len,
                         const http_hdr_t *hdrs, size_t nhdrs, const cfg_provider_t *prov,
                         const cfg_key_t *key, size_t body_len, const char *extra)
{
    int rc = 0;

    rc |= buf_printf(out, "%s %s%.*s HTTP/1.1\r\nHost: %s\r\n", method, prov->base_path,
                     (int)suffix_len, suffix, prov->host_header);
    for (size_t i = 0; i < nhdrs; i++) {
        const char *n = hdrs[i].name;
        size_t l = hdrs[i].name_len;

        if (rewrite_is_hop_by_hop(n, l) || hdr_name_is(n, l, "host") ||
            hdr_name_is(n, l, "content-length") || hdr_name_is(n, l, "expect") ||
            hdr_name_is(n, l, "accept-encoding") || is_client_credential(n, l, prov) ||
            is_provider_header(n, l, prov) || named_by_connection(hdrs, nhdrs, n, l))
            continue;
        rc |= buf_append(out, n, l);
        rc |= buf_append(out, ": ", 2);
        rc |= buf_append(out, hdrs[i].value, hdrs[i].value_len);
        rc |= buf_append(out, "\r\n", 2);
    }
    switch (prov->auth) {
    case CFG_AUTH_BEARER:
        rc |= buf_printf(out, "Authorization: Bearer %s\r\n", key->secret);
        break;
    case CFG_AUTH_X_API_KEY:
        rc |= buf_printf(out, "x-api-key: %s\r\n", key->secret);
        break;
    case CFG_AUTH_HEADER:
        rc |= buf_printf(out, "%s: %s\r\n", prov->auth_header, key->secret);
        break;
    }
    for (unsigned i = 0; i < prov->headers_count; i++)
        rc |= buf_printf(out, "%s: %s\r\n", prov->headers[i].name, prov->headers[i].value);
    if (extra)
        rc |= buf_appends(out, extra);
    rc |= buf_printf(out, "Content-Length: %zu\r\n\r\n", body_len);
    return rc ? -1 : 0;
}

int rewrite_response_head(buf_t *out, int status, const http_hdr_t *hdrs, size_t nhdrs,
                          long long content_length, int client_http11, int keep_alive,
                          const char *extra, int *chunked_out)
{
    int rc = 0, chunked = 0;

    rc |= buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    for (size_t i = 0; i < nhdrs; i++) {
        const char *n = hdrs[i].name;
        size_t l = hdrs[i].name_len;

        if (rewrite_is_hop_by_hop(n, l) || hdr_name_is(n, l, "content-length") ||
            named_by_connection(hdrs, nhdrs, n, l))
            continue;
        rc |= buf_append(out, n, l);
        rc |= buf_append(out, ": ", 2);
        rc |= buf_append(out, hdrs[i].value, hdrs[i].value_len);
        rc |= buf_append(out, "\r\n", 2);
    }
    if (extra)
        rc |= buf_appends(out, extra);
    if (status < 200 || status == 204 || status == 304) {
        /* no body by definition: no framing header */
    } else if (content_length >= 0) {
        rc |= buf_printf(out, "Content-Length: %lld\r\n", content_length);
    } else if (client_http11) {
        rc |= buf_appends(out, "Transfer-Encoding: chunked\r\n");
        chunked = 1;
    } else {
        keep_alive = 0; /* close-delimited for HTTP/1.0 */
    }
    if (!keep_alive)
        rc |= buf_appends(out, "Connection: close\r\n");
    rc |= buf_append(out, "\r\n", 2);
    *chunked_out = chunked;
    return rc ? -1 : 0;
}
