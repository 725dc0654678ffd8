/* tls_test.c - tls.h client against tls.h server, entirely in memory.
 *
 * The two ends are wired by moving take_output() of one into feed() of the other until
 * both handshakes finish or one fails. Certificates come from $CERTS (tests/certs).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/tls/tls.h"
#include "t.h"

static char certs[1024];

static const char *cert_path(const char *name)
{
    static char buf[4][1200];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", certs, name);
    return p;
}

/* Moves pending ciphertext from -> to; returns the bytes moved or -1. */
static long pump(tls_conn_t *from, tls_conn_t *to)
{
    char *buf;
    size_t len;
    if (tls_conn_take_output(from, &buf, &len) != 0)
        return -1;
    if (len && to && tls_conn_feed(to, buf, len) != 0)
        len = (size_t)-1;
    free(buf);
    return (long)len;
}

/* Runs both handshakes to the end. Returns 0, or the first non-WANT code of either side
 * (*cli_rc / *srv_rc tell which). */
static int handshake_pair(tls_conn_t *cli, tls_conn_t *srv, int *cli_rc, int *srv_rc)
{
    int rc_c = TLS_WANT, rc_s = TLS_WANT;
    for (int i = 0; i < 50; i++) {
        if (rc_c == TLS_WANT)
            rc_c = tls_conn_handshake(cli);
        pump(cli, srv);
        if (rc_s == TLS_WANT)
            rc_s = tls_conn_handshake(srv);
        pump(srv, cli);
        if ((rc_c == 0 && rc_s == 0) || (rc_c != 0 && rc_c != TLS_WANT) ||
            (rc_s != 0 && rc_s != TLS_WANT))
            break;
    }
    if (cli_rc)
        *cli_rc = rc_c;
    if (srv_rc)
        *srv_rc = rc_s;
    if (rc_c != 0 && rc_c != TLS_WANT)
        return rc_c;
    if (rc_s != 0 && rc_s != TLS_WANT)
        return rc_s;
    return rc_c == 0 && rc_s == 0 ? 0 : TLS_WANT;
}

static tls_conf_t *server_conf(const char *crt, const char *key)
{
    tls_conf_t *conf = NULL;
    char err[256] = "";
    int rc = tls_conf_server_new(&conf, cert_path(crt), cert_path(key), err, sizeof err);
    if (rc != 0)
        printf("# server conf %s: %s\n", crt, err);
    return conf;
}

/* Reads everything that is buffered into buf; returns the byte count or a negative code. */
static long read_all(tls_conn_t *c, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        int n = tls_conn_read(c, buf + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
            if (got == cap)
                return (long)got;
            continue;
        }
        if (n == TLS_WANT)
            return (long)got;
        return got ? (long)got : n;
    }
}

static void test_handshake_data_close(tls_conf_t *cli_conf, tls_conf_t *srv_conf)
{
    tls_conn_t *cli = NULL, *srv = NULL;
    T_EQ_INT(tls_conn_new(&cli, cli_conf, "localhost"), 0, "client conn");
    T_EQ_INT(tls_conn_new(&srv, srv_conf, NULL), 0, "server conn");
    T_EQ_INT(tls_conn_handshake(cli), TLS_WANT, "client handshake wants input at first");
    T_EQ_INT(handshake_pair(cli, srv, NULL, NULL), 0, "handshake completes");
    T_EQ_INT(tls_conn_resumed(cli), 0, "first handshake is a full one (client)");
    T_EQ_INT(tls_conn_resumed(srv), 0, "first handshake is a full one (server)");

    char buf[256];
    T_EQ_INT(tls_conn_read(srv, buf, sizeof buf), TLS_WANT, "nothing to read yet");
    T_EQ_INT(tls_conn_write(cli, "ping from client", 16), 0, "client writes");
    pump(cli, srv);
    long n = read_all(srv, buf, sizeof buf);
    T_OK(n == 16 && memcmp(buf, "ping from client", 16) == 0, "server reads the plaintext");
    T_EQ_INT(tls_conn_write(srv, "pong", 4), 0, "server writes");
    pump(srv, cli);
    n = read_all(cli, buf, sizeof buf);
    T_OK(n == 4 && memcmp(buf, "pong", 4) == 0, "client reads the reply");

    /* More than one record (16 KiB max each), fed a few bytes at a time. */
    size_t big_len = 100000;
    char *big = malloc(big_len), *back = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    T_EQ_INT(tls_conn_write(srv, big, big_len), 0, "server writes 100000 bytes");
    char *ct;
    size_t ct_len, got = 0;
    tls_conn_take_output(srv, &ct, &ct_len);
    T_OK(ct_len > big_len, "ciphertext is larger than the plaintext (%zu)", ct_len);
    for (size_t off = 0; off < ct_len; off += 777) {
        size_t k = ct_len - off < 777 ? ct_len - off : 777;
        tls_conn_feed(cli, ct + off, k);
        long r = read_all(cli, back + got, big_len - got);
        if (r < 0)
            break;
        got += (size_t)r;
    }
    free(ct);
    T_OK(got == big_len && memcmp(big, back, big_len) == 0, "fed in pieces, all bytes arrive");
    free(big);
    free(back);

    T_EQ_INT(tls_conn_close_notify(cli), 0, "client queues close_notify");
    pump(cli, srv);
    T_EQ_INT(tls_conn_read(srv, buf, sizeof buf), TLS_CLOSED, "server sees TLS_CLOSED");
    tls_conn_free(cli);
    tls_conn_free(srv);
}

