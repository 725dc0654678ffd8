/* mock_messages.c - the fake Anthropic Messages API: POST /v1/messages (JSON or SSE) and
 * POST /v1/messages/count_tokens.
 *
 * As api.anthropic.com: an anthropic-version header is required, and so is "max_tokens" on
 * /v1/messages; errors on these paths have Anthropic's shape (mock_api.c chooses it from
 * the path). A stream is the named-event sequence Anthropic sends for one text block:
 *
 *   message_start        (the message, empty content, usage with output_tokens 1)
 *   content_block_start  (index 0, text "")
 *   ping
 *   content_block_delta  (one text_delta per content chunk)
 *   content_block_stop
 *   message_delta        (stop_reason, usage.output_tokens)
 *   message_stop
 *
 * With tool calls (x-mock-tool-call, a script's tool_call, or a tool_choice naming a
 * tool) the text block is there only with x-mock-tool-text, and each call is a tool_use
 * block of its own after it:
 *
 *   content_block_start  (index i, tool_use with id, name and input {}; ping after the
 *                         first block of the message)
 *   content_block_delta  (one input_json_delta per piece of the arguments)
 *   content_block_stop
 *
 * and the stop_reason is "tool_use".
 *
 * x-mock-response-status: incomplete makes the stop_reason "max_tokens"; failed ends the
 * stream after the deltas of the last block with an `error` event (overloaded_error), as
 * Anthropic does when it fails mid-stream (a JSON answer is unaffected: use x-mock-status
 * there).
 */

#include "mock.h"

#include <stdio.h>
#include <string.h>

#define LIT(s) s, sizeof(s) - 1

enum {
    M_START,
    M_BLOCK_START,
    M_PING,
    M_DELTA,
    M_BLOCK_STOP,
    M_TOOL_START,
    M_TOOL_DELTA,
    M_TOOL_STOP,
    M_MSG_DELTA,
    M_STOP
};

static const char *stop_reason(const mock_conn_t *c)
{
    return c->resp.fault.response_status == MOCK_RS_INCOMPLETE ? "max_tokens"
           : c->resp.tools                                     ? "tool_use"
                                                               : "end_turn";
}

/* usage.output_tokens: the text's words (with tool calls: if there is text), and
 * MOCK_TOOL_TOKENS per tool call. */
static long output_tokens(const mock_conn_t *c)
{
    const mock_resp_t *s = &c->resp;
    long text = mock_text_tokens(&c->rdesc.text);
    return s->tools ? (s->tool_text ? text : 0) + (long)s->tools * MOCK_TOOL_TOKENS : text;
}

static const char error_event[] = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                  "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

/* The events of a tool_use block: its start, its input in pieces, its stop. s->index counts
 * the pieces, s->tool_at the calls. */
static int tool_emit(mock_conn_t *c, int phase, int bad)
{
    mock_resp_t *s = &c->resp;
    mock_buf_t *a = &c->w->scratch;
    int block = s->tool_text + s->tool_at, first = block == 0;
    switch (phase) {
    case M_TOOL_START:
        mock_buf_printf(a,
                        "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                        "\"index\":%d,\"content_block\":{\"type\":\"tool_use\",\"id\":"
                        "\"toolu_mock_%d\",\"name\":\"",
                        block, s->tool_at);
        mock_tool_name(a, c);
        mock_buf_append(a, LIT("\",\"input\":{}}}\n\n"));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        s->index = 0;
        s->phase = first ? M_PING : M_TOOL_DELTA;
        return 0;
    case M_TOOL_DELTA:
        mock_buf_printf(a,
                        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                        "\"index\":%d,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
                        "\"",
                        block);
        mock_tool_args(a, s->tool_at, s->index);
        mock_buf_append(a, LIT("\"}}\n\n"));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        s->phase = ++s->index < MOCK_TOOL_PIECES ? M_TOOL_DELTA : M_TOOL_STOP;
        return 0;
    default: /* M_TOOL_STOP */
        if (s->fault.response_status == MOCK_RS_FAILED && s->tool_at + 1 == s->tools) {
            mock_out_event(c, LIT(error_event), NULL, "", 0, bad);
            return 1;
        }
        mock_buf_printf(a,
                        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                        "\"index\":%d}\n\n",
                        block);
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        s->phase = ++s->tool_at < s->tools ? M_TOOL_START : M_MSG_DELTA;
        return 0;
    }
}

