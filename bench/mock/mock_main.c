/* mock_main.c - mock-upstream: command line, listeners, worker threads, signals.
 *
 *   mock-upstream --listen HOST:PORT [--threads N] [--tls-cert FILE --tls-key FILE]
 *                 [--quiet] [--verbose]
 *
 * The main thread makes one listening socket per worker (SO_REUSEPORT on the same port;
 * a probe socket without SO_REUSEPORT first makes sure that the port is ours alone and
 * turns port 0 into a real one),
 * gives each worker its own loop, prints "mock-upstream ready on HOST:PORT" once every
 * socket listens, and waits for SIGTERM or SIGINT. Then it stops the workers, joins them
 * and exits 0.
 */

#include "mock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64

typedef struct opts_s {
    char host[256]; /* as given, brackets of an IPv6 literal removed */
    int host_is_v6_literal;
    int port;
    int threads;
    const char *cert, *key;
    int quiet, verbose;
} opts_t;

static mock_worker_t *workers;
static int nworkers;
static uv_signal_t sig_term, sig_int;

static void usage(FILE *f)
{
    fprintf(f, "usage: mock-upstream --listen HOST:PORT [--threads N] [--tls-cert FILE "
               "--tls-key FILE] [--quiet] [--verbose]\n"
               "  A fake OpenAI and Anthropic provider for tests and benchmarks; see "
               "bench/mock/README.md.\n");
}

static int parse_listen(opts_t *o, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg)
        return -1;
    const char *h = arg;
    size_t hl = (size_t)(colon - arg);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
        o->host_is_v6_literal = 1;
    }
    if (hl >= sizeof o->host)
        return -1;
    memcpy(o->host, h, hl);
    o->host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    o->port = (int)p;
    return 0;
}

static int parse_args(opts_t *o, int argc, char **argv)
{
    int have_listen = 0;
    memset(o, 0, sizeof *o);
    o->threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
        } else if (v == NULL) {
            fprintf(stderr, "mock-upstream: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--listen") == 0) {
            if (parse_listen(o, v) != 0) {
                fprintf(stderr,
                        "mock-upstream: --listen: expected HOST:PORT, e.g. 127.0.0.1:0 or "
                        "[::1]:8080 (got \"%s\")\n",
                        v);
                return -1;
            }
            have_listen = 1;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "mock-upstream: --threads: expected 1..%d (got \"%s\")\n",
                        MAX_THREADS, v);
                return -1;
            }
            o->threads = (int)n;
            i++;
        } else if (strcmp(a, "--tls-cert") == 0) {
            o->cert = v;
            i++;
        } else if (strcmp(a, "--tls-key") == 0) {
            o->key = v;
            i++;
        } else {
            fprintf(stderr, "mock-upstream: unknown option \"%s\"\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!have_listen) {
        fprintf(stderr, "mock-upstream: --listen HOST:PORT is required\n");
        usage(stderr);
        return -1;
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        fprintf(stderr, "mock-upstream: --tls-cert and --tls-key go together\n");
        return -1;
    }
    return 0;
}

/* A TCP socket bound to host:port; with reuseport, SO_REUSEPORT and listening. The port
 * actually bound goes to *bound. Returns the fd, or -1 with a message printed. */
static int bind_socket(const opts_t *o, int port, int reuseport, int *bound)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(o->host[0] ? o->host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "mock-upstream: cannot resolve listen host \"%s\": %s\n", o->host,
                gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || (reuseport && listen(fd, 4096) != 0)) {
        fprintf(stderr, "mock-upstream: cannot listen on %s:%d: %s%s\n", o->host, port,
                strerror(errno), errno == EADDRINUSE ? " (choose another port, or 0)" : "");
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The port to share. SO_REUSEPORT would let us join a port that another process (say a
 * mock from a test running in parallel) already listens on with SO_REUSEPORT, and port 0
 * could be given such a port too: a probe bound without the option fails in that case,
 * and for port 0 it gets a port nobody uses. -1 with a message printed on failure. */
static int choose_port(const opts_t *o)
{
    int port = -1;
    int fd = bind_socket(o, o->port, 0, &port);
    if (fd < 0)
        return -1;
    close(fd);
    return port;
}

/* ---- workers -------------------------------------------------------------------------- */

static void on_stop_cb(uv_async_t *a)
{
    mock_worker_t *w = a->data;
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->stop_async, NULL);
    while (w->conns)
        mock_conn_close(w->conns); /* unlinks it */
}

