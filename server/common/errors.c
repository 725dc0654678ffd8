/* errors.c - OpenAI-shaped error JSON, escaping, status reasons. */
#include "server/common/errors.h"

#include <string.h>

/* The escaped form of byte c into esc (at most 6 bytes); returns its length. */
static size_t escape_byte(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";

    switch (c) {
    case '"':
    case '\\':
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    case '\n':
        memcpy(esc, "\\n", 2);
        return 2;
    case '\r':
        memcpy(esc, "\\r", 2);
        return 2;
    case '\t':
        memcpy(esc, "\\t", 2);
        return 2;
    default:
        if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            return 6;
        }
        esc[0] = (char)c;
        return 1;
    }
}

/* Where to cut dst[0..o) so that no UTF-8 sequence is left cut short at its end: before the
 * last lead byte if fewer of its continuation bytes follow than it announces. Bytes >= 0x80
 * are copied as they are (escapes are ASCII), so dst holds the source's sequences. */
static size_t utf8_cut(const char *dst, size_t o)
{
    size_t lead = o, cont = 0;

    while (lead > 0 && cont < 3 && ((unsigned char)dst[lead - 1] & 0xc0) == 0x80) {
        lead--;
        cont++;
    }
    if (lead == 0)
        return o;
    unsigned char c = (unsigned char)dst[lead - 1];
    size_t want = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
    return want > cont ? lead - 1 : o;
}

size_t json_escape(char *dst, size_t len, const char *src, size_t n)
{
    size_t o = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char esc[6];
        size_t elen = escape_byte((unsigned char)src[i], esc);

        if (o + elen >= len) {
            o = utf8_cut(dst, o);
            break;
        }
        memcpy(dst + o, esc, elen);
        o += elen;
    }
    dst[o] = '\0';
    return o;
}

/* The length of s as a JSON value: "escaped" or null. */
static size_t value_len(const char *s)
{
    size_t n = 2;
    char esc[6];

    if (!s)
        return 4;
    for (; *s; s++)
        n += escape_byte((unsigned char)*s, esc);
    return n;
}

static size_t put_raw(char *buf, size_t o, const char *s)
{
    size_t n = strlen(s);

    memcpy(buf + o, s, n);
    return o + n;
}

/* Writes s as a JSON value at buf + o, cutting its escaped form to at most room bytes
 * (room >= 4 when s is NULL, >= 2 otherwise). Returns the new offset. */
static size_t put_value(char *buf, size_t o, size_t room, const char *s)
{
    if (!s)
        return put_raw(buf, o, "null");
    buf[o++] = '"';
    o += json_escape(buf + o, room - 1, s, strlen(s));
    buf[o++] = '"';
    return o;
}

/* Everything but the message is measured first and the message gets the room that is left,
 * so a cut body is still valid JSON: json_escape never cuts an escape, and the other members
 * and the closing braces are always written whole. */
size_t error_json(char *buf, size_t len, const char *message, const char *type, const char *param,
                  const char *code)
{
    static const char head[] = "{\"error\":{\"message\":", k_type[] = ",\"type\":",
                      k_param[] = ",\"param\":", k_code[] = ",\"code\":", tail[] = "}}";
    size_t fixed, o = 0;

    if (len == 0)
        return 0;
    fixed = sizeof(head) - 1 + sizeof(k_type) - 1 + value_len(type) + sizeof(k_param) - 1 +
            value_len(param) + sizeof(k_code) - 1 + value_len(code) + sizeof(tail) - 1;
    if (fixed + (message ? 2 : 4) >= len) {
        buf[0] = '\0';
        return 0;
    }
    o = put_raw(buf, o, head);
    o = put_value(buf, o, len - 1 - fixed, message);
    o = put_raw(buf, o, k_type);
    o = put_value(buf, o, len - 1 - o, type);
    o = put_raw(buf, o, k_param);
    o = put_value(buf, o, len - 1 - o, param);
    o = put_raw(buf, o, k_code);
    o = put_value(buf, o, len - 1 - o, code);
    o = put_raw(buf, o, tail);
    buf[o] = '\0';
    return o;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Site Overloaded";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

const char *error_type_for(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "invalid_request_error";
    case 429:
        return "rate_limit_error";
    default:
        if (status >= 500)
            return "api_error";
        return "invalid_request_error";
    }
}
