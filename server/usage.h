/* usage.h - token usage from the end of a response body, without keeping the body.
 *
 * OpenAI-compatible providers put "usage" at the end: the last member of a JSON
 * completion, or the last data chunk before "data: [DONE]" of a stream (with
 * stream_options.include_usage). The proxy feeds every body chunk through usage_tail_feed,
 * which keeps only the last USAGE_TAIL bytes; usage_tail_scan then reads
 * prompt_tokens / completion_tokens of the last "usage" object in them.
 */
#ifndef LLMGATE_USAGE_H
#define LLMGATE_USAGE_H

#include <stddef.h>
#include <stdint.h>

#define USAGE_TAIL 4096

typedef struct usage_tail_s {
    char buf[USAGE_TAIL];
    size_t len;
} usage_tail_t;

void usage_tail_feed(usage_tail_t *t, const char *data, size_t len);

/* Number of SSE "data:" events starting in data[0..len) (at a line start, or at the start
 * of data - a chunk boundary inside "data:" is missed, which only makes it an estimate). */
uint32_t usage_count_events(const char *data, size_t len);

/* 1 and the counts if a usage object with prompt_tokens was found, else 0. */
int usage_tail_scan(const usage_tail_t *t, uint32_t *prompt, uint32_t *completion);

#endif
