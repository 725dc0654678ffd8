/* mock.h - internals of the mock upstream, shared by its modules.
 *
 * Design note
 * -----------
 * mock-upstream is a fake LLM provider for the integration tests, the demo and the
 * benchmarks: OpenAI's chat, completions, embeddings and Responses APIs (mock_api.c,
 * mock_responses.c), Anthropic's Messages API (mock_messages.c) and Google's Gemini API
 * (mock_gemini.c) on one listener. It has
 * to be cheap enough never to be the bottleneck of a benchmark, so it is built like a small
 * production server:
 *
 *   - N worker threads, each with its own uv_loop and its own SO_REUSEPORT listener
 *     (mock_main.c). Nothing on the request path crosses threads except two small,
 *     uncontended locks (per-thread statistics, the "last request" record) and an atomic
 *     check of whether any per-key script exists (mock_admin.c).
 *   - A connection (mock_conn.c) reads into the worker's read buffer, parses with llhttp in
 *     strict mode, and stops the parser after every complete request (HPE_PAUSED) so that
 *     pipelined requests are answered strictly in order. Bytes of later requests that
 *     arrive while a response is still in progress (delayed or streaming) are kept in a
 *     per-connection pending buffer and reading stops until the response is done.
 *   - Responses are assembled as a list of segments: small formatted pieces copied into a
 *     per-connection output buffer, and references to static data (prebuilt bodies, the
 *     filler pattern for large contents) that are never copied. A flush hands them all to
 *     one uv_try_write (writev); only what the kernel did not take is queued with
 *     uv_write, and only then is memory allocated.
 *   - Every buffer a connection uses grows to its high-water mark and is reused, so a
 *     keep-alive connection does no allocation per request in the steady state.
 *   - HTTPS (mock_tls.c) runs the same code over server/tls/tls.h's memory-BIO transformer.
 *
 * Threads: everything in a mock_conn_t and a mock_worker_t belongs to the worker thread.
 * mock_admin.c's functions may be called from any worker thread.
 *
 * Memory: the mock aborts with a message when malloc fails (mock_xrealloc); a test tool
 * that runs out of memory has nothing better to do.
 */
#ifndef LLMGATE_MOCK_H
#define LLMGATE_MOCK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <llhttp.h>

#include "server/tls/tls.h"

#define MOCK_READ_BUF     65536
#define MOCK_MAX_HEADER   65536      /* request line + headers, bytes (431 beyond) */
#define MOCK_MAX_HEADERS  128        /* header count (431 beyond) */
#define MOCK_MAX_BODY     (64 << 20) /* request body bytes (413 beyond) */
#define MOCK_MAX_DELAY_MS 600000
#define MOCK_MAX_CONTENT  (1L << 30) /* x-mock-content-bytes cap */
#define MOCK_MAX_CHUNKS   1000000
#define MOCK_TOOL_NAME    128 /* tool name bytes + 1 (x-mock-tool-call, tool_choice) */
#define MOCK_MAX_TOOLS    4   /* x-mock-tool-calls */

/* ---- growable byte buffer ---------------------------------------------------------- */

typedef struct mock_buf_s {
    char *p;
    size_t len, cap;
} mock_buf_t;

