/* fuzz_request.c - bytes from a client in, what llmgate would send out.
 *
 * The harness drives a strict llhttp request parser with the callbacks and limits of
 * server/http/conn.c (head spans, header count and size, URL and body limits, obs-fold
 * refusal, one request at a time with pause/resume and pending bytes), fed in reads of a
 * size taken from the first input byte. Each complete request goes the proxy's way:
 * client authentication (server/http/auth.c), the body scan, the model splice, the upstream
 * request head (server/upstream/rewrite.c) and a response head; errors become OpenAI-shaped bodies.
 *
 * Besides the sanitizers, it checks what must hold for any input (abort on violation):
 *   - the upstream head + body parse as exactly one strict HTTP request, carry exactly
 *     one credential (ours), none of the client's, and the body length it announces;
 *   - the spliced body scans again, to the upstream model name, with the same stream and
 *     max_tokens, and every byte outside the model token is the client's;
 *   - an authenticated request presented the one key that is configured;
 *   - every error body is one JSON object; every response head parses.
 *
 * The callbacks are a copy of server/http/conn.c's and must follow it when it changes (see
 * tests/fuzz/README.md for the refactor that would make them shared).
 */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include <mbedtls/sha256.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llhttp.h"
#include "server/http/auth.h"
#include "server/common/buf.h"
#include "server/common/errors.h"
#include "server/upstream/rewrite.h"
#include "server/api/scan.h"

#define PENDING_CAP (256 * 1024)

/* limits: small, so that short inputs reach every one of them */
static const cfg_limits_t lim = {
    .max_header_bytes = 2048,
    .max_headers = 24,
    .max_body_bytes = 8192,
    .max_url_bytes = 512,
};

typedef struct span_s {
    size_t name_off, name_len, value_off, value_len;
} span_t;

typedef struct freq_s {
    size_t url_off, url_len;
    buf_t head, body;
    span_t spans[64];
    size_t nhdrs;
    int method, http11, keep_alive;
} freq_t;

typedef struct fconn_s {
    llhttp_t parser;
    freq_t *req;
    size_t head_bytes;
    int err_status;
    int in_header_value, value_cut_inside;
    const char *exec_end;
} fconn_t;

static llhttp_settings_t settings;
static cfg_t cfg;
static cfg_client_t clients[2];
static cfg_provider_t prov;
static cfg_key_t key;
static cfg_header_t prov_hdr = {"x-extra", "1"};
static const char client_key[] = "sk-fuzz-client-1";

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_request: invariant violated: %s\n", what);
        abort();
    }
}

static int reject(fconn_t *c, int status)
{
    c->err_status = status;
    return -1;
}

static int on_message_begin_cb(llhttp_t *p)
{
    fconn_t *c = p->data;
    freq_t *r = calloc(1, sizeof(*r));

    if (!r)
        return reject(c, 500);
    c->req = r;
    c->head_bytes = 0;
    c->in_header_value = 0;
    return 0;
}

static int count_head(fconn_t *c, size_t len)
{
    c->head_bytes += len;
    return c->head_bytes > lim.max_header_bytes ? reject(c, 431) : 0;
}

static int on_url_cb(llhttp_t *p, const char *at, size_t len)
{
    fconn_t *c = p->data;
    freq_t *r = c->req;

    if (r->url_len == 0)
        r->url_off = r->head.len;
    r->url_len += len;
    if (r->url_len > lim.max_url_bytes)
        return reject(c, 414);
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500);
    return count_head(c, len);
}

static int on_header_field_cb(llhttp_t *p, const char *at, size_t len)
{
    fconn_t *c = p->data;
    freq_t *r = c->req;
    span_t *s;

    if (r->nhdrs == 0 || c->in_header_value) {
        if (r->nhdrs >= lim.max_headers)
            return reject(c, 431);
        s = &r->spans[r->nhdrs++];
        memset(s, 0, sizeof(*s));
        s->name_off = s->value_off = r->head.len;
        c->in_header_value = 0;
    }
    s = &r->spans[r->nhdrs - 1];
    s->name_len += len;
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500);
    return count_head(c, len);
}

static int on_header_value_cb(llhttp_t *p, const char *at, size_t len)
{
    fconn_t *c = p->data;
    freq_t *r = c->req;
    span_t *s = &r->spans[r->nhdrs - 1];

    if (!c->in_header_value) {
        s->value_off = r->head.len;
        c->in_header_value = 1;
    } else if (c->value_cut_inside) {
        return reject(c, 400); /* obs-fold */
    }
    c->value_cut_inside = at + len != c->exec_end;
    s->value_len += len;
    if (buf_append(&r->head, at, len) != 0)
        return reject(c, 500);
    return count_head(c, len);
}

