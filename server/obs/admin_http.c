/* admin_http.c - the admin endpoints' own small HTTP server: one request per connection.
 * See admin_http.h. */
#include "server/obs/admin_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "llhttp.h"
#include "server/common/errors.h"

typedef struct aconn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct admin_http_s *srv;
    struct aconn_s *prev, *next;
    llhttp_t parser;
    char url[1024];
    size_t url_len;
    char hname[16]; /* the header name being read, lower case, cut at 15 bytes */
    size_t hname_len;
    int in_auth; /* -1: a name is being read; 1: the value being read is Authorization's */
    char auth[ADMIN_HTTP_MAX_AUTH + 1];
    size_t auth_len;
    int auth_long;
    size_t head_bytes;
    int status;   /* set by a callback that refuses the request */
    int complete; /* the request has been read */
    int answered;
    int handles; /* open handles: freed when this drops to 0 */
    char buf[4096];
} aconn_t;

struct admin_http_s {
    uv_tcp_t listener;
    admin_http_route_cb route;
    void *arg;
    aconn_t *conns;
    unsigned nconns;
    int stopping;
    int handles; /* the listener + connections' handles still open */
};

typedef struct awrite_s {
    uv_write_t w;
    aconn_t *c;
    buf_t data;
} awrite_t;

static llhttp_settings_t settings;
static uv_once_t settings_once = UV_ONCE_INIT;

static void srv_release(admin_http_t *s)
{
    if (--s->handles == 0)
        free(s);
}

static void on_conn_close_cb(uv_handle_t *h)
{
    aconn_t *c = h->data;
    admin_http_t *s = c->srv;

    if (--c->handles > 0)
        return;
    free(c);
    srv_release(s);
}

static void conn_close(aconn_t *c)
{
    admin_http_t *s = c->srv;

    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->timer, on_conn_close_cb);
    uv_close((uv_handle_t *)&c->tcp, on_conn_close_cb);
}

static void on_shutdown_cb(uv_shutdown_t *sr, int status)
{
    (void)status;
    conn_close(sr->data);
    free(sr);
}

static void on_write_cb(uv_write_t *w, int status)
{
    awrite_t *q = (awrite_t *)w;
    aconn_t *c = q->c;
    uv_shutdown_t *sr;

    buf_free(&q->data);
    free(q);
    if (status < 0 || !(sr = malloc(sizeof(*sr)))) {
        conn_close(c);
        return;
    }
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown_cb) != 0) {
        free(sr);
        conn_close(c);
    }
}

static void respond(aconn_t *c, int status, const char *ctype, const buf_t *body, int head_only)
{
    awrite_t *q = calloc(1, sizeof(*q));
    uv_buf_t b;

    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (!q)
        goto fail;
    q->c = c;
    if (buf_printf(&q->data,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                   "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
                   "Content-Security-Policy: " ADMIN_HTTP_CSP "\r\nConnection: close\r\n\r\n",
                   status, http_reason(status), ctype, body ? body->len : 0) != 0 ||
        (!head_only && body && body->len && buf_append(&q->data, body->data, body->len) != 0))
        goto fail;
    b = uv_buf_init(q->data.data, (unsigned)q->data.len);
    if (uv_write(&q->w, (uv_stream_t *)&c->tcp, &b, 1, on_write_cb) == 0)
        return;
fail:
    if (q)
        buf_free(&q->data);
    free(q);
    conn_close(c);
}

static void respond_error(aconn_t *c, int status, const char *msg)
{
    buf_t b = {0};
    char json[512];
    size_t n = error_json(json, sizeof(json), msg, error_type_for(status), NULL, NULL);

    buf_append(&b, json, n);
    respond(c, status, "application/json", &b, 0);
    buf_free(&b);
}

