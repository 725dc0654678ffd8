/* ltimer.c - lazy one-shot timers (design note in ltimer.h). */
#include "server/common/ltimer.h"

#include <stddef.h>

static void ltimer_arm(ltimer_t *t, uint64_t due);

static void on_ltimer_cb(uv_timer_t *h)
{
    ltimer_t *t = (ltimer_t *)((char *)h - offsetof(ltimer_t, handle));
    uint64_t now = uv_now(h->loop);
    uv_timer_cb cb = t->cb;

    t->armed = 0;
    if (!cb)
        return; /* stopped since it was armed */
    if (t->deadline > now) {
        ltimer_arm(t, t->deadline); /* moved later since it was armed */
        return;
    }
    t->cb = NULL; /* before the call: the callback may set a new deadline */
    cb(h);
}

static void ltimer_arm(ltimer_t *t, uint64_t due)
{
    uint64_t now = uv_now(t->handle.loop);

    if (uv_timer_start(&t->handle, on_ltimer_cb, due > now ? due - now : 0, 0) == 0) {
        t->armed = 1;
        t->due = due;
    }
}

int ltimer_init(uv_loop_t *loop, ltimer_t *t, void *data)
{
    int rc = uv_timer_init(loop, &t->handle);

    t->handle.data = data;
    t->cb = NULL;
    t->deadline = t->due = 0;
    t->armed = 0;
    return rc;
}

void ltimer_start(ltimer_t *t, uv_timer_cb cb, uint64_t ms)
{
    uint64_t now = uv_now(t->handle.loop);
    /* as uv_timer_start: a deadline that would overflow is "never" */
    uint64_t deadline = now + ms < now ? UINT64_MAX : now + ms;

    t->cb = cb;
    t->deadline = deadline;
    if (!t->armed || deadline < t->due)
        ltimer_arm(t, deadline);
}

void ltimer_stop(ltimer_t *t)
{
    t->cb = NULL;
}
