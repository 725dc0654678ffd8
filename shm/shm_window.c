/* shm_window.c - rolling windows: see shm_window.h. Pure functions, no store. */
#include "shm/shm_window.h"

#include <string.h>

void shm_window_reset(shm_window_t *w)
{
    int64_t head = w->head_sec;
    memset(w, 0, sizeof(*w));
    w->head_sec = head;
}

void shm_window_advance(shm_window_t *w, int64_t now_sec)
{
    if (now_sec <= w->head_sec)
        return;
    if (now_sec - w->head_sec >= SHM_WIN_BUCKETS) {
        memset(w->bucket, 0, sizeof(w->bucket));
        w->total = 0;
    } else {
        for (int64_t s = w->head_sec + 1; s <= now_sec; s++) {
            uint32_t *b = &w->bucket[shm_floormod(s, SHM_WIN_BUCKETS)];
            w->total -= *b;
            *b = 0;
        }
    }
    w->head_sec = now_sec;
}

uint64_t shm_window_used(const shm_window_t *w, int64_t now_sec)
{
    if (now_sec <= w->head_sec)
        return w->total;
    if (now_sec - w->head_sec >= SHM_WIN_BUCKETS)
        return 0;
    uint64_t sum = w->total;
    for (int64_t s = w->head_sec + 1; s <= now_sec; s++)
        sum -= w->bucket[shm_floormod(s, SHM_WIN_BUCKETS)];
    return sum;
}

int shm_window_fits(const shm_window_t *w, uint64_t limit, uint64_t cost, int64_t *retry_ms)
{
    if (cost > limit)
        cost = limit;
    if (w->total + cost <= limit)
        return 1;
    /* Seconds leave oldest first; find the one whose departure frees enough. */
    uint64_t need = w->total + cost - limit, freed = 0;
    int64_t oldest = w->head_sec - (SHM_WIN_BUCKETS - 1);
    for (int64_t s = oldest; s <= w->head_sec; s++) {
        freed += w->bucket[shm_floormod(s, SHM_WIN_BUCKETS)];
        if (freed >= need) {
            *retry_ms = (s + SHM_WIN_BUCKETS) * 1000;
            return 0;
        }
    }
    /* Unreachable while total equals the bucket sum; be safe: one full window. */
    *retry_ms = (w->head_sec + SHM_WIN_BUCKETS) * 1000;
    return 0;
}

void shm_window_add(shm_window_t *w, uint64_t amount)
{
    uint32_t *b = &w->bucket[shm_floormod(w->head_sec, SHM_WIN_BUCKETS)];
    if (amount > UINT32_MAX - *b)
        amount = UINT32_MAX - *b;
    *b += (uint32_t)amount;
    w->total += amount;
}

void shm_window_adjust(shm_window_t *w, int64_t sec, int64_t delta)
{
    if (sec > w->head_sec || sec <= w->head_sec - SHM_WIN_BUCKETS || delta == 0)
        return;
    uint32_t *b = &w->bucket[shm_floormod(sec, SHM_WIN_BUCKETS)];
    if (delta > 0) {
        uint64_t add = (uint64_t)delta;
        if (add > UINT32_MAX - *b)
            add = UINT32_MAX - *b;
        *b += (uint32_t)add;
        w->total += add;
    } else {
        uint64_t sub = (uint64_t)(-delta);
        if (sub > *b)
            sub = *b;
        *b -= (uint32_t)sub;
        w->total -= sub;
    }
}

void shm_window_shift(shm_window_t *w, int64_t delta_sec)
{
    uint32_t old[SHM_WIN_BUCKETS];
    memcpy(old, w->bucket, sizeof(old));
    for (int64_t s = w->head_sec - (SHM_WIN_BUCKETS - 1); s <= w->head_sec; s++)
        w->bucket[shm_floormod(s + delta_sec, SHM_WIN_BUCKETS)] =
            old[shm_floormod(s, SHM_WIN_BUCKETS)];
    w->head_sec += delta_sec;
}