static void worker_run(void *arg)
{
    mock_worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    mock_json_thread_free();
}

static int worker_init(mock_worker_t *w, int id, int fd, tls_conf_t *tls, int verbose)
{
    w->id = id;
    w->fd = fd;
    w->tls = tls;
    w->verbose = verbose;
    int r = uv_loop_init(&w->loop);
    if (r == 0)
        r = uv_tcp_init(&w->loop, &w->listener);
    if (r == 0)
        r = uv_tcp_open(&w->listener, fd);
    if (r == 0) {
        w->listener.data = w;
        r = uv_listen((uv_stream_t *)&w->listener, 4096, mock_conn_accept_cb);
    }
    if (r == 0) {
        w->stop_async.data = w;
        r = uv_async_init(&w->loop, &w->stop_async, on_stop_cb);
    }
    if (r != 0)
        fprintf(stderr, "mock-upstream: worker %d: %s\n", id, uv_strerror(r));
    return r;
}

static void on_signal_cb(uv_signal_t *s, int signum)
{
    (void)signum;
    for (int i = 0; i < nworkers; i++)
        uv_async_send(&workers[i].stop_async);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    (void)s;
}

int main(int argc, char **argv)
{
    opts_t o;
    tls_conf_t *tls = NULL;
    int fds[MAX_THREADS];
    int port = 0, rc = 1;
    if (parse_args(&o, argc, argv) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (o.cert) {
        char err[256] = "";
        int r = tls_conf_server_new(&tls, o.cert, o.key, err, sizeof err);
        if (r != 0) {
            fprintf(stderr, "mock-upstream: TLS: cannot load %s / %s: %s%s%s\n", o.cert, o.key,
                    tls_strerror(r), err[0] ? ": " : "", err);
            return 1;
        }
    }
    /* All workers listen on one port, found by the probe (port 0 becomes a real port). */
    port = choose_port(&o);
    if (port < 0)
        goto out;
    for (int i = 0; i < o.threads; i++) {
        fds[i] = bind_socket(&o, port, 1, &port);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            goto out;
        }
    }
    mock_api_init();
    mock_id_init();
    if (mock_admin_init(o.threads) != 0 || mock_store_init() != 0) {
        fprintf(stderr, "mock-upstream: cannot initialise shared state\n");
        goto out;
    }
    workers = calloc((size_t)o.threads, sizeof *workers);
    if (workers == NULL) {
        fprintf(stderr, "mock-upstream: out of memory\n");
        goto out;
    }
    for (int i = 0; i < o.threads; i++)
        if (worker_init(&workers[i], i, fds[i], tls, o.verbose) != 0)
            goto out; /* exits: a half-started server is of no use to a test */
    uv_signal_init(uv_default_loop(), &sig_term);
    uv_signal_init(uv_default_loop(), &sig_int);
    uv_signal_start(&sig_term, on_signal_cb, SIGTERM);
    uv_signal_start(&sig_int, on_signal_cb, SIGINT);
    nworkers = o.threads;
    for (int i = 0; i < o.threads; i++)
        if (uv_thread_create(&workers[i].thread, worker_run, &workers[i]) != 0) {
            fprintf(stderr, "mock-upstream: cannot start worker thread %d\n", i);
            exit(1);
        }
    printf("mock-upstream ready on %s%s%s:%d\n", o.host_is_v6_literal ? "[" : "", o.host,
           o.host_is_v6_literal ? "]" : "", port);
    fflush(stdout);
    if (!o.quiet)
        fprintf(stderr, "mock-upstream: %d thread%s, %s%s\n", o.threads, o.threads == 1 ? "" : "s",
                tls ? "HTTPS" : "HTTP", o.verbose ? ", logging every request" : "");
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    for (int i = 0; i < nworkers; i++) {
        uv_thread_join(&workers[i].thread);
        uv_loop_close(&workers[i].loop);
        mock_buf_free(&workers[i].scratch);
        mock_buf_free(&workers[i].scratch2);
        free(workers[i].iov);
    }
    uv_loop_close(uv_default_loop());
    mock_admin_free();
    mock_store_free();
    rc = 0;
out:
    free(workers);
    if (tls)
        tls_conf_free(tls);
    return rc;
}
