/* usage.h - token usage from the ends of a response body, without keeping the body.
 *
 * Providers put "usage" at the end: the last member of a JSON completion, or the last
 * data chunk before "data: [DONE]" of a stream (with stream_options.include_usage), or
 * the terminal event (response.completed, message_delta); Anthropic streams also put the
 * input tokens at the start (message_start). The proxy feeds every body chunk through
 * usage_tail_feed, which keeps only the first USAGE_HEAD and the last USAGE_TAIL bytes;
 * usage_object / usage_number read a usage object in them (each API adapter knows which
 * members it has, api.h), and usage_tail_scan reads OpenAI's prompt_tokens /
 * completion_tokens of the last one.
 */
#ifndef LLMGATE_USAGE_H
#define LLMGATE_USAGE_H

#include <stddef.h>
#include <stdint.h>

#define USAGE_TAIL 4096
#define USAGE_HEAD 1024

typedef struct usage_tail_s {
    char buf[USAGE_TAIL]; /* the last bytes fed */
    size_t len;
    char head[USAGE_HEAD]; /* the first bytes fed */
    size_t head_len;
} usage_tail_t;

/* Token counts of one response, as the adapters read them (0 = not said). */
typedef struct usage_s {
    uint32_t input;       /* prompt tokens, cached ones included: what input_price applies to */
    uint32_t output;      /* completion tokens, reasoning included */
    uint32_t cached;      /* of input: read from a prompt cache */
    uint32_t cache_write; /* of input: written to a prompt cache (Anthropic) */
    uint32_t reasoning;   /* of output: reasoning tokens */
    uint32_t partial;     /* 1: only a stream's start was seen (Anthropic's message_start):
                             the input is exact, the output is not known yet */
} usage_t;

/* Forget what was fed (a new attempt). */
static inline void usage_tail_reset(usage_tail_t *t)
{
    t->len = 0;
    t->head_len = 0;
}

/* The last "usage" member of hay[0..n) whose value is an object: 1 and [*start, *end) its
 * braces, or 0. A usage object has no strings with braces inside it. */
int usage_object(const char *hay, size_t n, const char **start, const char **end);

/* The unsigned number after the first "name": in [start, end) (nested objects included), or
 * -1. Clamped to UINT32_MAX. */
long long usage_number(const char *start, const char *end, const char *name);

void usage_tail_feed(usage_tail_t *t, const char *data, size_t len);

/* Number of SSE "data:" events starting in data[0..len) (at a line start, or at the start
 * of data - a chunk boundary inside "data:" is missed, which only makes it an estimate). */
uint32_t usage_count_events(const char *data, size_t len);

/* 1 and the counts if a usage object with prompt_tokens was found, else 0. */
int usage_tail_scan(const usage_tail_t *t, uint32_t *prompt, uint32_t *completion);

#endif
