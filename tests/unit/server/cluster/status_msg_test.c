/* status_msg_test.c - the text of key status and circuit changes between cluster nodes
 * (server/cluster/status_msg.h). */
#include "server/cluster/status_msg.h"
#include "shm/shm.h"
#include "t.h"

#include <string.h>

static int parse(const char *s, status_msg_t *m)
{
    return status_msg_parse(s, strlen(s), m);
}

static void roundtrip(const char *s, const char *what)
{
    status_msg_t m;
    char buf[STATUS_MSG_MAX];
    size_t n = parse(s, &m) == 0 ? status_msg_format(&m, buf) : 0;
    T_OK(n == strlen(s) && !memcmp(buf, s, n), "%s formats back to itself", what);
}

int main(void)
{
    status_msg_t m;
    T_EQ_INT(parse("k1 cooling rate_limited 1000 31000 node-a", &m), 0, "a key cooldown parses");
    T_EQ_INT(m.kind, STATUS_MSG_KEY, "as a key's");
    T_EQ_STR(m.key, "k1", "its key");
    T_EQ_INT(m.status, SHM_ST_COOLING, "its status");
    T_EQ_INT(m.reason, SHM_RS_RATE_LIMITED, "its reason");
    T_EQ_INT(m.since_ms, 1000, "since");
    T_EQ_INT(m.until_ms, 31000, "until");
    T_EQ_STR(m.node, "node-a", "the node");
    roundtrip("k1 cooling rate_limited 1000 31000 node-a", "a key message");

    T_EQ_INT(parse("circuit:openai open policy 5000 35000 node-b", &m), 0, "a circuit parses");
    T_EQ_INT(m.kind, STATUS_MSG_CIRCUIT, "as a circuit's");
    T_EQ_STR(m.key, "openai", "its provider");
    T_EQ_INT(m.status, SHM_CIRCUIT_OPEN, "open");
    T_EQ_INT(m.reason, SHM_RS_POLICY, "its reason");
    roundtrip("circuit:openai open policy 5000 35000 node-b", "a circuit message");
    T_EQ_INT(parse("circuit:openai closed probe 9000 0 node-b", &m), 0, "a closed circuit parses");
    T_EQ_INT(m.status, SHM_CIRCUIT_CLOSED, "closed");

    T_EQ_INT(parse("circuit:openai half_open none 1 0 n", &m), -1, "a half-open circuit: refused");
    T_EQ_INT(parse("k1 half_open none 1 0 n", &m), -1, "a half-open key: refused");
    T_EQ_INT(parse("circuit:openai cooling none 1 0 n", &m), -1, "a key's status for a circuit");
    T_EQ_INT(parse("k1 open none 1 0 n", &m), -1, "a circuit's state for a key");
    T_EQ_INT(parse("circuit: open none 1 0 n", &m), -1, "a circuit without its provider");
    T_EQ_INT(parse("a:b cooling none 1 0 n", &m), -1, "a name of other characters");
    T_EQ_INT(parse("k1 cooling none 1 0 n ", &m), -1, "a trailing space");
    T_EQ_INT(parse("k1 cooling none 1x 0 n", &m), -1, "a number that is not one");
    T_EQ_INT(parse("k1 cooling bogus 1 0 n", &m), -1, "an unknown reason");
    T_EQ_INT(status_msg_parse("k1 cooling none 1 0 n\0x", 23, &m), -1, "a NUL inside");

    status_msg_t out = {.kind = STATUS_MSG_CIRCUIT, .status = SHM_CIRCUIT_HALF_OPEN};
    char buf[STATUS_MSG_MAX];
    memcpy(out.key, "p", 2);
    memcpy(out.node, "n", 2);
    T_EQ_INT(status_msg_format(&out, buf), 0, "a half-open circuit is never said");
    out.status = SHM_CIRCUIT_OPEN;
    T_OK(status_msg_format(&out, buf) > 0, "an open one is");
    memcpy(out.node, "a b", 4);
    T_EQ_INT(status_msg_format(&out, buf), 0, "a node id with a space is never said");
    {
        /* found by fuzz_status_msg: a number past int64 was taken as INT64_MAX */
        static const char big[] = "oai-1 cooling rate_limited 9661796357185185481 179662 h-a";
        status_msg_t m;
        T_EQ_INT(status_msg_parse(big, sizeof(big) - 1, &m), -1, "a number out of range");
    }
    return t_done();
}
