/* alerts_test.c - unit tests of server/obs/alerts.c against a local HTTP receiver: events go at
 * once after a quiet period, then at most one POST per interval with the events coalesced;
 * routine key moves are filtered; failed POSTs are retried then dropped; a dead receiver
 * never blocks the caller and the queue stays bounded; the store watcher alerts changes
 * made behind the hooks' back (llmgatectl) and never twice what a hook reported. */
#include <stdlib.h>
#include <string.h>

#include "obs_tutil.h"
#include "server/obs/alerts.h"
#include "t.h"

/* Wait until cond (an expression) holds or ms pass; returns whether it held. */
#define WAIT_FOR(cond, ms)                                                                         \
    ({                                                                                             \
        uint64_t wf_end_ = tu_ms() + (ms);                                                         \
        while (!(cond) && tu_ms() < wf_end_)                                                       \
            tu_sleep_ms(5);                                                                        \
        (cond);                                                                                    \
    })

static alerts_opts_t opts(int port, uint32_t interval)
{
    alerts_opts_t o = {.host = "127.0.0.1",
                       .port = (uint16_t)port,
                       .path = "/hook?token=t0p",
                       .host_header = "127.0.0.1",
                       .min_interval_ms = interval,
                       .timeout_ms = 1000};
    return o;
}

static void test_rate_limit(void)
{
    tu_rx_t rx;
    alerts_t *a = NULL;
    alerts_opts_t o;
    alerts_stats_t st;
    char err[256];
    int ok;

    if (tu_rx_start(&rx, 200) != 0) {
        T_OK(0, "receiver starts");
        return;
    }
    o = opts(rx.port, 400);
    T_EQ_INT(alerts_start(&o, &a, err, sizeof(err)), 0, "alerts start");
    alerts_key_event(a, "k0", "p1", SHM_ST_ACTIVE, SHM_ST_INVALID, "auth");
    T_OK(WAIT_FOR(tu_rx_count(&rx) == 1, 3000), "the first event is POSTed at once");
    for (int i = 1; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        alerts_key_event(a, k, "p1", SHM_ST_ACTIVE, SHM_ST_DISABLED, "admin");
    }
    alerts_key_event(a, "kc", "p1", SHM_ST_ACTIVE, SHM_ST_COOLING, "rate_limited");
    alerts_circuit_event(a, "p1", SHM_CIRCUIT_CLOSED, SHM_CIRCUIT_OPEN);
    ok = WAIT_FOR(tu_rx_count(&rx) >= 2, 3000);
    T_OK(ok, "the next events come in a second POST");
    tu_sleep_ms(600); /* longer than the interval: would a third POST come? (it must not) */
    T_EQ_INT(tu_rx_count(&rx), 2, "... only one: events within the interval are coalesced");
    if (ok) {
        uint64_t gap = rx.at_ms[1] - rx.at_ms[0];
        T_OK(gap >= 380, "the second POST waited for the interval (%llu ms)",
             (unsigned long long)gap);
        T_OK(strstr(rx.body[1], "\"key\":\"k1\"") && strstr(rx.body[1], "\"key\":\"k9\"") &&
                 strstr(rx.body[1], "\"type\":\"circuit\",\"provider\":\"p1\",\"from\":\"closed\","
                                    "\"to\":\"open\""),
             "the second POST carries the nine key events and the circuit event");
        T_OK(strstr(rx.head[0], "POST /hook?token=t0p HTTP/1.1\r\n") &&
                 strcasestr(rx.head[0], "content-type: application/json"),
             "POST to the path and query as configured, JSON");
        T_OK(strstr(rx.body[0], "\"source\":\"llmgate\"") &&
                 strstr(rx.body[0], "\"events\":[{\"time\":\"") &&
                 strstr(rx.body[0],
                        "\"type\":\"key_status\",\"key\":\"k0\",\"provider\":\"p1\","
                        "\"from\":\"active\",\"to\":\"invalid\",\"reason\":\"auth\"}") &&
                 strstr(rx.body[0], "\"text\":\"llmgate: key k0 (p1) active -> invalid (auth)\""),
             "the body: source, summary text, events");
    }
    T_EQ_INT(tu_rx_find(&rx, "\"key\":\"kc\""), 0,
             "active -> cooling is routine: not alerted without include_cooling");
    alerts_stats(a, &st);
    T_OK(st.posts_ok == 2 && st.events_sent == 11 && st.events_dropped == 0 && st.queued == 0,
         "stats: 2 POSTs, 11 events sent");
    alerts_stop(a);
    tu_rx_stop(&rx);
}

