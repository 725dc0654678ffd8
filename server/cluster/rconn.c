/* rconn.c - a Redis connection that times out, reconnects and says when it is up (rconn.h). */
#include "server/cluster/rconn.h"

#include "server/common/log.h"

#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <stdlib.h>
#include <string.h>

#define RCONN_TICK_MS     50
#define RCONN_BACKOFF_MIN 100
#define RCONN_BACKOFF_MAX 2000
#define RCONN_RING        4096 /* commands in flight at most */

/* What a command's reply goes to. */
typedef struct rcmd_s {
    rconn_t *c;
    rconn_reply_fn fn;
    void *arg;
    int internal; /* AUTH / SUBSCRIBE of the connection itself */
} rcmd_t;

struct rconn_s {
    uv_loop_t *loop;
    uv_timer_t tick;
    redisAsyncContext *ac;
    const cfg_cluster_t *cfg;
    char *name, *channel;
    rconn_state_fn on_state;
    rconn_message_fn on_message;
    void *arg;
    int up;
    int closing;
    uint64_t started;          /* loop time the current connection began */
    uint64_t retry_at;         /* loop time of the next connect, while there is no ac */
    uint32_t backoff;          /* ms before the next connect after a failure */
    uint64_t sent[RCONN_RING]; /* loop time of each command in flight, oldest at head */
    unsigned head, n;
    uint64_t commands;
    char why[160]; /* why the connection went down, for on_state */
};

static void conn_drop(rconn_t *c, const char *why);

/* Down, or a connection attempt failed: said every time (the owner ignores repeats). */
static void set_down(rconn_t *c, const char *why)
{
    c->up = 0;
    if (!c->closing && c->on_state)
        c->on_state(c, 0, why, c->arg);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rcmd_t *cmd = priv;
    rconn_t *c = cmd->c;
    redisReply *reply = r;
    (void)ac;
    if (c->n) {
        c->head = (c->head + 1) % RCONN_RING;
        c->n--;
    }
    if (cmd->internal) {
        free(cmd);
        if (!reply)
            return;
        if (reply->type == REDIS_REPLY_ERROR) {
            /* AUTH refused: Redis's message names the problem, never the password */
            char why[160];
            snprintf(why, sizeof(why), "Redis refused the connection: %.100s", reply->str);
            conn_drop(c, why);
            return;
        }
        if (!c->channel || (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                            reply->element[0]->type == REDIS_REPLY_STRING &&
                            !strcmp(reply->element[0]->str, "subscribe"))) {
            c->up = 1;
            c->backoff = RCONN_BACKOFF_MIN;
            if (c->on_state)
                c->on_state(c, 1, "", c->arg);
        }
        return;
    }
    if (cmd->fn && !c->closing)
        cmd->fn(c, reply, cmd->arg);
    else if (cmd->fn)
        cmd->fn(c, NULL, cmd->arg);
    free(cmd);
}

/* Messages of a subscriber connection come through the SUBSCRIBE callback, again and again. */
static void on_push(redisAsyncContext *ac, void *r, void *priv)
{
    rconn_t *c = priv;
    redisReply *reply = r;
    (void)ac;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    redisReply *kind = reply->element[0], *msg = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(kind->str, "subscribe")) {
        if (!c->up) {
            c->up = 1;
            c->backoff = RCONN_BACKOFF_MIN;
            if (c->on_state)
                c->on_state(c, 1, "", c->arg);
        }
        return;
    }
    if (!strcmp(kind->str, "message") && msg->type == REDIS_REPLY_STRING && c->on_message &&
        !c->closing)
        c->on_message(c, msg->str, msg->len, c->arg);
}

static void backoff_next(rconn_t *c)
{
    c->retry_at = uv_now(c->loop) + c->backoff;
    c->backoff = c->backoff * 2 > RCONN_BACKOFF_MAX ? RCONN_BACKOFF_MAX : c->backoff * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    if (c->ac != ac) /* dropped already */
        return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "cannot connect to Redis: %.100s", ac->errstr);
        /* hiredis frees ac after this callback: forget it */
        c->ac = NULL;
        c->n = 0;
        backoff_next(c);
        snprintf(c->why, sizeof(c->why), "%s", why);
        set_down(c, why);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rconn_t *c = ac->data;
    (void)status;
    if (c->ac != ac || c->closing) /* dropped or closed by us */
        return;
    c->ac = NULL; /* freed by hiredis after this callback */
    c->n = 0;
    backoff_next(c);
    set_down(c, c->why[0] ? c->why : "the connection to Redis was closed");
}

