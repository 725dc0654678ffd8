/* sse.h - server-sent events read from bytes cut anywhere, one event at a time.
 *
 * A stream translator feeds the provider's bytes as they arrive; sse_feed calls back once
 * per complete event with its "event:" name (may be empty) and its "data:" lines joined
 * by '\n' (per the SSE spec; comments and other fields are ignored, CR LF and LF both end a
 * line). Only the event being read is kept: its bytes are bounded by SSE_EVENT_MAX, past
 * which sse_feed fails. The callback's pointers are valid during the call only.
 * Ownership: the reader's buffer is its own (sse_reader_free). One thread.
 */
#ifndef LLMGATE_SSE_H
#define LLMGATE_SSE_H

#include <stddef.h>

#include "server/common/buf.h"

#define SSE_EVENT_MAX (1u << 20) /* 1 MiB of one event's lines */

typedef struct sse_reader_s {
    buf_t line; /* the line being read */
    buf_t data; /* the event's data lines so far */
    char event[64];
    int has_data;
} sse_reader_t;

/* Return 0 to go on, anything else to stop sse_feed (which then returns it). */
typedef int (*sse_event_cb)(void *ud, const char *event, const char *data, size_t len);

void sse_reader_init(sse_reader_t *r);
/* 0, the callback's non-zero result, or -1 (an event past SSE_EVENT_MAX, or no memory). */
int sse_feed(sse_reader_t *r, const char *p, size_t len, sse_event_cb cb, void *ud);
/* The stream ended: an event without its blank line is delivered (as browsers do not, but
 * a provider that closes right after its last data line meant it). Same results. */
int sse_finish(sse_reader_t *r, sse_event_cb cb, void *ud);
void sse_reader_free(sse_reader_t *r);

#endif
