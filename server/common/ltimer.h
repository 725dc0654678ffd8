/* ltimer.h - a lazy one-shot timer: moving a timeout later costs no libuv call.
 *
 * Design note
 * -----------
 * A connection moves its one timeout at every step of a request (header, body, keep-alive
 * idle; connect, first byte, idle between reads, idle in the pool), nearly always to a later
 * deadline, and stops it while a request is served. uv_timer_start and uv_timer_stop each take
 * the timer out of libuv's heap and put it back. An ltimer keeps the deadline (loop time, ms,
 * as uv_timer_start computes it) and the callback itself, and starts its uv_timer_t only when
 * none is armed or the new deadline is earlier than the armed one; stopping only forgets the
 * deadline (the stale uv timer stays armed). When the uv timer fires:
 *   - no deadline (stopped): nothing;
 *   - the deadline is still ahead (it was moved later): armed again for the rest;
 *   - otherwise the deadline is forgotten and the callback runs (it may set a new one).
 * A callback therefore runs in the same loop iteration as with uv_timer_start (both compare
 * the loop's time with the same deadline), never earlier. A stale timer keeps the loop alive
 * until it fires: the owner closes the handle (uv_close(ltimer_handle(t), ...)), which stops
 * it at once, so nothing fires once the close is issued and the owner may be freed in the
 * close callback as before.
 *
 * The callback gets the uv_timer_t, whose data is the owner's (ltimer_init sets it).
 *
 * Threads: the loop's.
 */
#ifndef LLMGATE_LTIMER_H
#define LLMGATE_LTIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct ltimer_s {
    uv_timer_t handle;
    uv_timer_cb cb;    /* runs at deadline; NULL: no deadline */
    uint64_t deadline; /* loop time (ms) */
    uint64_t due;      /* loop time (ms) the uv timer is armed for, while armed */
    int armed;         /* the uv timer is started and has not fired */
} ltimer_t;

/* uv_timer_init, with data for the callbacks and the close callback. 0 or a libuv code. */
int ltimer_init(uv_loop_t *loop, ltimer_t *t, void *data);

/* Run cb in ms (from the loop's time, as uv_timer_start), replacing any deadline set. */
void ltimer_start(ltimer_t *t, uv_timer_cb cb, uint64_t ms);

/* Forget the deadline (a uv timer still armed fires and does nothing). */
void ltimer_stop(ltimer_t *t);

/* The handle, for uv_close. */
static inline uv_handle_t *ltimer_handle(ltimer_t *t)
{
    return (uv_handle_t *)&t->handle;
}

#endif
