/* shm_window.h - rolling 60-second windows at one-second resolution (pure functions).
 *
 * A window is a fixed struct stored inside a key record (no pointers). It has one bucket
 * per second for the seconds [head - 60, head]: 61 buckets, so that an amount counted in
 * second s leaves the window at (s + 61) * 1000 ms, i.e. only once every millisecond of
 * it is more than 60 s old. head is the newest second seen; callers never move it back
 * except with shm_window_shift() (the clock re-base in shm_key.c).
 */
#ifndef LLMGATE_SHM_WINDOW_H
#define LLMGATE_SHM_WINDOW_H

#include <stdint.h>

#define SHM_WIN_BUCKETS 61

typedef struct shm_window_s {
    int64_t head_sec;                 /* newest second counted; buckets hold [head-60, head] */
    uint64_t total;                   /* sum of the buckets */
    uint32_t bucket[SHM_WIN_BUCKETS]; /* second s at bucket[floormod(s, 61)] */
    uint32_t pad;
} shm_window_t;

/* Floor division and modulo that also work for negative numerators (inline: every
 * admission runs them for each candidate). */
static inline int64_t shm_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static inline int64_t shm_floormod(int64_t a, int64_t b)
{
    return a - shm_floordiv(a, b) * b;
}

/* Empty window. */
void shm_window_reset(shm_window_t *w);

/* Move head forward to now_sec, dropping the seconds that leave. now_sec <= head: no-op. */
void shm_window_advance(shm_window_t *w, int64_t now_sec);

/* Sum at now_sec without modifying w (for readers): what advance would leave. */
uint64_t shm_window_used(const shm_window_t *w, int64_t now_sec);

/* With w advanced to now_sec: 1 if total + cost <= limit. Otherwise 0 and *retry_ms = the
 * earliest ms at which enough old seconds have left for cost to fit (cost <= limit
 * required, else it is clamped to limit). */
int shm_window_fits(const shm_window_t *w, uint64_t limit, uint64_t cost, int64_t *retry_ms);

/* Add amount at second head (after advance). Saturates. */
void shm_window_add(shm_window_t *w, uint64_t amount);

/* Add (delta > 0) or remove (delta < 0, never below 0) at second sec if it is still in the
 * window; otherwise nothing. For reconciling and refunding a reservation. */
void shm_window_adjust(shm_window_t *w, int64_t sec, int64_t delta);

/* Re-base: move every second by delta_sec (negative: back in time) keeping the counts. */
void shm_window_shift(shm_window_t *w, int64_t delta_sec);

#endif
