/* hdr.c - header lookup; see hdr.h. */
#include "server/common/hdr.h"

#include <string.h>
#include <strings.h>

int hdr_name_is(const char *name, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    return len == n && strncasecmp(name, lower, n) == 0;
}

const char *hdr_find(const http_hdr_t *hdrs, size_t n, const char *lower, size_t *vlen)
{
    for (size_t i = 0; i < n; i++) {
        if (hdr_name_is(hdrs[i].name, hdrs[i].name_len, lower)) {
            *vlen = hdrs[i].value_len;
            return hdrs[i].value;
        }
    }
    return NULL;
}
