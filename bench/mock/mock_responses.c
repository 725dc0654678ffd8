/* mock_responses.c - the fake OpenAI Responses API: POST /v1/responses (JSON or SSE),
 * GET and DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel,
 * GET /v1/responses/{id}/input_items and POST /v1/responses/input_tokens.
 *
 * A response is rendered from a mock_rdesc_t (c->rdesc while answering, a stored copy
 * later) in two parts around its output text, which is never copied (mock_text_t). A
 * stream is the event sequence api.openai.com sends for one text message:
 *
 *   response.created, response.in_progress        (the response, in_progress, usage null)
 *   response.output_item.added, response.content_part.added
 *   response.output_text.delta                    (one per content chunk)
 *   response.output_text.done, response.content_part.done, response.output_item.done
 *   response.completed | response.incomplete | response.failed   (the full response)
 *
 * with named SSE events, a sequence_number counting from 0, and no [DONE].
 *
 * Created responses are stored (mock_store.c) when the request is accepted, before any
 * x-mock-delay-ms, unless "store": false or the request is to fail with x-mock-status.
 * Background responses ("background": true, not streamed) are answered as "queued" and
 * become complete the first time they are retrieved, unless cancelled first.
 */

#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIT(s) s, sizeof(s) - 1

#define ITEMS_LIMIT_DEFAULT 20
#define ITEMS_LIMIT_MAX     100

enum {
    R_CREATED,
    R_IN_PROGRESS,
    R_ITEM_ADDED,
    R_PART_ADDED,
    R_DELTA,
    R_TEXT_DONE,
    R_PART_DONE,
    R_ITEM_DONE,
    R_FINAL,
};

#define OUTPUT_TEXT_PART "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\""

static const char *status_name(int st)
{
    switch (st) {
    case MOCK_RS_INCOMPLETE:
        return "incomplete";
    case MOCK_RS_FAILED:
        return "failed";
    case MOCK_RS_QUEUED:
        return "queued";
    case MOCK_RS_CANCELLED:
        return "cancelled";
    case MOCK_RS_IN_PROGRESS:
        return "in_progress";
    default:
        return "completed";
    }
}

static int has_output(int st)
{
    return st == MOCK_RS_COMPLETED || st == MOCK_RS_INCOMPLETE || st == MOCK_RS_FAILED;
}

/* The output message item up to its text; its status follows the response's. */
static void item_head(mock_buf_t *b, const mock_rdesc_t *d, int st)
{
    mock_buf_printf(b,
                    "{\"id\":\"%s\",\"type\":\"message\",\"status\":\"%s\",\"content\":["
                    "%s",
                    d->msg_id,
                    st == MOCK_RS_INCOMPLETE    ? "incomplete"
                    : st == MOCK_RS_IN_PROGRESS ? "in_progress"
                                                : "completed",
                    st == MOCK_RS_IN_PROGRESS ? "" : OUTPUT_TEXT_PART);
}

static void item_tail(mock_buf_t *b, int st)
{
    if (st == MOCK_RS_IN_PROGRESS)
        mock_buf_append(b, LIT("],\"role\":\"assistant\"}"));
    else
        mock_buf_append(b, LIT("\"}],\"role\":\"assistant\"}"));
}

/* The response object of d in state st, appended: up to its output text to pre, the rest
 * to suf. 1 when it has an output text (d->text) between the two, else 0 (suf untouched). */
