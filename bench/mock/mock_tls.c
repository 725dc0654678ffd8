/* mock_tls.c - HTTPS for the mock upstream: a connection's bytes through server/tls/tls.h.
 *
 * Ciphertext read from the socket is fed to the connection's tls_conn_t; once the
 * handshake is done, decrypted plaintext goes to the same HTTP code as in plain mode
 * (mock_conn_input). Responses are encrypted at flush time and the resulting ciphertext,
 * which tls.h hands over as malloc'd buffers, is written with mock_conn_write_owned.
 */

#include "mock.h"

#include <stdio.h>
#include <stdlib.h>

int mock_tls_start(mock_conn_t *c)
{
    return tls_conn_new(&c->tls, c->w->tls, NULL) == 0 ? 0 : -1;
}

/* Write whatever ciphertext the TLS layer produced. 0, or -1 (connection closed). */
static int tls_send(mock_conn_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    if (tls_conn_take_output(c->tls, &buf, &len) != 0) {
        mock_conn_close(c);
        return -1;
    }
    if (buf == NULL || len == 0) {
        free(buf);
        return 0;
    }
    return mock_conn_write_owned(c, buf, len);
}

int mock_tls_on_read(mock_conn_t *c, const char *data, size_t len)
{
    if (tls_conn_feed(c->tls, data, len) != 0) {
        mock_conn_close(c);
        return -1;
    }
    if (!c->handshake_done) {
        int r = tls_conn_handshake(c->tls);
        if (tls_send(c) != 0)
            return -1;
        if (r == TLS_WANT)
            return 0;
        if (r != 0) {
            if (c->w->verbose)
                fprintf(stderr, "mock-upstream[%d]: TLS handshake failed: %s\n", c->w->id,
                        tls_strerror(r));
            mock_conn_close(c);
            return -1;
        }
        c->handshake_done = 1;
    }
    return mock_tls_drain(c);
}

int mock_tls_drain(mock_conn_t *c)
{
    while (!c->busy && !c->closing && !c->shutting && c->done_how == MOCK_DONE_KEEP) {
        int n = c->w->tls ? tls_conn_read(c->tls, c->w->pbuf, sizeof c->w->pbuf) : TLS_WANT;
        if (n == TLS_WANT || n == 0)
            break;
        if (n == TLS_CLOSED) {
            c->peer_eof = 1;
            break;
        }
        if (n < 0) {
            mock_conn_close(c);
            return -1;
        }
        if (mock_conn_input(c, c->w->pbuf, (size_t)n) < 0)
            return c->closing ? -1 : 0;
    }
    if (c->closing)
        return -1;
    return tls_send(c);
}

int mock_tls_write(mock_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (bufs[i].len > 0 && tls_conn_write(c->tls, bufs[i].base, bufs[i].len) != 0)
            return -1;
    return tls_send(c);
}

void mock_tls_close_notify(mock_conn_t *c)
{
    if (tls_conn_close_notify(c->tls) == 0)
        tls_send(c);
}