void *mock_xrealloc(void *p, size_t n);
void mock_buf_reserve(mock_buf_t *b, size_t extra);
void mock_buf_append(mock_buf_t *b, const void *p, size_t n);
void mock_buf_printf(mock_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as the inside of a JSON string (quotes not included). */
void mock_buf_json_escape(mock_buf_t *b, const char *s, size_t n);
void mock_buf_free(mock_buf_t *b);

/* ---- scripted faults --------------------------------------------------------------- */

/* Final status of a Responses-API response (x-mock-response-status), and the states a
 * stored one can be in. */
enum {
    MOCK_RS_UNSET = 0,
    MOCK_RS_COMPLETED,
    MOCK_RS_INCOMPLETE,
    MOCK_RS_FAILED,
    MOCK_RS_QUEUED, /* background, not retrieved yet */
    MOCK_RS_CANCELLED,
    MOCK_RS_IN_PROGRESS, /* only in the first events of a stream */
};

/* A fault set from request headers and/or a per-key script. Fields at their "unset" value
 * (see mock_fault_init) do not apply. */
typedef struct mock_fault_s {
    int status;              /* 0 = unset */
    int retry_after;         /* seconds, -1 = unset */
    int delay_ms;            /* -1 = unset */
    int chunk_delay_ms;      /* -1 = unset */
    int chunks;              /* -1 = unset */
    long content_bytes;      /* -1 = unset */
    long reset_after;        /* -1 = unset */
    int truncate;            /* -1 = unset, else 0/1 */
    int bad_chunking;        /* -1 = unset, else 0/1 */
    int close;               /* -1 = unset, else 0/1 */
    int response_status;     /* MOCK_RS_COMPLETED/INCOMPLETE/FAILED, MOCK_RS_UNSET = unset */
    int tool_calls;          /* 1..MOCK_MAX_TOOLS, -1 = unset */
    int tool_text;           /* -1 = unset, else 0/1 */
    char error_code[64];     /* "" = unset */
    char error_message[256]; /* "" = unset */
    char tool_name[128];     /* MOCK_TOOL_NAME; raw bytes, "" = unset (tool_choice may name one) */
} mock_fault_t;

void mock_fault_init(mock_fault_t *f);
/* Copy every field that is set in src over dst. */
void mock_fault_overlay(mock_fault_t *dst, const mock_fault_t *src);

/* ---- one parsed request -------------------------------------------------------------- */

typedef struct mock_hdr_s {
    uint32_t name_off, name_len, val_off, val_len; /* offsets into the header arena */
} mock_hdr_t;

enum { MOCK_KEY_NONE = 0, MOCK_KEY_BEARER, MOCK_KEY_X_API_KEY, MOCK_KEY_API_KEY, MOCK_KEY_GOOG };

/* Valid from mock_api_handle() until the connection's response is done. */
typedef struct mock_req_s {
    int method; /* llhttp_method_t */
    int http_minor;
    int keep_alive;
    int expect_continue;
    const char *path; /* URL without the query; the full URL is path[0..url_len) */
    size_t path_len, url_len;
    const char *hbase; /* header arena: URL, then header names and values */
    size_t hbase_len;
    const mock_hdr_t *hdrs;
    int nhdrs;
    const char *body;
    size_t body_len;
    const char *key; /* credential, NULL when none */
    size_t key_len;
    int key_from;         /* MOCK_KEY_* header the credential came from */
    mock_fault_t fault;   /* from x-mock-* headers */
    mock_buf_t *xheaders; /* extra response headers, "Name: value\r\n"... */
} mock_req_t;

/* ---- response state (owned by mock_api.c, stored in the connection) ------------------- */

typedef struct mock_conn_s mock_conn_t;

/* The generated text of a response, a run of pieces of the stream: piece i is word i % 5
 * of "Hello from the mock upstream." (with a space before every piece but piece 0), or
 * pat bytes of the "mock mock ..." filler (x-mock-content-bytes). Never copied as a whole:
 * mock_out_text() writes it where it is needed. */
typedef struct mock_text_s {
    int first, n; /* pieces first .. first + n - 1 */
    long pat;     /* >= 0: each piece is pat bytes of filler; < 0: words */
} mock_text_t;

/* The API a request speaks, from its path: error shapes and id headers follow it. */
enum { MOCK_FAM_OPENAI = 0, MOCK_FAM_RESPONSES, MOCK_FAM_ANTHROPIC, MOCK_FAM_GEMINI };

/* Write the next event of a stream; 1 once the last one is written. */
typedef int (*mock_emit_fn)(mock_conn_t *c, int bad);

typedef struct mock_resp_s {
    int kind;   /* MOCK_EP_* */
    int family; /* MOCK_FAM_* */
    int status; /* status line */
    int stream;
    int chunked;    /* chunk framing in use */
    int keep_alive; /* connection survives the response */
    const char *model;
    size_t model_len;
    long prompt_tokens;
    mock_fault_t fault;
    int n_inputs;    /* embeddings */
    int n_chunks;    /* content chunks */
    int index;       /* next content chunk */
    int phase;       /* streaming phase, see mock_api.c */
    int pieces;      /* SSE events written so far */
    int burst;       /* events written without returning to the loop */
    int truncate_at; /* x-mock-truncate: events before the stream stops */
    int tools;       /* chat and Messages: tool calls to answer with (fault.tool_name), 0 = none */
    int tool_text;   /* with tools: the text comes first */
    int tool_at;     /* streaming: the tool call being written */
    mock_emit_fn emit;
    uint64_t started; /* uv_now at request start, for --verbose */
} mock_resp_t;

/* A Responses-API response or an Anthropic message being answered (or stored, see
 * mock_store_put): what its JSON is rendered from. Strings are spans of JSON text (escapes
 * kept); while answering they point into the request body. */
typedef struct mock_rdesc_s {
    char id[64];     /* resp_... or (Anthropic) msg_... */
    char msg_id[64]; /* Responses: id of the output message item */
    const char *model;
    size_t model_len;
    const char *prev; /* previous_response_id, NULL = null */
    size_t prev_len;
    const char *instr; /* instructions: a raw JSON string, NULL = null */
    size_t instr_len;
    long max_output_tokens; /* -1 = null */
    long created_at;
    long input_tokens;
    int status;      /* MOCK_RS_* */
    int done_status; /* background: what it turns into once retrieved */
    int store, background;
    mock_text_t text;
} mock_rdesc_t;

/* ---- workers and connections ---------------------------------------------------------- */

typedef struct mock_worker_s {
    int id;
    int verbose;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_thread_t thread;
    int fd;             /* listening socket made by the main thread */
    tls_conf_t *tls;    /* shared, read-only; NULL = plain HTTP */
    mock_conn_t *conns; /* every open connection, for shutdown */
    mock_buf_t scratch; /* response building */
    mock_buf_t scratch2;
    uv_buf_t *iov; /* flush vector */
    size_t iov_cap;
    char rbuf[MOCK_READ_BUF]; /* socket reads (ciphertext in TLS mode) */
    char pbuf[MOCK_READ_BUF]; /* TLS plaintext */
} mock_worker_t;

/* How a response ends. */
enum { MOCK_DONE_KEEP = 0, MOCK_DONE_CLOSE = 1, MOCK_DONE_RESET = 2 };

typedef void (*mock_conn_fn)(mock_conn_t *c);

/* Output segment: a copy in the connection's output buffer (ref NULL, off) or a
 * reference to static memory (ref). */
typedef struct mock_seg_s {
    const char *ref;
    size_t off, len;
} mock_seg_t;

struct mock_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    mock_worker_t *w;
    mock_conn_t *next, *prev;
    llhttp_t parser;
    tls_conn_t *tls;
    int handshake_done;
    int handles_open; /* tcp + timer; freed when both closed */
    int closing;      /* uv_close issued */
    int shutting;     /* graceful close in progress */
    int reading;
    int peer_eof;    /* the client finished sending */
    int busy;        /* a request is being answered */
    int in_dispatch; /* mock_api_handle is on the stack */
    int done_how;    /* MOCK_DONE_* of the last response */
    int reset_on_drain;
    int writes; /* uv_write requests in flight */
    mock_conn_fn drain_cb;
    mock_conn_fn timer_cb;
    /* parser state */
    int err_status;    /* 413/431 chosen by a callback, 0 = 400 */
    int in_field;      /* header callbacks: a header name is being received */
    mock_buf_t harena; /* URL then header names and values */
    mock_hdr_t *hdrs;
    int nhdrs, hdrs_cap;
    size_t url_len;
    mock_buf_t body;
    mock_buf_t pending;  /* unparsed bytes held while busy */
    mock_buf_t pending2; /* the other half of a swap, so resuming never allocates */
    mock_buf_t xheaders;
    mock_req_t req;
    mock_resp_t resp;
    /* Responses and Messages only (left alone on the chat path) */
    mock_rdesc_t rdesc;
    char req_id[40]; /* x-request-id / request-id of the response */
    /* output */
    mock_buf_t obuf;
    mock_seg_t *segs;
    int nsegs, segs_cap;
    long budget; /* bytes of this response still allowed, -1 = unlimited */
};

