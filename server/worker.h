/* worker.h - one serving thread: its own loop, listeners, connections and upstream pool.
 *
 * Design note
 * -----------
 * The main thread binds every listening socket (one per worker per address, with
 * SO_REUSEPORT so the kernel spreads connections) before any worker starts, so a bind
 * error is reported once and clearly, and a port 0 in the config resolves to one port
 * shared by all workers. Each worker then adopts its sockets into its own loop.
 *
 * Stopping: worker_stop(w, 0) asks for a graceful drain (stop accepting, close idle
 * connections, finish in-flight requests, then end the loop); worker_stop(w, 1) closes
 * everything at once. Both are safe from any thread (uv_async). When the worker's loop
 * has ended it calls on_exit(w) from its own thread.
 *
 * Layers: a worker owns a loop, its listeners, its clock (clock.h), its downstream HTTP
 * server (conn.h) and its proxy (proxy.h), which is the server's handler. The worker wires
 * them together and runs the loop's check: the proxy's admissions and outcomes, then the
 * server's collected output.
 */
#ifndef LLMGATE_WORKER_H
#define LLMGATE_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "config/config.h"
#include "server/common/cfgref.h"
#include "server/common/clock.h"
#include "server/http/conn.h"
#include "server/proxy/proxy.h"
#include "server/tls/tls.h"
#include "server/upstream/upstream.h"
#include "shm/shm.h"

typedef struct worker_s {
    int id;
    const cfg_t *cfg;              /* cfgref->cfg: the worker's current configuration */
    cfg_ref_t *cfgref;             /* the worker's reference to it */
    _Atomic(cfg_ref_t *) next_cfg; /* a reloaded configuration to switch to (owned ref) */
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    int *fds;            /* listening sockets, one per listen address */
    uv_tcp_t *listeners; /* adopted fds */
    unsigned nlisteners;
    upstream_pool_t *pool;
    shm_t *shm;      /* the process's store, shared by all workers */
    tls_conf_t *tls; /* client-facing TLS (shared, read-only; main owns it), NULL = plain */
    loop_clock_t clock;
    http_server_t http;
    proxy_t proxy;
    uv_check_t flush_check;     /* after poll: admissions, outcomes, then output */
    uv_prepare_t clock_prepare; /* drops the clock readings before poll */
    atomic_int stop;            /* 0 run, 1 drain, 2 force */
    int draining;               /* seen by the loop */
    int forced;
    uv_mutex_t wake_lock; /* guards wake against use after close */
    int wake_closed;
    int finishing;
    void (*on_exit)(struct worker_s *w);
    void *ud;
} worker_t;

/* Bind one listening socket for addr ("host:port" or "[v6]:port"). *port_io: in, the port
 * to use when the address says 0 and *port_io != 0; out, the bound port. Returns the fd or
 * a negative errno; err gets a readable reason. */
int listen_socket(const char *addr, int *port_io, char *err, size_t errlen);

/* Start the worker thread (fds already bound). */
int worker_start(worker_t *w);

/* Switch the worker to a reloaded configuration: takes over the reference r; requests
 * already routed keep theirs. Any thread. */
void worker_set_config(worker_t *w, cfg_ref_t *r);

/* Ask the worker to stop: force 0 = graceful drain, 1 = now. Any thread. */
void worker_stop(worker_t *w, int force);

#endif
