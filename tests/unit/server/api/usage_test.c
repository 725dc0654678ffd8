/* usage_test.c - the usage object found in the tail of a response body. */
#include "server/api/usage.h"
#include "t.h"

#include <stdlib.h>

static int scan(const char *body, uint32_t *p, uint32_t *c)
{
    usage_tail_t t = {.len = 0};

    *p = *c = 0;
    usage_tail_feed(&t, body, strlen(body));
    return usage_tail_scan(&t, p, c);
}

/* Feeds body in pieces of n bytes, as a stream arrives. */
static int scan_pieces(const char *body, size_t n, uint32_t *p, uint32_t *c)
{
    usage_tail_t t = {.len = 0};
    size_t len = strlen(body);

    for (size_t o = 0; o < len; o += n)
        usage_tail_feed(&t, body + o, len - o < n ? len - o : n);
    *p = *c = 0;
    return usage_tail_scan(&t, p, c);
}

int main(void)
{
    uint32_t p, c;

    T_EQ_INT(scan("{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                  "\"completion_tokens\":34,\"total_tokens\":46}}",
                  &p, &c),
             1, "usage at the end of a completion");
    T_EQ_INT(p, 12, "prompt_tokens");
    T_EQ_INT(c, 34, "completion_tokens");

    T_EQ_INT(scan("{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", &p, &c), 1,
             "usage as the first member (match at offset 1)");
    T_EQ_INT(p, 1, "its prompt_tokens");

    T_EQ_INT(scan("\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8}", &p, &c), 1,
             "the needle at offset 0");
    T_EQ_INT(c, 8, "its completion_tokens");

    T_EQ_INT(scan("data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
                  "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}\n\n"
                  "data: [DONE]\n\n",
                  &p, &c),
             1, "two usage objects in a stream");
    T_EQ_INT(p, 5, "the last one counts (prompt)");
    T_EQ_INT(c, 6, "the last one counts (completion)");

    T_EQ_INT(scan("{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},"
                  "\"note\":\"a \\\"quoted\\\" word\",\"x\":\"\",\"y\":\"usage\"}",
                  &p, &c),
             1, "quotes and a \"usage\" string value after the object");
    T_EQ_INT(p, 3, "the object is still found (the value is not followed by a colon object)");

    T_EQ_INT(scan("{\"choices\":[{\"text\":\"no counts here\"}]}", &p, &c), 0, "no usage: 0");
    T_EQ_INT(scan("", &p, &c), 0, "empty body: 0");
    T_EQ_INT(scan("\"usag", &p, &c), 0, "shorter than the needle: 0");
    T_EQ_INT(scan("\"\"\"\"\"\"\"", &p, &c), 0, "only quotes: 0");
    T_EQ_INT(scan("{\"usage\":{\"completion_tokens\":4}}", &p, &c), 0,
             "usage without prompt_tokens: 0");
    T_EQ_INT(scan("{\"usage\":{\"prompt_tokens\":9}}", &p, &c), 1, "no completion_tokens: 1");
    T_EQ_INT(c, 0, "completion 0 then");
    T_EQ_INT(scan("{\"usage\":{\"prompt_tokens\":99999999999,\"completion_tokens\":1}}", &p, &c), 1,
             "a huge count");
    T_EQ_INT(p, UINT32_MAX, "is capped at UINT32_MAX");

    /* A long stream: only the tail is kept, usage in the last event is found whatever the
     * piece size. */
    {
        size_t n = 20000;
        char *body = malloc(n + 200);
        size_t o = 0;
        while (o + 40 < n)
            o += (size_t)snprintf(body + o, n + 200 - o, "data: {\"d\":\"\\\"x\\\"\"}\n\n");
        snprintf(body + o, n + 200 - o,
                 "data: {\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":22}}\n\n"
                 "data: [DONE]\n\n");
        size_t pieces[] = {1, 7, 100, 4096, 5000};
        for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
            T_EQ_INT(scan_pieces(body, pieces[i], &p, &c), 1, "long stream in pieces of %zu",
                     pieces[i]);
            T_OK(p == 21 && c == 22, "counts %u/%u from the tail", p, c);
        }
        free(body);
    }
    return t_done();
}
