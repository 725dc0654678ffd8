/* tls.c - mbedTLS 2.28 driven through memory buffers (see tls.h).
 *
 * The ssl context's BIO callbacks read from an input buffer the owner feeds and append to an
 * output buffer the owner takes; they never block and never fail for lack of room, so the
 * only "would block" condition mbedTLS can report is MBEDTLS_ERR_SSL_WANT_READ.
 *
 * Resumption is detected by watching the handshake state machine step by step: in a full
 * handshake both sides pass through MBEDTLS_SSL_SERVER_CERTIFICATE, in an abbreviated one
 * they jump from the ServerHello straight to the server's ChangeCipherSpec. That needs no
 * mbedTLS internals (ssl->state is a public field in 2.28) and works for session ids and
 * tickets alike.
 */
#include "server/tls/tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#define TLS_SYSTEM_CA_BUNDLE  "/etc/ssl/certs/ca-certificates.crt"
#define TLS_TICKET_LIFETIME_S 86400

struct tls_conf_s {
    int is_server;
    mbedtls_ssl_config ssl;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    pthread_mutex_t rng_lock;          /* the DRBG is shared by every connection on every thread */
    mbedtls_x509_crt ca;               /* client: trust anchors */
    mbedtls_x509_crt chain;            /* server: own certificate chain */
    mbedtls_pk_context key;            /* server: private key */
    mbedtls_ssl_ticket_context ticket; /* server: stateless resumption (has its own lock) */
    int ticket_ready;
};

struct tls_session_s {
    mbedtls_ssl_session s;
};

struct tls_conn_s {
    tls_conf_t *conf;
    mbedtls_ssl_context ssl;
    char *in; /* fed ciphertext not yet consumed: in[in_off..in_len) */
    size_t in_off, in_len, in_cap;
    char *out; /* produced ciphertext not yet taken */
    size_t out_len, out_cap;
    int saw_full_handshake; /* passed through SERVER_CERTIFICATE */
    int handshake_done;
    int resumed;
};

/* Modern AEAD suites with forward secrecy; the server insists on them, in this order. */
static const int server_ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static int locked_rng(void *p, unsigned char *out, size_t len)
{
    tls_conf_t *conf = p;
    pthread_mutex_lock(&conf->rng_lock);
    int ret = mbedtls_ctr_drbg_random(&conf->drbg, out, len);
    pthread_mutex_unlock(&conf->rng_lock);
    return ret;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path, int mret)
{
    char reason[128];
    if (!err || errlen == 0)
        return;
    mbedtls_strerror(mret, reason, sizeof reason);
    snprintf(err, errlen, "tls: %s %s: %s", what, path, reason);
}

static tls_conf_t *conf_alloc(int is_server)
{
    tls_conf_t *conf = calloc(1, sizeof *conf);
    if (!conf)
        return NULL;
    conf->is_server = is_server;
    mbedtls_ssl_config_init(&conf->ssl);
    mbedtls_entropy_init(&conf->entropy);
    mbedtls_ctr_drbg_init(&conf->drbg);
    pthread_mutex_init(&conf->rng_lock, NULL);
    mbedtls_x509_crt_init(&conf->ca);
    mbedtls_x509_crt_init(&conf->chain);
    mbedtls_pk_init(&conf->key);
    mbedtls_ssl_ticket_init(&conf->ticket);
    return conf;
}

