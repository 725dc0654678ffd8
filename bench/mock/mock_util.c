/* mock_util.c - growable buffers, JSON string escaping, fault sets and ids of the mock
 * upstream. */

#include "mock.h"

#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void *mock_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "mock-upstream: out of memory (asked for %zu bytes)\n", n);
        abort();
    }
    return q;
}

void mock_buf_reserve(mock_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->p = mock_xrealloc(b->p, cap);
    b->cap = cap;
}

void mock_buf_append(mock_buf_t *b, const void *p, size_t n)
{
    mock_buf_reserve(b, n + 1);
    if (n > 0) /* p may be NULL then: an empty buffer never allocated */
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0'; /* so that short buffers can be used as C strings */
}

void mock_buf_printf(mock_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    mock_buf_reserve(b, 128);
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        mock_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void mock_buf_json_escape(mock_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
            j++;
        if (j > i) {
            mock_buf_reserve(b, j - i + 1);
            memcpy(b->p + b->len, s + i, j - i);
            b->len += j - i;
        }
        if (j == n)
            break;
        unsigned char ch = (unsigned char)s[j];
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        size_t k = 2;
        switch (ch) {
        case '"':
        case '\\':
            esc[1] = (char)ch;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            k = 6;
        }
        mock_buf_reserve(b, k + 1);
        memcpy(b->p + b->len, esc, k);
        b->len += k;
        i = j + 1;
    }
    mock_buf_reserve(b, 1);
    b->p[b->len] = '\0';
}

void mock_buf_free(mock_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void mock_fault_init(mock_fault_t *f)
{
    f->status = 0;
    f->retry_after = -1;
    f->delay_ms = -1;
    f->chunk_delay_ms = -1;
    f->chunks = -1;
    f->content_bytes = -1;
    f->reset_after = -1;
    f->truncate = -1;
    f->bad_chunking = -1;
    f->close = -1;
    f->response_status = MOCK_RS_UNSET;
    f->tool_calls = -1;
    f->tool_text = -1;
    f->error_code[0] = '\0';
    f->error_message[0] = '\0';
    f->tool_name[0] = '\0';
}

void mock_fault_overlay(mock_fault_t *dst, const mock_fault_t *src)
{
    if (src->status)
        dst->status = src->status;
    if (src->retry_after >= 0)
        dst->retry_after = src->retry_after;
    if (src->delay_ms >= 0)
        dst->delay_ms = src->delay_ms;
    if (src->chunk_delay_ms >= 0)
        dst->chunk_delay_ms = src->chunk_delay_ms;
    if (src->chunks >= 0)
        dst->chunks = src->chunks;
    if (src->content_bytes >= 0)
        dst->content_bytes = src->content_bytes;
    if (src->reset_after >= 0)
        dst->reset_after = src->reset_after;
    if (src->truncate >= 0)
        dst->truncate = src->truncate;
    if (src->bad_chunking >= 0)
        dst->bad_chunking = src->bad_chunking;
    if (src->close >= 0)
        dst->close = src->close;
    if (src->response_status != MOCK_RS_UNSET)
        dst->response_status = src->response_status;
    if (src->error_code[0])
        memcpy(dst->error_code, src->error_code, sizeof dst->error_code);
    if (src->error_message[0])
        memcpy(dst->error_message, src->error_message, strlen(src->error_message) + 1);
    if (src->tool_calls >= 0)
        dst->tool_calls = src->tool_calls;
    if (src->tool_text >= 0)
        dst->tool_text = src->tool_text;
    if (src->tool_name[0])
        memcpy(dst->tool_name, src->tool_name, strlen(src->tool_name) + 1);
}

/* ---- ids ------------------------------------------------------------------------------- */

static uint64_t id_seed[2]; /* written once before the workers start */
static atomic_uint_fast64_t id_counter;

void mock_id_init(void)
{
    if (getrandom(id_seed, sizeof id_seed, GRND_NONBLOCK) != (ssize_t)sizeof id_seed) {
        id_seed[0] = (uint64_t)time(NULL) * 6364136223846793005u;
        id_seed[1] = (uint64_t)getpid() * 1442695040888963407u;
    }
}

/* splitmix64's finaliser: a bijection of 64-bit values. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

void mock_id(char *buf, const char *prefix, int nhex)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t n = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
    size_t pl = strlen(prefix);
    memcpy(buf, prefix, pl);
    /* The first 16 digits are a bijection of the counter, so ids never repeat. */
    for (int i = 0; i < nhex; i++) {
        if (i % 16 == 0)
            n = i == 0 ? mix64(n ^ id_seed[0]) : mix64(n + id_seed[1]);
        buf[pl + (size_t)i] = hex[(n >> (60 - 4 * (i % 16))) & 15];
    }
    buf[pl + (size_t)nhex] = '\0';
}