static int render(mock_buf_t *pre, mock_buf_t *suf, const mock_rdesc_t *d, int st)
{
    int out = has_output(st);
    mock_buf_t *b = pre;
    mock_buf_printf(pre,
                    "{\"id\":\"%s\",\"object\":\"response\",\"created_at\":%ld,\"status\":\"%s\","
                    "\"background\":%s,",
                    d->id, d->created_at, status_name(st), d->background ? "true" : "false");
    if (st == MOCK_RS_COMPLETED)
        mock_buf_printf(pre, "\"completed_at\":%ld,", d->created_at);
    else
        mock_buf_append(pre, LIT("\"completed_at\":null,"));
    if (st == MOCK_RS_FAILED)
        mock_buf_append(pre, LIT("\"error\":{\"code\":\"server_error\",\"message\":\"The server "
                                 "had an error while processing your request (mock).\"},"));
    else
        mock_buf_append(pre, LIT("\"error\":null,"));
    if (st == MOCK_RS_INCOMPLETE)
        mock_buf_append(pre, LIT("\"incomplete_details\":{\"reason\":\"max_output_tokens\"},"));
    else
        mock_buf_append(pre, LIT("\"incomplete_details\":null,"));
    mock_buf_append(pre, LIT("\"instructions\":"));
    if (d->instr)
        mock_buf_append(pre, d->instr, d->instr_len);
    else
        mock_buf_append(pre, LIT("null"));
    if (d->max_output_tokens >= 0)
        mock_buf_printf(pre, ",\"max_output_tokens\":%ld", d->max_output_tokens);
    else
        mock_buf_append(pre, LIT(",\"max_output_tokens\":null"));
    mock_buf_printf(pre, ",\"max_tool_calls\":null,\"model\":\"%.*s\",\"output\":[",
                    (int)d->model_len, d->model);
    if (out) {
        item_head(pre, d, st);
        b = suf; /* the text goes between */
        item_tail(b, st);
    }
    mock_buf_append(b, LIT("],\"parallel_tool_calls\":true,\"previous_response_id\":"));
    if (d->prev)
        mock_buf_printf(b, "\"%.*s\"", (int)d->prev_len, d->prev);
    else
        mock_buf_append(b, LIT("null"));
    mock_buf_printf(b,
                    ",\"prompt_cache_key\":null,\"reasoning\":{\"effort\":null,\"summary\":null},"
                    "\"safety_identifier\":null,\"service_tier\":\"default\",\"store\":%s,"
                    "\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":"
                    "\"medium\"},\"tool_choice\":\"auto\",\"tools\":[],\"top_logprobs\":0,"
                    "\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":",
                    d->store ? "true" : "false");
    if (out) {
        long o = mock_text_tokens(&d->text);
        mock_buf_printf(b,
                        "{\"input_tokens\":%ld,\"input_tokens_details\":{\"cached_tokens\":0},"
                        "\"output_tokens\":%ld,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                        "\"total_tokens\":%ld}",
                        d->input_tokens, o, d->input_tokens + o);
    } else {
        mock_buf_append(b, LIT("null"));
    }
    mock_buf_append(b, LIT(",\"user\":null,\"metadata\":{}}"));
    return out;
}

/* ---- the stream ------------------------------------------------------------------------- */

/* "event: NAME\ndata: {"type":"NAME","sequence_number":N," */
static void event_head(mock_buf_t *b, const char *name, int seq)
{
    mock_buf_printf(b, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%d,", name, name,
                    seq);
}

/* The item_id, output_index and content_index of the text part's events. */
static void part_ref(mock_buf_t *b, const mock_rdesc_t *d)
{
    mock_buf_printf(b, "\"item_id\":\"%s\",\"output_index\":0,\"content_index\":0,", d->msg_id);
}

