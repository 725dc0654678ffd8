/* errors_test.c - server/common/errors.c: error_json never returns more than len-1 and always
 * NUL-terminates, for messages that grow past the buffer under JSON escaping; a cut body
 * is still valid JSON with all four members (the message is cut, never an escape, the
 * param/code fields or the closing braces); json_escape never cuts an escape. */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include <stdlib.h>
#include <string.h>

#include "server/common/errors.h"
#include "t.h"

/* Token t of s equals want (a JSON string with no escapes), or is the primitive null when
 * want is NULL. */
static int tok_is(const char *s, const jsmntok_t *t, const char *want)
{
    size_t n = (size_t)(t->end - t->start);

    if (!want)
        return t->type == JSMN_PRIMITIVE && n == 4 && memcmp(s + t->start, "null", 4) == 0;
    return t->type == JSMN_STRING && n == strlen(want) && memcmp(s + t->start, want, n) == 0;
}

/* s is {"error":{"message":"...","type":type,"param":param,"code":code}} exactly, with no
 * raw control byte; *msg_len gets the length of the message string as written. */
static int body_ok(const char *s, size_t len, const char *type, const char *param, const char *code,
                   size_t *msg_len)
{
    static const char *const names[] = {"message", "type", "param", "code"};
    const char *want[] = {NULL, type, param, code};
    jsmn_parser p;
    jsmntok_t tok[16];
    int n;

    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    jsmn_init(&p);
    n = jsmn_parse(&p, s, len, tok, 16);
    if (n != 11 || tok[0].type != JSMN_OBJECT || tok[0].size != 1 || tok[0].start != 0 ||
        (size_t)tok[0].end != len || !tok_is(s, &tok[1], "error") || tok[2].type != JSMN_OBJECT ||
        tok[2].size != 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        const jsmntok_t *k = &tok[3 + 2 * i], *v = &tok[4 + 2 * i];

        if (!tok_is(s, k, names[i]))
            return 0;
        if (i == 0 && v->type != JSMN_STRING)
            return 0;
        if (i > 0 && !tok_is(s, v, want[i]))
            return 0;
    }
    *msg_len = (size_t)(tok[4].end - tok[4].start);
    return 1;
}

static void test_exact(void)
{
    char j[256];
    size_t n;

    n = error_json(j, sizeof(j), "bad \"x\"\n\x01", "invalid_request_error", NULL, "c1");
    T_EQ_STR(j,
             "{\"error\":{\"message\":\"bad \\\"x\\\"\\n\\u0001\",\"type\":"
             "\"invalid_request_error\",\"param\":null,\"code\":\"c1\"}}",
             "a body that fits is written whole, escaped, null param");
    T_EQ_INT(n, strlen(j), "its length is returned");
    n = error_json(j, sizeof(j), NULL, "t", "p", NULL);
    T_EQ_STR(j, "{\"error\":{\"message\":null,\"type\":\"t\",\"param\":\"p\",\"code\":null}}",
             "a NULL message and code are JSON null");
    T_EQ_INT(n, strlen(j), "its length is returned");
    n = error_json(j, 0, "m", "t", NULL, NULL);
    T_EQ_INT(n, 0, "len 0: nothing written, 0 returned");
}

/* Messages that escape to more than the buffer, for buffer sizes from 1 to 1024; the
 * buffer is malloc'd to exactly len bytes so that ASan sees any write past it. */
