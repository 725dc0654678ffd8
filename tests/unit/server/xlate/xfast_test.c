/* xfast_test.c - the fast path's readers against jansson (every string they take, jansson
 * takes as the same value; what jansson refuses, they refuse), and the two stream
 * translators taking it: the provider's escapes kept, the events those of jansson's path. */
#include <jansson.h>
#include <string.h>

#include "server/xlate/chat_anthropic.h"
#include "server/xlate/messages_openai.h"
#include "server/xlate/xfast.h"
#include "server/xlate/xjson.h"
#include "t.h"

/* 1 if xfast_string reads the whole of doc (a quoted string) the way jansson does: both
 * refuse it, or both take it and the span decodes to jansson's value. */
static int same_as_jansson(const char *doc, int *taken)
{
    char wrapped[256];
    xfast_cur_t c = xfast_cur(doc, strlen(doc));
    xfast_span_t sp;
    int fast = xfast_string(&c, &sp) == 0 && xfast_end(&c) == 0, same;
    json_t *j, *k = NULL;

    snprintf(wrapped, sizeof(wrapped), "[%s]", doc);
    j = json_loads(wrapped, XJSON_LOAD, NULL);
    *taken = fast;
    if (!fast)
        same = 1; /* a "no" is always safe: jansson then decides */
    else {
        snprintf(wrapped, sizeof(wrapped), "[\"%.*s\"]", (int)sp.n, sp.s);
        k = json_loads(wrapped, XJSON_LOAD, NULL);
        same = j && k && json_equal(j, k);
    }
    json_decref(j);
    json_decref(k);
    return same;
}

static void strings(void)
{
    static const struct {
        const char *doc;
        int taken;
    } cases[] = {
        {"\"plain\"", 1},
        {"  \"leading whitespace\"", 1},
        {"\"\"", 1},
        {"\"caf\\u00e9 \\/ \\\" \\\\ \\b\\f\\n\\r\\t\"", 1},
        {"\"\\ud83d\\ude00 a pair\"", 1},
        {"\"\xe4\xbd\xa0\xe5\xa5\xbd UTF-8\"", 1},
        {"\"\xf0\x9f\x98\x80 four bytes\"", 1},
        {"\"not closed", 0},
        {"\"a raw \n newline\"", 0},
        {"\"a raw \x01 control\"", 0},
        {"\"\\x bad escape\"", 0},
        {"\"\\u12 short\"", 0},
        {"\"\\u0000 NUL\"", 0},
        {"\"\\udc00 lone low surrogate\"", 0},
        {"\"\\ud83d lone high surrogate\"", 0},
        {"\"\\ud83d\\u0041 unpaired\"", 0},
        {"\"\xc0\xaf overlong\"", 0},
        {"\"\xed\xa0\x80 encoded surrogate\"", 0},
        {"\"\xf4\x90\x80\x80 past U+10FFFF\"", 0},
        {"\"\xe4\xbd cut\"", 0},
        {"\"\xff\"", 0},
        {"'single'", 0},
    };
    int all = 1, expected = 1;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int taken;
        if (!same_as_jansson(cases[i].doc, &taken)) {
            printf("#   not as jansson: %s\n", cases[i].doc);
            all = 0;
        }
        if (taken != cases[i].taken) {
            printf("#   %s: taken %d\n", cases[i].doc, taken);
            expected = 0;
        }
    }
    T_OK(all, "every string taken decodes as jansson decodes it");
    T_OK(expected, "strings jansson refuses (raw controls, bad escapes, \\u0000, lone "
                   "surrogates, invalid UTF-8) are refused; the rest taken");
}

static int uint_of(const char *s, uint64_t *v)
{
    xfast_cur_t c = xfast_cur(s, strlen(s));
    return xfast_uint(&c, v) == 0 && xfast_end(&c) == 0 ? 0 : -1;
}

static void numbers(void)
{
    uint64_t v = 0;

    T_OK(uint_of("0", &v) == 0 && v == 0 && uint_of(" 1745962718 ", &v) == 0 && v == 1745962718,
         "integers of digits");
    T_OK(uint_of("9223372036854775807", &v) == 0 && uint_of("9223372036854775808", &v) != 0,
         "up to json_int_t's largest (jansson refuses more)");
    T_OK(uint_of("01", &v) != 0 && uint_of("-1", &v) != 0 && uint_of("1.0", &v) != 0 &&
             uint_of("1e3", &v) != 0 && uint_of("", &v) != 0,
         "no leading zero, sign, fraction or exponent: a no");
}

static int value_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    xfast_span_t s;
    (void)ud;
    return k == 2 ? xfast_null(c) : xfast_string(c, &s);
}

