/* tls.h - mbedTLS 2.28 as a byte transformer, independent of any socket.
 *
 * Design note
 * -----------
 * A tls_conn_t never touches a socket. The owner feeds it the ciphertext it read
 * (tls_conn_feed), drives it (tls_conn_handshake / tls_conn_read / tls_conn_write), and
 * sends whatever ciphertext it produced (tls_conn_take_output). That keeps the libuv
 * reading and writing in one place (the connection that owns it) and lets the same code
 * serve the upstream client, the mock upstream and client-facing TLS.
 *
 * Client mode verifies the peer certificate (MBEDTLS_SSL_VERIFY_REQUIRED) against the CA
 * bundle of its tls_conf_t and checks the host name given to tls_conn_new (also sent as
 * SNI). Sessions can be saved after a handshake and offered on the next connection to the
 * same origin (resumption).
 *
 * Threads: a tls_conf_t is read-only after creation and may be shared by connections on
 * any thread (mbedTLS's config is safe for concurrent use once set up; the RNG is per
 * tls_conf_t and guarded). A tls_conn_t belongs to the thread that created it.
 *
 * Errors: functions return 0 or a positive byte count on success, TLS_WANT when more
 * input is needed, TLS_CLOSED on a clean close_notify, and other negative TLS_E* codes on
 * failure. tls_strerror() describes any of them; mbedTLS codes never leak out.
 */
#ifndef LLMGATE_TLS_H
#define LLMGATE_TLS_H

#include <stddef.h>

#define TLS_WANT       (-1) /* needs more ciphertext input before it can go on */
#define TLS_CLOSED     (-2) /* peer sent close_notify */
#define TLS_EVERIFY    (-3) /* certificate verification failed (untrusted CA, wrong name, ...) */
#define TLS_EHANDSHAKE (-4) /* other handshake failure */
#define TLS_EPROTO     (-5) /* record-layer or protocol error after the handshake */
#define TLS_ENOMEM     (-6)
#define TLS_ECONF      (-7) /* could not load CA / certificate / key files */

typedef struct tls_conf_s tls_conf_t;
typedef struct tls_conn_s tls_conn_t;
typedef struct tls_session_s tls_session_t;

/* Client configuration. ca_file NULL = the system bundle
 * (/etc/ssl/certs/ca-certificates.crt). err gets a readable reason on TLS_ECONF. */
int tls_conf_client_new(tls_conf_t **out, const char *ca_file, char *err, size_t errlen);

/* Server configuration from PEM certificate chain and private key files; TLS 1.2+. */
int tls_conf_server_new(tls_conf_t **out, const char *cert_file, const char *key_file, char *err,
                        size_t errlen);

void tls_conf_free(tls_conf_t *conf);

/* hostname: client mode, the name to verify and send as SNI (required); server mode NULL. */
int tls_conn_new(tls_conn_t **out, tls_conf_t *conf, const char *hostname);
void tls_conn_free(tls_conn_t *c);

/* Ciphertext read from the socket; copied. */
int tls_conn_feed(tls_conn_t *c, const char *data, size_t len);

/* Advance the handshake: 0 when complete, TLS_WANT, or an error. After it returns an
 * error, tls_conn_take_output() may still hold an alert worth sending. */
int tls_conn_handshake(tls_conn_t *c);

/* Plaintext out: bytes (> 0), TLS_WANT when nothing more is buffered, TLS_CLOSED, error. */
int tls_conn_read(tls_conn_t *c, char *buf, size_t len);

/* Encrypt all len bytes of plaintext into the pending output. 0 or error. */
int tls_conn_write(tls_conn_t *c, const char *data, size_t len);

/* Queue a close_notify alert into the pending output. */
int tls_conn_close_notify(tls_conn_t *c);

/* Hand over pending ciphertext: *buf is malloc'd and owned by the caller (free() it after
 * the socket write completes), *len its size; *buf NULL and *len 0 when nothing pends. */
int tls_conn_take_output(tls_conn_t *c, char **buf, size_t *len);

/* Client session resumption: after a handshake, save a session (NULL if none); before a
 * handshake, offer one. A session may be offered on several connections. */
tls_session_t *tls_conn_save_session(tls_conn_t *c);
int tls_conn_set_session(tls_conn_t *c, const tls_session_t *s);
void tls_session_free(tls_session_t *s);
/* 1 if the last handshake resumed a session. */
int tls_conn_resumed(const tls_conn_t *c);

const char *tls_strerror(int err);

#endif
