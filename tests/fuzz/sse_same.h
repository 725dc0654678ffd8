/* sse_same.h - for the stream translators' fuzz targets: whether two outputs are the same
 * events (xfast.h's fast path against jansson's): event by event, the same lines, where a
 * "data: " line's JSON is compared as values (json_equal), since the fast path copies a
 * string as the provider escaped it and jansson writes it its own way; other lines (event
 * names, data: [DONE]) byte for byte. Header-only: each target is one program. */
#ifndef LLMGATE_FUZZ_SSE_SAME_H
#define LLMGATE_FUZZ_SSE_SAME_H

#include <jansson.h>
#include <string.h>

/* The line at *p (up to '\n' or end): its start and length; *p moves past it. */
static const char *sse_same_line(const char **p, const char *end, size_t *n)
{
    const char *l = *p, *nl = memchr(l, '\n', (size_t)(end - l));

    *n = (size_t)((nl ? nl : end) - l);
    *p = nl ? nl + 1 : end;
    return l;
}

static int sse_same_data(const char *a, size_t an, const char *b, size_t bn, size_t flags)
{
    json_t *ja, *jb;
    int same;

    if (an == bn && memcmp(a, b, an) == 0)
        return 1;
    ja = json_loadb(a, an, flags, NULL);
    jb = json_loadb(b, bn, flags, NULL);
    same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

/* 1 if a[0..an) and b[0..bn) are the same events; flags: how the data's JSON is read. */
static int sse_same(const char *a, size_t an, const char *b, size_t bn, size_t flags)
{
    const char *pa = a ? a : "", *ea = pa + an, *pb = b ? b : "", *eb = pb + bn;

    while (pa < ea && pb < eb) {
        size_t na, nb;
        const char *la = sse_same_line(&pa, ea, &na), *lb = sse_same_line(&pb, eb, &nb);

        if (na >= 6 && nb >= 6 && memcmp(la, "data: ", 6) == 0 && memcmp(lb, "data: ", 6) == 0) {
            if (!sse_same_data(la + 6, na - 6, lb + 6, nb - 6, flags))
                return 0;
        } else if (na != nb || memcmp(la, lb, na) != 0) {
            return 0;
        }
    }
    return pa == ea && pb == eb;
}

#endif
