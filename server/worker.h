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
 * Clock: a request needs "now" half a dozen times (its start, each attempt's start, first
 * byte and end, deadlines, the wall-clock time of cooldowns and of its log line), and under
 * load one loop iteration serves tens of requests. worker_now_ns and worker_wall_ms read the
 * clock once and return that reading until it is dropped: before poll (prepare handle:
 * nothing read before a wait is used after it) and when the check starts (admissions and what
 * follows them). So a reading is taken after the events it stamps were polled and is never
 * ahead of the real time: latencies are never negative (readings only grow), a deadline
 * counted from a reading starts no earlier than its event, and one checked against a reading
 * is seen late, never early. A value is off by at most the callbacks run since the reading
 * (microseconds; about half a millisecond at full load), and two stamps of the same loop
 * phase are equal.
 */
#ifndef LLMGATE_WORKER_H
#define LLMGATE_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "config/config.h"
#include "server/cfgref.h"
#include "server/route.h"
#include "server/tls.h"
#include "server/upstream.h"
#include "shm/shm.h"

#define WORKER_HELD_MAX 32 /* held-back successes per worker (attempt.c) */

struct conn_s;

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
    route_state_t route;
    struct conn_s *conns; /* all open connections */
    /* Output is collected per connection during a loop iteration and sent once, after the
     * poll phase (check handle); the idle handle keeps poll from blocking meanwhile. */
    uv_check_t flush_check;
    uv_idle_t flush_idle;
    uv_prepare_t clock_prepare; /* drops the clock readings before poll */
    uint64_t clock_ns;          /* worker_now_ns's reading, 0 = none */
    int64_t clock_wall_ms;      /* worker_wall_ms's reading, 0 = none */
    struct conn_s *dirty;
    unsigned nconns;
    atomic_int stop; /* 0 run, 1 drain, 2 force */
    int draining;    /* seen by the loop */
    int forced;
    uv_mutex_t wake_lock; /* guards wake against use after close */
    int wake_closed;
    int finishing;
    char readbuf[64 * 1024]; /* every read of this loop lands here, then is parsed or kept */
    /* Finished requests kept for the next ones (req_new/req_recycle in proxy.c): their
     * small buffers are reused, so a request costs no allocation in the common case. */
    struct req_s *req_cache;
    unsigned nreq_cache;
    /* Plain successes not yet recorded (attempt.c): recorded with the next admission or at
     * the end of the loop iteration; held_idle keeps poll from blocking meanwhile. */
    shm_resv_t held_resv[WORKER_HELD_MAX];
    shm_outcome_t held_o[WORKER_HELD_MAX];
    unsigned nheld;
    uv_idle_t held_idle;
    /* Requests waiting for admission (attempt.c): admitted together at the check. */
    struct req_s *admit_head, *admit_tail;
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

/* Called by http_conn.c whenever a connection closes (to finish a drain). */
void worker_conn_closed(worker_t *w);

/* Monotonic time (ns, as uv_hrtime) at most the callbacks of one loop phase old (see the
 * design note). The worker's thread. */
static inline uint64_t worker_now_ns(worker_t *w)
{
    if (!w->clock_ns)
        w->clock_ns = uv_hrtime();
    return w->clock_ns;
}

/* Wall-clock time (CLOCK_REALTIME, ms since the epoch), read as worker_now_ns. The worker's
 * thread. */
int64_t worker_wall_ms(worker_t *w);

#endif
