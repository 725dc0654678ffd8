/* usage.c - keep the tail of a body, find the last usage object in it. */
#include "server/api/usage.h"

#include <string.h>

void usage_tail_feed(usage_tail_t *t, const char *data, size_t len)
{
    if (t->head_len < USAGE_HEAD) {
        size_t n = USAGE_HEAD - t->head_len < len ? USAGE_HEAD - t->head_len : len;
        memcpy(t->head + t->head_len, data, n);
        t->head_len += n;
    }
    if (len >= USAGE_TAIL) {
        memcpy(t->buf, data + len - USAGE_TAIL, USAGE_TAIL);
        t->len = USAGE_TAIL;
        return;
    }
    if (t->len + len > USAGE_TAIL) {
        size_t drop = t->len + len - USAGE_TAIL;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, data, len);
    t->len += len;
}

static int json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The last "usage" member whose value is an object ("usage" as a string value or inside
 * other text does not count). Scans back from the end, quote to quote, so the usual case
 * (usage near the end) touches a few bytes only. */
static const char *find_usage(const char *hay, size_t n)
{
    static const char needle[] = "\"usage\"";
    const size_t m = sizeof(needle) - 1;
    const char *end = hay + n;
    size_t lim = n >= m ? n - m + 1 : 0; /* candidate starts are < lim */

    while (lim > 0) {
        const char *q = memrchr(hay, '"', lim);
        if (!q)
            return NULL;
        if (memcmp(q, needle, m) == 0) {
            const char *e = q + m;
            while (e < end && json_ws(*e))
                e++;
            if (e < end && *e == ':') {
                e++;
                while (e < end && json_ws(*e))
                    e++;
                if (e < end && *e == '{')
                    return q;
            }
        }
        lim = (size_t)(q - hay);
    }
    return NULL;
}

long long usage_number(const char *p, const char *end, const char *name)
{
    char key[72]; /* "name", with its quotes */
    size_t m = strlen(name);
    const char *q;

    if (m + 2 > sizeof(key) || p >= end)
        return -1;
    key[0] = '"';
    memcpy(key + 1, name, m);
    key[m + 1] = '"';
    /* memmem: the scans of every response's head and tail run at memory speed */
    if (!(q = memmem(p, (size_t)(end - p), key, m + 2)))
        return -1;
    p = q + m + 2;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    long long v = 0;
    while (p < end && *p >= '0' && *p <= '9' && v < 1000000000000LL)
        v = v * 10 + (*p++ - '0');
    return v > UINT32_MAX ? UINT32_MAX : v;
}

uint32_t usage_count_events(const char *data, size_t len)
{
    uint32_t n = 0;
    const char *p = data, *end = data + len;

    if (len >= 5 && memcmp(data, "data:", 5) == 0)
        n++;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        p++;
        if ((size_t)(end - p) >= 5 && memcmp(p, "data:", 5) == 0)
            n++;
    }
    return n;
}

int usage_object(const char *hay, size_t n, const char **start, const char **end)
{
    const char *u = find_usage(hay, n), *close, *stop = hay + n;
    int depth = 0;

    if (!u)
        return 0;
    for (close = u; close < stop; close++) {
        if (*close == '{')
            depth++;
        else if (*close == '}' && --depth <= 0)
            break;
    }
    *start = u;
    *end = close;
    return 1;
}

int usage_tail_scan(const usage_tail_t *t, uint32_t *prompt, uint32_t *completion)
{
    const char *u, *close;
    long long p, c;

    if (!usage_object(t->buf, t->len, &u, &close))
        return 0;
    p = usage_number(u, close, "prompt_tokens");
    c = usage_number(u, close, "completion_tokens");
    if (p < 0)
        return 0;
    *prompt = (uint32_t)p;
    *completion = c < 0 ? 0 : (uint32_t)c;
    return 1;
}
