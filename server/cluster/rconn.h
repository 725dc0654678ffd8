/* rconn.h - one Redis connection on a libuv loop (hiredis' async API and its libuv adapter),
 * that says when it is up, times its replies out and reconnects by itself.
 *
 * Design note
 * -----------
 * hiredis 0.14 (Debian 12) has no connect or command timeouts in its async API; rconn keeps
 * them: a connection that is not up within timeout_ms, or a command without its reply for
 * timeout_ms, is dropped (every pending callback runs with reply NULL) and a new one is made
 * after a backoff that doubles from 100 ms to 5 s and starts afresh once a connection is up.
 * "Up" means connected, AUTH accepted (when the config has a password) and, for a subscriber
 * connection, SUBSCRIBE confirmed. Commands are taken only while up; replies come in order.
 *
 * A subscriber connection (channel != NULL) sends nothing else; each message published on
 * the channel is given to on_message.
 *
 * Secrets: the password goes into AUTH only; no message of rconn's names it.
 *
 * Threads: everything on the loop's thread; callbacks run on it. rconn_close may be called
 * from a callback of its own connection.
 */
#ifndef LLMGATE_RCONN_H
#define LLMGATE_RCONN_H

#include "config/config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rconn_s rconn_t;

/* The reply to a command (owned by hiredis: valid during the call), or NULL when the command
 * failed: the connection went down, or its reply took longer than timeout_ms. An error reply
 * (REDIS_REPLY_ERROR) is a reply. */
typedef void (*rconn_reply_fn)(rconn_t *c, redisReply *reply, void *arg);
/* The connection came up (up 1) or went down (0, why: a sentence for the log). */
typedef void (*rconn_state_fn)(rconn_t *c, int up, const char *why, void *arg);
/* A message on the subscribed channel: payload[0..len). */
typedef void (*rconn_message_fn)(rconn_t *c, const char *payload, size_t len, void *arg);

typedef struct rconn_opts_s {
    const cfg_cluster_t *cfg; /* address, AUTH, timeout_ms; must outlive the connection */
    const char *name;         /* for log lines: "cluster" */
    const char *channel;      /* subscribe to this channel (a subscriber connection), or NULL */
    rconn_state_fn on_state;
    rconn_message_fn on_message;
    void *arg;
} rconn_opts_t;

/* Starts connecting at once. NULL on out of memory. The strings of opts are copied. */
rconn_t *rconn_new(uv_loop_t *loop, const rconn_opts_t *opts);

/* 1 while up. */
int rconn_up(const rconn_t *c);

/* Send argv (argc arguments of lens bytes each). 0: sent, fn will be called once; -1: not up or
 * out of memory, fn is not called. */
int rconn_cmd(rconn_t *c, rconn_reply_fn fn, void *arg, int argc, const char **argv,
              const size_t *lens);

/* Commands sent over the connection's life (for the round-trip figures). */
uint64_t rconn_commands(const rconn_t *c);

/* Drop the connection (pending callbacks run with NULL) and free c once hiredis and libuv are
 * done with it; no callback of c runs after the pending ones. NULL ok. */
void rconn_close(rconn_t *c);

#endif
