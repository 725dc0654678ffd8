/* responses_chat_stream.c - a chat-completions stream (chat.completion.chunk events, [DONE])
 * to a Responses API client's semantic events (see responses_chat.c for the design note);
 * the chunks are read by chat_up.c, which calls the hooks here.
 *
 * Events, each "event: TYPE\ndata: {"type":TYPE,"sequence_number":N,...}\n\n", N from 0:
 *   response.created and response.in_progress (the response, status in_progress) on the
 *   first chunk; per output item, in the order the chat deltas start them:
 *     text      response.output_item.added (a message, in_progress), response.content_part.
 *               added (an empty output_text), response.output_text.delta per content delta,
 *               then response.output_text.done, response.content_part.done, response.
 *               output_item.done (with the whole text);
 *     tool call response.output_item.added (a function_call: call_id = the chat call's id,
 *               name, arguments ""), response.function_call_arguments.delta per arguments
 *               delta, then response.function_call_arguments.done and response.output_item.
 *               done (with the whole arguments); calls are told apart by their chat index;
 *   an item is done when the next one starts or the answer ends (arguments for a call
 *   already done are XLATE_EBAD: OpenAI streams calls one after the other); text after a
 *   call opens a new message item; then, on [DONE] (or on a complete end after a
 *   finish_reason), response.completed - or response.incomplete, incomplete_details.reason
 *   max_output_tokens (finish_reason length) or content_filter - with every item and the
 *   usage of the include_usage chunk.
 * Failures end the stream with response.failed (the response, status failed, the items so
 * far, error {code, message}) and an error event ({code, message, param}): the openai SDK
 * raises an APIError at the error event, the Vercel AI SDK reports both, Codex CLI fails
 * the turn on response.failed. They are: an "error" object in the provider's stream (its
 * message and code); a stream cut (stream_end complete 0: a transport failure, or bytes
 * that were not the provider's format); a complete end without [DONE] or a finish_reason
 * (a relay that closed mid-answer); more than XLATE_RC_KEEP_MAX bytes of text to keep.
 *
 * Memory: besides the event being read (sse.h) and a fixed struct (the items' kinds, chat
 * indexes and ids, the sequence number, the usage), the stream KEEPS the text and the
 * arguments of every item, and the request's echoed members: the protocol repeats them in
 * output_text.done, content_part.done, function_call_arguments.done, output_item.done and
 * response.completed, and clients build their history from those (Codex CLI records
 * output_item.done items, not deltas). That is the answer's size, bounded by the model's
 * output cap and, whatever the provider sends, by XLATE_RC_KEEP_MAX (4 MiB) - the same order
 * as the 32 MiB a translated JSON answer may gather (TR_BODY_MAX). At most
 * XLATE_RC_ITEMS_MAX items (past it XLATE_EBAD). reasoning_content deltas (DeepSeek) are
 * dropped; choices other than index 0 are ignored.
 */
#include "server/xlate/responses_chat.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/common/errors.h"
#include "server/xlate/xjson.h"

enum { ITEM_MESSAGE, ITEM_CALL };

typedef struct rc_item_s {
    int kind;        /* ITEM_* */
    int done;        /* its *.done events were sent */
    long long index; /* a call's tool_calls[].index */
    buf_t text;      /* the message's text, or the call's arguments */
    buf_t call;      /* a call's call_id, NUL, name, NUL */
} rc_item_t;

typedef struct rc_stream_s {
    chat_up_stream_t up; /* first: the reader, model, request id (the ids derive from it),
                            started (response.created sent), ended (a terminal event sent),
                            failed, the last finish_reason, the usage */
    int64_t created;
    json_t *echo; /* the request's members the response objects repeat (NULL: no memory) */
    uint64_t seq; /* the next sequence_number */
    int done;     /* [DONE] seen */
    int open;     /* the item not done yet, or -1 */
    unsigned nitems;
    unsigned nmessages;
    size_t kept; /* bytes of text and arguments kept */
    rc_item_t items[XLATE_RC_ITEMS_MAX];
} rc_stream_t;

_Static_assert(sizeof(rc_stream_t) <= XLATE_RC_STREAM_SIZE, "XLATE_RC_STREAM_SIZE is too small");

typedef struct feed_s {
    rc_stream_t *s;
    buf_t *out;
} feed_t;

/* ---- writing events -------------------------------------------------------------------- */

/* An event: {"type":name,"sequence_number":N} + the members of body (stolen; NULL: no
 * memory). */