static int on_headers_complete_cb(llhttp_t *p)
{
    fconn_t *c = p->data;
    freq_t *r = c->req;

    r->method = llhttp_get_method(p);
    r->http11 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > lim.max_body_bytes)
        return reject(c, 413);
    return 0;
}

static int on_body_cb(llhttp_t *p, const char *at, size_t len)
{
    fconn_t *c = p->data;
    freq_t *r = c->req;

    if (r->body.len + len > lim.max_body_bytes)
        return reject(c, 413);
    if (buf_append(&r->body, at, len) != 0)
        return reject(c, 500);
    return 0;
}

static int on_message_complete_cb(llhttp_t *p)
{
    fconn_t *c = p->data;

    c->req->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static void freq_free(freq_t *r)
{
    if (!r)
        return;
    buf_free(&r->head);
    buf_free(&r->body);
    free(r);
}

/* ---- checks on what goes out ---------------------------------------------------------- */

static void check_json_object(const char *s, size_t n)
{
    jsmn_parser p;
    jsmntok_t t[64];

    jsmn_init(&p);
    int k = jsmn_parse(&p, s, n, t, 64);
    check(k > 0 && t[0].type == JSMN_OBJECT && (size_t)t[0].end == n, "error body is JSON");
}

static void error_body(int status, const char *msg)
{
    char body[1024];
    size_t n = error_json(body, sizeof(body), msg, error_type_for(status), NULL, NULL);

    check(n < sizeof(body) && strlen(body) == n, "error body length");
    check_json_object(body, n);
}

/* ---- what a provider's last-key-wins JSON parser reads of the body ------------------- */

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : 0);
    }
    return v;
}

/* A member name decoded as Python's or Go's parser would (code points past ASCII become a
 * marker byte: they can never equal an ASCII name). Written apart from scan.c on purpose. */
static size_t ref_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[++i];
            if (e == 'u' && i + 4 < n) {
                int v = hex4(s + i + 1);
                i += 4;
                c = v < 0x80 ? (char)v : (char)0xff;
            } else {
                c = e == 'n'   ? '\n'
                    : e == 't' ? '\t'
                    : e == 'r' ? '\r'
                    : e == 'b' ? '\b'
                    : e == 'f' ? '\f'
                               : e;
            }
        }
        out[o++] = c;
    }
    return o;
}

typedef struct ref_s {
    int model, stream, max, options;
    int model_value_start; /* of the last "model" member's value token */
} ref_t;

static int ref_name_is(const char *d, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(d, want, n) == 0;
}

/* Counts of the members the gateway must agree on, by decoded name; -1 if the body does not
 * parse within a small token budget (then nothing is checked). */
static int ref_members(const char *body, size_t len, ref_t *r)
{
    static jsmntok_t t[4096];
    jsmn_parser p;
    int n, i = 1;

    memset(r, 0, sizeof(*r));
    jsmn_init(&p);
    n = jsmn_parse(&p, body, len, t, 4096);
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return -1;
    while (i + 1 < n && t[i].start < t[0].end) {
        char d[64];
        size_t dn = ref_decode(body + t[i].start, (size_t)(t[i].end - t[i].start), d, sizeof(d));
        if (ref_name_is(d, dn, "model")) {
            r->model++;
            r->model_value_start = t[i + 1].start;
        }
        r->stream += ref_name_is(d, dn, "stream");
        r->max += ref_name_is(d, dn, "max_tokens") || ref_name_is(d, dn, "max_completion_tokens");
        r->options += ref_name_is(d, dn, "stream_options");
        /* skip the value's subtree */
        int end = t[i + 1].end;
        i += 2;
        while (i < n && t[i].start < end)
            i++;
    }
    return 0;
}

typedef struct out_s {
    int messages, complete, creds, ours;
    size_t body_len;
    int in_value;
    char name[32];
    size_t name_len;
    buf_t value;
} out_t;

static int out_field_cb(llhttp_t *p, const char *at, size_t len)
{
    out_t *o = p->data;
    if (o->in_value) {
        o->in_value = 0;
        o->name_len = 0;
        o->value.len = 0;
    }
    for (size_t i = 0; i < len && o->name_len < sizeof(o->name) - 1; i++)
        o->name[o->name_len++] = at[i];
    o->name[o->name_len] = '\0';
    return 0;
}

static int out_value_cb(llhttp_t *p, const char *at, size_t len)
{
    out_t *o = p->data;
    o->in_value = 1;
    return buf_append(&o->value, at, len);
}