static int messages_emit(mock_conn_t *c, int bad)
{
    mock_resp_t *s = &c->resp;
    const mock_rdesc_t *d = &c->rdesc;
    mock_buf_t *a = &c->w->scratch;
    mock_text_t piece = {s->index, 1, d->text.pat};
    int phase = s->phase++;
    a->len = 0;
    switch (phase) {
    case M_START:
        mock_buf_printf(a,
                        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
                        "\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                        "\"%.*s\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                        "\"usage\":{\"input_tokens\":%ld,\"cache_creation_input_tokens\":0,"
                        "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
                        d->id, (int)d->model_len, d->model, d->input_tokens);
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        if (s->tools && !s->tool_text)
            s->phase = M_TOOL_START;
        return 0;
    case M_BLOCK_START:
        mock_out_event(c,
                       LIT("event: content_block_start\ndata: {\"type\":\"content_block_start\","
                           "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
                       NULL, "", 0, bad);
        return 0;
    case M_PING:
        mock_out_event(c, LIT("event: ping\ndata: {\"type\": \"ping\"}\n\n"), NULL, "", 0, bad);
        if (s->tools && !s->tool_text) /* after the first tool_use block's start */
            s->phase = M_TOOL_DELTA;
        else if (s->n_chunks == 0)
            s->phase = M_BLOCK_STOP;
        return 0;
    case M_DELTA:
        mock_out_event(c,
                       LIT("event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                           "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""),
                       &piece, LIT("\"}}\n\n"), bad);
        if (++s->index < s->n_chunks)
            s->phase = M_DELTA;
        return 0;
    case M_BLOCK_STOP:
        if (s->fault.response_status == MOCK_RS_FAILED && !s->tools) {
            mock_out_event(c, LIT(error_event), NULL, "", 0, bad);
            return 1;
        }
        mock_out_event(c,
                       LIT("event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                           "\"index\":0}\n\n"),
                       NULL, "", 0, bad);
        if (!s->tools)
            s->phase = M_MSG_DELTA;
        return 0;
    case M_TOOL_START:
    case M_TOOL_DELTA:
    case M_TOOL_STOP:
        return tool_emit(c, phase, bad);
    case M_MSG_DELTA:
        mock_buf_printf(a,
                        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
                        "\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":{"
                        "\"output_tokens\":%ld}}\n\n",
                        stop_reason(c), output_tokens(c));
        mock_out_event(c, a->p, a->len, NULL, "", 0, bad);
        return 0;
    default:
        mock_out_event(c, LIT("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), NULL,
                       "", 0, bad);
        return 1;
    }
}

int mock_messages_prepare(mock_conn_t *c, mock_req_t *r)
{
    mock_resp_t *s = &c->resp;
    mock_rdesc_t *d = &c->rdesc;
    mock_rscan_t sc;
    size_t vl = 0;
    if (mock_req_header(r, "anthropic-version", &vl) == NULL || vl == 0) {
        mock_api_error(c, 400, NULL, NULL, "anthropic-version: header is required", MOCK_DONE_KEEP);
        return -1;
    }
    if (mock_json_scan_rbody(r->body, r->body_len, &sc, NULL, NULL) != 0) {
        mock_api_error(c, 400, NULL, NULL,
                       "There was an issue with your request body: expected a JSON object.",
                       MOCK_DONE_KEEP);
        return -1;
    }
    if (s->kind == MOCK_EP_MESSAGES && !sc.has_max_tokens) {
        mock_api_error(c, 400, NULL, NULL, "max_tokens: Field required", MOCK_DONE_KEEP);
        return -1;
    }
    if (sc.model) {
        s->model = sc.model;
        s->model_len = sc.model_len;
    }
    s->stream = sc.stream && s->kind == MOCK_EP_MESSAGES;
    memset(d, 0, sizeof *d);
    mock_id(d->id, "msg_", 24);
    d->model = s->model;
    d->model_len = s->model_len;
    d->input_tokens = s->prompt_tokens;
    if (s->stream)
        d->text = (mock_text_t){0, s->fault.chunks >= 0 ? s->fault.chunks : MOCK_DEFAULT_CHUNKS,
                                s->fault.content_bytes};
    else
        mock_text_json(c, &d->text);
    if (s->kind == MOCK_EP_MESSAGES)
        mock_tool_setup(c, sc.tool_choice);
    return 0;
}

void mock_messages_respond(mock_conn_t *c)
{
    mock_resp_t *s = &c->resp;
    const mock_rdesc_t *d = &c->rdesc;
    mock_buf_t *a = &c->w->scratch, *b = &c->w->scratch2;
    a->len = b->len = 0;
    if (s->kind == MOCK_EP_MESSAGES_TOKENS) {
        mock_buf_printf(a, "{\"input_tokens\":%ld}", s->prompt_tokens);
        mock_out_full(c, s->status, a->p, a->len, NULL, "", 0);
        return;
    }
    if (s->stream) {
        s->phase = M_START;
        /* x-mock-truncate with tool calls: stop half-way through the first call's input */
        if (s->tools)
            s->truncate_at = 1 + (s->tool_text ? 3 + d->text.n : 1) + 1 + MOCK_TOOL_PIECES / 2;
        mock_stream_start(c, messages_emit, M_DELTA);
        return;
    }
    int text = !s->tools || s->tool_text;
    mock_buf_printf(a,
                    "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                    "\"%.*s\",\"content\":[",
                    d->id, (int)d->model_len, d->model);
    if (text) {
        mock_buf_append(a, LIT("{\"type\":\"text\",\"text\":\""));
        mock_buf_append(b, LIT("\"}"));
    }
    for (int i = 0; i < s->tools; i++) {
        mock_buf_printf(b, "%s{\"type\":\"tool_use\",\"id\":\"toolu_mock_%d\",\"name\":\"",
                        text || i ? "," : "", i);
        mock_tool_name(b, c);
        mock_buf_append(b, LIT("\",\"input\":"));
        mock_tool_args(b, i, -1);
        mock_buf_append(b, LIT("}"));
    }
    mock_buf_printf(b,
                    "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{"
                    "\"input_tokens\":%ld,\"cache_creation_input_tokens\":0,"
                    "\"cache_read_input_tokens\":0,\"output_tokens\":%ld}}",
                    stop_reason(c), d->input_tokens, output_tokens(c));
    mock_out_full(c, s->status, a->p, a->len, text ? &d->text : NULL, b->p, b->len);
}