static int object_of(const char *s, uint32_t *seen)
{
    static const char *const keys[] = {"a", "b", "n"};
    xfast_cur_t c = xfast_cur(s, strlen(s));
    return xfast_object(&c, keys, 3, value_cb, NULL, seen) == 0 && xfast_end(&c) == 0 ? 0 : -1;
}

static void objects(void)
{
    uint32_t seen = 0;

    T_OK(object_of("{\"b\":\"x\", \"a\" : \"y\",\"n\":null}", &seen) == 0 && seen == 7,
         "members in any order, with whitespace; seen names them");
    T_OK(object_of(" { } ", &seen) == 0 && seen == 0, "an empty object");
    T_OK(object_of("{\"a\":\"x\",\"a\":\"y\"}", &seen) != 0, "a key twice: a no");
    T_OK(object_of("{\"c\":\"x\"}", &seen) != 0, "an unknown key: a no");
    T_OK(object_of("{\"\\u0061\":\"x\"}", &seen) != 0, "a key written with escapes: a no");
    T_OK(object_of("{\"a\":\"x\",}", &seen) != 0 && object_of("{\"a\" \"x\"}", &seen) != 0 &&
             object_of("{\"a\":\"x\"", &seen) != 0 && object_of("{\"a\":\"x\"}x", &seen) != 0,
         "syntax errors and trailing bytes: a no");
}

/* The stream of pair P over in, with the fast path on or off. */
static int run(const xlate_pair_t *P, const char *in, int fast, buf_t *out)
{
    static _Alignas(max_align_t) unsigned char st[8192];
    xlate_opts_t o = {.model = "m",
                      .client_model = "client-model",
                      .stream = 1,
                      .include_usage = 1,
                      .created = 1,
                      .request_id = "req_x"};
    int rc;

    xfast_enable(fast);
    P->stream_init(st, &o);
    rc = P->stream_feed(st, in, strlen(in), out);
    if (rc == 0)
        rc = P->stream_end(st, 1, out);
    P->stream_free(st);
    xfast_enable(1);
    return rc;
}

/* Every data: line of a and b the same JSON value, in the same order. */
static int same_events(const buf_t *a, const buf_t *b)
{
    const char *pa = a->data, *pb = b->data;
    int n = 0;

    for (;;) {
        pa = strstr(pa, "data: ");
        pb = strstr(pb, "data: ");
        if (!pa || !pb)
            break;
        const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
        json_t *ja = json_loadb(pa + 6, (size_t)(ea - pa - 6), 0, NULL);
        json_t *jb = json_loadb(pb + 6, (size_t)(eb - pb - 6), 0, NULL);
        int same = (ja && jb && json_equal(ja, jb)) ||
                   (!ja && !jb && ea - pa == eb - pb && memcmp(pa, pb, (size_t)(ea - pa)) == 0);
        json_decref(ja);
        json_decref(jb);
        if (!same)
            return 0;
        pa = ea;
        pb = eb;
        n++;
    }
    return n > 0 && !pa && !pb;
}

static void pairs(void)
{
    static const char anthropic[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
        "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":"
        "5,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\/b caf\\u00e9\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    static const char openai[] =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"d\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"d\","
        "\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"a\\/b caf\\u00e9\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
        "\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
        "\"completion_tokens\":3,\"total_tokens\":8}}\n\ndata: [DONE]\n\n";
    buf_t fast = {0}, slow = {0};

    T_OK(run(&xlate_chat_anthropic, anthropic, 1, &fast) == 0 &&
             run(&xlate_chat_anthropic, anthropic, 0, &slow) == 0,
         "chat on Anthropic: the stream both ways");
    T_OK(strstr(fast.data, "{\"content\":\"a\\/b caf\\u00e9\"}") != NULL &&
             strstr(slow.data, "a/b caf\xc3\xa9") != NULL,
         "the text delta took the fast path (the provider's escapes kept)");
    T_OK(same_events(&fast, &slow), "... and its events are jansson's path's");
    buf_free(&fast);
    buf_free(&slow);
    T_OK(run(&xlate_messages_openai, openai, 1, &fast) == 0 &&
             run(&xlate_messages_openai, openai, 0, &slow) == 0,
         "Messages on OpenAI: the stream both ways");
    T_OK(strstr(fast.data, "\"text\":\"a\\/b caf\\u00e9\"}") != NULL &&
             strstr(slow.data, "a/b caf\xc3\xa9") != NULL,
         "the content chunk took the fast path (the provider's escapes kept)");
    T_OK(same_events(&fast, &slow), "... and its events are jansson's path's");
    buf_free(&fast);
    buf_free(&slow);
}

int main(void)
{
    strings();
    numbers();
    objects();
    pairs();
    return t_done();
}