static void serve(aconn_t *c)
{
    admin_http_t *s = c->srv;
    int method = llhttp_get_method(&c->parser);
    const char *ctype = "application/json";
    buf_t body = {0};
    size_t plen = strcspn(c->url, "?#");
    admin_req_t req = {.method = method, .path = c->url, .query = "", .authorization = ""};
    int status;

    if (method != HTTP_GET && method != HTTP_HEAD && method != HTTP_POST) {
        respond_error(c, 405, "the admin endpoints accept GET, HEAD and POST only");
        return;
    }
    if (c->url[plen] == '?') {
        c->url[strcspn(c->url, "#")] = '\0';
        req.query = c->url + plen + 1;
    }
    c->url[plen] = '\0';
    c->auth[c->auth_len] = '\0';
    if (!c->auth_long)
        req.authorization = c->auth;
    status = s->route(s->arg, &req, &body, &ctype);
    if (status == 404 && body.len == 0) {
        buf_free(&body);
        respond_error(c, 404,
                      "unknown admin path (try /metrics, /health, /health/full, /dashboard)");
        return;
    }
    respond(c, status, ctype, &body, method == HTTP_HEAD);
    buf_free(&body);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static int on_url_cb(llhttp_t *p, const char *at, size_t len)
{
    aconn_t *c = p->data;

    if (c->url_len + len >= sizeof(c->url)) {
        c->status = 414;
        return HPE_USER;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_header_field_cb(llhttp_t *p, const char *at, size_t len)
{
    aconn_t *c = p->data;

    if (c->in_auth >= 0) { /* a new field starts */
        c->hname_len = 0;
        c->in_auth = -1;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        if (c->hname_len < sizeof(c->hname) - 1)
            c->hname[c->hname_len] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        if (c->hname_len < sizeof(c->hname))
            c->hname_len++; /* sizeof: too long to be one we read */
    }
    return 0;
}

static int on_header_value_cb(llhttp_t *p, const char *at, size_t len)
{
    aconn_t *c = p->data;

    if (c->in_auth < 0)
        c->in_auth = c->hname_len == 13 && memcmp(c->hname, "authorization", 13) == 0;
    if (!c->in_auth)
        return 0;
    if (c->auth_len + len > ADMIN_HTTP_MAX_AUTH) {
        c->auth_long = 1;
        return 0;
    }
    memcpy(c->auth + c->auth_len, at, len);
    c->auth_len += len;
    return 0;
}

static int on_headers_complete_cb(llhttp_t *p)
{
    aconn_t *c = p->data;

    if (p->content_length > 0 || (p->flags & F_CHUNKED)) {
        c->status = 413;
        return HPE_USER;
    }
    return 0;
}

static int on_message_complete_cb(llhttp_t *p)
{
    aconn_t *c = p->data;

    c->complete = 1;
    return HPE_PAUSED; /* one request per connection: ignore anything after it */
}

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_url = on_url_cb;
    settings.on_header_field = on_header_field_cb;
    settings.on_header_value = on_header_value_cb;
    settings.on_headers_complete = on_headers_complete_cb;
    settings.on_message_complete = on_message_complete_cb;
}

static void on_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    aconn_t *c = h->data;

    (void)hint;
    *b = uv_buf_init(c->buf, sizeof(c->buf));
}

static void on_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    aconn_t *c = st->data;
    llhttp_errno_t e;

    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->answered)
        return;
    c->head_bytes += (size_t)n;
    e = llhttp_execute(&c->parser, b->base, (size_t)n);
    if (c->complete) {
        serve(c);
    } else if (e != HPE_OK) {
        if (c->status == 414)
            respond_error(c, 414, "request target too long");
        else if (c->status == 413)
            respond_error(c, 413, "the admin endpoints take no request body");
        else
            respond_error(c, 400, "malformed HTTP request");
    } else if (c->head_bytes > ADMIN_HTTP_MAX_HEAD) {
        respond_error(c, 431, "request head too large");
    }
}

static void on_timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection_cb(uv_stream_t *server, int status)
{
    admin_http_t *s = server->data;
    aconn_t *c;

    if (status < 0 || s->stopping)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->nconns > ADMIN_HTTP_MAX_CONNS) {
        conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    c->in_auth = -1;
    uv_timer_start(&c->timer, on_timeout_cb, ADMIN_HTTP_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc_cb, on_read_cb) != 0)
        conn_close(c);
}

/* ---- start / stop ------------------------------------------------------------------------ */

static void on_listener_close_cb(uv_handle_t *h)
{
    srv_release(h->data);
}

/* A listening socket for ss, or -errno. Plain sockets first: a failure leaves no handle to
 * close on a loop that may never run again. No SO_REUSEPORT: a second process on the same
 * address must fail rather than take half of the scrapes. */
static int bind_socket(const struct sockaddr_storage *ss, int *port)
{
    socklen_t sl =
        ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    struct sockaddr_storage got;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1, e;

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, sl) != 0 || listen(fd, 128) != 0)
        goto fail;
    sl = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &sl) != 0)
        goto fail;
    *port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                           : ((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
fail:
    e = errno;
    close(fd);
    return -e;
}

int admin_http_start(uv_loop_t *loop, const char *addr, admin_http_route_cb route, void *arg,
                     admin_http_t **out, int *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char host[256];
    uint16_t p16;
    admin_http_t *s;
    int fd, rc;

    *out = NULL;
    *port = 0;
    uv_once(&settings_once, init_settings);
    memset(&ss, 0, sizeof(ss));
    if (cfg_listen_parse(addr, host, sizeof(host), &p16) != 0 ||
        (uv_ip4_addr(host, p16, (struct sockaddr_in *)&ss) != 0 &&
         uv_ip6_addr(host, p16, (struct sockaddr_in6 *)&ss) != 0)) {
        snprintf(err, errlen, "cannot listen on \"%s\": not host:port with an IPv4 or IPv6 address",
                 addr);
        return -1;
    }
    fd = bind_socket(&ss, port);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(-fd));
        return -1;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        snprintf(err, errlen, "cannot listen on %s: out of memory", addr);
        return -1;
    }
    s->route = route;
    s->arg = arg;
    s->handles = 1;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection_cb);
    if (rc != 0) {
        /* not expected on a socket that is already listening; the close runs with the loop */
        snprintf(err, errlen, "cannot listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, on_listener_close_cb);
        return -1;
    }
    *out = s;
    return 0;
}

void admin_http_stop(admin_http_t *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_close_cb);
}