/* mock_conn.c */
void mock_conn_accept_cb(uv_stream_t *server, int status);
void mock_conn_close(mock_conn_t *c);
/* Output of the current response. */
void mock_out(mock_conn_t *c, const void *p, size_t n);
void mock_out_ref(mock_conn_t *c, const void *p, size_t n); /* p must be static */
void mock_outf(mock_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mock_out_budget(mock_conn_t *c, long bytes); /* -1 = unlimited */
int mock_out_exhausted(const mock_conn_t *c);
void mock_flush(mock_conn_t *c);
size_t mock_conn_backlog(const mock_conn_t *c);
void mock_conn_after(mock_conn_t *c, uint64_t ms, mock_conn_fn fn);
void mock_conn_on_drain(mock_conn_t *c, mock_conn_fn fn);
/* The response is complete: keep the connection, close it gracefully, or reset it. */
void mock_conn_done(mock_conn_t *c, int how);

/* mock_tls.c: TLS glue of a connection. */
int mock_tls_start(mock_conn_t *c);
/* Ciphertext arrived: handshake, then plaintext to mock_conn_input. 0 or -1 (close). */
int mock_tls_on_read(mock_conn_t *c, const char *data, size_t len);
/* Plaintext still held by the TLS layer after a pause; 0 or -1. */
int mock_tls_drain(mock_conn_t *c);
/* Encrypt bufs and queue the ciphertext; 0 or -1. */
int mock_tls_write(mock_conn_t *c, const uv_buf_t *bufs, unsigned n);
void mock_tls_close_notify(mock_conn_t *c);
/* Socket write of an owned (malloc'd) buffer, used by the TLS path. 0 or -1. */
int mock_conn_write_owned(mock_conn_t *c, char *buf, size_t len);
/* Plaintext to the HTTP parser (from the socket or the TLS layer). 0, or -1 if closed. */
int mock_conn_input(mock_conn_t *c, const char *data, size_t len);

/* mock_api.c */
enum {
    MOCK_EP_NONE = 0,
    MOCK_EP_MODELS,
    MOCK_EP_CHAT,
    MOCK_EP_COMPLETIONS,
    MOCK_EP_EMBEDDINGS,
    MOCK_EP_RESPONSES,       /* POST /v1/responses */
    MOCK_EP_RESPONSE_GET,    /* GET /v1/responses/{id} */
    MOCK_EP_RESPONSE_DELETE, /* DELETE /v1/responses/{id} */
    MOCK_EP_RESPONSE_CANCEL, /* POST /v1/responses/{id}/cancel */
    MOCK_EP_RESPONSE_ITEMS,  /* GET /v1/responses/{id}/input_items */
    MOCK_EP_RESPONSE_TOKENS, /* POST /v1/responses/input_tokens */
    MOCK_EP_MESSAGES,        /* POST /v1/messages */
    MOCK_EP_MESSAGES_TOKENS, /* POST /v1/messages/count_tokens */
    MOCK_EP_GEMINI_MODELS,   /* GET /v1beta/models */
    MOCK_EP_GEMINI_GENERATE, /* POST /v1beta/models/{model}:generateContent */
    MOCK_EP_GEMINI_STREAM,   /* POST /v1beta/models/{model}:streamGenerateContent?alt=sse */
};
#define MOCK_DEFAULT_MODEL  "mock-model"
#define MOCK_DEFAULT_CHUNKS 8 /* streamed content events */
#define MOCK_DEFAULT_WORDS  5 /* words of the content of a JSON answer */

/* Answer one request. Must end with mock_conn_done(), now or later. */
void mock_api_handle(mock_conn_t *c, mock_req_t *r);
/* Error response in the shape of the request's API family, then done: OpenAI's
 * {"error":{message,type,code}} ("param" too on the Responses API), or on /v1/messages
 * Anthropic's {"type":"error","error":{type,message}} with the type chosen by status. */
void mock_api_error(mock_conn_t *c, int status, const char *type, const char *code, const char *msg,
                    int how);
/* The same with every field given: param (NULL = null) is used on the Responses API; on
 * /v1/messages type is the Anthropic error type as given and code and param are unused. */
void mock_api_error_full(mock_conn_t *c, int status, const char *type, const char *code,
                         const char *param, const char *msg);
/* A JSON response (admin API), then done. */
void mock_api_reply(mock_conn_t *c, int status, const char *body, size_t len);
void mock_api_init(void);
/* A request header's value (trailing blanks cut), NULL when absent. */
const char *mock_req_header(const mock_req_t *r, const char *name, size_t *len);
/* A query parameter's raw value, NULL when absent. */
const char *mock_req_query(const mock_req_t *r, const char *name, size_t *len);

/* mock_frame.c: response framing for the endpoint modules. Each honours the request's fault
 * set: truncation, bad chunk framing, reset after N bytes, Connection: close. */
int mock_resp_how(const mock_conn_t *c); /* MOCK_DONE_* at the end of a good response */
void mock_frame_init(void);              /* before the workers start */
/* A complete JSON response: pre, the text t (NULL = none), suf; then done. */
void mock_out_full(mock_conn_t *c, int status, const char *pre, size_t pre_len,
                   const mock_text_t *t, const char *suf, size_t suf_len);
/* A complete JSON response whose body is static memory (not copied); then done. */
void mock_out_static(mock_conn_t *c, int status, const char *body, size_t len);
/* One SSE event as one HTTP chunk: pre, the text t (NULL = none), suf; bad = an invalid
 * chunk-size line instead of the real one. */
void mock_out_event(mock_conn_t *c, const char *pre, size_t pre_len, const mock_text_t *t,
                    const char *suf, size_t suf_len, int bad);
/* Start an SSE stream: headers, then resp.emit() event after event (x-mock-chunk-delay-ms,
 * backpressure and fairness handled here) until it returns 1. resp.n_chunks is set from
 * x-mock-chunks first; lead is the number of events before the first content event, for
 * x-mock-truncate (which stops after lead + half of the content events), unless the
 * caller has set resp.truncate_at (> 0) itself. */
void mock_stream_start(mock_conn_t *c, mock_emit_fn emit, int lead);
size_t mock_text_len(const mock_text_t *t);
long mock_text_tokens(const mock_text_t *t); /* words (a filler piece of n bytes: (n+4)/5) */
void mock_out_text(mock_conn_t *c, const mock_text_t *t);
/* The text of a JSON answer (not streamed) under the request's faults. */
void mock_text_json(const mock_conn_t *c, mock_text_t *t);

/* Tool calls (chat and Messages): call i (< MOCK_MAX_TOOLS) of a response has the fixed
 * arguments {"city":C,"unit":"celsius"}, C = Paris, Rome, Berlin, Madrid; streamed, they
 * are MOCK_TOOL_PIECES pieces that split tokens. Each call counts MOCK_TOOL_TOKENS output
 * tokens. */
#define MOCK_TOOL_PIECES 4
#define MOCK_TOOL_TOKENS 10
/* Set resp.tools and resp.tool_text from the fault set; choice = the tool the body's
 * tool_choice names ("" = none), used when no x-mock-tool-call or script names one. */
void mock_tool_setup(mock_conn_t *c, const char *choice);
/* Append call i's arguments to b: raw JSON (piece < 0), or piece 0..MOCK_TOOL_PIECES-1
 * escaped as the inside of a JSON string; whole and escaped: piece MOCK_TOOL_PIECES. */
void mock_tool_args(mock_buf_t *b, int i, int piece);
/* Append the tool's name, escaped as the inside of a JSON string. */
void mock_tool_name(mock_buf_t *b, const mock_conn_t *c);

/* mock_responses.c: the OpenAI Responses API. */
/* Check and scan a request before any delay; 0, or -1 when an error has been answered. */
int mock_responses_prepare(mock_conn_t *c, mock_req_t *r);
void mock_responses_respond(mock_conn_t *c);

/* mock_messages.c: the Anthropic Messages API. */
int mock_messages_prepare(mock_conn_t *c, mock_req_t *r);
void mock_messages_respond(mock_conn_t *c);

/* mock_gemini.c: the Google Gemini API (v1beta). */
/* The endpoint of a /v1beta path (*want its method, *model the path's model). */
int mock_gemini_endpoint(mock_req_t *r, int *want, const char **model, size_t *model_len);
int mock_gemini_prepare(mock_conn_t *c, mock_req_t *r);
void mock_gemini_respond(mock_conn_t *c);
/* An error in Google's shape (reason: an ErrorInfo reason, NULL or "" for none), then done. */
void mock_gemini_error(mock_conn_t *c, int status, const char *reason, const char *msg);
void mock_gemini_scripted_error(mock_conn_t *c);

/* mock_store.c: the Responses API's stored responses, shared by all threads behind one
 * mutex. At most MOCK_STORE_MAX responses and MOCK_STORE_BYTES bytes; the oldest go first.
 * A response is visible only to the key that created it. */
#define MOCK_STORE_MAX 4096 /* a power of two */
#ifndef MOCK_STORE_BYTES
#define MOCK_STORE_BYTES (256L << 20) /* -DMOCK_STORE_BYTES=N to try eviction by size */
#endif
/* A stored response: d's strings and the items are owned by the store. */
typedef struct mock_stored_s {
    mock_rdesc_t d;
    const char *items; /* input items: records, see mock_json_scan_rbody */
    size_t items_len;
    int nitems;
} mock_stored_t;
enum { MOCK_STORE_KEEP = 0, MOCK_STORE_DROP = 1 };
typedef int (*mock_store_fn)(mock_stored_t *e, void *arg);
int mock_store_init(void);
void mock_store_free(void);
/* Remember d (strings copied) with its items blob for key. */
void mock_store_put(const char *key, size_t key_len, const mock_rdesc_t *d, const char *items,
                    size_t items_len, int nitems);
/* Call fn on the response id of key under the store's lock (fn may change e->d.status; it
 * must not block); fn returning MOCK_STORE_DROP deletes it. fn's result, or -1 when key has
 * no such response. fn NULL: just look. */
int mock_store_visit(const char *key, size_t key_len, const char *id, size_t id_len,
                     mock_store_fn fn, void *arg);
void mock_store_clear(void); /* /_mock/reset */

/* mock_admin.c: per-key scripts, statistics and the last request, shared by threads. */
int mock_admin_init(int nthreads);
void mock_admin_free(void);
void mock_admin_conn_opened(void);
/* Count response bytes taken by the kernel (stats: bytes_sent). Any thread. */
void mock_admin_bytes_sent(size_t n);
void mock_admin_conn_closed(void);
/* Record a non-admin request on worker wid's statistics and as the last request. */
void mock_admin_record(int wid, const mock_req_t *r);
/* Apply the next script queued for key to f and xheaders; 1 if one applied, else 0. */
int mock_admin_script_take(const char *key, size_t key_len, mock_fault_t *f, mock_buf_t *xheaders);
/* Serve /_mock/... ; done is called. */
void mock_admin_handle(mock_conn_t *c, mock_req_t *r);

/* mock_util.c: ids. prefix, then nhex hex digits (at most 64), NUL-terminated; unique in
 * the process (a counter under a bijective mix), random-looking, different per run. */
void mock_id_init(void);
void mock_id(char *buf, const char *prefix, int nhex);

/* mock_json.c: the only user of jsmn. */
typedef struct mock_scan_s {
    const char *model; /* raw JSON string contents (escapes kept), NULL when absent */
    size_t model_len;
    int stream;
    int n_inputs;                     /* embeddings: number of inputs */
    char tool_choice[MOCK_TOOL_NAME]; /* {"type":"function","function":{"name":X}}: X, or "" */
} mock_scan_t;
/* 0, or -1 when the body is not a JSON object. */
int mock_json_scan_request(const char *body, size_t len, mock_scan_t *out);

/* The fields of a Responses or Messages request body; spans point into the body. */
typedef struct mock_rscan_s {
    const char *model; /* JSON string contents (escapes kept), NULL when absent */
    size_t model_len;
    int stream;
    int input_type;   /* 0 absent/null, 's' string, 'a' array, 'x' anything else */
    const char *prev; /* previous_response_id's contents, NULL when absent or not a string */
    size_t prev_len;
    const char *instr; /* instructions as raw JSON when a string, else NULL */
    size_t instr_len;
    long max_output_tokens; /* -1 when absent */
    int store;              /* default 1 */
    int background;
    int has_max_tokens;               /* Messages: an integer "max_tokens" */
    char tool_choice[MOCK_TOOL_NAME]; /* Messages: {"type":"tool","name":X}: X, or "" */
} mock_rscan_t;
/* Scan body. With items not NULL, the input items are appended to it as records: the
 * JSON's length (uint32_t, host order, unaligned), the id's length (one byte), the id, the
 * JSON. A string input becomes one user message with one input_text part; array elements
 * are kept as given, with an "id" (msg_...) added to objects that have none; nitems counts
 * them. 0, or -1 when the body is not a JSON object. */
int mock_json_scan_rbody(const char *body, size_t len, mock_rscan_t *out, mock_buf_t *items,
                         int *nitems);

typedef struct mock_script_spec_s {
    mock_buf_t key; /* unescaped */
    mock_fault_t fault;
    long count;
    mock_buf_t headers; /* "Name: value\r\n"... */
} mock_script_spec_t;
/* Release the calling thread's token buffer (worker exit). */
void mock_json_thread_free(void);
/* Parse a /_mock/script body. 0, or -1 with err set. */
int mock_json_parse_script(const char *body, size_t len, mock_script_spec_t *out, char *err,
                           size_t errlen);

#endif
