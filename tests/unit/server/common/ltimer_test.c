/* ltimer_test.c - lazy timers on a real loop: a deadline fires in the same iteration as
 * uv_timer_start would fire it and never earlier, whether it was moved later (no libuv call)
 * or earlier (re-armed), stopped, replaced from its own callback, or closed while armed. */
#include "server/common/ltimer.h"
#include "t.h"

#include <stddef.h>
#include <stdlib.h>

typedef struct obs_s {
    ltimer_t lt;
    int fired;
    uint64_t fired_at; /* loop time */
    const char *which;
    int closed;
} obs_t;

static uv_loop_t loop;

static void mark(obs_t *o, const char *which)
{
    o->fired++;
    o->fired_at = uv_now(&loop);
    o->which = which;
}

static void on_a_cb(uv_timer_t *t)
{
    mark(t->data, "a");
}

static void on_b_cb(uv_timer_t *t)
{
    mark(t->data, "b");
}

/* Sets a new deadline from inside its own callback (as a connection going idle does). */
static void on_again_cb(uv_timer_t *t)
{
    obs_t *o = t->data;

    mark(o, "again");
    if (o->fired == 1)
        ltimer_start(&o->lt, on_again_cb, 20);
}

static void on_closed_cb(uv_handle_t *h)
{
    ((obs_t *)h->data)->closed = 1;
}

static void close_obs(obs_t *o)
{
    uv_close(ltimer_handle(&o->lt), on_closed_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
}

int main(void)
{
    obs_t o;
    uint64_t t0;

    uv_loop_init(&loop);

    /* a plain deadline */
    memset(&o, 0, sizeof(o));
    ltimer_init(&loop, &o.lt, &o);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    ltimer_start(&o.lt, on_a_cb, 30);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 1, "a deadline fires once");
    T_OK(o.fired_at >= t0 + 30, "not before its time (%llu ms)",
         (unsigned long long)(o.fired_at - t0));
    T_OK(!o.lt.armed, "the uv timer is no longer armed once it fired");

    /* moved later: the armed uv timer stays, fires early, and is armed again for the rest */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    ltimer_start(&o.lt, on_a_cb, 20);
    ltimer_start(&o.lt, on_b_cb, 60);
    T_EQ_INT((long long)o.lt.due, (long long)(t0 + 20), "moving it later keeps the armed timer");
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 1, "moved later: fires once");
    T_EQ_STR(o.which, "b", "with the callback set last");
    T_OK(o.fired_at >= t0 + 60, "at the later deadline, not the first (%llu ms)",
         (unsigned long long)(o.fired_at - t0));

    /* moved earlier: re-armed */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    ltimer_start(&o.lt, on_a_cb, 5000);
    ltimer_start(&o.lt, on_b_cb, 20);
    T_EQ_INT((long long)o.lt.due, (long long)(t0 + 20), "moving it earlier re-arms it");
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 1, "moved earlier: fires once");
    T_EQ_STR(o.which, "b", "with the callback set last");
    T_OK(o.fired_at >= t0 + 20 && o.fired_at < t0 + 5000, "at the earlier deadline (%llu ms)",
         (unsigned long long)(o.fired_at - t0));

    /* stopped: the stale uv timer fires, nothing runs, and the loop ends */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    ltimer_start(&o.lt, on_a_cb, 10);
    ltimer_stop(&o.lt);
    T_OK(o.lt.armed, "stopping leaves the uv timer armed");
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 0, "a stopped deadline does not run");
    T_OK(!o.lt.armed && !o.lt.cb, "and the stale timer is gone");

    /* stopped, then set again later than the stale one: runs once, at the new deadline */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    ltimer_start(&o.lt, on_a_cb, 10);
    ltimer_stop(&o.lt);
    ltimer_start(&o.lt, on_b_cb, 40);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 1, "stop then a later start: fires once");
    T_EQ_STR(o.which, "b", "the later one");
    T_OK(o.fired_at >= t0 + 40, "not before its time (%llu ms)",
         (unsigned long long)(o.fired_at - t0));

    /* a callback that sets the next deadline */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    ltimer_start(&o.lt, on_again_cb, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(o.fired, 2, "a deadline set from the callback runs too");
    T_OK(o.fired_at >= t0 + 30, "after both (%llu ms)", (unsigned long long)(o.fired_at - t0));

    /* zero: the next timer phase, as uv_timer_start(0) */
    memset(&o.fired, 0, sizeof(o) - offsetof(obs_t, fired));
    ltimer_start(&o.lt, on_a_cb, 60000);
    ltimer_start(&o.lt, on_b_cb, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    T_EQ_INT(o.fired, 1, "0 ms runs on the next loop iteration");
    close_obs(&o);
    T_OK(o.closed, "closed");

    /* closed while armed (stale and live): nothing runs, the close callback does */
    {
        obs_t *h = calloc(1, sizeof(*h));
        ltimer_init(&loop, &h->lt, h);
        ltimer_start(&h->lt, on_a_cb, 1);
        ltimer_start(&h->lt, on_b_cb, 50);
        uv_close(ltimer_handle(&h->lt), on_closed_cb);
        uv_run(&loop, UV_RUN_DEFAULT);
        T_OK(h->closed && h->fired == 0, "closing an armed lazy timer stops it");
        free(h);
    }
    T_EQ_INT(uv_loop_close(&loop), 0, "no handle left on the loop");
    return t_done();
}