static int emit(feed_t *f, const char *name, json_t *body)
{
    json_t *ev =
        body ? json_pack("{s:s,s:I}", "type", name, "sequence_number", (json_int_t)f->s->seq)
             : NULL;
    int rc = ev && json_object_update(ev, body) == 0 ? 0 : XLATE_ENOMEM;

    if (rc == 0 && (buf_appends(f->out, "event: ") != 0 || buf_appends(f->out, name) != 0 ||
                    buf_appends(f->out, "\ndata: ") != 0))
        rc = XLATE_ENOMEM;
    if (rc == 0)
        rc = xjson_put(f->out, ev);
    if (rc == 0 && buf_append(f->out, "\n\n", 2) != 0)
        rc = XLATE_ENOMEM;
    f->s->seq++;
    json_decref(ev);
    json_decref(body);
    return rc;
}

static void item_id(const rc_stream_t *s, unsigned i, char *out, size_t cap)
{
    const rc_item_t *it = &s->items[i];
    xlate_rc_made_id(out, cap, it->kind == ITEM_MESSAGE ? "msg_" : "fc_", s->up.request_id,
                     (long long)i);
}

/* The deltas are most of a stream: written directly (s[0..n) is valid UTF-8, from jansson). */
static int emit_delta(feed_t *f, unsigned i, const char *p, size_t n)
{
    rc_stream_t *s = f->s;
    char id[160], head[512];
    int text = s->items[i].kind == ITEM_MESSAGE;
    int k;

    item_id(s, i, id, sizeof(id));
    k = snprintf(head, sizeof(head),
                 "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%llu,\"item_id\":\"%s\","
                 "\"output_index\":%u,%s\"delta\":\"",
                 text ? "response.output_text.delta" : "response.function_call_arguments.delta",
                 text ? "response.output_text.delta" : "response.function_call_arguments.delta",
                 (unsigned long long)s->seq++, id, i, text ? "\"content_index\":0," : "");
    if (k < 0 || (size_t)k >= sizeof(head) || buf_append(f->out, head, (size_t)k) != 0 ||
        buf_reserve(f->out, 6 * n + 1) != 0)
        return XLATE_ENOMEM;
    f->out->len += json_escape(f->out->data + f->out->len, 6 * n + 1, p, n);
    return buf_appends(f->out, text ? "\",\"logprobs\":[]}\n\n" : "\"}\n\n") != 0 ? XLATE_ENOMEM
                                                                                  : 0;
}

static json_t *text_part(const rc_item_t *it)
{
    return json_pack("{s:s,s:o,s:[]}", "type", "output_text", "text", xjson_buf(&it->text),
                     "annotations");
}

/* Item i as output_item.added (in_progress, empty) or as done (whole). */
static json_t *item_json(const rc_stream_t *s, unsigned i, int whole)
{
    const rc_item_t *it = &s->items[i];
    const char *call_id = it->call.data ? it->call.data : "";
    const char *name = call_id + strlen(call_id) + 1;
    const char *status = !whole ? "in_progress" : it->done ? "completed" : "incomplete";
    char id[160];

    item_id(s, i, id, sizeof(id));
    if (it->kind == ITEM_MESSAGE)
        return json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", id, "type", "message", "status", status,
                         "role", "assistant", "content",
                         whole ? json_pack("[o]", text_part(it)) : json_array());
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:o}", "id", id, "type", "function_call", "status",
                     status, "arguments", whole ? xjson_buf(&it->text) : json_string(""), "call_id",
                     call_id, "name", xjson_str(name));
}