static void test_resumption(tls_conf_t *cli_conf, tls_conf_t *srv_conf)
{
    tls_conn_t *cli = NULL, *srv = NULL;
    tls_conn_new(&cli, cli_conf, "localhost");
    tls_conn_new(&srv, srv_conf, NULL);
    T_OK(tls_conn_save_session(cli) == NULL, "no session before the handshake");
    T_EQ_INT(handshake_pair(cli, srv, NULL, NULL), 0, "first connection");
    tls_session_t *sess = tls_conn_save_session(cli);
    T_OK(sess != NULL, "session saved");
    T_OK(tls_conn_save_session(srv) == NULL, "server side saves no session");
    tls_conn_free(cli);
    tls_conn_free(srv);

    for (int round = 0; round < 2; round++) {
        tls_conn_new(&cli, cli_conf, "localhost");
        tls_conn_new(&srv, srv_conf, NULL);
        T_EQ_INT(tls_conn_set_session(cli, sess), 0, "session offered (round %d)", round);
        T_EQ_INT(handshake_pair(cli, srv, NULL, NULL), 0, "resumed handshake (round %d)", round);
        T_EQ_INT(tls_conn_resumed(cli), 1, "client reports resumption (round %d)", round);
        T_EQ_INT(tls_conn_resumed(srv), 1, "server reports resumption (round %d)", round);
        char buf[16];
        tls_conn_write(cli, "x", 1);
        pump(cli, srv);
        T_EQ_INT(read_all(srv, buf, sizeof buf), 1, "data flows on the resumed session");
        T_EQ_INT(tls_conn_set_session(cli, sess), TLS_EHANDSHAKE,
                 "no session can be offered after the handshake");
        tls_conn_free(cli);
        tls_conn_free(srv);
    }

    /* A session from one server is not resumed by a server with other ticket keys. */
    tls_conf_t *srv2 = server_conf("server.crt", "server.key");
    tls_conn_new(&cli, cli_conf, "localhost");
    tls_conn_new(&srv, srv2, NULL);
    tls_conn_set_session(cli, sess);
    T_EQ_INT(handshake_pair(cli, srv, NULL, NULL), 0, "unknown ticket: full handshake works");
    T_EQ_INT(tls_conn_resumed(cli), 0, "and is not reported as resumed");
    tls_conn_free(cli);
    tls_conn_free(srv);
    tls_conf_free(srv2);
    tls_session_free(sess);
}

static void test_verify_failure(tls_conf_t *cli_conf, const char *crt, const char *key,
                                const char *host, const char *what)
{
    tls_conf_t *srv_conf = server_conf(crt, key);
    tls_conn_t *cli = NULL, *srv = NULL;
    int cli_rc = 0, srv_rc = 0;
    T_OK(srv_conf != NULL, "%s: server conf", what);
    tls_conn_new(&cli, cli_conf, host);
    tls_conn_new(&srv, srv_conf, NULL);
    handshake_pair(cli, srv, &cli_rc, &srv_rc);
    T_EQ_INT(cli_rc, TLS_EVERIFY, "%s: client fails with TLS_EVERIFY", what);
    T_OK(srv_rc != 0, "%s: server does not complete (%d)", what, srv_rc);
    tls_conn_free(cli);
    tls_conn_free(srv);
    tls_conf_free(srv_conf);
}

static void test_ip_host(tls_conf_t *cli_conf, tls_conf_t *srv_conf)
{
    tls_conn_t *cli = NULL, *srv = NULL;
    tls_conn_new(&cli, cli_conf, "127.0.0.1");
    tls_conn_new(&srv, srv_conf, NULL);
    T_EQ_INT(handshake_pair(cli, srv, NULL, NULL), 0, "host 127.0.0.1 verifies");
    tls_conn_free(cli);
    tls_conn_free(srv);
}

