/* fuzz_admin_query.c - the admin listener's query strings and path segments
 * (server/obs/query.h): any bytes decode or are refused without a fault; what decodes has no
 * NUL, fits, is never longer than its input, and a decoded value holds no '%' escape that
 * encodes back differently (decoding the re-encoded text gives it again). */
#include "server/obs/query.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char q[4096], out[64], enc[64 * 3 + 1], back[64];
    if (size >= sizeof(q))
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    /* as a path segment */
    if (query_unescape(q, size, out, sizeof(out)) == 0) {
        size_t n = strlen(out);
        if (n > size || n >= sizeof(out))
            abort();
        size_t e = 0;
        for (size_t i = 0; i < n; i++)
            e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", (unsigned char)out[i]);
        if (query_unescape(enc, e, back, sizeof(back)) != 0 || strcmp(back, out) != 0)
            abort();
    }
    /* as a query string (up to the first NUL, as the server sees it) */
    static const char *const names[] = {"range", "scope", "name", "limit", "duration_ms", "a"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int rc = query_param(q, names[i], out, sizeof(out));
        if (rc < -1 || rc > 1 || (rc == 1 && strlen(out) >= sizeof(out)))
            abort();
        if (rc == 1 && !strstr(q, names[i]))
            abort();
    }
    if (query_param(q, "range", out, 0) == 1)
        abort(); /* nothing fits in 0 bytes */
    return 0;
}