static int send_internal(rconn_t *c, int argc, const char **argv, const size_t *lens,
                         redisCallbackFn *fn, void *priv)
{
    return redisAsyncCommandArgv(c->ac, fn, priv, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

static void conn_start(rconn_t *c)
{
    const cfg_cluster_t *cfg = c->cfg;
    c->why[0] = '\0';
    c->ac = cfg->unix_path ? redisAsyncConnectUnix(cfg->unix_path)
                           : redisAsyncConnect(cfg->host, cfg->port);
    c->started = uv_now(c->loop);
    c->head = c->n = 0;
    if (!c->ac || c->ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "cannot connect to Redis: %.100s",
                 c->ac ? c->ac->errstr : "out of memory");
        if (c->ac)
            redisAsyncFree(c->ac);
        c->ac = NULL;
        backoff_next(c);
        set_down(c, why);
        return;
    }
    c->ac->data = c;
    if (redisLibuvAttach(c->ac, c->loop) != REDIS_OK) {
        redisAsyncFree(c->ac);
        c->ac = NULL;
        backoff_next(c);
        return;
    }
    redisAsyncSetConnectCallback(c->ac, on_connect);
    redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
    /* AUTH first (queued until the connection is made), then SUBSCRIBE or a PING */
    if (cfg->password) {
        const char *argv[3] = {"AUTH", cfg->username ? cfg->username : cfg->password,
                               cfg->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(cfg->password)};
        rcmd_t *cmd = calloc(1, sizeof(*cmd));
        if (!cmd || send_internal(c, cfg->username ? 3 : 2, argv, lens, on_reply, cmd) != 0) {
            free(cmd);
            return;
        }
        cmd->c = c;
        cmd->internal = 2; /* AUTH: its OK alone does not make the connection up */
        c->sent[(c->head + c->n++) % RCONN_RING] = uv_now(c->loop);
    }
    if (c->channel) {
        const char *argv[2] = {"SUBSCRIBE", c->channel};
        size_t lens[2] = {9, strlen(c->channel)};
        send_internal(c, 2, argv, lens, on_push, c);
    } else {
        const char *argv[1] = {"PING"};
        size_t lens[1] = {4};
        rcmd_t *cmd = calloc(1, sizeof(*cmd));
        if (!cmd || send_internal(c, 1, argv, lens, on_reply, cmd) != 0) {
            free(cmd);
            return;
        }
        cmd->c = c;
        cmd->internal = 1;
        c->sent[(c->head + c->n++) % RCONN_RING] = uv_now(c->loop);
    }
}

/* Drop the current connection: pending callbacks run with NULL, a new one follows after the
 * backoff. */
static void conn_drop(rconn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    snprintf(c->why, sizeof(c->why), "%s", why);
    c->ac = NULL;
    c->n = 0;
    backoff_next(c);
    set_down(c, why);
    if (ac) /* pending callbacks run with NULL (now, or after the callback we are in) */
        redisAsyncFree(ac);
}

static void on_tick(uv_timer_t *t)
{
    rconn_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->closing)
        return;
    if (!c->ac) {
        if (now >= c->retry_at)
            conn_start(c);
        return;
    }
    if (!c->up && now - c->started > c->cfg->timeout_ms) {
        conn_drop(c, "Redis did not answer in time (connect)");
        return;
    }
    if (c->n && now - c->sent[c->head] > c->cfg->timeout_ms)
        conn_drop(c, "Redis did not answer in time");
}

rconn_t *rconn_new(uv_loop_t *loop, const rconn_opts_t *o)
{
    rconn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->cfg = o->cfg;
    c->name = strdup(o->name ? o->name : "cluster");
    c->channel = o->channel ? strdup(o->channel) : NULL;
    if (!c->name || (o->channel && !c->channel)) {
        free(c->name);
        free(c->channel);
        free(c);
        return NULL;
    }
    c->on_state = o->on_state;
    c->on_message = o->on_message;
    c->arg = o->arg;
    c->backoff = RCONN_BACKOFF_MIN;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, RCONN_TICK_MS, RCONN_TICK_MS);
    conn_start(c);
    return c;
}

int rconn_up(const rconn_t *c)
{
    return c && c->up && c->ac;
}

int rconn_cmd(rconn_t *c, rconn_reply_fn fn, void *arg, int argc, const char **argv,
              const size_t *lens)
{
    if (!rconn_up(c) || c->closing || c->n >= RCONN_RING)
        return -1;
    rcmd_t *cmd = calloc(1, sizeof(*cmd));
    if (!cmd)
        return -1;
    cmd->c = c;
    cmd->fn = fn;
    cmd->arg = arg;
    if (send_internal(c, argc, argv, lens, on_reply, cmd) != 0) {
        free(cmd);
        return -1;
    }
    c->sent[(c->head + c->n++) % RCONN_RING] = uv_now(c->loop);
    c->commands++;
    return 0;
}

uint64_t rconn_commands(const rconn_t *c)
{
    return c ? c->commands : 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    rconn_t *c = h->data;
    free(c->name);
    free(c->channel);
    free(c);
}

void rconn_close(rconn_t *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->up = 0;
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac); /* pending callbacks run with NULL (fn sees closing) */
    }
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
