/* worker.c - listening sockets, worker threads, graceful and forced stop. */
#include "server/worker.h"
#include "server/proxy/attempt.h"
#include "server/common/log.h"

#include <stddef.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int listen_socket(const char *addr, int *port_io, char *err, size_t errlen)
{
    char host[256];
    struct sockaddr_storage ss;
    socklen_t sl;
    uint16_t p16;
    int port, fd = -1, one = 1;

    memset(&ss, 0, sizeof(ss));
    if (cfg_listen_parse(addr, host, sizeof(host), &p16) == 0) {
        port = p16;
    } else {
        snprintf(err, errlen, "listen address \"%s\" is not host:port or [v6]:port", addr);
        return -EINVAL;
    }
    if (port == 0 && *port_io)
        port = *port_io;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        sl = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "listen address \"%s\": host must be an IPv4 or IPv6 literal", addr);
        return -EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0)
        goto fail;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    *port_io = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
fail : {
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
    if (fd >= 0)
        close(fd);
    return -e;
}
}

static void on_connection_cb(uv_stream_t *server, int status)
{
    worker_t *w = server->data;

    if (status < 0) {
        log_warn("worker %d: accept failed: %s", w->id, uv_strerror(status));
        return;
    }
    conn_accept(&w->http, server);
}

static void on_clock_prepare_cb(uv_prepare_t *h)
{
    worker_t *w = h->data;
    loop_clock_drop(&w->clock);
}

static void on_flush_check_cb(uv_check_t *h)
{
    worker_t *w = h->data;

    /* everything polled has been handled: admissions get a reading of their own */
    loop_clock_drop(&w->clock);
    proxy_check(&w->proxy);
    conn_flush_all(&w->http);
    attempt_flush_records(&w->proxy); /* any that the flush itself finished */
}

static void maybe_finish(worker_t *w)
{
    if (!w->draining || w->http.nconns > 0 || w->finishing)
        return;
    w->finishing = 1;
    uv_close((uv_handle_t *)&w->flush_check, NULL);
    uv_close((uv_handle_t *)&w->clock_prepare, NULL);
    http_server_close(&w->http);
    proxy_close(&w->proxy);
    upstream_pool_close(w->pool);
    uv_mutex_lock(&w->wake_lock);
    w->wake_closed = 1;
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_mutex_unlock(&w->wake_lock);
}

/* A connection closed: a draining worker may be done. */
static void on_conn_closed(http_server_t *srv)
{
    maybe_finish((worker_t *)((char *)srv - offsetof(worker_t, http)));
}

static void on_wake_cb(uv_async_t *a)
{
    worker_t *w = a->data;
    int stop = atomic_load(&w->stop);
    cfg_ref_t *next_cfg = atomic_exchange(&w->next_cfg, NULL);

    if (next_cfg) {
        cfg_ref_t *old = w->cfgref;
        w->cfgref = next_cfg;
        w->cfg = next_cfg->cfg;
        w->http.cfg = w->cfg;
        w->proxy.cfg = w->cfg;
        w->proxy.cfgref = w->cfgref;
        cfgref_put(old);
    }
    if (stop >= 1 && !w->draining) {
        w->draining = 1;
        for (unsigned i = 0; i < w->nlisteners; i++)
            uv_close((uv_handle_t *)&w->listeners[i], NULL);
        http_server_drain(&w->http);
    }
    if (stop >= 2 && !w->forced) {
        w->forced = 1;
        http_server_close_all(&w->http);
    }
    maybe_finish(w);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;

    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Handles still open (none expected) are closed so the loop can be released. */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0)
        log_warn("worker %d: loop closed with handles open", w->id);
    attempt_flush_records(&w->proxy); /* none expected: the last check recorded them */
    proxy_free(&w->proxy);
    cfgref_put(atomic_exchange(&w->next_cfg, NULL));
    cfgref_put(w->cfgref);
    w->cfgref = NULL;
    if (w->on_exit)
        w->on_exit(w);
}

int worker_start(worker_t *w)
{
    int rc;

    if ((rc = uv_loop_init(&w->loop)) != 0)
        return rc;
    uv_mutex_init(&w->wake_lock);
    uv_async_init(&w->loop, &w->wake, on_wake_cb);
    w->wake.data = w;
    uv_check_init(&w->loop, &w->flush_check);
    loop_clock_drop(&w->clock);
    uv_prepare_init(&w->loop, &w->clock_prepare);
    w->flush_check.data = w->clock_prepare.data = w;
    uv_check_start(&w->flush_check, on_flush_check_cb);
    uv_prepare_start(&w->clock_prepare, on_clock_prepare_cb);
    if ((rc = upstream_pool_new(&w->pool, &w->loop, w->cfg)) != 0)
        return UV_ENOMEM;

    w->http.id = w->id;
    w->http.loop = &w->loop;
    w->http.cfg = w->cfg;
    w->http.tls = w->tls;
    w->http.clock = &w->clock;
    w->http.handler = &proxy_handler;
    w->http.ud = &w->proxy;
    w->http.on_conn_closed = on_conn_closed;
    if ((rc = http_server_init(&w->http)) != 0)
        return rc;
    w->proxy.id = w->id;
    w->proxy.cfg = w->cfg;
    w->proxy.cfgref = w->cfgref;
    w->proxy.shm = w->shm;
    w->proxy.pool = w->pool;
    w->proxy.clock = &w->clock;
    w->proxy.http = &w->http;
    if ((rc = proxy_init(&w->proxy, &w->loop)) != 0)
        return rc;

    w->listeners = calloc(w->nlisteners, sizeof(*w->listeners));
    if (!w->listeners)
        return UV_ENOMEM;
    for (unsigned i = 0; i < w->nlisteners; i++) {
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = w;
        if ((rc = uv_tcp_open(&w->listeners[i], w->fds[i])) != 0 ||
            (rc = uv_listen((uv_stream_t *)&w->listeners[i], 4096, on_connection_cb)) != 0)
            return rc;
    }
    return uv_thread_create(&w->thread, worker_main, w);
}

void worker_set_config(worker_t *w, cfg_ref_t *r)
{
    cfg_ref_t *old = atomic_exchange(&w->next_cfg, r);

    cfgref_put(old); /* a switch that was still pending is superseded */
    uv_mutex_lock(&w->wake_lock);
    if (!w->wake_closed)
        uv_async_send(&w->wake);
    uv_mutex_unlock(&w->wake_lock);
}

void worker_stop(worker_t *w, int force)
{
    int want = force ? 2 : 1;
    int cur = atomic_load(&w->stop);

    while (cur < want && !atomic_compare_exchange_weak(&w->stop, &cur, want))
        ;
    uv_mutex_lock(&w->wake_lock);
    if (!w->wake_closed)
        uv_async_send(&w->wake);
    uv_mutex_unlock(&w->wake_lock);
}