static void test_failures(void)
{
    tu_rx_t rx;
    alerts_t *a = NULL;
    alerts_opts_t o;
    alerts_stats_t st;
    char err[256];
    uint64_t t0, took;
    int closed_port;

    if (tu_rx_start(&rx, 500) != 0)
        return;
    o = opts(rx.port, 30);
    o.include_cooling = 1;
    alerts_start(&o, &a, err, sizeof(err));
    alerts_key_event(a, "k1", "p1", SHM_ST_ACTIVE, SHM_ST_COOLING, "rate_limited");
    T_OK(WAIT_FOR(tu_rx_count(&rx) == 3, 3000), "a 500 answer: the POST is tried 3 times");
    alerts_stats(a, &st);
    T_OK(WAIT_FOR((alerts_stats(a, &st), st.events_dropped == 1), 2000) && st.posts_failed == 3 &&
             st.queued == 0,
         "then its events are dropped and counted");
    T_OK(tu_rx_find(&rx, "\"to\":\"cooling\"") == 3, "include_cooling: routine moves alert");
    alerts_stop(a);
    tu_rx_stop(&rx);
    closed_port = rx.port; /* nothing listens there any more */

    o = opts(closed_port, 10000);
    alerts_start(&o, &a, err, sizeof(err));
    t0 = tu_ms();
    for (int i = 0; i < 1000; i++)
        alerts_key_event(a, "k1", "p1", SHM_ST_ACTIVE, SHM_ST_DISABLED, "admin");
    took = tu_ms() - t0;
    T_OK(took < 500, "1000 events against a dead receiver never block the caller (%llu ms)",
         (unsigned long long)took);
    alerts_stats(a, &st);
    T_OK(st.queued <= ALERTS_QUEUE && st.events_dropped >= 1000 - ALERTS_QUEUE - ALERTS_BATCH,
         "the queue is bounded (%u queued, %llu dropped)", st.queued,
         (unsigned long long)st.events_dropped);
    t0 = tu_ms();
    alerts_stop(a);
    T_OK(tu_ms() - t0 < 3000, "stop returns within the POST timeout");
}

/* ---- the store watcher --------------------------------------------------------------------- */

static void test_watcher(void)
{
    char dir[64], state[128], err[512];
    shm_opts_t so;
    shm_t *shm = NULL;
    shm_key_spec_t specs[3] = {
        {.name = "k1", .fingerprint = "", .provider = "p1", .weight = 1},
        {.name = "k2", .fingerprint = "", .provider = "p1", .weight = 1},
        {.name = "k3", .fingerprint = "", .provider = "p2", .weight = 1},
    };
    tu_rx_t rx;
    alerts_t *a = NULL;
    alerts_opts_t o;
    alerts_stats_t st;
    uint64_t polls;

    tu_tmpdir(dir, sizeof(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    memset(&so, 0, sizeof(so));
    so.dir = state;
    if (shm_store_open(&so, SHM_NOW, &shm, err, sizeof(err)) != 0 ||
        shm_keys_sync(shm, specs, 3, SHM_NOW, NULL) != 0 || tu_rx_start(&rx, 204) != 0) {
        T_OK(0, "store and receiver: %s", err);
        return;
    }
    o = opts(rx.port, 0);
    o.shm = shm;
    o.poll_ms = 50;
    alerts_start(&o, &a, err, sizeof(err));
    T_OK(WAIT_FOR((alerts_stats(a, &st), st.polls >= 1), 3000), "the watcher reads the store");
    T_EQ_INT(shm_key_disable(shm, "k1", "llmgatectl test", SHM_NOW), 0, "disable k1 in the store");
    T_OK(WAIT_FOR(tu_rx_find(&rx, "\"key\":\"k1\",\"provider\":\"p1\",\"from\":\"active\",\"to\":"
                                  "\"disabled\",\"reason\":\"admin\"") == 1,
                  3000),
         "a change made behind the hooks' back (llmgatectl) is alerted, with its reason");

    /* a change the request path reports itself: the store first, then the hook */
    shm_key_disable(shm, "k2", NULL, SHM_NOW);
    alerts_key_event(a, "k2", "p1", SHM_ST_ACTIVE, SHM_ST_DISABLED, "admin");
    alerts_stats(a, &st);
    polls = st.polls;
    T_OK(WAIT_FOR((alerts_stats(a, &st), st.polls >= polls + 3), 3000), "three more readings");
    T_OK(WAIT_FOR(tu_rx_find(&rx, "\"key\":\"k2\"") >= 1, 2000) &&
             tu_rx_find(&rx, "\"key\":\"k2\"") == 1,
         "a change reported by a hook is alerted once, not again by the watcher");

    shm_provider_set_circuit(shm, "p2", SHM_CIRCUIT_OPEN, (int64_t)time(NULL) * 1000 + 600000,
                             SHM_RS_SERVER_ERROR, SHM_NOW);
    T_OK(WAIT_FOR(tu_rx_find(&rx, "\"type\":\"circuit\",\"provider\":\"p2\",\"from\":\"closed\","
                                  "\"to\":\"open\"") == 1,
                  3000),
         "a circuit opened in the store is alerted");
    shm_key_enable(shm, "k1", NULL, SHM_NOW);
    T_OK(WAIT_FOR(tu_rx_find(&rx, "\"key\":\"k1\",\"provider\":\"p1\",\"from\":\"disabled\","
                                  "\"to\":\"active\"") == 1,
                  3000),
         "and the way back");
    T_EQ_INT(tu_rx_find(&rx, "\"key\":\"k3\""), 0, "an unchanged key never alerts");
    alerts_stop(a);
    tu_rx_stop(&rx);
    shm_store_close(shm);
    tu_rmtree(dir);
}

int main(void)
{
    test_rate_limit();
    test_failures();
    test_watcher();
    return t_done();
}
