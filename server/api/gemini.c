/* gemini.c - Google's Gemini API as a provider format (api: gemini): no client operations
 * (no client speaks it to the gateway; OpenAI chat clients reach Gemini providers through
 * xlate/chat_gemini), only what the proxy reads from a Gemini provider's bytes: the usage.
 *
 * Usage is the last "usageMetadata" object of the body: of a generateContent answer, or of
 * the last chunk of a streamGenerateContent?alt=sse stream that has one (every chunk
 * carries the counts so far; the last one's are final). Billed input = promptTokenCount +
 * toolUsePromptTokenCount (cachedContentTokenCount is part of promptTokenCount, kept as
 * cached); output = candidatesTokenCount + thoughtsTokenCount (thoughts kept as
 * reasoning). A stream whose tail shows no "finishReason" was cut before its end: its counts
 * are the ones so far (usage_t.partial), the proxy estimates the output.
 */
#include "server/api/api.h"

#include <string.h>

static int json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The last "usageMetadata": {...} of hay[0..n): 1 and [*start, *end) (the closing brace, or
 * the end of the bytes when it is cut), or 0. */
static int usage_metadata(const char *hay, size_t n, const char **start, const char **end)
{
    static const char needle[] = "\"usageMetadata\"";
    const size_t m = sizeof(needle) - 1;
    const char *stop = hay + n;
    size_t lim = n >= m ? n - m + 1 : 0;

    while (lim > 0) {
        const char *q = memrchr(hay, '"', lim), *e;
        int depth = 0;
        if (!q)
            return 0;
        lim = (size_t)(q - hay);
        if (memcmp(q, needle, m) != 0)
            continue;
        for (e = q + m; e < stop && json_ws(*e); e++)
            ;
        if (e >= stop || *e != ':')
            continue;
        for (e++; e < stop && json_ws(*e); e++)
            ;
        if (e >= stop || *e != '{')
            continue;
        *start = e;
        for (; e < stop; e++) {
            if (*e == '{')
                depth++;
            else if (*e == '}' && --depth == 0)
                break;
        }
        *end = e;
        return 1;
    }
    return 0;
}

static uint32_t count(const char *s, const char *e, const char *name)
{
    long long v = usage_number(s, e, name);
    return v < 0 ? 0 : (uint32_t)v;
}

static uint32_t sum(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

static int gemini_usage(const usage_tail_t *t, int stream, usage_t *u)
{
    static const char finish[] = "\"finishReason\"";
    const char *s, *e;

    memset(u, 0, sizeof(*u));
    if (!usage_metadata(t->buf, t->len, &s, &e) || usage_number(s, e, "promptTokenCount") < 0)
        return 0;
    u->input = sum(count(s, e, "promptTokenCount"), count(s, e, "toolUsePromptTokenCount"));
    u->reasoning = count(s, e, "thoughtsTokenCount");
    u->output = sum(count(s, e, "candidatesTokenCount"), u->reasoning);
    u->cached = count(s, e, "cachedContentTokenCount");
    u->partial = stream && !memmem(t->buf, t->len, finish, sizeof(finish) - 1);
    return 1;
}

const api_adapter_t api_gemini = {
    .id = API_GEMINI,
    .name = "gemini",
    .providers = API_PROVIDER(CFG_API_GEMINI),
    .ops = NULL,
    .nops = 0, /* no client routes */
    .usage = gemini_usage,
    .error_json = api_openai_error, /* never used: no client speaks it */
};
