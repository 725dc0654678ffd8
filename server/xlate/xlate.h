/* xlate.h - a client API served by a provider of another format: the request, the answer,
 * its errors and its stream translated, one module per pair (xlate/<client>_<provider>.c).
 *
 * Design note
 * -----------
 * The proxy serves a request as it came when the deployment's provider speaks the client's
 * API (api.h: api_served_by); then no byte is parsed beyond what the adapter's scan reads.
 * Otherwise it looks up the pair (client API, provider format) here and, per attempt (a
 * fallback may cross formats both ways):
 *   - request   rewrites the client's body into the provider's (model = the deployment's
 *               upstream model), to pair->upstream_path (or the path upstream_path_of
 *               makes of the model and the stream flag); a field that cannot be carried
 *               and whose loss would change the answer is refused (XLATE_EREFUSE, a 400
 *               naming it); fields without an equivalent that do not change the answer
 *               are dropped (each module lists them in its header comment);
 *   - response  a 2xx JSON answer of the provider, whole (it is one document), into the
 *               client's;
 *   - error     a non-2xx body of the provider into the client API's error shape and
 *               status; the key policy judged the provider's own answer before (keypolicy
 *               reads both formats);
 *   - stream    a 2xx SSE answer, event in, events out: the state is constant in size, plus
 *               the one event being read (sse.h); never the whole stream.
 * Usage is read from the provider's bytes by pair->upstream's usage reader (the proxy feeds
 * those to usage.h before translating), so billing and TPM stay exact whatever the client
 * sees; the client still gets its own format's usage (a chat client's include_usage chunk).
 *
 * Ownership: output goes to the caller's buf_t (appended); a stream's state is memory the
 * caller gives (stream_size bytes, aligned for any type: malloc's), initialised by
 * stream_init and released by stream_free. The xlate_opts_t and its strings are valid only
 * during the call they are passed to: a stream copies what it keeps. After an error, out
 * holds what the events before the failing one gave (the same whatever the cuts), nothing
 * of the failing one.
 * Threads: a stream belongs to one thread; everything else is pure. Errors: 0, XLATE_EREFUSE
 * (request only: err says why), XLATE_EBAD (the provider's bytes are not its format: the
 * proxy treats it as a protocol error of the upstream), XLATE_ENOMEM.
 */
#ifndef LLMGATE_XLATE_H
#define LLMGATE_XLATE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "server/api/api.h"
#include "server/common/buf.h"

#define XLATE_EREFUSE (-1)
#define XLATE_EBAD    (-2)
#define XLATE_ENOMEM  (-3)

/* What a translation needs to know of the request besides its body. */
typedef struct xlate_opts_s {
    const char *model;           /* the provider's model name (the deployment's), NUL-terminated */
    const char *client_model;    /* the model name the client sent (answers carry it back) */
    uint32_t default_max_tokens; /* for a provider that requires max_tokens when the client
                                    sent none (Anthropic); 0 = 4096 */
    uint32_t max_tokens_cap;     /* the deployment's most max_tokens (a larger one is lowered
                                    to it, the default too); 0 = none */
    int stream;                  /* the client asked for a stream */
    int include_usage;           /* chat: the client asked stream_options.include_usage */
    int64_t created;             /* Unix seconds, for the answers' "created" */
    const char *request_id;      /* the gateway's x-request-id: ids made up derive from it */
    const char *client_body;     /* the client's request body as it came (answers that echo
                                    the request read it: Responses); NULL = none */
    size_t client_body_len;
} xlate_opts_t;

/* Why a request was refused: the message of the 400, and the field ("param") it names. */
typedef struct xlate_error_s {
    char message[256];
    char param[64]; /* "" when the body as a whole is at fault (the 400's param is null) */
} xlate_error_t;

typedef struct xlate_pair_s {
    api_id_t client;               /* the API the client speaks */
    enum cfg_api provider;         /* the provider format whose wire it writes */
    unsigned providers;            /* API_PROVIDER(CFG_API_*) bits of every format it serves
                                      (formats that share that wire: openai, openai-chat);
                                      0 = provider alone */
    const char *client_path;       /* the client's operation it translates, e.g. "/v1/messages" */
    const char *upstream_path;     /* after the provider's base path, e.g. "/messages" */
    const api_adapter_t *upstream; /* the provider format's own adapter: its usage reader */
    int (*request)(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                   xlate_error_t *err);
    int (*response)(const char *body, size_t len, const xlate_opts_t *o, buf_t *out);
    /* status: the provider's; *status_out: the client's (e.g. Anthropic 529 -> 503). */
    int (*error)(int status, const char *body, size_t len, buf_t *out, int *status_out);
    size_t stream_size;
    void (*stream_init)(void *st, const xlate_opts_t *o);
    /* the provider's SSE bytes as they arrive (cut anywhere) -> the client's events */
    int (*stream_feed)(void *st, const char *data, size_t len, buf_t *out);
    /* the provider's stream ended (complete: 1, or cut: 0, also after XLATE_EBAD) -> the
     * client's last events; for a cut, only what tells the client it failed (a Responses
     * client's response.failed and error events), if its API has that; the proxy cuts the
     * connection after them */
    int (*stream_end)(void *st, int complete, buf_t *out);
    void (*stream_free)(void *st);
    /* The client's token-counting operation (count_path), when this provider format has none:
     * answered by the gateway with count_tokens' estimate (0 and *tokens, or XLATE_E*).
     * NULL: none. */
    const char *count_path;
    int (*count_tokens)(const char *body, size_t len, uint32_t *tokens);
    /* The provider's path when it depends on the request (Gemini names the model and the
     * streaming method in it: /models/{model}:streamGenerateContent?alt=sse), written
     * NUL-terminated to out[cap] from o (o->model, o->stream): 0, or -1 if it does not fit.
     * NULL: upstream_path, which then is the path as it is (else only a description). */
    int (*upstream_path_of)(const xlate_opts_t *o, char *out, size_t cap);
} xlate_pair_t;

/* Whether pair x serves provider format p. */
static inline int xlate_serves(const xlate_pair_t *x, enum cfg_api p)
{
    return x->providers ? (x->providers & API_PROVIDER(p)) != 0 : x->provider == p;
}

/* The translation of operation op of client API a to provider format p, or NULL if there is
 * none. */
const xlate_pair_t *xlate_find(const api_adapter_t *a, const api_op_t *op, enum cfg_api p);

/* The pair whose count_tokens answers operation op of API a for provider format p, or NULL. */
const xlate_pair_t *xlate_find_count(const api_adapter_t *a, const api_op_t *op, enum cfg_api p);

#endif