static int responses_emit(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    const mock_rdesc_t *d = &c->rdesc;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    const mock_text_t *all = &d->text;
    mock_text_t piece = {s->index, 1, d->text.pat};
    int seq = s->pieces, phase = s->phase;
    a->len = b->len = 0;
    s->phase++;
    switch (phase) {
    case R_CREATED:
    case R_IN_PROGRESS:
        event_head(a, phase == R_CREATED ? "response.created" : "response.in_progress", seq);
        mock_buf_append(a, LIT("\"response\":"));
        render(a, b, d, MOCK_RS_IN_PROGRESS);
        mock_buf_append(a, LIT("}\n\n"));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        return 0;
    case R_ITEM_ADDED:
        event_head(a, "response.output_item.added", seq);
        mock_buf_append(a, LIT("\"output_index\":0,\"item\":"));
        item_head(a, d, MOCK_RS_IN_PROGRESS);
        item_tail(a, MOCK_RS_IN_PROGRESS);
        mock_buf_append(a, LIT("}\n\n"));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        return 0;
    case R_PART_ADDED:
        event_head(a, "response.content_part.added", seq);
        part_ref(a, d);
        mock_buf_append(a, LIT("\"part\":" OUTPUT_TEXT_PART "\"}}\n\n"));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        if (s->n_chunks == 0)
            s->phase = R_TEXT_DONE;
        return 0;
    case R_DELTA:
        event_head(a, "response.output_text.delta", seq);
        part_ref(a, d);
        mock_buf_append(a, LIT("\"logprobs\":[],\"delta\":\""));
        mock_out_event(c, a->p, a->len, &piece, LIT("\"}\n\n"), bad);
        if (++s->index < s->n_chunks)
            s->phase = R_DELTA;
        return 0;
    case R_TEXT_DONE:
        event_head(a, "response.output_text.done", seq);
        part_ref(a, d);
        mock_buf_append(a, LIT("\"logprobs\":[],\"text\":\""));
        mock_out_event(c, a->p, a->len, all, LIT("\"}\n\n"), bad);
        return 0;
    case R_PART_DONE:
        event_head(a, "response.content_part.done", seq);
        part_ref(a, d);
        mock_buf_append(a, LIT("\"part\":" OUTPUT_TEXT_PART));
        mock_out_event(c, a->p, a->len, all, LIT("\"}}\n\n"), bad);
        return 0;
    case R_ITEM_DONE:
        event_head(a, "response.output_item.done", seq);
        mock_buf_append(a, LIT("\"output_index\":0,\"item\":"));
        item_head(a, d, d->status);
        item_tail(b, d->status);
        mock_buf_append(b, LIT("}\n\n"));
        mock_out_event(c, a->p, a->len, all, b->p, b->len, bad);
        return 0;
    default:
        event_head(a,
                   d->status == MOCK_RS_INCOMPLETE ? "response.incomplete"
                   : d->status == MOCK_RS_FAILED   ? "response.failed"
                                                   : "response.completed",
                   seq);
        mock_buf_append(a, LIT("\"response\":"));
        render(a, b, d, d->status);
        mock_buf_append(b, LIT("}\n\n"));
        mock_out_event(c, a->p, a->len, all, b->p, b->len, bad);
        return 1;
    }
}

/* ---- POST /v1/responses ------------------------------------------------------------------ */

static int prepare_create(mock_conn_t *c, mock_req_t *r)
{
    mock_resp_t *s = &c->resp;
    mock_rdesc_t *d = &c->rdesc;
    mock_buf_t *items = &c->w->scratch2; /* mock_api_error uses scratch */
    mock_rscan_t sc;
    char msg[200];
    int nitems = 0;
    items->len = 0;
    if (mock_json_scan_rbody(r->body, r->body_len, &sc, items, &nitems) != 0) {
        mock_api_error(c, 400, "invalid_request_error", NULL,
                       "We could not parse the JSON body of your request: expected a JSON object.",
                       MOCK_DONE_KEEP);
        return -1;
    }
    if (sc.input_type == 'x') {
        mock_api_error_full(c, 400, "invalid_request_error", "invalid_type", "input",
                            "Invalid type for 'input': expected one of a string or array of "
                            "input items.");
        return -1;
    }
    if (sc.prev && mock_store_visit(r->key, r->key_len, sc.prev, sc.prev_len, NULL, NULL) < 0) {
        snprintf(msg, sizeof msg, "Previous response with id '%.*s' not found.",
                 (int)(sc.prev_len < 100 ? sc.prev_len : 100), sc.prev);
        mock_api_error_full(c, 400, "invalid_request_error", "previous_response_not_found",
                            "previous_response_id", msg);
        return -1;
    }
    if (sc.model) {
        s->model = sc.model;
        s->model_len = sc.model_len;
    }
    s->stream = sc.stream;
    memset(d, 0, sizeof *d);
    mock_id(d->id, "resp_", 48);
    mock_id(d->msg_id, "msg_", 48);
    d->model = s->model;
    d->model_len = s->model_len;
    d->prev = sc.prev;
    d->prev_len = sc.prev_len;
    d->instr = sc.instr;
    d->instr_len = sc.instr_len;
    d->max_output_tokens = sc.max_output_tokens;
    d->created_at = (long)time(NULL);
    d->input_tokens = s->prompt_tokens;
    d->store = sc.store;
    d->background = sc.background;
    d->status =
        s->fault.response_status != MOCK_RS_UNSET ? s->fault.response_status : MOCK_RS_COMPLETED;
    d->done_status = d->status;
    if (d->background && !s->stream)
        d->status = MOCK_RS_QUEUED;
    if (s->stream)
        d->text = (mock_text_t){0, s->fault.chunks >= 0 ? s->fault.chunks : MOCK_DEFAULT_CHUNKS,
                                s->fault.content_bytes};
    else
        mock_text_json(c, &d->text);
    if (d->store && s->fault.status < 400)
        mock_store_put(r->key, r->key_len, d, items->p, items->len, nitems);
    return 0;
}

