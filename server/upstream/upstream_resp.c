/* upstream_resp.c - the response side of the upstream client (design note in upstream.c):
 * the llhttp callbacks that collect the status and headers for on_response_cb, deliver body
 * bytes or hold them while the request is paused, and mark the response complete.
 */
#include "server/upstream/upstream_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RESP_HEADERS      256
#define MAX_RESP_HEADER_BYTES 65536

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* ---- llhttp callbacks ---- */

static upstream_req_t *parser_req(llhttp_t *p)
{
    return ((conn_t *)p->data)->req;
}

static int parse_fail(upstream_req_t *r, int err)
{
    r->proto_err = err;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    r->hlen = r->nh = 0;
    r->field_ended = 1;
    return 0;
}

static int hdr_append(upstream_req_t *r, const char *at, size_t len)
{
    if (r->hlen + len > MAX_RESP_HEADER_BYTES)
        return parse_fail(r, UPSTREAM_EPROTO);
    if (grow(&r->hbuf, &r->hcap, r->hlen + len) != 0)
        return parse_fail(r, UPSTREAM_ENOMEM);
    memcpy(r->hbuf + r->hlen, at, len);
    r->hlen += len;
    return 0;
}

/* Names and values may arrive in several spans (across reads), an empty value as none at all:
 * a header starts with the first name span after the previous name ended. */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    if (r->field_ended) {
        if (r->nh == MAX_RESP_HEADERS)
            return parse_fail(r, UPSTREAM_EPROTO);
        if (r->nh == r->hs_cap) {
            size_t ncap = r->hs_cap ? r->hs_cap * 2 : 16;
            hspan_t *nhs = realloc(r->hs, ncap * sizeof *nhs);
            if (!nhs)
                return parse_fail(r, UPSTREAM_ENOMEM);
            r->hs = nhs;
            r->hs_cap = ncap;
        }
        r->hs[r->nh++] = (hspan_t){(uint32_t)r->hlen, 0, (uint32_t)r->hlen, 0};
        r->field_ended = 0;
        r->in_value = 0;
    }
    if (hdr_append(r, at, len) != 0)
        return -1;
    hspan_t *h = &r->hs[r->nh - 1];
    h->name_len += (uint32_t)len;
    h->val_off = (uint32_t)r->hlen;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    parser_req(p)->field_ended = 1;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    hspan_t *h = &r->hs[r->nh - 1];
    if (!r->in_value) {
        r->in_value = 1;
        h->val_off = (uint32_t)r->hlen;
    }
    if (hdr_append(r, at, len) != 0)
        return -1;
    h->val_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    int status = p->status_code;

    if (status >= 100 && status < 200) {
        if (status == 101) /* we never ask to switch protocols */
            return parse_fail(r, UPSTREAM_EPROTO);
        r->interim = 1; /* 100 Continue, 103 Early Hints: the real response follows */
        return 1;
    }
    r->interim = 0;
    int no_body = r->is_head || status == 204 || status == 304;
    long long cl = -1;
    if (no_body)
        cl = 0;
    else if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED))
        cl = (long long)p->content_length;
    http_hdr_t *hdrs = NULL;
    if (r->nh && !(hdrs = malloc(r->nh * sizeof *hdrs)))
        return parse_fail(r, UPSTREAM_ENOMEM);
    for (size_t i = 0; i < r->nh; i++) {
        hdrs[i].name = r->hbuf + r->hs[i].name_off;
        hdrs[i].name_len = r->hs[i].name_len;
        hdrs[i].value = r->hbuf + r->hs[i].val_off;
        hdrs[i].value_len = r->hs[i].val_len;
    }
    if (r->cbs.on_response_cb)
        r->cbs.on_response_cb(r, status, hdrs, r->nh, cl, r->ud);
    free(hdrs);
    if (r->aborted || r->pending_err)
        return -1;
    return no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    upstream_req_t *r = parser_req(p);
    if (r->paused || r->held_len) {
        if (grow(&r->held, &r->held_cap, r->held_len + len) != 0)
            return parse_fail(r, UPSTREAM_ENOMEM);
        memcpy(r->held + r->held_len, at, len);
        r->held_len += len;
        return 0;
    }
    if (r->cbs.on_body_cb)
        r->cbs.on_body_cb(r, at, len, r->ud);
    return r->aborted || r->pending_err ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    upstream_req_t *r = parser_req(p);
    if (r->interim) {
        r->interim = 0;
        return 0;
    }
    r->complete = 1;
    r->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
    return HPE_PAUSED; /* completion runs after llhttp_execute returns */
}

const llhttp_settings_t upstream__parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
