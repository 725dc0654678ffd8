/* errors.h - OpenAI-shaped error bodies and HTTP status reasons.
 *
 * Every error llmgate answers itself has the body
 *     {"error":{"message":"...","type":"...","param":null|"...","code":null|"..."}}
 * with the strings JSON-escaped. Messages never contain a secret: callers name keys by
 * their configured names and never echo a presented credential.
 */
#ifndef LLMGATE_ERRORS_H
#define LLMGATE_ERRORS_H

#include <stddef.h>

/* Writes the JSON body into buf, NUL-terminated, and returns its length, always < len (0 when
 * len is 0). message, param and code may be NULL (JSON null). When the body does not fit, the
 * message string is cut (never inside an escape or a UTF-8 sequence) and the body is still
 * valid JSON with all four members; when even an empty message does not fit, buf is "" and 0
 * is returned. */
size_t error_json(char *buf, size_t len, const char *message, const char *type, const char *param,
                  const char *code);

/* JSON-escape src[0..n) into dst (at most len-1 bytes + NUL). Returns bytes written. When src
 * does not fit, it is cut between escapes and never inside a UTF-8 sequence. */
size_t json_escape(char *dst, size_t len, const char *src, size_t n);

/* "OK", "Bad Request", ... for a status code; "Unknown" for others. */
const char *http_reason(int status);

/* The OpenAI error type for a status llmgate answers itself. */
const char *error_type_for(int status);

#endif