static int out_value_done_cb(llhttp_t *p)
{
    out_t *o = p->data;
    if (!strcasecmp(o->name, "authorization") || !strcasecmp(o->name, "x-api-key") ||
        !strcasecmp(o->name, "api-key")) {
        o->creds++;
        if (o->value.len == 27 && memcmp(o->value.data, "Bearer sk-upstream-fuzz-key", 27) == 0)
            o->ours++;
    }
    o->in_value = 0;
    o->name_len = 0;
    o->value.len = 0;
    return 0;
}

static int out_body_cb(llhttp_t *p, const char *at, size_t len)
{
    out_t *o = p->data;
    (void)at;
    o->body_len += len;
    return 0;
}

static int out_begin_cb(llhttp_t *p)
{
    ((out_t *)p->data)->messages++;
    return 0;
}

static int out_complete_cb(llhttp_t *p)
{
    ((out_t *)p->data)->complete++;
    return 0;
}

static void check_upstream(const buf_t *head, const char *body, size_t body_len)
{
    llhttp_settings_t s;
    llhttp_t p;
    out_t o = {0};

    llhttp_settings_init(&s);
    s.on_message_begin = out_begin_cb;
    s.on_header_field = out_field_cb;
    s.on_header_value = out_value_cb;
    s.on_header_value_complete = out_value_done_cb;
    s.on_body = out_body_cb;
    s.on_message_complete = out_complete_cb;
    llhttp_init(&p, HTTP_REQUEST, &s);
    p.data = &o;
    enum llhttp_errno e = llhttp_execute(&p, head->data, head->len);
    if (e == HPE_OK && body_len)
        e = llhttp_execute(&p, body, body_len);
    check(e == HPE_OK, "upstream request parses strictly");
    check(o.messages == 1 && o.complete == 1, "upstream request is exactly one message");
    check(o.body_len == body_len, "upstream Content-Length matches the body");
    check(o.creds == 1 && o.ours == 1, "upstream carries our credential and no other");
    buf_free(&o.value);
}

static void check_response_head(const buf_t *head)
{
    llhttp_settings_t s;
    llhttp_t p;
    out_t o = {0};

    llhttp_settings_init(&s);
    s.on_message_begin = out_begin_cb;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &o;
    enum llhttp_errno e = llhttp_execute(&p, head->data, head->len);
    check(e == HPE_OK && o.messages == 1, "response head parses");
}

/* ---- one complete request: what proxy.c does with it --------------------------------- */

static void serve(freq_t *r, unsigned salt)
{
    http_hdr_t hdrs[64];
    const cfg_client_t *client = NULL;
    scan_result_t sr, sr2;
    const char *body = r->body.data ? r->body.data : "";
    char *spliced = NULL;
    size_t spliced_len = 0;
    buf_t up = {0}, resp = {0};
    int chunked;

    for (size_t i = 0; i < r->nhdrs; i++) {
        hdrs[i].name = r->head.data + r->spans[i].name_off;
        hdrs[i].name_len = r->spans[i].name_len;
        hdrs[i].value = r->head.data + r->spans[i].value_off;
        hdrs[i].value_len = r->spans[i].value_len;
    }
    int a = auth_check(&cfg, hdrs, r->nhdrs, &client);
    check(a == 0 || a == AUTH_EMISSING || a == AUTH_EUNKNOWN, "auth result");
    check((a == 0) == (client != NULL), "a client exactly when authenticated");
    if (a == 0) {
        size_t vlen;
        const char *v = hdr_find(hdrs, r->nhdrs, "authorization", &vlen);
        if (!v)
            v = hdr_find(hdrs, r->nhdrs, "x-api-key", &vlen);
        check(v && client == &clients[1] &&
                  memmem(v, vlen, client_key, sizeof(client_key) - 1) != NULL,
              "authenticated only by the configured key");
    } else {
        error_body(401, auth_message(a));
    }

    int rc = scan_body(body, r->body.len, NULL, &sr);
    if (rc != 0) {
        error_body(400, scan_strerror(rc, &sr));
        goto respond;
    }
    {
        /* the provider reads what the gateway judged: one model (the one scanned), at most
         * one stream, max_tokens and stream_options, whatever escapes spell their names */
        ref_t ref;
        if (ref_members(body, r->body.len, &ref) == 0)
            check(ref.model == 1 && (size_t)ref.model_value_start == sr.model_start + 1 &&
                      ref.stream <= 1 && ref.max <= 1 && ref.options <= 1 &&
                      ref.options == sr.has_stream_options,
                  "the provider reads the members the gateway judged");
    }
    check(sr.model_len == strlen(sr.model) && sr.model_start < sr.model_end &&
              sr.model_end <= r->body.len && body[sr.model_start] == '"' &&
              body[sr.model_end - 1] == '"',
          "model token inside the body");
    const char *up_model = (salt & 1) ? "up/model \"q\"\\\x01" : "m";
    if (scan_splice_model(body, r->body.len, &sr, up_model, &spliced, &spliced_len) != 0)
        goto respond;
    check(memcmp(spliced, body, sr.model_start) == 0 &&
              spliced_len - (r->body.len - sr.model_end) >= sr.model_start &&
              memcmp(spliced + spliced_len - (r->body.len - sr.model_end), body + sr.model_end,
                     r->body.len - sr.model_end) == 0,
          "splice keeps every other byte");
    rc = scan_body(spliced, spliced_len, NULL, &sr2);
    /* a splice may push a huge body past jsmn's stack tokens, never change its meaning */
    check(rc == 0 || rc == SCAN_ENOMEM, "spliced body scans");
    if (rc == 0)
        check(strcmp(sr2.model, up_model) == 0 && sr2.stream == sr.stream &&
                  sr2.max_tokens == sr.max_tokens,
              "spliced body means the same but the model");
    prov.auth = CFG_AUTH_BEARER;
    if (rewrite_request_head(&up, "POST", "/chat/completions", 17, hdrs, r->nhdrs, &prov, &key,
                             spliced_len, NULL) == 0)
        check_upstream(&up, spliced, spliced_len);
respond:
    if (rewrite_response_head(&resp, 200 + (int)(salt % 400), hdrs, r->nhdrs,
                              (salt & 2) ? -1 : (long long)r->body.len,
                              (r->http11 ? RW_HTTP11 : 0) | (r->keep_alive ? RW_KEEP_ALIVE : 0) |
                                  (salt & 4 ? RW_OWN_RATELIMIT : 0),
                              "x-llmgate-key: k1\r\n", &chunked) == 0)
        check_response_head(&resp);
    free(spliced);
    buf_free(&up);
    buf_free(&resp);
}

