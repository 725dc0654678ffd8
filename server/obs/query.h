/* query.h - the query string and path segments of an admin request: percent-decoding and
 * looking a parameter up. Pure functions of their arguments (no allocation), any thread;
 * fuzzed by tests/fuzz/fuzz_admin_query.c.
 */
#ifndef LLMGATE_QUERY_H
#define LLMGATE_QUERY_H

#include <stddef.h>

/* Percent-decode s[0..n) into out (size outlen, NUL-terminated): 0, or -1 for a bad or cut
 * escape, a NUL byte (also %00), or an output that does not fit (outlen 0 included). '+' is
 * left as is (paths and our parameters never hold a space). */
int query_unescape(const char *s, size_t n, char *out, size_t outlen);

/* The value of the first parameter called name in query ("a=1&b=2", not decoded), decoded
 * into out: 1 (a parameter without '=' has the value ""), 0 when absent, -1 when its value
 * cannot be decoded or does not fit. */
int query_param(const char *query, const char *name, char *out, size_t outlen);

#endif