static void respond_create(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    const mock_rdesc_t *d = &c->rdesc;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    if (s->stream) {
        s->phase = R_CREATED;
        mock_stream_start(c, responses_emit, R_DELTA);
        return;
    }
    a->len = b->len = 0;
    int out = render(a, b, d, d->status);
    mock_out_full(c, s->status, a->p, a->len, out ? &d->text : NULL, b->p, b->len);
}

/* ---- /v1/responses/{id}... ------------------------------------------------------------------ */

typedef struct visit_s {
    mock_conn_t *c;
    int status; /* of the answer */
    int out;    /* the body has e's text between scratch and scratch2 */
    mock_text_t text;
} visit_t;

/* One record of an items blob; the next offset. */
static size_t item_at(const char *p, size_t off, const char **id, size_t *id_len, const char **json,
                      uint32_t *json_len)
{
    memcpy(json_len, p + off, sizeof *json_len);
    *id_len = (unsigned char)p[off + 4];
    *id = p + off + 5;
    *json = *id + *id_len;
    return off + 5 + *id_len + *json_len;
}

/* GET .../input_items?order=asc|desc&limit=N&after=ID: a page of e's input items. */
static void render_items(mock_conn_t *c, const mock_stored_t *e, mock_buf_t *out)
{
    size_t ol = 0, ll = 0, al = 0, offs_n = (size_t)e->nitems;
    const char *order = mock_req_query(&c->req, "order", &ol);
    const char *lim = mock_req_query(&c->req, "limit", &ll);
    const char *after = mock_req_query(&c->req, "after", &al);
    int asc = order && ol == 3 && memcmp(order, "asc", 3) == 0;
    long limit = ITEMS_LIMIT_DEFAULT;
    if (lim && ll > 0 && ll < 4) {
        long v = 0;
        for (size_t i = 0; i < ll && v >= 0; i++)
            v = lim[i] >= '0' && lim[i] <= '9' ? v * 10 + (lim[i] - '0') : -1;
        if (v >= 1 && v <= ITEMS_LIMIT_MAX)
            limit = v;
    }
    size_t *offs = mock_xrealloc(NULL, (offs_n ? offs_n : 1) * sizeof *offs);
    size_t off = 0;
    for (size_t i = 0; i < offs_n; i++) {
        const char *id, *json;
        size_t id_len;
        uint32_t json_len;
        offs[i] = off;
        off = item_at(e->items, off, &id, &id_len, &json, &json_len);
    }
    size_t start = 0; /* position in the chosen order */
    for (size_t k = 0; after && k < offs_n; k++) {
        const char *id, *json;
        size_t id_len;
        uint32_t json_len;
        item_at(e->items, offs[asc ? k : offs_n - 1 - k], &id, &id_len, &json, &json_len);
        if (id_len == al && memcmp(id, after, al) == 0) {
            start = k + 1;
            break;
        }
    }
    const char *first = NULL, *last = NULL;
    size_t first_len = 0, last_len = 0, k = start;
    mock_buf_append(out, LIT("{\"object\":\"list\",\"data\":["));
    for (; k < offs_n && (long)(k - start) < limit; k++) {
        const char *id, *json;
        size_t id_len;
        uint32_t json_len;
        item_at(e->items, offs[asc ? k : offs_n - 1 - k], &id, &id_len, &json, &json_len);
        if (k > start)
            mock_buf_append(out, LIT(","));
        mock_buf_append(out, json, json_len);
        if (first == NULL) {
            first = id;
            first_len = id_len;
        }
        last = id;
        last_len = id_len;
    }
    mock_buf_append(out, LIT("],\"first_id\":"));
    if (first)
        mock_buf_printf(out, "\"%.*s\",\"last_id\":\"%.*s\"", (int)first_len, first, (int)last_len,
                        last);
    else
        mock_buf_append(out, LIT("null,\"last_id\":null"));
    mock_buf_printf(out, ",\"has_more\":%s}", k < offs_n ? "true" : "false");
    free(offs);
}

