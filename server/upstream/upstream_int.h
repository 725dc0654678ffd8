/* upstream_int.h - private to the upstream client (upstream.c, upstream_conn.c,
 * upstream_resp.c): its objects and the calls between those files. The design note is at the
 * top of upstream.c; the contract is upstream.h.
 */
#ifndef LLMGATE_UPSTREAM_INT_H
#define LLMGATE_UPSTREAM_INT_H

#include "server/upstream/upstream.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <llhttp.h>

#include "server/common/ltimer.h"
#include "server/tls/tls.h"

#define READ_BUF_SIZE 65536

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct link_s {
    struct link_s *prev, *next;
} link_t;

static inline void list_init(link_t *h)
{
    h->prev = h->next = h;
}

static inline int list_empty(const link_t *h)
{
    return h->next == h;
}

static inline void list_insert_head(link_t *h, link_t *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static inline void list_insert_tail(link_t *h, link_t *n)
{
    list_insert_head(h->prev, n);
}

static inline void list_remove(link_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* ---- objects ---- */

enum conn_state {
    CONN_RESOLVING,
    CONN_CONNECTING,
    CONN_HANDSHAKING,
    CONN_ACTIVE, /* request written or being written, response being read */
    CONN_IDLE,   /* in its origin's idle list */
    CONN_CLOSING,
};

typedef struct origin_s {
    link_t link; /* pool->origins */
    char *host;
    uint16_t port;
    int tls;
    char *ca_file;
    tls_conf_t *tls_conf;
    tls_session_t *session; /* last one seen, offered to new connections */
    link_t idle;            /* conn_t.idle_link, newest first */
    unsigned nidle;
} origin_t;

typedef struct payload_s {
    unsigned refs;
    size_t head_len, body_len;
    char data[]; /* head then body */
} payload_t;

typedef struct conn_s {
    link_t link;      /* pool->conns */
    link_t idle_link; /* origin->idle while CONN_IDLE */
    link_t kick_link; /* pool->kicks while kicked */
    upstream_pool_t *pool;
    origin_t *origin;
    upstream_req_t *req;
    enum conn_state state;
    uv_tcp_t tcp;
    ltimer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    struct addrinfo *ai, *ai_cur; /* resolved addresses, tried in order */
    struct sockaddr_storage literal;
    int has_literal;
    int handles;       /* open libuv handles (tcp, timer) */
    int gai_pending;   /* uv_getaddrinfo in flight: the conn must outlive it */
    int tcp_recycling; /* tcp handle closing to try the next address */
    int reading;
    int writes;   /* uv_write requests in flight */
    int reusable; /* cleared by anything that forbids going back to the pool */
    int kicked;
    int kick_uverr;   /* deferred transport failure (libuv code) */
    int kick_err;     /* deferred failure (UPSTREAM_E*) */
    int send_pending; /* the request is written by the kick (batched per loop iteration) */
    tls_conn_t *tls;
    llhttp_t parser;
} conn_t;

typedef struct hspan_s {
    uint32_t name_off, name_len, val_off, val_len;
} hspan_t;

struct upstream_req_s {
    link_t link; /* pool->reqs */
    upstream_pool_t *pool;
    const cfg_provider_t *prov;
    origin_t *origin;
    upstream_cbs_t cbs;
    void *ud;
    payload_t *payload;
    unsigned first_byte_ms;
    conn_t *conn;
    int busy;        /* our code is on the stack for this request */
    int pending_err; /* finish with this once no longer busy */
    int proto_err;   /* reason a parser callback failed */
    unsigned is_head : 1, reused : 1, retried : 1, got_byte : 1, interim : 1, complete : 1,
        keep_alive : 1, paused : 1, aborted : 1, done : 1, field_ended : 1, in_value : 1;
    char *hbuf; /* header names and values of the response being parsed */
    size_t hlen, hcap;
    hspan_t *hs;
    size_t nh, hs_cap;
    char *held; /* body bytes parsed while paused, delivered on resume */
    size_t held_len, held_cap;
};

struct upstream_pool_s {
    uv_loop_t *loop;
    const cfg_t *cfg;
    link_t origins, conns, reqs, kicks;
    unsigned nconns;
    uv_idle_t kick;
    int closing, kick_closed;
    int rbuf_busy;
    char rbuf[READ_BUF_SIZE];
};

typedef struct wreq_s {
    uv_write_t w;
    conn_t *conn;
    char *owned;        /* TLS ciphertext */
    payload_t *payload; /* plain: the request's head + body */
} wreq_t;

static inline void payload_unref(payload_t *p)
{
    if (p && --p->refs == 0)
        free(p);
}

/* ---- upstream.c: pool and requests ---- */

void upstream__pool_maybe_free(upstream_pool_t *pool);
/* Queues deferred work for c on the pool's kick (see upstream__conn_kick). */
void upstream__kick_queue(conn_t *c);
/* Detaches r from its connection, which is closed. */
void upstream__req_detach_close(upstream_req_t *r);
/* The end of a request: on_done_cb (unless aborted), then free. Never while busy. */
void upstream__req_finish(upstream_req_t *r, int err);
/* After our code called out for r: 1 (and r is gone) if the callback aborted or cancelled. */
int upstream__req_unwind(upstream_req_t *r);

/* ---- upstream_conn.c: connections ---- */

/* A new connection for r; never calls back (failures are deferred). */
int upstream__conn_open(upstream_req_t *r);
void upstream__conn_close(conn_t *c);
/* Writes the request of c->req (fresh or reused connection) and waits for the response. */
void upstream__conn_send(conn_t *c);
void upstream__conn_update_reading(conn_t *c);
/* Deferred work for c: a failure, or what a resume needs. */
void upstream__conn_kick(conn_t *c);
void upstream__timer_arm(conn_t *c, unsigned ms);

/* ---- upstream_resp.c: response parsing ---- */

extern const llhttp_settings_t upstream__parser_settings;

#endif
