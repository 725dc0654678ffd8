/* scan.h - find what routing needs in a request body, without building a DOM.
 *
 * Design note
 * -----------
 * The body is tokenized once with jsmn in strict mode (so malformed JSON is refused),
 * and only the top-level members are looked at: "model" (a string), "stream" (a boolean),
 * the output token cap under the names the API uses (a non-negative integer: chat's
 * "max_tokens" / "max_completion_tokens", the Responses API's "max_output_tokens"), and
 * what the spec asks for: "stream_options" (present or not), "previous_response_id" (a
 * string) and "store" (a boolean). Nested objects are skipped by their end offset. A top-level
 * member that appears twice is refused: the gateway and the provider must never disagree on which
 * one counts. Member names are compared as the provider's parser reads them, after unescaping:
 * "mod\u0065l" is "model" (else a client could hide a second model, stream or max_tokens from the
 * gateway's allowlist and reservations behind an escape, and a last-key-wins parser would use it).
 *
 * scan_splice_model() replaces the model string's token (quotes included) with the
 * upstream model name, leaving every other byte as the client sent it.
 */
#ifndef LLMGATE_SCAN_H
#define LLMGATE_SCAN_H

#include <stddef.h>

#define SCAN_EINVAL     (-1) /* not valid JSON */
#define SCAN_ENOTOBJECT (-2) /* valid JSON but not an object */
#define SCAN_ENOMODEL   (-3) /* no "model" member */
#define SCAN_EBADFIELD  (-4) /* a known member has the wrong type or a duplicate */
#define SCAN_ENOMEM     (-5)
#define SCAN_EEMPTY     (-6) /* empty body */

/* What one client API's request bodies carry (api.h gives one per adapter). */
typedef struct scan_spec_s {
    const char *max_names[2]; /* member names of the output token cap (NULL: unused) */
    int stream_options;       /* look for "stream_options" */
    int previous_id;          /* read "previous_response_id" */
    int store;                /* read "store" */
    int model_optional;       /* a body without "model" is not an error (model[0] == 0) */
} scan_spec_t;

/* Chat completions, completions and embeddings: the default spec (NULL). */
extern const scan_spec_t scan_spec_chat;

#define SCAN_ID_MAX 127

typedef struct scan_result_s {
    char model[256]; /* unescaped model name, NUL-terminated */
    size_t model_len;
    size_t model_start;     /* offset of the opening quote of the model string in the body */
    size_t model_end;       /* offset just past its closing quote */
    int stream;             /* 1 true, 0 false or absent */
    long long max_tokens;   /* -1 when absent */
    int has_stream_options; /* a top-level "stream_options" member is present */
    int include_usage;      /* ... and its "include_usage" is true */
    char previous_id[SCAN_ID_MAX + 1]; /* "previous_response_id", "" when absent or null */
    size_t previous_id_len;
    int store;             /* "store": 1 true, 0 false, -1 absent or null */
    const char *bad_field; /* for SCAN_EBADFIELD: which member ("model", "stream", ...) */
    int duplicate;         /* for SCAN_EBADFIELD: that member was given twice */
} scan_result_t;

/* Scan body[0..len) for what spec names (NULL: scan_spec_chat). 0 on success, or a SCAN_E*
 * code. */
int scan_body(const char *body, size_t len, const scan_spec_t *spec, scan_result_t *out);

/* A readable message for a SCAN_E* code from the last scan of r (names the field). */
const char *scan_strerror(int err, const scan_result_t *r);

/* New body with the model token replaced by "name" (JSON-escaped). *out is malloc'd. */
int scan_splice_model(const char *body, size_t len, const scan_result_t *r, const char *name,
                      char **out, size_t *out_len);

#endif
