/* sse.c - the SSE reader; see sse.h. */
#include "server/xlate/sse.h"

#include <string.h>

void sse_reader_init(sse_reader_t *r)
{
    memset(r, 0, sizeof(*r));
}

void sse_reader_free(sse_reader_t *r)
{
    buf_free(&r->line);
    buf_free(&r->data);
}

static int dispatch(sse_reader_t *r, sse_event_cb cb, void *ud)
{
    int rc = 0;

    if (r->has_data)
        rc = cb(ud, r->event, r->data.data ? r->data.data : "", r->data.len);
    r->event[0] = '\0';
    buf_reset(&r->data);
    r->has_data = 0;
    return rc;
}

/* One line (without its end of line). */
static int line(sse_reader_t *r, const char *l, size_t n, sse_event_cb cb, void *ud)
{
    const char *colon, *v;
    size_t name_len, vlen;

    if (n == 0)
        return dispatch(r, cb, ud);
    if (l[0] == ':')
        return 0; /* a comment */
    colon = memchr(l, ':', n);
    name_len = colon ? (size_t)(colon - l) : n;
    v = colon ? colon + 1 : l + n;
    vlen = (size_t)(l + n - v);
    if (vlen && v[0] == ' ')
        v++, vlen--;
    if (name_len == 4 && memcmp(l, "data", 4) == 0) {
        if (r->data.len + vlen + 1 > SSE_EVENT_MAX)
            return -1;
        if ((r->has_data && buf_append(&r->data, "\n", 1) != 0) ||
            buf_append(&r->data, v, vlen) != 0)
            return -1;
        r->has_data = 1;
    } else if (name_len == 5 && memcmp(l, "event", 5) == 0) {
        size_t k = vlen < sizeof(r->event) - 1 ? vlen : sizeof(r->event) - 1;
        memcpy(r->event, v, k);
        r->event[k] = '\0';
    }
    return 0;
}

int sse_feed(sse_reader_t *r, const char *p, size_t len, sse_event_cb cb, void *ud)
{
    const char *end = p + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        int rc;

        if (r->line.len + n > SSE_EVENT_MAX)
            return -1;
        if (!nl) { /* the rest of a line comes with the next bytes */
            return buf_append(&r->line, p, n) != 0 ? -1 : 0;
        }
        if (r->line.len) {
            if (buf_append(&r->line, p, n) != 0)
                return -1;
            n = r->line.len;
            if (n && r->line.data[n - 1] == '\r')
                n--;
            rc = line(r, r->line.data, n, cb, ud);
            buf_reset(&r->line);
        } else {
            if (n && p[n - 1] == '\r')
                n--;
            rc = line(r, p, n, cb, ud);
        }
        if (rc != 0)
            return rc;
        p = nl + 1;
    }
    return 0;
}

int sse_finish(sse_reader_t *r, sse_event_cb cb, void *ud)
{
    int rc = 0;

    if (r->line.len) {
        size_t n = r->line.len;
        if (r->line.data[n - 1] == '\r')
            n--;
        rc = line(r, r->line.data, n, cb, ud);
        buf_reset(&r->line);
    }
    if (rc == 0)
        rc = dispatch(r, cb, ud);
    return rc;
}
