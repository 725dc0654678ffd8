/* rewrite.h - the header rewrite between client and provider, both directions.
 *
 * Request (client -> provider):
 *   - the request line becomes "METHOD <base_path><suffix> HTTP/1.1";
 *   - dropped: hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 *     Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate) and any header
 *     the client's Connection header names; Host and Content-Length (set anew); Expect (the
 *     body is already read); Accept-Encoding (so the response stays readable for usage
 *     accounting); the client's own credentials (Authorization, x-api-key, api-key,
 *     x-goog-api-key and the provider's custom auth header) - they belong to the gateway,
 *     never to the provider;
 *   - added: Host of the provider, the chosen key's credential in the provider's auth
 *     style, Content-Length of the (possibly rewritten) body, the provider's extra headers;
 *     for an Anthropic-native provider, its anthropic_version as anthropic-version unless
 *     the client sent one (the client's anthropic-version and anthropic-beta pass).
 * Response (provider -> client):
 *   - dropped: hop-by-hop headers, Content-Length (set from the framing chosen for the
 *     client), and headers named by the provider's Connection header;
 *   - renamed: the provider's x-request-id becomes x-upstream-request-id (the client gets
 *     exactly one x-request-id, the gateway's);
 *   - with RW_OWN_RATELIMIT (a client key authenticated the request) dropped: the provider's
 *     x-ratelimit-* and anthropic-ratelimit-* headers, which describe the gateway's upstream
 *     key, not the client's budgets;
 *   - framing: Content-Length when the provider gave one, else chunked to HTTP/1.1
 *     clients and close-delimited to HTTP/1.0 clients;
 *   - added: Connection: close when the connection will not be kept alive.
 */
#ifndef LLMGATE_REWRITE_H
#define LLMGATE_REWRITE_H

#include <stddef.h>

#include "config/config.h"
#include "server/common/buf.h"
#include "server/common/hdr.h"

/* 1 if name[0..len) is a hop-by-hop header (case-insensitive). */
int rewrite_is_hop_by_hop(const char *name, size_t len);

/* extra: already formatted "Name: value\r\n" lines to add (may be NULL). */
int rewrite_request_head(buf_t *out, const char *method, const char *suffix, size_t suffix_len,
                         const http_hdr_t *hdrs, size_t nhdrs, const cfg_provider_t *prov,
                         const cfg_key_t *key, size_t body_len, const char *extra);

/* rewrite_response_head flags */
enum {
    RW_HTTP11 = 1,        /* the client speaks HTTP/1.1 (else 1.0: close-delimited) */
    RW_KEEP_ALIVE = 2,    /* the connection stays open after this response */
    RW_OWN_RATELIMIT = 4, /* drop the provider's x-ratelimit-* and anthropic-ratelimit-*:
                             the gateway sends the client key's own (in extra) */
};

/* extra: already formatted "Name: value\r\n" lines to add (may be NULL). */
int rewrite_response_head(buf_t *out, int status, const http_hdr_t *hdrs, size_t nhdrs,
                          long long content_length, unsigned flags, const char *extra,
                          int *chunked_out);

#endif