static void test_conf_errors(void)
{
    tls_conf_t *conf = (tls_conf_t *)1;
    char err[512] = "";
    T_EQ_INT(tls_conf_client_new(&conf, "/nonexistent/ca.pem", err, sizeof err), TLS_ECONF,
             "missing CA bundle: TLS_ECONF");
    T_OK(conf == NULL, "no conf on failure");
    T_OK(strstr(err, "cannot read CA bundle /nonexistent/ca.pem") != NULL,
         "err names the bundle: %s", err);
    err[0] = 0;
    T_EQ_INT(tls_conf_server_new(&conf, cert_path("server.crt"), "/nonexistent/key.pem", err,
                                 sizeof err),
             TLS_ECONF, "missing key: TLS_ECONF");
    T_OK(strstr(err, "/nonexistent/key.pem") != NULL, "err names the key: %s", err);
    err[0] = 0;
    T_EQ_INT(tls_conf_server_new(&conf, cert_path("server.crt"), cert_path("wrongname.key"), err,
                                 sizeof err),
             TLS_ECONF, "key of another certificate: TLS_ECONF");
    T_OK(err[0] != 0, "err says why: %s", err);
    err[0] = 0;
    T_EQ_INT(tls_conf_client_new(&conf, cert_path("ca.key"), err, sizeof err), TLS_ECONF,
             "a key file as CA bundle: TLS_ECONF");
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        T_EQ_INT(tls_conf_client_new(&conf, NULL, err, sizeof err), 0, "system bundle loads");
        tls_conn_t *c = NULL;
        T_EQ_INT(tls_conn_new(&c, conf, NULL), TLS_ECONF, "client conn needs a host name");
        tls_conf_free(conf);
    } else {
        T_OK(1, "# SKIP no system CA bundle");
        T_OK(1, "# SKIP no system CA bundle");
    }
    T_OK(strcmp(tls_strerror(TLS_EVERIFY), tls_strerror(TLS_EPROTO)) != 0 &&
             tls_strerror(-99) != NULL,
         "tls_strerror distinguishes codes");
}

/* Shared configurations used from several threads at once (run under TSan). */
struct thread_arg {
    tls_conf_t *cli_conf, *srv_conf;
    tls_session_t *sess;
    int ok;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 8; i++) {
        tls_conn_t *cli = NULL, *srv = NULL;
        tls_conn_new(&cli, a->cli_conf, "localhost");
        tls_conn_new(&srv, a->srv_conf, NULL);
        if (i % 2)
            tls_conn_set_session(cli, a->sess);
        char buf[8];
        if (handshake_pair(cli, srv, NULL, NULL) == 0 && tls_conn_write(cli, "abc", 3) == 0 &&
            pump(cli, srv) > 0 && read_all(srv, buf, sizeof buf) == 3 &&
            tls_conn_resumed(cli) == (i % 2))
            a->ok++;
        tls_conn_free(cli);
        tls_conn_free(srv);
    }
    return NULL;
}

static void test_threads(tls_conf_t *cli_conf, tls_conf_t *srv_conf)
{
    tls_conn_t *cli = NULL, *srv = NULL;
    tls_conn_new(&cli, cli_conf, "localhost");
    tls_conn_new(&srv, srv_conf, NULL);
    handshake_pair(cli, srv, NULL, NULL);
    tls_session_t *sess = tls_conn_save_session(cli);
    tls_conn_free(cli);
    tls_conn_free(srv);

    pthread_t th[3];
    struct thread_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct thread_arg){cli_conf, srv_conf, sess, 0};
        pthread_create(&th[i], NULL, thread_main, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    T_EQ_INT(ok, 24, "24 handshakes on 3 threads sharing the configurations");
    tls_session_free(sess);
}

int main(void)
{
    const char *env = getenv("CERTS");
    snprintf(certs, sizeof certs, "%s", env ? env : "tests/certs");

    char err[512] = "";
    tls_conf_t *cli_conf = NULL;
    T_EQ_INT(tls_conf_client_new(&cli_conf, cert_path("ca.crt"), err, sizeof err), 0,
             "client conf with the test CA %s", err);
    tls_conf_t *srv_conf = server_conf("server.crt", "server.key");
    T_OK(srv_conf != NULL, "server conf");
    if (!cli_conf || !srv_conf)
        return t_done();

    test_handshake_data_close(cli_conf, srv_conf);
    test_resumption(cli_conf, srv_conf);
    test_verify_failure(cli_conf, "wrongname.crt", "wrongname.key", "localhost", "wrong host name");
    test_verify_failure(cli_conf, "untrusted.crt", "untrusted.key", "localhost", "untrusted CA");
    test_ip_host(cli_conf, srv_conf);
    test_conf_errors();
    test_threads(cli_conf, srv_conf);

    tls_conf_free(cli_conf);
    tls_conf_free(srv_conf);
    return t_done();
}
