/* json.h - JSON documents of the store, the same for llmgatectl --json and the admin API.
 *
 * Every document is one JSON object on one line (then "\n") whose top level starts with
 * "schema" (VW_JSON_SCHEMA), "command" (the llmgatectl command, or the API's name for it),
 * "generated_ms" and "state_dir". The schema is cli/README.md's "JSON schema" section:
 * within a version fields are only ever added; a renamed or removed field, or a changed
 * meaning, raises the version. Times are wall-clock ms since the epoch (0 = never),
 * durations ms, limits 0 = unlimited, statistics that have no data yet are null.
 *
 * The writer is tiny: it tracks only whether a comma is due at each nesting level (at most
 * VW_JSON_DEPTH levels). It writes into a vw_buf_t (view/fmt.h: check failed when the
 * buffer has no out-of-memory hook). Pure; a writer belongs to one thread.
 */
#ifndef LLMGATE_VIEW_JSON_H
#define LLMGATE_VIEW_JSON_H

#include <stdint.h>

#include "shm/shm.h"
#include "view/fmt.h"
#include "view/keys.h"

#define VW_JSON_SCHEMA 1
#define VW_JSON_DEPTH  16

/* The names of the outcome classes (enum shm_class) in documents: "success", "rate_limited"
 * (429), "server_error" (5xx), "timeout", "connect", "auth", "other" (other 4xx),
 * "cancelled". */
extern const char *const vw_outcome_names[SHM_CL_COUNT];

typedef struct vw_json_s {
    vw_buf_t *b;
    int depth;
    int first[VW_JSON_DEPTH];
} vw_json_t;

/* key NULL: an array element (or the top level). */
void vw_json_open(vw_json_t *j, const char *key, char c); /* '{' or '[' */
void vw_json_close(vw_json_t *j, char c);
void vw_json_str(vw_json_t *j, const char *key, const char *v);
void vw_json_u64(vw_json_t *j, const char *key, uint64_t v);
void vw_json_i64(vw_json_t *j, const char *key, int64_t v);
void vw_json_null(vw_json_t *j, const char *key);
void vw_json_bool(vw_json_t *j, const char *key, int v);
/* v with 6 decimals, or null when !have. */
void vw_json_num(vw_json_t *j, const char *key, double v, int have);
/* v, or null when !have. */
void vw_json_u32_or_null(vw_json_t *j, const char *key, uint32_t v, int have);

/* Start a document into b: {"schema":1,"command":command,"generated_ms":now_ms, and
 * "state_dir":state_dir unless it is NULL; vw_json_end closes it and adds "\n". */
void vw_json_begin(vw_json_t *j, vw_buf_t *b, const char *command, int64_t now_ms,
                   const char *state_dir);
void vw_json_end(vw_json_t *j);

/* Fields into an open object: a key row (KEY of the schema); a provider's circuit
 * (provider_circuit); a provider row; one history event (ts_ms, event, status, reason, arg,
 * pid, text). */
void vw_json_key_fields(vw_json_t *j, const vw_key_t *r);
void vw_json_circuit_fields(vw_json_t *j, const shm_provider_t *p, int64_t now_ms);
void vw_json_prov_fields(vw_json_t *j, const vw_prov_t *p, int64_t now_ms);
void vw_json_event_fields(vw_json_t *j, const shm_event_t *ev);

/* Documents: "keys" ({... "keys":[KEY...]}), "providers". */
void vw_doc_keys(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_key_t *rows,
                 unsigned n);
void vw_doc_providers(vw_buf_t *out, int64_t now_ms, const char *state_dir, const vw_prov_t *rows,
                      unsigned n);

/* "events": the newest limit events of every key (their history rings), newest first, each
 * with "key" and the event fields. 0 or an SHM_E* code (nothing written then). */
int vw_doc_events(vw_buf_t *out, shm_t *s, int64_t now_ms, const char *state_dir, unsigned limit);

#endif