/* The response object of the stream, with the items so far (whole) and the usage. */
static json_t *response_json(const rc_stream_t *s, const char *status, int items)
{
    char id[160];
    json_t *r, *output;

    xlate_rc_made_id(id, sizeof(id), "resp_", s->up.request_id, -1);
    if (!s->echo || !(r = xlate_rc_object(id, s->created, s->up.model, status, s->echo)))
        return NULL;
    output = json_object_get(r, "output");
    for (unsigned i = 0; items && i < s->nitems; i++)
        if (xjson_push(output, item_json(s, i, 1)) != 0) {
            json_decref(r);
            return NULL;
        }
    if (items && s->up.usage.seen &&
        xjson_set(r, "usage", xlate_rc_usage_json(&s->up.usage)) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static int start(feed_t *f)
{
    int rc;

    f->s->up.started = 1;
    rc = emit(f, "response.created",
              json_pack("{s:o}", "response", response_json(f->s, "in_progress", 0)));
    return rc ? rc
              : emit(f, "response.in_progress",
                     json_pack("{s:o}", "response", response_json(f->s, "in_progress", 0)));
}

/* The open item's *.done events. */
static int close_item(feed_t *f)
{
    rc_stream_t *s = f->s;
    unsigned i;
    rc_item_t *it;
    char id[160];
    int rc;

    if (s->open < 0)
        return 0;
    i = (unsigned)s->open;
    it = &s->items[i];
    s->open = -1;
    it->done = 1;
    item_id(s, i, id, sizeof(id));
    if (it->kind == ITEM_MESSAGE) {
        rc = emit(f, "response.output_text.done",
                  json_pack("{s:s,s:I,s:i,s:o,s:[]}", "item_id", id, "output_index", (json_int_t)i,
                            "content_index", 0, "text", xjson_buf(&it->text), "logprobs"));
        if (rc == 0)
            rc = emit(f, "response.content_part.done",
                      json_pack("{s:s,s:I,s:i,s:o}", "item_id", id, "output_index", (json_int_t)i,
                                "content_index", 0, "part", text_part(it)));
    } else {
        const char *call_id = it->call.data ? it->call.data : "";
        rc = emit(f, "response.function_call_arguments.done",
                  json_pack("{s:s,s:I,s:o,s:o}", "item_id", id, "output_index", (json_int_t)i,
                            "name", xjson_str(call_id + strlen(call_id) + 1), "arguments",
                            xjson_buf(&it->text)));
    }
    if (rc == 0)
        rc =
            emit(f, "response.output_item.done",
                 json_pack("{s:I,s:o}", "output_index", (json_int_t)i, "item", item_json(s, i, 1)));
    return rc;
}

/* A new item of kind (its call's id and name for a call), announced; its slot in *slot. */
static int open_item(feed_t *f, int kind, long long index, const json_t *call_id,
                     const json_t *name, unsigned *slot)
{
    rc_stream_t *s = f->s;
    rc_item_t *it;
    int rc = close_item(f);

    if (rc != 0)
        return rc;
    if (s->nitems == XLATE_RC_ITEMS_MAX)
        return XLATE_EBAD;
    it = &s->items[ *slot = s->nitems++];
    it->kind = kind;
    it->index = index;
    if (kind == ITEM_CALL) {
        char made[160];
        xlate_rc_made_id(made, sizeof(made), "call_", s->up.request_id, (long long)*slot);
        if (buf_append(&it->call, json_is_string(call_id) ? json_string_value(call_id) : made,
                       json_is_string(call_id) ? json_string_length(call_id) : strlen(made)) ||
            buf_append(&it->call, "", 1) ||
            buf_append(&it->call, json_string_value(name) ? json_string_value(name) : "",
                       json_string_length(name)) ||
            buf_append(&it->call, "", 1))
            return XLATE_ENOMEM;
    } else {
        s->nmessages++;
    }
    s->open = (int)*slot;
    rc = emit(
        f, "response.output_item.added",
        json_pack("{s:I,s:o}", "output_index", (json_int_t)*slot, "item", item_json(s, *slot, 0)));
    if (rc == 0 && kind == ITEM_MESSAGE) {
        char id[160];
        item_id(s, *slot, id, sizeof(id));
        rc = emit(f, "response.content_part.added",
                  json_pack("{s:s,s:I,s:i,s:{s:s,s:s,s:[]}}", "item_id", id, "output_index",
                            (json_int_t)*slot, "content_index", 0, "part", "type", "output_text",
                            "text", "", "annotations"));
    }
    return rc;
}

/* ---- the end: completed, incomplete or failed ------------------------------------------ */

static int fail(feed_t *f, const char *code, const json_t *message, const char *fallback)
{
    rc_stream_t *s = f->s;
    json_t *r, *msg = message ? json_incref((json_t *)message) : xjson_str(fallback);
    int rc = s->up.started ? 0 : start(f);

    s->up.ended = 1;
    s->open = -1; /* what was open stays in_progress: not done */
    if (rc != 0) {
        json_decref(msg);
        return rc;
    }
    r = response_json(s, "failed", 1);
    if (r && xjson_set(r, "error", json_pack("{s:s,s:O}", "code", code, "message", msg)) != 0) {
        json_decref(r);
        r = NULL;
    }
    rc = emit(f, "response.failed", r ? json_pack("{s:o}", "response", r) : NULL);
    if (rc == 0)
        rc = emit(f, "error", json_pack("{s:s,s:O,s:n}", "code", code, "message", msg, "param"));
    json_decref(msg);
    return rc;
}

static int finish(feed_t *f)
{
    rc_stream_t *s = f->s;
    const char *reason = xlate_rc_incomplete_reason(s->up.finish);
    json_t *r;
    int rc = s->up.started ? 0 : start(f);

    if (rc == 0)
        rc = close_item(f);
    s->up.ended = 1;
    if (rc != 0)
        return rc;
    r = response_json(s, reason ? "incomplete" : "completed", 1);
    if (r && reason &&
        xjson_set(r, "incomplete_details", json_pack("{s:s}", "reason", reason)) != 0) {
        json_decref(r);
        r = NULL;
    }
    if (r && !reason && xjson_set(r, "completed_at", json_integer(s->created)) != 0) {
        json_decref(r);
        r = NULL;
    }
    return emit(f, reason ? "response.incomplete" : "response.completed",
                r ? json_pack("{s:o}", "response", r) : NULL);
}

/* ---- reading chunks -------------------------------------------------------------------- */

/* Keeps n more bytes of item i's text; 1 past XLATE_RC_KEEP_MAX (nothing kept). */
static int keep(rc_stream_t *s, unsigned i, const char *p, size_t n, int *rc)
{
    *rc = 0;
    if (s->kept + n > XLATE_RC_KEEP_MAX)
        return 1;
    s->kept += n;
    if (buf_append(&s->items[i].text, p, n) != 0)
        *rc = XLATE_ENOMEM;
    return 0;
}

static int too_long(feed_t *f)
{
    return fail(f, "server_error", NULL,
                "the answer passed the gateway's limit of 4 MiB of text for a Responses stream "
                "translated from chat completions");
}

static int text_delta(chat_up_stream_t *up, const json_t *text, buf_t *out)
{
    rc_stream_t *s = (rc_stream_t *)up;
    feed_t f = {s, out};
    unsigned slot;
    int rc = 0;

    if (s->open < 0 || s->items[s->open].kind != ITEM_MESSAGE)
        rc = open_item(&f, ITEM_MESSAGE, -1, NULL, NULL, &slot);
    if (rc != 0)
        return rc;
    slot = (unsigned)s->open;
    if (keep(s, slot, json_string_value(text), json_string_length(text), &rc))
        return too_long(&f);
    return rc ? rc : emit_delta(&f, slot, json_string_value(text), json_string_length(text));
}

static int tool_delta(chat_up_stream_t *up, long long index, const json_t *id, const json_t *name,
                      const json_t *args, buf_t *out)
{
    rc_stream_t *s = (rc_stream_t *)up;
    feed_t f = {s, out};
    unsigned slot = 0;
    int rc = 0;

    while (slot < s->nitems && !(s->items[slot].kind == ITEM_CALL && s->items[slot].index == index))
        slot++;
    if (slot == s->nitems && (rc = open_item(&f, ITEM_CALL, index, id, name, &slot)) != 0)
        return rc;
    if (json_string_length(args) == 0)
        return 0;
    if (s->open != (int)slot)
        return XLATE_EBAD; /* arguments for a call already done */
    if (keep(s, slot, json_string_value(args), json_string_length(args), &rc))
        return too_long(&f);
    return rc ? rc : emit_delta(&f, slot, json_string_value(args), json_string_length(args));
}

static int start_cb(chat_up_stream_t *up, const json_t *chunk, buf_t *out)
{
    feed_t f = {(rc_stream_t *)up, out};

    (void)chunk;
    return start(&f);
}

static int close_cb(chat_up_stream_t *up, buf_t *out)
{
    feed_t f = {(rc_stream_t *)up, out};

    return close_item(&f);
}

static int done_cb(chat_up_stream_t *up, buf_t *out)
{
    feed_t f = {(rc_stream_t *)up, out};

    f.s->done = 1;
    return finish(&f);
}

static int error_cb(chat_up_stream_t *up, const json_t *doc, buf_t *out)
{
    const json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    feed_t f = {(rc_stream_t *)up, out};

    if (!code) /* OpenRouter's code is the HTTP status; its type says more */
        code = json_string_value(json_object_get(e, "type"));
    return fail(&f, code ? code : "server_error", xjson_error_message(doc),
                "the provider's stream failed");
}

/* What an event changes of the state, taken back with its bytes when it fails: the stream
 * then ends with response.failed, which must start the response if the failed event's
 * response.created was taken back, and list only the items whose events the client got. */
typedef struct rc_mark_s {
    uint64_t seq;
    int started, open;
    unsigned nitems, nmessages;
    size_t kept;
    size_t len[XLATE_RC_ITEMS_MAX];
    int done[XLATE_RC_ITEMS_MAX];
} rc_mark_t;

static void mark(const rc_stream_t *s, rc_mark_t *m)
{
    m->seq = s->seq;
    m->started = s->up.started;
    m->open = s->open;
    m->nitems = s->nitems;
    m->nmessages = s->nmessages;
    m->kept = s->kept;
    for (unsigned i = 0; i < s->nitems; i++) {
        m->len[i] = s->items[i].text.len;
        m->done[i] = s->items[i].done;
    }
}

static void back_to(rc_stream_t *s, const rc_mark_t *m)
{
    for (unsigned i = m->nitems; i < s->nitems; i++) { /* items the event added */
        buf_free(&s->items[i].text);
        buf_free(&s->items[i].call);
        memset(&s->items[i], 0, sizeof(s->items[i]));
    }
    for (unsigned i = 0; i < m->nitems; i++) {
        xjson_buf_cut(&s->items[i].text, m->len[i]);
        s->items[i].done = m->done[i];
    }
    s->seq = m->seq;
    s->up.started = m->started;
    s->open = m->open;
    s->nitems = m->nitems;
    s->nmessages = m->nmessages;
    s->kept = m->kept;
}

static int event_cb(chat_up_stream_t *up, const char *data, size_t len, buf_t *out)
{
    rc_stream_t *s = (rc_stream_t *)up;
    rc_mark_t m;
    int rc;

    mark(s, &m);
    rc = chat_up_chunk(up, data, len, out);
    if (rc != 0)
        back_to(s, &m);
    return rc;
}

static const chat_up_client_t rc_client = {
    .event = event_cb,
    .start = start_cb,
    .text = text_delta,
    .tool = tool_delta,
    .close = close_cb,
    .done = done_cb,
    .error = error_cb,
};

void xlate_rc_stream_init(void *st, const xlate_opts_t *o)
{
    rc_stream_t *s = st;

    memset(s, 0, sizeof(*s));
    chat_up_stream_init(&s->up, &rc_client, o, CHAT_UP_REQUEST_ID_MAX);
    s->created = o->created;
    s->open = -1;
    s->echo = xlate_rc_echo(o->client_body, o->client_body_len);
}

int xlate_rc_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    rc_stream_t *s = st;

    if (s->up.failed)
        return XLATE_EBAD;
    if (!s->echo)
        return XLATE_ENOMEM;
    return chat_up_stream_feed(st, data, len, out);
}

int xlate_rc_stream_end(void *st, int complete, buf_t *out)
{
    rc_stream_t *s = st;
    feed_t f = {s, out};
    size_t at = out->len;
    const char *why;
    int rc;

    if (s->up.ended)
        return 0;
    if (s->up.failed && complete)
        return XLATE_EBAD;
    if (!s->echo)
        return XLATE_ENOMEM;
    if (complete) {
        if ((rc = chat_up_stream_drain(&s->up, out)) != 0 || s->up.ended)
            return rc;
        if (s->done || s->up.finish != CHAT_UP_FINISH_NONE) {
            at = out->len;
            if ((rc = finish(&f)) != 0)
                xjson_buf_cut(out, at);
            return rc;
        }
    }
    /* cut, unreadable, or ended mid-answer: the client must see a failure, not a hang */
    why = s->up.failed ? "the provider's stream could not be read as chat completions"
          : complete   ? "the provider's stream ended before its answer was complete"
                       : "the provider's stream was cut before its end";
    at = out->len;
    if ((rc = fail(&f, "server_error", NULL, why)) != 0)
        xjson_buf_cut(out, at);
    return rc;
}

void xlate_rc_stream_free(void *st)
{
    rc_stream_t *s = st;

    chat_up_stream_free(&s->up);
    for (unsigned i = 0; i < s->nitems; i++) {
        buf_free(&s->items[i].text);
        buf_free(&s->items[i].call);
    }
    json_decref(s->echo);
    s->echo = NULL;
}
