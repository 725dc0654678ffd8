/* fuzz_usage.c - the usage scanner (server/api/usage.c) over response bodies cut anywhere.
 *
 * The input is a response body (JSON or SSE); the first two bytes seed the chunking. The
 * body is fed in chunks of pseudo-random sizes (1 byte to more than the tail), as upstream
 * reads would deliver it, and checked against feeding it whole:
 *   - the tail is exactly the last min(len, USAGE_TAIL) bytes of the body;
 *   - the scan result does not depend on the chunking.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api/usage.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_usage: invariant violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static usage_tail_t whole, cut; /* 4 KiB each: not on the stack */
    uint32_t seed, p1 = 0, c1 = 0, p2 = 0, c2 = 0;
    const char *body;
    size_t len, off = 0;

    if (size < 2)
        return 0;
    seed = (uint32_t)data[0] << 8 | data[1];
    body = (const char *)data + 2;
    len = size - 2;

    whole.len = 0;
    usage_tail_feed(&whole, body, len);
    cut.len = 0;
    while (off < len) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % (seed & 0x100 ? 64 : USAGE_TAIL + 100);
        if (n > len - off)
            n = len - off;
        usage_tail_feed(&cut, body + off, n);
        off += n;
    }
    usage_tail_feed(&cut, body, 0); /* an empty read changes nothing */

    size_t keep = len < USAGE_TAIL ? len : USAGE_TAIL;
    check(whole.len == keep && memcmp(whole.buf, body + len - keep, keep) == 0,
          "whole: tail is the end of the body");
    check(cut.len == keep && memcmp(cut.buf, body + len - keep, keep) == 0,
          "chunked: tail is the end of the body");
    int f1 = usage_tail_scan(&whole, &p1, &c1);
    int f2 = usage_tail_scan(&cut, &p2, &c2);
    check(f1 == f2 && p1 == p2 && c1 == c2, "scan does not depend on chunking");
    check(f1 == 0 || f1 == 1, "scan result");
    return 0;
}
