/* fuzz_api.c - the client API adapters (server/api/): usage and object ids from response
 * bodies cut anywhere, paths matched to operations, error bodies in each API's shape.
 *
 * Input: byte 0 picks the adapter (low 3 bits) and says stream (bit 3); bytes 1-2 seed the
 * chunking; the rest is a response body, and also (its first 300 bytes) a request path and
 * (its first 600) an error message. Checked:
 *   - usage does not depend on how the body was cut into reads (head and tail alike);
 *   - an object id, as the proxy reads it (after every read, from the head so far, the
 *     first one found wins), is the one the whole head gives; it is 1..cap-1 id characters
 *     (api_id_char) and stands in the body between quotes;
 *   - api_find: a match's {id} lies inside the path and is id characters only; the upstream
 *     path fits or is refused, and carries the id;
 *   - error_json: one JSON object (jsmn strict) within the buffer, for any message.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api/api.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_api: invariant violated: %s\n", what);
        abort();
    }
}

static const api_adapter_t *const g_adapters[] = {&api_chat,      &api_completions, &api_embeddings,
                                                  &api_responses, &api_messages,    &api_models};
#define NADAPTERS (sizeof(g_adapters) / sizeof(g_adapters[0]))

static void check_usage_and_id(const api_adapter_t *a, int stream, uint32_t seed, const char *body,
                               size_t len)
{
    static usage_tail_t whole, cut; /* 5 KiB each: not on the stack */
    usage_t u1, u2;
    char id_cut[SCAN_ID_MAX + 1], id_whole[SCAN_ID_MAX + 1];
    int have_id = 0;
    size_t off = 0;

    usage_tail_reset(&whole);
    usage_tail_feed(&whole, body, len);
    usage_tail_reset(&cut);
    while (off < len) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % (seed & 0x100 ? 48 : USAGE_TAIL + 100);
        if (n > len - off)
            n = len - off;
        usage_tail_feed(&cut, body + off, n);
        off += n;
        if (a->object_id && !have_id)
            have_id = a->object_id(cut.head, cut.head_len, id_cut, sizeof(id_cut));
    }
    check(whole.head_len == cut.head_len && memcmp(whole.head, cut.head, whole.head_len) == 0,
          "the head does not depend on chunking");
    memset(&u1, 0xa5, sizeof(u1));
    memset(&u2, 0x5a, sizeof(u2));
    int f1 = a->usage ? a->usage(&whole, stream, &u1) : 0;
    int f2 = a->usage ? a->usage(&cut, stream, &u2) : 0;
    check(f1 == f2, "usage found does not depend on chunking");
    check(f1 == 0 || f1 == 1, "usage result");
    if (f1)
        check(memcmp(&u1, &u2, sizeof(u1)) == 0, "usage counts do not depend on chunking");

    if (!a->object_id)
        return;
    int w = a->object_id(whole.head, whole.head_len, id_whole, sizeof(id_whole));
    check(w == 0 || w == 1, "object_id result");
    check(!have_id || (w && strcmp(id_cut, id_whole) == 0),
          "the first id found while reading is the whole head's");
    if (w) {
        size_t n = strlen(id_whole);
        check(n > 0 && n < sizeof(id_whole), "id length");
        for (size_t i = 0; i < n; i++)
            check(api_id_char(id_whole[i]), "id characters");
        int found = 0;
        for (const char *p = whole.head; !found && p + n + 2 <= whole.head + whole.head_len; p++)
            found = p[0] == '"' && memcmp(p + 1, id_whole, n) == 0 && p[n + 1] == '"';
        check(found, "the id stands in the body between quotes");
    }
}

static void check_paths(const char *path, size_t len)
{
    static const int methods[] = {HTTP_POST, HTTP_GET, HTTP_DELETE};
    char up[300];

    for (unsigned i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        api_match_t m;
        size_t n = 0;
        int rc = api_find(methods[i], path, len, &m);
        check(rc == 0 || rc == API_ENOPATH || rc == API_EMETHOD, "api_find result");
        if (rc == API_EMETHOD)
            check(m.api && m.op && m.op->method != methods[i], "405 names another method");
        if (rc != 0)
            continue;
        check(m.api && m.op && m.op->method == methods[i], "a match has its method");
        if (m.id) {
            check(m.id >= path && m.id + m.id_len <= path + len && m.id_len > 0 &&
                      m.id_len <= SCAN_ID_MAX,
                  "the id lies inside the path");
            for (size_t k = 0; k < m.id_len; k++)
                check(api_id_char(m.id[k]), "path id characters");
        }
        for (size_t cap = 1; cap <= sizeof(up); cap += cap < 40 ? 1 : 97) {
            memset(up, 'Z', sizeof(up));
            if (api_upstream_path(&m, up, cap, &n) != 0)
                continue;
            check(n < cap && up[n] == '\0' && strlen(up) == n, "the upstream path fits");
            check(up[0] == '/', "the upstream path is absolute");
            if (m.id)
                check(memmem(up, n, m.id, m.id_len) != NULL, "the upstream path has the id");
        }
    }
}

static void check_errors(const api_adapter_t *a, const char *msg, size_t salt)
{
    static const int statuses[] = {400, 401, 403, 404, 413, 429, 500, 502, 503, 529};
    char buf[512];
    jsmntok_t tok[32];

    for (size_t cap = 1 + salt % 64; cap <= sizeof(buf); cap += 61) {
        jsmn_parser p;
        memset(buf, 'Z', sizeof(buf));
        size_t n = a->error_json(buf, cap, statuses[salt % 10], msg, "some_code",
                                 salt & 1 ? "model" : NULL);
        check(n < cap && buf[n] == '\0' && strlen(buf) == n, "error body within the buffer");
        if (n == 0)
            continue; /* too small for any body */
        jsmn_init(&p);
        int t = jsmn_parse(&p, buf, n, tok, 32);
        check(t > 0 && tok[0].type == JSMN_OBJECT && tok[0].start == 0 && (size_t)tok[0].end == n,
              "error body is one JSON object");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char msg[601];

    if (size < 3)
        return 0;
    const api_adapter_t *a = g_adapters[(data[0] & 7) % NADAPTERS];
    int stream = (data[0] >> 3) & 1;
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];
    const char *body = (const char *)data + 3;
    size_t len = size - 3;

    check_usage_and_id(a, stream, seed, body, len);
    check_paths(body, len < 300 ? len : 300);
    size_t m = len < sizeof(msg) - 1 ? len : sizeof(msg) - 1;
    memcpy(msg, body, m);
    msg[m] = '\0'; /* a message is a C string: it ends at its first NUL */
    check_errors(a, msg, seed);
    return 0;
}
