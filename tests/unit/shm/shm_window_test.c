/* shm_window_test.c - the rolling window as pure functions, and percentiles. */
#include <stdint.h>
#include <string.h>

#include "shm/shm.h"
#include "shm/shm_window.h"
#include "t.h"

static shm_window_t fresh(int64_t sec)
{
    shm_window_t w;
    memset(&w, 0, sizeof(w));
    w.head_sec = sec;
    return w;
}

static void test_floor(void)
{
    T_EQ_INT(shm_floordiv(-1, 1000), -1, "floordiv(-1, 1000) = -1");
    T_EQ_INT(shm_floordiv(-1000, 1000), -1, "floordiv(-1000, 1000) = -1");
    T_EQ_INT(shm_floordiv(1999, 1000), 1, "floordiv(1999, 1000) = 1");
    T_EQ_INT(shm_floormod(-1, 61), 60, "floormod(-1, 61) = 60");
    T_EQ_INT(shm_floormod(122, 61), 0, "floormod(122, 61) = 0");
}

/* A burst of N at second 59, then nothing until it slides out. */
static void test_burst_edge(void)
{
    const uint64_t N = 100;
    shm_window_t w = fresh(0);
    int64_t retry = 0;
    shm_window_advance(&w, 59);
    int all_fit = 1;
    for (uint64_t i = 0; i < N; i++) {
        if (!shm_window_fits(&w, N, 1, &retry))
            all_fit = 0;
        shm_window_add(&w, 1);
    }
    T_OK(all_fit, "a burst of N at once is allowed");
    T_EQ_INT(w.total, N, "burst of N counted at second 59");
    T_OK(!shm_window_fits(&w, N, 1, &retry), "N+1 refused at second 59");
    T_EQ_INT(retry, (59 + 61) * 1000, "retry when second 59 is more than 60 s old");
    int refused_all = 1;
    for (int64_t s = 60; s < 120; s++) {
        shm_window_advance(&w, s);
        int64_t r2;
        if (shm_window_fits(&w, N, 1, &r2) || r2 != retry)
            refused_all = 0;
    }
    T_OK(refused_all, "refused at every second 60..119 with the same retry time");
    shm_window_advance(&w, 120);
    T_EQ_INT(w.total, 0, "at second 120 the burst has left");
    T_OK(shm_window_fits(&w, N, N, &retry), "a full burst fits again");
}

static void test_sliding(void)
{
    shm_window_t w = fresh(1000);
    int64_t retry = 0;
    /* 10 per second for 10 seconds with limit 100 */
    for (int64_t s = 1000; s < 1010; s++) {
        shm_window_advance(&w, s);
        shm_window_add(&w, 10);
    }
    T_EQ_INT(w.total, 100, "100 counted over 10 seconds");
    T_OK(!shm_window_fits(&w, 100, 1, &retry), "full");
    T_EQ_INT(retry, 1061000, "one slot frees when second 1000 leaves (1061 s)");
    T_OK(!shm_window_fits(&w, 100, 25, &retry), "25 do not fit");
    T_EQ_INT(retry, 1063000, "25 fit when seconds 1000..1002 have left");
    T_EQ_INT(shm_window_used(&w, 1060), 100, "used at 1060: all");
    T_EQ_INT(shm_window_used(&w, 1061), 90, "used at 1061 (read-only): 90");
    T_EQ_INT(w.total, 100, "shm_window_used does not modify");
    shm_window_advance(&w, 1065);
    T_EQ_INT(w.total, 50, "advance drops 5 seconds");
    shm_window_advance(&w, 2000);
    T_EQ_INT(w.total, 0, "a long gap empties it");
    T_OK(shm_window_fits(&w, 100, 500, &retry), "cost above the limit is clamped on empty");
}

static void test_adjust_shift(void)
{
    shm_window_t w = fresh(500);
    shm_window_add(&w, 40);
    shm_window_advance(&w, 510);
    shm_window_adjust(&w, 500, -15);
    T_EQ_INT(w.total, 25, "reconcile down in the admission second");
    shm_window_adjust(&w, 500, -100);
    T_EQ_INT(w.total, 0, "never below zero");
    shm_window_adjust(&w, 505, 30);
    T_EQ_INT(w.total, 30, "reconcile up");
    shm_window_adjust(&w, 400, 30);
    T_EQ_INT(w.total, 30, "a second out of the window is ignored");
    shm_window_adjust(&w, 600, 30);
    T_EQ_INT(w.total, 30, "a second in the future is ignored");
    shm_window_shift(&w, -3600);
    T_EQ_INT(w.head_sec, 510 - 3600, "shift moves head");
    T_EQ_INT(w.total, 30, "shift keeps the count");
    int64_t retry;
    T_OK(!shm_window_fits(&w, 30, 1, &retry), "still full after shift");
    T_EQ_INT(retry, (505 - 3600 + 61) * 1000, "and leaves 61 s after its shifted second");
}

static void test_percentiles(void)
{
    uint32_t v[100];
    shm_pct_t p;
    for (unsigned i = 0; i < 100; i++)
        v[i] = 100 - i; /* 100..1 */
    shm_percentiles(v, 100, &p);
    T_EQ_INT(p.p50, 50, "p50 of 1..100");
    T_EQ_INT(p.p95, 95, "p95 of 1..100");
    T_EQ_INT(p.p99, 99, "p99 of 1..100");
    T_EQ_INT(v[0], 100, "input not modified");
    shm_percentiles(v, 0, &p);
    T_EQ_INT(p.p99, 0, "no samples: 0");
    uint32_t one = 7;
    shm_percentiles(&one, 1, &p);
    T_OK(p.p50 == 7 && p.p99 == 7, "one sample");
}

int main(void)
{
    test_floor();
    test_burst_edge();
    test_sliding();
    test_adjust_shift();
    test_percentiles();
    return t_done();
}