/* Under the store's lock: answer the request about e into the worker's buffers. */
static int visit_cb(mock_stored_t *e, void *arg)
{
    visit_t *v = arg;
    mock_conn_t *c = v->c;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    v->status = c->resp.status;
    switch (c->resp.kind) {
    case MOCK_EP_RESPONSE_DELETE:
        mock_buf_printf(a, "{\"id\":\"%s\",\"object\":\"response.deleted\",\"deleted\":true}",
                        e->d.id);
        return MOCK_STORE_DROP;
    case MOCK_EP_RESPONSE_ITEMS:
        render_items(c, e, a);
        return MOCK_STORE_KEEP;
    case MOCK_EP_RESPONSE_CANCEL:
        if (!e->d.background) {
            v->status = 400;
            return MOCK_STORE_KEEP;
        }
        if (e->d.status == MOCK_RS_QUEUED || e->d.status == MOCK_RS_IN_PROGRESS)
            e->d.status = MOCK_RS_CANCELLED;
        break; /* cancelling a finished one is idempotent: it is answered as it is */
    default:
        /* GET: a background response has run by the time anyone asks */
        if (e->d.status == MOCK_RS_QUEUED)
            e->d.status = e->d.done_status;
        break;
    }
    v->out = render(a, b, &e->d, e->d.status);
    v->text = e->d.text;
    return MOCK_STORE_KEEP;
}

static void respond_id(mock_conn_t *c)
{
    const mock_req_t *r = &c->req;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    const char *id = r->path + 14; /* after "/v1/responses/" */
    const char *slash = memchr(id, '/', r->path_len - 14);
    size_t id_len = slash ? (size_t)(slash - id) : r->path_len - 14;
    visit_t v = {.c = c};
    char msg[200];
    a->len = b->len = 0;
    if (mock_store_visit(r->key, r->key_len, id, id_len, visit_cb, &v) < 0) {
        snprintf(msg, sizeof msg, "No response found with id '%.*s'.",
                 (int)(id_len < 100 ? id_len : 100), id);
        mock_api_error_full(c, 404, "invalid_request_error", NULL, NULL, msg);
        return;
    }
    if (v.status == 400) {
        mock_api_error_full(c, 400, "invalid_request_error", NULL, NULL,
                            "Cannot cancel a synchronous response.");
        return;
    }
    mock_out_full(c, v.status, a->p, a->len, v.out ? &v.text : NULL, b->p, b->len);
}

/* ---- entry points ----------------------------------------------------------------------- */

int mock_responses_prepare(mock_conn_t *c, mock_req_t *r)
{
    mock_scan_t scan;
    switch (c->resp.kind) {
    case MOCK_EP_RESPONSES:
        return prepare_create(c, r);
    case MOCK_EP_RESPONSE_TOKENS:
        if (mock_json_scan_request(r->body, r->body_len, &scan) != 0) {
            mock_api_error(c, 400, "invalid_request_error", NULL,
                           "We could not parse the JSON body of your request: expected a JSON "
                           "object.",
                           MOCK_DONE_KEEP);
            return -1;
        }
        return 0;
    default: /* the id endpoints take no body */
        return 0;
    }
}

void mock_responses_respond(mock_conn_t *c)
{
    mock_buf_t *a = &c->w->scratch;
    switch (c->resp.kind) {
    case MOCK_EP_RESPONSES:
        respond_create(c);
        return;
    case MOCK_EP_RESPONSE_TOKENS:
        a->len = 0;
        mock_buf_printf(a, "{\"object\":\"response.input_tokens\",\"input_tokens\":%ld}",
                        c->resp.prompt_tokens);
        mock_out_full(c, c->resp.status, a->p, a->len, NULL, "", 0);
        return;
    default:
        respond_id(c);
        return;
    }
}