/* Seeds the DRBG and applies what both ends share: stream transport, TLS 1.2 minimum. */
static int conf_common(tls_conf_t *conf, int endpoint, char *err, size_t errlen)
{
    static const char pers[] = "llmgate-tls";
    int ret = mbedtls_ctr_drbg_seed(&conf->drbg, mbedtls_entropy_func, &conf->entropy,
                                    (const unsigned char *)pers, sizeof pers - 1);
    if (ret != 0) {
        set_err(err, errlen, "cannot seed the random generator", "(entropy)", ret);
        return TLS_ECONF;
    }
    ret = mbedtls_ssl_config_defaults(&conf->ssl, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        set_err(err, errlen, "cannot set up", "the TLS configuration", ret);
        return TLS_ECONF;
    }
    mbedtls_ssl_conf_rng(&conf->ssl, locked_rng, conf);
    mbedtls_ssl_conf_min_version(&conf->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_renegotiation(&conf->ssl, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    return 0;
}

int tls_conf_client_new(tls_conf_t **out, const char *ca_file, char *err, size_t errlen)
{
    int rc;
    const char *path = ca_file ? ca_file : TLS_SYSTEM_CA_BUNDLE;
    tls_conf_t *conf = conf_alloc(0);

    *out = NULL;
    if (!conf)
        return TLS_ENOMEM;
    if ((rc = conf_common(conf, MBEDTLS_SSL_IS_CLIENT, err, errlen)) != 0)
        goto fail;
    /* A positive result counts certificates that did not parse; bundles commonly carry a
     * few that mbedTLS cannot read, which is fine as long as some did. */
    int ret = mbedtls_x509_crt_parse_file(&conf->ca, path);
    if (ret < 0) {
        set_err(err, errlen, "cannot read CA bundle", path, ret);
        rc = TLS_ECONF;
        goto fail;
    }
    if (conf->ca.version == 0) {
        if (err && errlen)
            snprintf(err, errlen, "tls: CA bundle %s holds no usable certificate", path);
        rc = TLS_ECONF;
        goto fail;
    }
    mbedtls_ssl_conf_ca_chain(&conf->ssl, &conf->ca, NULL);
    mbedtls_ssl_conf_authmode(&conf->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_session_tickets(&conf->ssl, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    *out = conf;
    return 0;
fail:
    tls_conf_free(conf);
    return rc;
}

int tls_conf_server_new(tls_conf_t **out, const char *cert_file, const char *key_file, char *err,
                        size_t errlen)
{
    int rc, ret;
    tls_conf_t *conf = conf_alloc(1);

    *out = NULL;
    if (!conf)
        return TLS_ENOMEM;
    if ((rc = conf_common(conf, MBEDTLS_SSL_IS_SERVER, err, errlen)) != 0)
        goto fail;
    rc = TLS_ECONF;
    if ((ret = mbedtls_x509_crt_parse_file(&conf->chain, cert_file)) != 0) {
        set_err(err, errlen, "cannot read certificate chain", cert_file, ret);
        goto fail;
    }
    if ((ret = mbedtls_pk_parse_keyfile(&conf->key, key_file, NULL)) != 0) {
        set_err(err, errlen, "cannot read private key", key_file, ret);
        goto fail;
    }
    if ((ret = mbedtls_pk_check_pair(&conf->chain.pk, &conf->key)) != 0 ||
        (ret = mbedtls_ssl_conf_own_cert(&conf->ssl, &conf->chain, &conf->key)) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "tls: private key %s does not belong to certificate %s", key_file,
                     cert_file);
        goto fail;
    }
    mbedtls_ssl_conf_ciphersuites(&conf->ssl, server_ciphersuites);
    ret = mbedtls_ssl_ticket_setup(&conf->ticket, locked_rng, conf, MBEDTLS_CIPHER_AES_256_GCM,
                                   TLS_TICKET_LIFETIME_S);
    if (ret != 0) {
        set_err(err, errlen, "cannot set up session tickets", "for resumption", ret);
        goto fail;
    }
    conf->ticket_ready = 1;
    mbedtls_ssl_conf_session_tickets_cb(&conf->ssl, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &conf->ticket);
    *out = conf;
    return 0;
fail:
    tls_conf_free(conf);
    return rc;
}

void tls_conf_free(tls_conf_t *conf)
{
    if (!conf)
        return;
    mbedtls_ssl_config_free(&conf->ssl);
    mbedtls_ssl_ticket_free(&conf->ticket);
    mbedtls_pk_free(&conf->key);
    mbedtls_x509_crt_free(&conf->chain);
    mbedtls_x509_crt_free(&conf->ca);
    mbedtls_ctr_drbg_free(&conf->drbg);
    mbedtls_entropy_free(&conf->entropy);
    pthread_mutex_destroy(&conf->rng_lock);
    free(conf);
}

/* Grows *buf so that it holds at least need bytes. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int bio_send(void *p, const unsigned char *data, size_t len)
{
    tls_conn_t *c = p;
    if (reserve(&c->out, &c->out_cap, c->out_len + len) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return (int)len;
}

static int bio_recv(void *p, unsigned char *buf, size_t len)
{
    tls_conn_t *c = p;
    size_t avail = c->in_len - c->in_off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > avail)
        len = avail;
    memcpy(buf, c->in + c->in_off, len);
    c->in_off += len;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    return (int)len;
}

int tls_conn_new(tls_conn_t **out, tls_conf_t *conf, const char *hostname)
{
    int rc = TLS_ENOMEM;
    tls_conn_t *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c)
        return TLS_ENOMEM;
    c->conf = conf;
    mbedtls_ssl_init(&c->ssl);
    if (mbedtls_ssl_setup(&c->ssl, &conf->ssl) != 0)
        goto fail;
    if (!conf->is_server) {
        /* The name to verify the certificate against, and SNI. Required: without it
         * mbedTLS would accept any trusted certificate for any host. */
        rc = TLS_ECONF;
        if (!hostname || !*hostname || mbedtls_ssl_set_hostname(&c->ssl, hostname) != 0)
            goto fail;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    *out = c;
    return 0;
fail:
    tls_conn_free(c);
    return rc;
}

void tls_conn_free(tls_conn_t *c)
{
    if (!c)
        return;
    mbedtls_ssl_free(&c->ssl);
    free(c->in);
    free(c->out);
    free(c);
}

int tls_conn_feed(tls_conn_t *c, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (c->in_off > 0 && c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    if (c->in_off > 0 && c->in_len + len > c->in_cap) {
        /* Slide the unread rest to the front before growing. */
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (reserve(&c->in, &c->in_cap, c->in_len + len) != 0)
        return TLS_ENOMEM;
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    return 0;
}

/* Converts an mbedTLS handshake failure. */
static int handshake_error(tls_conn_t *c, int ret)
{
    if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED)
        return TLS_ENOMEM;
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
        return TLS_EVERIFY;
    if (!c->conf->is_server && mbedtls_ssl_get_verify_result(&c->ssl) != 0 &&
        mbedtls_ssl_get_verify_result(&c->ssl) != (uint32_t)-1)
        return TLS_EVERIFY;
    return TLS_EHANDSHAKE;
}

int tls_conn_handshake(tls_conn_t *c)
{
    if (c->handshake_done)
        return 0;
    while (c->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int ret = mbedtls_ssl_handshake_step(&c->ssl);
        if (c->ssl.state == MBEDTLS_SSL_SERVER_CERTIFICATE)
            c->saw_full_handshake = 1;
        if (ret == MBEDTLS_ERR_SSL_WANT_READ)
            return TLS_WANT;
        if (ret != 0)
            return handshake_error(c, ret);
    }
    c->handshake_done = 1;
    c->resumed = !c->saw_full_handshake;
    return 0;
}

int tls_conn_read(tls_conn_t *c, char *buf, size_t len)
{
    if (!c->handshake_done) {
        int rc = tls_conn_handshake(c);
        if (rc != 0)
            return rc;
    }
    if (len == 0)
        return 0;
    if (len > 0x7fffffff)
        len = 0x7fffffff;
    /* mbedTLS returns 0 for an empty application record; a few in a row are legal, so try
     * again a bounded number of times (it rejects long runs of them itself). */
    for (int tries = 0; tries < 4; tries++) {
        int ret = mbedtls_ssl_read(&c->ssl, (unsigned char *)buf, len);
        if (ret > 0)
            return ret;
        if (ret == 0)
            continue;
        if (ret == MBEDTLS_ERR_SSL_WANT_READ)
            return TLS_WANT;
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return TLS_CLOSED;
        if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED)
            return TLS_ENOMEM;
        return TLS_EPROTO;
    }
    return TLS_WANT;
}

int tls_conn_write(tls_conn_t *c, const char *data, size_t len)
{
    if (!c->handshake_done)
        return TLS_EPROTO;
    while (len > 0) {
        int ret = mbedtls_ssl_write(&c->ssl, (const unsigned char *)data, len);
        if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED)
            return TLS_ENOMEM;
        if (ret <= 0)
            return TLS_EPROTO;
        data += ret;
        len -= (size_t)ret;
    }
    return 0;
}

int tls_conn_close_notify(tls_conn_t *c)
{
    int ret = mbedtls_ssl_close_notify(&c->ssl);
    if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED)
        return TLS_ENOMEM;
    return ret == 0 ? 0 : TLS_EPROTO;
}

