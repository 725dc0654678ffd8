/* xjson.h - what the translations share around jansson: how documents are read and written,
 * strings made valid UTF-8, setters that report a failed allocation.
 *
 * jansson validates UTF-8 in every string it parses or is given (json_string returns NULL
 * on invalid bytes); strings that do not come from a parsed document (options, cut
 * messages, error bodies) go through xjson_lossy first, so that NULL from a constructor
 * means no memory and nothing else. The setters steal the value as jansson's *_new do
 * (a NULL value is a failed allocation) and return 0 or XLATE_ENOMEM.
 * Pure, any thread.
 */
#ifndef LLMGATE_XJSON_H
#define LLMGATE_XJSON_H

#include <jansson.h>
#include <stddef.h>

#include "server/common/buf.h"

/* Reals at 15 digits: what a person wrote (0.7) goes out as written, not 0.69999999999999996
 * (17 digits, jansson's default, which a provider reads as the same number anyway). */
#define XJSON_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define XJSON_LOAD JSON_REJECT_DUPLICATES

/* The length of the valid UTF-8 sequence at s[0..n) (1 to 4; n > 0), or 0 if none starts
 * there (jansson's rules: no overlong forms, surrogates or code points past U+10FFFF). */
size_t xjson_utf8_seq(const unsigned char *s, size_t n);

/* Appends s[0..min(n, max)) to b as valid UTF-8: an invalid byte, and NUL (which C clients
 * of the JSON would cut at), becomes U+FFFD; a sequence cut by max is replaced too. 0 or -1
 * (no memory). */
int xjson_lossy(buf_t *b, const char *s, size_t n, size_t max);

/* A JSON string of any C string (NULL: ""), made valid; NULL only for no memory. */
json_t *xjson_str(const char *s);

/* A JSON string of b's bytes, which must be valid UTF-8 (from parsed strings or
 * xjson_lossy). */
json_t *xjson_buf(const buf_t *b);

/* Copies s (NULL: "") into dst[cap], whole or cut before a UTF-8 sequence; NUL-terminated. */
void xjson_copy_cut(char *dst, size_t cap, const char *s);

/* Appends j (an object or array) as compact JSON; on failure out is as it was. */
int xjson_put(buf_t *out, const json_t *j);

/* Cuts b back to at bytes (an event or document that failed is taken back). */
void xjson_buf_cut(buf_t *b, size_t at);

int xjson_set(json_t *o, const char *key, json_t *v);
int xjson_push(json_t *a, json_t *v);

/* Whether v is the string s (NUL bytes in v count). */
int xjson_streq(const json_t *v, const char *s);

/* 1 if j is an object whose "type" is the string type. */
int xjson_is_type(const json_t *j, const char *type);

/* prefix + id (NULL or "": "llmgate"), and "_" + n when n >= 0: the ids a client needs that
 * the provider did not give, derived from the request id. Cut to 160 bytes. */
json_t *xjson_made_id(const char *prefix, const char *id, long long n);

/* ---- refusing a request (xlate.h's XLATE_EREFUSE) ---------------------------------- */

struct xlate_error_s;

/* A refusal (XLATE_EREFUSE, returned): err->param = param ("" when it does not fit: the
 * message names it), err->message = the printf message, valid UTF-8 however cut (a default
 * when empty). err may be NULL. xjson_refusef: the message is "param: " + the reason. */
int xjson_refuse(struct xlate_error_s *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int xjson_refusef(struct xlate_error_s *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* b[cap] = a member's path as a param names it ("messages[3].content"), cut to fit. */
void xjson_pathf(char *b, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What a refusal says it got: a short printable ASCII string in quotes (in b[cap]), else its
 * kind ("an object", "a number", "null", "nothing", ...): ASCII, never a client's bytes cut. */
const char *xjson_got(const json_t *v, char *b, size_t cap);

/* The message of an OpenAI-shaped error body ({"error":{"message"}}, or the usual variants
 * {"error":"..."} and {"message":"..."}), borrowed from doc; NULL if none. */
const json_t *xjson_error_message(const json_t *doc);

/* What a client is told of a provider's error body (doc: the body parsed, or NULL): its
 * message (xjson_error_message, when not empty), else "the provider answered HTTP S: " and
 * the body's text cut to XJSON_ERROR_TEXT_MAX bytes, made valid UTF-8, or that the body was
 * empty. NULL: no memory. */
#define XJSON_ERROR_TEXT_MAX 1024
json_t *xjson_error_text(const json_t *doc, int status, const char *body, size_t len);

#endif