static void test_cut(void)
{
    static const size_t sizes[] = {1, 2, 16, 64, 100, 128, 129, 200, 512, 1024};
    static const char *const params[] = {NULL, "model"};
    static const char *const codes[] = {NULL, "unknown_url"};
    char ctl[601], quotes[2001], mixed[1500];
    const char *msgs[3];

    memset(ctl, 0x01, 600);
    ctl[600] = '\0';
    memset(quotes, '"', 2000);
    quotes[2000] = '\0';
    for (size_t i = 0; i < sizeof(mixed) - 1; i++)
        mixed[i] = "a\x1f\\\"b\n"[i % 6];
    mixed[sizeof(mixed) - 1] = '\0';
    msgs[0] = ctl;
    msgs[1] = quotes;
    msgs[2] = mixed;

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (size_t mi = 0; mi < 3; mi++) {
            for (size_t pi = 0; pi < 2; pi++) {
                size_t len = sizes[si], n, mlen = 0;
                char *buf = malloc(len);
                const char *param = params[pi], *code = codes[pi];
                int fits, valid;

                memset(buf, 'Z', len);
                n = error_json(buf, len, msgs[mi], "invalid_request_error", param, code);
                fits = n < len && memchr(buf, '\0', len) && strlen(buf) == n;
                T_OK(fits, "len %zu, message %zu, param %s: returned %zu < len, = strlen", len, mi,
                     param ? param : "null", n);
                if (fits && len >= 128) {
                    valid = body_ok(buf, n, "invalid_request_error", param, code, &mlen);
                    T_OK(valid, "len %zu, message %zu, param %s: valid JSON, all four members", len,
                         mi, param ? param : "null");
                    if (!valid)
                        printf("#   body: %s\n", buf);
                    T_OK(len < 512 || mlen > len / 2,
                         "len %zu, message %zu: the message fills the room (%zu bytes)", len, mi,
                         mlen);
                }
                free(buf);
            }
        }
    }
}

/* 1 if s[0..n) is valid UTF-8 (no sequence cut short). */
static int utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;

        if ((c >= 0x80 && c < 0xc2) || c > 0xf4 || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

/* A message of multi-byte UTF-8 (2, 3 and 4 bytes) cut at every length: never inside a
 * sequence, so the body stays valid UTF-8 (JSON text is UTF-8; SDKs decode it). */
static void test_utf8_cut(void)
{
    static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char msg[1201], buf[256];

    for (size_t q = 0; q < 3; q++) {
        size_t k = strlen(seqs[q]), bad = 0;

        for (size_t i = 0; i + k < sizeof(msg); i += k)
            memcpy(msg + i, seqs[q], k);
        msg[(sizeof(msg) - 1) / k * k] = '\0';
        for (size_t len = 82; len <= sizeof(buf); len++) { /* 82: room for "" */
            size_t n = error_json(buf, len, msg, "invalid_request_error", NULL, NULL), mlen;

            bad += !(n < len && utf8_ok(buf, n) &&
                     body_ok(buf, n, "invalid_request_error", NULL, NULL, &mlen));
        }
        T_EQ_INT(bad, 0, "%zu-byte UTF-8 sequences cut at lengths 82..256: valid UTF-8 JSON", k);
    }
    char dst[8];
    T_EQ_INT(json_escape(dst, 3, "a\xe2\x82\xac", 4), 1,
             "json_escape: a cut drops a partial sequence");
    T_EQ_INT(json_escape(dst, 5, "a\xe2\x82\xac", 4), 4, "json_escape: a whole one is kept");
    T_EQ_INT(json_escape(dst, 3, "a\x80\x80", 3), 2,
             "json_escape: stray bytes are not its business");
}

/* json_escape stops before an escape that does not fit: never half a \u00XX. */
static void test_escape_cut(void)
{
    char src[10], dst[16];

    memset(src, 0x01, sizeof(src));
    for (size_t len = 1; len <= sizeof(dst); len++) {
        size_t n = json_escape(dst, len, src, sizeof(src));

        T_OK(n < len && n % 6 == 0 && strlen(dst) == n, "json_escape len %zu: %zu bytes", len, n);
    }
}

/* The basic shape: escaped message, null param, code; a cut keeps within the buffer. */
static void test_basic_shape(void)
{
    char j[256];
    error_json(j, sizeof(j), "bad \"x\"\n", "invalid_request_error", NULL, "c1");
    T_EQ_STR(j,
             "{\"error\":{\"message\":\"bad \\\"x\\\"\\n\",\"type\":\"invalid_request_error\","
             "\"param\":null,\"code\":\"c1\"}}",
             "error JSON escaped, null param");
    error_json(j, 40, "a very long message that will not fit in forty bytes", "t", "p", "c");
    T_OK(strlen(j) < 40, "error JSON truncated safely");
}

int main(void)
{
    test_exact();
    test_basic_shape();
    test_cut();
    test_escape_cut();
    test_utf8_cut();
    return t_done();
}
