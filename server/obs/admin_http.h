/* admin_http.h - a small HTTP/1.1 server for the admin endpoints (/metrics, /health...).
 *
 * Design note
 * -----------
 * One listener on a given loop (llmgate: the main thread's), separate from the API
 * listeners so that metrics can stay on loopback while the API is public. Each connection
 * carries one request (llhttp, strict), is answered with "Connection: close" and closed:
 * scrapers, probes and the dashboard's polls open a connection per request anyway, and
 * nothing needs keep-alive state. Bounds: ADMIN_HTTP_MAX_CONNS connections (more are closed
 * at once), a request head of ADMIN_HTTP_MAX_HEAD bytes (431), a body is refused (413),
 * ADMIN_HTTP_TIMEOUT_MS for the whole exchange. GET, HEAD and POST (without a body: the
 * dashboard's actions) reach the route; other methods get 405.
 *
 * Every answer carries Cache-Control: no-store, X-Content-Type-Options: nosniff,
 * X-Frame-Options: DENY, Referrer-Policy: no-referrer and ADMIN_HTTP_CSP (a page may load
 * only its own script, style and API; nothing inline, no other origin).
 *
 * What each path answers is the route callback's business; it runs on the loop's thread.
 *
 * Threads: everything on the loop's thread.
 */
#ifndef LLMGATE_ADMIN_HTTP_H
#define LLMGATE_ADMIN_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "server/common/buf.h"

#define ADMIN_HTTP_MAX_CONNS  64
#define ADMIN_HTTP_MAX_HEAD   16384
#define ADMIN_HTTP_TIMEOUT_MS 10000

#define ADMIN_HTTP_CSP                                                                             \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#define ADMIN_HTTP_MAX_AUTH 512

/* One request as the route sees it; the strings live until the route returns. */
typedef struct admin_req_s {
    int method;                /* llhttp's HTTP_GET, HTTP_HEAD or HTTP_POST */
    const char *path;          /* the request target without its query, not decoded */
    const char *query;         /* after '?' ("" without one), not decoded */
    const char *authorization; /* the Authorization header's value, "" without one (or when
                                  longer than ADMIN_HTTP_MAX_AUTH: then never a match) */
} admin_req_t;

/* Fill body and *content_type for req and return the HTTP status; 404 for an unknown path
 * (the body may be left empty). */
typedef int (*admin_http_route_cb)(void *arg, const admin_req_t *req, buf_t *body,
                                   const char **content_type);

typedef struct admin_http_s admin_http_t;

/* Bind addr ("host:port", "[v6]:port"; port 0 = any) on loop. *port gets the bound port.
 * Returns 0, or -1 with err ("cannot listen on ADDR: REASON"). */
int admin_http_start(uv_loop_t *loop, const char *addr, admin_http_route_cb route, void *arg,
                     admin_http_t **out, int *port, char *err, size_t errlen);

/* Close the listener and every connection; the memory goes when the close callbacks have
 * run on the loop. NULL ok. */
void admin_http_stop(admin_http_t *s);

#endif