/* ---- the connection: conn.c's conn_process over reads of a fuzzed size ------------------ */

static void setup(void)
{
    static char *models[] = {"m1"};
    static char *bad_model = "m2";

    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin_cb;
    settings.on_url = on_url_cb;
    settings.on_header_field = on_header_field_cb;
    settings.on_header_value = on_header_value_cb;
    settings.on_headers_complete = on_headers_complete_cb;
    settings.on_body = on_body_cb;
    settings.on_message_complete = on_message_complete_cb;

    clients[0].name = "other";
    memset(clients[0].digest, 0xab, 32);
    clients[0].has_digest = 1;
    clients[0].models = &bad_model;
    clients[0].models_count = 1;
    clients[1].name = "app";
    mbedtls_sha256_ret((const unsigned char *)client_key, sizeof(client_key) - 1, clients[1].digest,
                       0);
    clients[1].has_digest = 1;
    clients[1].models = models;
    clients[1].models_count = 1;
    cfg.client_keys = clients;
    cfg.client_keys_count = 2;

    prov.name = "p";
    prov.base_path = "/v1";
    prov.host_header = "up.example";
    prov.headers = &prov_hdr;
    prov.headers_count = 1;
    key.name = "k1";
    key.secret = "sk-upstream-fuzz-key";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    fconn_t c;
    buf_t pending = {0};
    size_t off = 1, chunk;
    unsigned salt = 0, served = 0;
    int done = 0;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    chunk = data[0] & 0x3f; /* 0: the whole input in one read */
    salt = data[0] >> 6;
    memset(&c, 0, sizeof(c));
    llhttp_init(&c.parser, HTTP_REQUEST, &settings);
    c.parser.data = &c;
    while (off < size && !done) {
        size_t n = chunk ? chunk : size - off;
        if (n > size - off)
            n = size - off;
        if (buf_append(&pending, data + off, n) != 0 || pending.len > PENDING_CAP)
            break;
        off += n;
        /* conn_process */
        while (pending.len > 0) {
            c.exec_end = pending.data + pending.len;
            enum llhttp_errno e = llhttp_execute(&c.parser, pending.data, pending.len);
            if (e == HPE_OK) {
                buf_reset(&pending);
                break;
            }
            if (e == HPE_PAUSED) {
                size_t used = (size_t)(llhttp_get_error_pos(&c.parser) - pending.data);
                check(used <= pending.len, "pause position inside the input");
                memmove(pending.data, pending.data + used, pending.len - used);
                pending.len -= used;
                llhttp_resume(&c.parser);
                serve(c.req, salt + served++);
                /* conn_request_done: a request that ends the connection ends the parsing */
                done = !c.req->keep_alive;
                freq_free(c.req);
                c.req = NULL;
                if (done)
                    break;
                continue;
            }
            error_body(c.err_status ? c.err_status : 400,
                       c.err_status ? "refused" : llhttp_get_error_reason(&c.parser));
            done = 1;
            break;
        }
    }
    freq_free(c.req);
    buf_free(&pending);
    return 0;
}
