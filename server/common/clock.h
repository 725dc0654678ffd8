/* clock.h - one worker's clock readings, taken once per loop phase.
 *
 * Design note
 * -----------
 * A request needs "now" half a dozen times (its start, each attempt's start, first byte and
 * end, deadlines, the wall-clock time of cooldowns and of its log line), and under load one
 * loop iteration serves tens of requests. loop_clock_ns and loop_clock_wall_ms read the clock
 * once and return that reading until loop_clock_drop: the worker drops the readings before
 * poll (nothing read before a wait is used after it) and when its check starts (admissions
 * and what follows them). So a reading is taken after the events it stamps were polled and
 * is never ahead of the real time: latencies are never negative (readings only grow), a
 * deadline counted from a reading starts no earlier than its event, and one checked against
 * a reading is seen late, never early. A value is off by at most the callbacks run since the
 * reading (microseconds; about half a millisecond at full load), and two stamps of the same
 * loop phase are equal.
 *
 * Threads: a loop_clock_t belongs to one loop's thread.
 */
#ifndef LLMGATE_CLOCK_H
#define LLMGATE_CLOCK_H

#include <stdint.h>
#include <time.h>
#include <uv.h>

typedef struct loop_clock_s {
    uint64_t ns;     /* monotonic reading (uv_hrtime), 0 = none */
    int64_t wall_ms; /* CLOCK_REALTIME reading (ms since the epoch), 0 = none */
} loop_clock_t;

/* The wall clock now (ms since the epoch), read at each call: for code without a loop clock
 * (the main loop's timers, the admin listener, the alert thread). Any thread. */
static inline int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic time (ns, as uv_hrtime) at most one loop phase old. */
static inline uint64_t loop_clock_ns(loop_clock_t *c)
{
    if (!c->ns)
        c->ns = uv_hrtime();
    return c->ns;
}

/* Wall-clock time (ms since the epoch), read as loop_clock_ns. */
static inline int64_t loop_clock_wall_ms(loop_clock_t *c)
{
    if (!c->wall_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    return c->wall_ms;
}

/* Forget the readings: taken before a wait, they must not be used after it. */
static inline void loop_clock_drop(loop_clock_t *c)
{
    c->ns = 0;
    c->wall_ms = 0;
}

#endif
