/* buf.h - a growable byte buffer (heads, bodies, error responses).
 *
 * A zeroed buf_t is empty and valid. Appends grow geometrically; on allocation failure
 * they return -1 and leave the buffer as it was. buf_free releases and re-zeroes.
 */
#ifndef LLMGATE_BUF_H
#define LLMGATE_BUF_H

#include <stddef.h>

typedef struct buf_s {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *data, size_t len);
int buf_appends(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf_t *b); /* length 0, memory kept */
void buf_free(buf_t *b);

#endif
