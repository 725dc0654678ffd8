/* translated.c - translated attempts; see translated.h. */
#include "server/proxy/translated.h"
#include "server/proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned tr_formats(const api_adapter_t *a, const api_op_t *op)
{
    unsigned m = a->providers;

    for (int p = CFG_API_OPENAI; p < CFG_API_COUNT; p++)
        if (xlate_find(a, op, (enum cfg_api)p))
            m |= API_PROVIDER(p);
    return m;
}

static void opts_of(const req_t *r, const char *model, xlate_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->max_tokens_cap = r->pick.dep->max_output_tokens;
    o->model = model;
    o->client_model = r->scan.model;
    o->default_max_tokens = r->cfgref->cfg->translation.default_max_tokens;
    o->stream = r->scan.stream;
    o->include_usage = r->x_include_usage;
    o->created = loop_clock_wall_ms(r->px->clock) / 1000;
    o->request_id = r->h.request_id;
    o->client_body = r->h.body.data ? r->h.body.data : "";
    o->client_body_len = r->h.body.len;
}

int tr_begin(req_t *r, const cfg_provider_t *prov, const char *model, const char **path,
             xlate_error_t *err)
{
    const xlate_pair_t *x;
    xlate_opts_t o;
    buf_t out = {0};
    int rc;

    tr_end(r);
    if (api_served_by(r->api, prov->api) || !(x = xlate_find(r->api, r->op, prov->api)))
        return 0;
    r->x_include_usage = r->scan.stream && r->scan.include_usage; /* the chat client's own */
    opts_of(r, model, &o);
    if (x->upstream_path_of && x->upstream_path_of(&o, r->x_path, sizeof(r->x_path)) != 0) {
        snprintf(err->message, sizeof(err->message),
                 "the deployment's model name is too long for the provider's path");
        err->param[0] = '\0';
        return XLATE_EREFUSE;
    }
    rc = x->request(r->h.body.data ? r->h.body.data : "", r->h.body.len, &o, &out, err);
    if (rc != 0) {
        buf_free(&out);
        return rc;
    }
    free(r->up_body);
    r->up_body = out.data; /* the buffer's memory is the body's now */
    r->up_body_len = out.len;
    if (r->scan.stream && x->stream_size) {
        if (!(r->xstate = calloc(1, x->stream_size)))
            return XLATE_ENOMEM;
        x->stream_init(r->xstate, &o);
    }
    r->xpair = x;
    *path = x->upstream_path_of ? r->x_path : x->upstream_path;
    return 1;
}

int tr_body(req_t *r, const char *data, size_t len, buf_t *out)
{
    if (r->xstate)
        return r->xpair->stream_feed(r->xstate, data, len, out);
    if (r->xbody.len + len > TR_BODY_MAX)
        return XLATE_EBAD;
    return buf_append(&r->xbody, data, len) != 0 ? XLATE_ENOMEM : 0;
}

int tr_finish(req_t *r, int complete, buf_t *out)
{
    xlate_opts_t o;

    if (r->xstate)
        return r->xpair->stream_end(r->xstate, complete, out);
    if (!complete)
        return 0;
    opts_of(r, r->pick.dep->model, &o);
    return r->xpair->response(r->xbody.data ? r->xbody.data : "", r->xbody.len, &o, out);
}

int tr_error(req_t *r, int status, const char *body, size_t len, buf_t *out, int *status_out)
{
    return r->fail_xpair->error(status, body, len, out, status_out);
}

void tr_end(req_t *r)
{
    if (r->xstate) {
        r->xpair->stream_free(r->xstate);
        free(r->xstate);
        r->xstate = NULL;
    }
    buf_free(&r->xbody);
    r->xpair = NULL;
}
