/* errors.c - OpenAI-shaped error JSON, escaping, status reasons. */
#include "server/errors.h"

#include <stdio.h>
#include <string.h>

size_t json_escape(char *dst, size_t len, const char *src, size_t n)
{
    size_t o = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        char esc[8];
        size_t elen;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            elen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            elen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            elen = 6;
        } else {
            esc[0] = (char)c;
            elen = 1;
        }
        if (o + elen >= len)
            break;
        memcpy(dst + o, esc, elen);
        o += elen;
    }
    dst[o] = '\0';
    return o;
}

static size_t put_str_or_null(char *buf, size_t len, size_t o, const char *s)
{
    if (o >= len)
        return o;
    if (!s) {
        int n = snprintf(buf + o, len - o, "null");
        return o + (n > 0 ? (size_t)n : 0);
    }
    if (o + 2 >= len)
        return o;
    buf[o++] = '"';
    o += json_escape(buf + o, len - o - 1, s, strlen(s));
    buf[o++] = '"';
    buf[o] = '\0';
    return o;
}

size_t error_json(char *buf, size_t len, const char *message, const char *type, const char *param,
                  const char *code)
{
    size_t o = 0;
    int n;

    n = snprintf(buf, len, "{\"error\":{\"message\":");
    o = (size_t)n < len ? (size_t)n : len - 1;
    o = put_str_or_null(buf, len, o, message);
    if (o + 10 < len)
        o += (size_t)snprintf(buf + o, len - o, ",\"type\":");
    o = put_str_or_null(buf, len, o, type);
    if (o + 10 < len)
        o += (size_t)snprintf(buf + o, len - o, ",\"param\":");
    o = put_str_or_null(buf, len, o, param);
    if (o + 10 < len)
        o += (size_t)snprintf(buf + o, len - o, ",\"code\":");
    o = put_str_or_null(buf, len, o, code);
    if (o + 3 < len)
        o += (size_t)snprintf(buf + o, len - o, "}}");
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
