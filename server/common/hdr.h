/* hdr.h - an HTTP header as a pair of spans, and finding one by name.
 *
 * Both the downstream server (http/) and the upstream client (upstream/) hand headers to
 * their users as arrays of http_hdr_t. The spans point into the parser's buffer: they are
 * valid only as long as the owner of that buffer says (see conn.h and upstream.h); nothing
 * here allocates or copies. Names compare case-insensitively; values are as received.
 * Thread-safe (pure functions).
 */
#ifndef LLMGATE_HDR_H
#define LLMGATE_HDR_H

#include <stddef.h>

typedef struct http_hdr_s {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} http_hdr_t;

/* Case-insensitive comparison of a header name with a NUL-terminated lowercase name. */
int hdr_name_is(const char *name, size_t len, const char *lower);

/* The value of header name (lowercase) in hdrs, or NULL; *vlen set. First match. */
const char *hdr_find(const http_hdr_t *hdrs, size_t n, const char *lower, size_t *vlen);

#endif
