/* scan_test.c - body scanning edge cases and model splicing. */
#include "server/api/scan.h"
#include "t.h"

#include <stdlib.h>

static int scan(const char *s, scan_result_t *r)
{
    return scan_body(s, strlen(s), NULL, r);
}

int main(void)
{
    scan_result_t r;
    char *out;
    size_t out_len;

    T_EQ_INT(scan("{\"model\":\"gpt-4o\",\"messages\":[]}", &r), 0, "plain body scans");
    T_EQ_STR(r.model, "gpt-4o", "model found");
    T_EQ_INT(r.stream, 0, "stream absent is 0");
    T_EQ_INT(r.max_tokens, -1, "max_tokens absent is -1");

    T_EQ_INT(scan(" {\"messages\":[{\"role\":\"user\",\"content\":\"{\\\"model\\\":\\\"x\\\"}\"}],"
                  "\"stream\":true,\"max_tokens\":512,\"model\":\"m\"} \n",
                  &r),
             0, "model after nested content, whitespace around");
    T_EQ_STR(r.model, "m", "the top-level model, not one inside a string");
    T_EQ_INT(r.stream, 1, "stream true");
    T_EQ_INT(r.max_tokens, 512, "max_tokens read");

    T_EQ_INT(scan("{\"tools\":[{\"model\":\"inner\"}],\"model\":\"outer\"}", &r), 0,
             "nested object with a model member");
    T_EQ_STR(r.model, "outer", "nested model member ignored");

    T_EQ_INT(scan("{\"model\":\"a\\/b\\u0041\"}", &r), 0, "escapes in model");
    T_EQ_STR(r.model, "a/bA", "escapes decoded");

    T_EQ_INT(scan("{\"max_completion_tokens\":7,\"model\":\"x\"}", &r), 0,
             "max_completion_tokens accepted");
    T_EQ_INT(r.max_tokens, 7, "max_completion_tokens read as max_tokens");

    T_EQ_INT(
        scan("{\"model\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &r),
        0, "stream_options");
    T_EQ_INT(r.has_stream_options, 1, "stream_options seen");
    T_EQ_INT(r.include_usage, 1, "its include_usage read");
    T_EQ_INT(scan("{\"model\":\"x\",\"stream_options\":{\"x\":{\"include_usage\":true},"
                  "\"include_\\u0075sage\":false}}",
                  &r),
             0, "stream_options with a nested member and an escaped name");
    T_OK(r.has_stream_options && !r.include_usage,
         "include_usage is the member of stream_options itself, names unescaped");
    T_EQ_INT(
        scan("{\"model\":\"x\",\"stream_options\":{\"a\":[1,{\"b\":2}],\"include_usage\":true}}",
             &r),
        0, "stream_options with an array before include_usage");
    T_OK(r.include_usage, "nested values skipped to reach include_usage");
    T_EQ_INT(scan("{\"model\":\"x\",\"opts\":{\"stream_options\":1}}", &r), 0, "nested");
    T_EQ_INT(r.has_stream_options, 0, "a nested stream_options is not the request's");
    T_EQ_INT(scan("", &r), SCAN_EEMPTY, "empty body");
    T_EQ_INT(scan("  \n", &r), SCAN_EEMPTY, "whitespace body");
    T_EQ_INT(scan("{\"model\":\"x\"", &r), SCAN_EINVAL, "truncated JSON");
    T_EQ_INT(scan("{\"model\":\"x\"} junk", &r), SCAN_EINVAL, "trailing junk");
    T_EQ_INT(scan("{\"model\":\"x\"}{\"model\":\"y\"}", &r), SCAN_EINVAL, "two documents");
    T_EQ_INT(scan("{model:\"x\"}", &r), SCAN_EINVAL, "unquoted key");
    T_EQ_INT(scan("[1,2]", &r), SCAN_ENOTOBJECT, "array body");
    T_EQ_INT(scan("\"model\"", &r), SCAN_ENOTOBJECT, "string body");
    T_EQ_INT(scan("{\"messages\":[]}", &r), SCAN_ENOMODEL, "missing model");
    T_EQ_INT(scan("{\"model\":42}", &r), SCAN_EBADFIELD, "model not a string");
    T_EQ_STR(r.bad_field, "model", "bad field named");
    T_EQ_INT(scan("{\"model\":\"\"}", &r), SCAN_EBADFIELD, "empty model");
    T_EQ_INT(scan("{\"model\":\"a\",\"model\":\"b\"}", &r), SCAN_EBADFIELD, "duplicate model");
    T_EQ_INT(scan("{\"model\":\"a\",\"stream\":\"yes\"}", &r), SCAN_EBADFIELD, "stream not bool");
    T_EQ_STR(r.bad_field, "stream", "stream named");
    T_EQ_INT(scan("{\"model\":\"a\",\"max_tokens\":-5}", &r), SCAN_EBADFIELD,
             "negative max_tokens");
    T_EQ_INT(scan("{\"model\":\"a\\u00e9\"}", &r), SCAN_EBADFIELD, "non-ASCII escape refused");
    T_OK(strstr(scan_strerror(SCAN_ENOMODEL, NULL), "model") != NULL, "message names model");

    /* Escaped member names are the same member to the provider (issue: a second, escaped
     * "model" or "max_tokens" slipped past the allowlist and the reservations). */
    T_EQ_INT(scan("{\"model\":\"gpt-4o-mini\",\"mod\\u0065l\":\"gpt-4o\"}", &r), SCAN_EBADFIELD,
             "escaped duplicate model refused");
    T_EQ_STR(r.bad_field, "model", "duplicate model named");
    T_OK(r.duplicate, "flagged as a duplicate");
    T_OK(strstr(scan_strerror(SCAN_EBADFIELD, &r), "more than once") != NULL,
         "message says given more than once");
    T_EQ_INT(scan("{\"mod\\u0065l\":\"x\",\"model\":\"y\"}", &r), SCAN_EBADFIELD,
             "escaped first, plain second refused");
    T_EQ_INT(scan("{\"\\u006d\\u006F\\u0064\\u0065\\u006c\":\"esc\"}", &r), 0,
             "a fully escaped model name is the model");
    T_EQ_STR(r.model, "esc", "escaped model member read");
    T_EQ_INT(scan("{\"model\":\"x\",\"max_tokens\":1,\"max_tok\\u0065ns\":999999}", &r),
             SCAN_EBADFIELD, "escaped duplicate max_tokens refused");
    T_EQ_STR(r.bad_field, "max_tokens", "max_tokens named");
    T_EQ_INT(scan("{\"model\":\"x\",\"stream\":false,\"str\\u0065am\":true}", &r), SCAN_EBADFIELD,
             "escaped duplicate stream refused");
    T_EQ_STR(r.bad_field, "stream", "stream named");
    T_EQ_INT(scan("{\"model\":\"x\",\"stream_options\":{},\"stream\\u005foptions\":{}}", &r),
             SCAN_EBADFIELD, "escaped duplicate stream_options refused");
    T_EQ_STR(r.bad_field, "stream_options", "stream_options named");
    T_EQ_INT(scan("{\"model\":\"x\",\"stream\\u005foptions\":{\"include_usage\":false}}", &r), 0,
             "escaped stream_options alone is read");
    T_OK(r.has_stream_options, "and seen as stream_options");
    T_EQ_INT(scan("{\"model\":\"x\",\"mod\\u00e9l\":1,\"model\\u0000\":2,\"m\\/odel\":3}", &r), 0,
             "names that only look like model are other members");
    T_EQ_STR(r.model, "x", "the real model kept");

    {
        /* A body with more tokens than the stack array: the heap path. */
        size_t n = 20000, o = 0;
        char *big = malloc(n * 4 + 64);
        o += (size_t)sprintf(big, "{\"messages\":[");
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(big + o, "%s1", i ? "," : "");
        sprintf(big + o, "],\"model\":\"big\"}");
        T_EQ_INT(scan(big, &r), 0, "20000-token body scans");
        T_EQ_STR(r.model, "big", "model found after a long array");
        free(big);
    }

    {
        const char *body = "{\"model\": \"mini\" ,\"messages\":[]}";
        T_EQ_INT(scan(body, &r), 0, "splice source");
        T_EQ_INT(scan_splice_model(body, strlen(body), &r, "gpt-4o-\"mini\"", &out, &out_len), 0,
                 "splice");
        T_OK(out_len == strlen("{\"model\": \"gpt-4o-\\\"mini\\\"\" ,\"messages\":[]}") &&
                 memcmp(out, "{\"model\": \"gpt-4o-\\\"mini\\\"\" ,\"messages\":[]}", out_len) == 0,
             "only the model token changed, escaped: %.*s", (int)out_len, out);
        T_EQ_INT(scan_body(out, out_len, NULL, &r), 0, "spliced body still scans");
        T_EQ_STR(r.model, "gpt-4o-\"mini\"", "spliced model read back");
        free(out);
    }
    return t_done();
}