int tls_conn_take_output(tls_conn_t *c, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (c->out_len == 0)
        return 0;
    *buf = c->out;
    *len = c->out_len;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    return 0;
}

tls_session_t *tls_conn_save_session(tls_conn_t *c)
{
    if (c->conf->is_server || !c->handshake_done)
        return NULL;
    tls_session_t *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    mbedtls_ssl_session_init(&s->s);
    if (mbedtls_ssl_get_session(&c->ssl, &s->s) != 0) {
        tls_session_free(s);
        return NULL;
    }
    return s;
}

int tls_conn_set_session(tls_conn_t *c, const tls_session_t *s)
{
    if (c->conf->is_server || c->handshake_done || c->ssl.state != MBEDTLS_SSL_HELLO_REQUEST)
        return TLS_EHANDSHAKE;
    int ret = mbedtls_ssl_set_session(&c->ssl, &s->s);
    if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED)
        return TLS_ENOMEM;
    return ret == 0 ? 0 : TLS_EHANDSHAKE;
}

void tls_session_free(tls_session_t *s)
{
    if (!s)
        return;
    mbedtls_ssl_session_free(&s->s);
    free(s);
}

int tls_conn_resumed(const tls_conn_t *c)
{
    return c->handshake_done && c->resumed;
}

const char *tls_strerror(int err)
{
    if (err >= 0)
        return "success";
    switch (err) {
    case TLS_WANT:
        return "TLS needs more input";
    case TLS_CLOSED:
        return "TLS peer closed the connection (close_notify)";
    case TLS_EVERIFY:
        return "TLS certificate verification failed (untrusted issuer or wrong host name)";
    case TLS_EHANDSHAKE:
        return "TLS handshake failed";
    case TLS_EPROTO:
        return "TLS protocol error";
    case TLS_ENOMEM:
        return "out of memory in TLS";
    case TLS_ECONF:
        return "cannot load TLS CA bundle, certificate or key";
    default:
        return "unknown TLS error";
    }
}
