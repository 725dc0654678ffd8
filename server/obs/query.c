/* query.c - query strings of admin requests (see query.h). */
#include "server/obs/query.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int query_unescape(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1; /* "%" or "%x" at the end */
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi << 4 | lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

int query_param(const char *query, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        size_t l = strcspn(p, "&");
        if (l > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
            return query_unescape(p + nl + 1, l - nl - 1, out, outlen) == 0 ? 1 : -1;
        if (l == nl && memcmp(p, name, nl) == 0) {
            if (outlen == 0)
                return -1;
            out[0] = '\0';
            return 1;
        }
        p += l + (p[l] == '&');
    }
    return 0;
}
