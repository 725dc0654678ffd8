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
 * x-mock-response-status: incomplete makes the stop_reason "max_tokens"; failed ends the
 * stream after the deltas with an `error` event (overloaded_error), as Anthropic does when
 * it fails mid-stream (a JSON answer is unaffected: use x-mock-status there).
 */

#include "mock.h"

#include <stdio.h>
#include <string.h>

#define LIT(s) s, sizeof(s) - 1

enum { M_START, M_BLOCK_START, M_PING, M_DELTA, M_BLOCK_STOP, M_MSG_DELTA, M_STOP };

static const char *stop_reason(const mock_conn_t *c)
{
    return c->resp.fault.response_status == MOCK_RS_INCOMPLETE ? "max_tokens" : "end_turn";
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
        return 0;
    case M_BLOCK_START:
        mock_out_event(c,
                       LIT("event: content_block_start\ndata: {\"type\":\"content_block_start\","
                           "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
                       NULL, "", 0, bad);
        return 0;
    case M_PING:
        mock_out_event(c, LIT("event: ping\ndata: {\"type\": \"ping\"}\n\n"), NULL, "", 0, bad);
        if (s->n_chunks == 0)
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
        if (s->fault.response_status == MOCK_RS_FAILED) {
            mock_out_event(c,
                           LIT("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                               "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"),
                           NULL, "", 0, bad);
            return 1;
        }
        mock_out_event(c,
                       LIT("event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                           "\"index\":0}\n\n"),
                       NULL, "", 0, bad);
        return 0;
    case M_MSG_DELTA:
        mock_buf_printf(a,
                        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
                        "\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":{"
                        "\"output_tokens\":%ld}}\n\n",
                        stop_reason(c), mock_text_tokens(&d->text));
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
        mock_stream_start(c, messages_emit, M_DELTA);
        return;
    }
    mock_buf_printf(a,
                    "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                    "\"%.*s\",\"content\":[{\"type\":\"text\",\"text\":\"",
                    d->id, (int)d->model_len, d->model);
    mock_buf_printf(b,
                    "\"}],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{"
                    "\"input_tokens\":%ld,\"cache_creation_input_tokens\":0,"
                    "\"cache_read_input_tokens\":0,\"output_tokens\":%ld}}",
                    stop_reason(c), d->input_tokens, mock_text_tokens(&d->text));
    mock_out_full(c, s->status, a->p, a->len, &d->text, b->p, b->len);
}
