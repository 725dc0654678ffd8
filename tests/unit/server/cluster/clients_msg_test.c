/* clients_msg_test.c - the text of store client definitions between cluster nodes
 * (server/cluster/clients_msg.h): each spelling parses to what it says and formats back to
 * itself; digests are hex; names, models, numbers and digests of other spellings, a field too
 * many or too few, stray bytes are refused; what cannot be said is not formatted. */
#include "server/cluster/clients_msg.h"
#include "t.h"

#include <stdio.h>
#include <string.h>

#define D1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define D2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char *added = "client:acme active " D1 " - 0 0 10 0 0 0 0 0 1000 1000 0 0 alice * "
                           "node-a";
static const char *rotated = "client:acme active " D2 " " D1 " 5000 9000 60 1000 100000 3000000 "
                             "5000000 100000000 1000 4000 0 4000 uid_1@h m1,org/m:v1 host-2";

static int parse(const char *s, clients_msg_t *m)
{
    return clients_msg_parse(s, strlen(s), m);
}

static void roundtrip(const char *s, const char *what)
{
    clients_msg_t m;
    char buf[CLIENTS_MSG_MAX];
    size_t n = parse(s, &m) == 0 ? clients_msg_format(&m, buf) : 0;
    T_OK(n == strlen(s) && !memcmp(buf, s, n), "%s formats back to itself", what);
}

/* s with its field i (0 = the name after "client:") replaced by v. */
static int parse_with(const char *s, int i, const char *v)
{
    char buf[CLIENTS_MSG_MAX * 2], out[CLIENTS_MSG_MAX * 2] = "client:";
    clients_msg_t m;
    snprintf(buf, sizeof(buf), "%s", s + 7);
    int f = 0;
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "), f++) {
        if (f)
            strcat(out, " ");
        strcat(out, f == i ? v : tok);
    }
    return parse(out, &m);
}

int main(void)
{
    clients_msg_t m;
    T_EQ_INT(parse(added, &m), 0, "an added client parses");
    T_EQ_STR(m.def.name, "acme", "its name");
    T_EQ_INT(m.def.status, SHM_CDEF_ACTIVE, "active");
    T_OK(m.def.digest[0] == 0x00 && m.def.digest[1] == 0x11 && m.def.digest[31] == 0xff,
         "its digest from hex");
    unsigned char zero[32] = {0};
    T_OK(!memcmp(m.def.prev_digest, zero, 32), "no previous digest");
    T_EQ_INT(m.def.spec.rpm, 10, "rpm");
    T_EQ_STR(m.def.spec.models, "", "* is every model");
    T_EQ_STR(m.def.created_by, "alice", "created_by");
    T_EQ_INT(m.def.updated_ms, 1000, "updated_ms");
    T_EQ_STR(m.node, "node-a", "the node");
    roundtrip(added, "an added client");

    T_EQ_INT(parse(rotated, &m), 0, "a rotated client with every limit parses");
    T_OK(m.def.prev_digest[0] == 0x00 && m.def.digest[0] == 0xff, "both digests");
    T_EQ_INT(m.def.prev_until_ms, 5000, "the grace");
    T_EQ_INT(m.def.spec.expires_ms, 9000, "the expiry");
    T_OK(m.def.spec.rpd == 1000 && m.def.spec.tokens_per_day == 100000 &&
             m.def.spec.tokens_per_month == 3000000 &&
             m.def.spec.cost_per_day_micro_usd == 5000000 &&
             m.def.spec.cost_per_month_micro_usd == 100000000,
         "every budget");
    T_EQ_STR(m.def.spec.models, "m1,org/m:v1", "models");
    roundtrip(rotated, "a rotated client");
    T_EQ_INT(parse("client:old revoked " D1 " - 0 0 0 0 0 0 0 0 1 2 2 0 - * n", &m), 0,
             "a revoked client parses");
    T_OK(m.def.status == SHM_CDEF_REVOKED && m.def.created_by[0] == '\0', "revoked, by nobody");
    roundtrip("client:old revoked " D1 " - 0 0 0 0 0 0 0 0 1 2 2 0 - * n", "a revoked client");

    /* refusals */
    T_EQ_INT(parse_with(added, 0, "ac me"), -1, "a name with a space (a field too many)");
    T_EQ_INT(parse_with(added, 0, "ac:me"), -1, "a name with a colon");
    T_EQ_INT(parse_with(added, 0, "acm\xc3\xa9"), -1, "a name of other bytes");
    T_EQ_INT(parse_with(added, 1, "disabled"), -1, "an unknown status");
    T_EQ_INT(
        parse_with(added, 2, "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"),
        -1, "upper-case hex");
    T_EQ_INT(parse_with(added, 2, "0011"), -1, "a short digest");
    T_EQ_INT(parse_with(added, 2, D1 "00"), -1, "a long digest");
    T_EQ_INT(
        parse_with(added, 2, "0000000000000000000000000000000000000000000000000000000000000000"),
        -1, "a zero digest");
    T_EQ_INT(parse_with(added, 3, D1), -1, "a previous digest equal to the current one");
    T_EQ_INT(parse_with(added, 6, "-1"), -1, "a negative rpm");
    T_EQ_INT(parse_with(added, 6, "+1"), -1, "a signed rpm");
    T_EQ_INT(parse_with(added, 6, "010"), -1, "a leading zero");
    T_EQ_INT(parse_with(added, 6, "4294967296"), -1, "an rpm over 32 bits");
    T_EQ_INT(parse_with(added, 8, "18446744073709551616"), -1, "tokens over 64 bits");
    T_EQ_INT(parse_with(added, 13, "9223372036854775808"), -1, "a time over int64");
    T_EQ_INT(parse_with(added, 16, "al ice"), -1, "created_by with a space");
    T_EQ_INT(parse_with(added, 16, "al*ice"), -1, "created_by of other characters");
    T_EQ_INT(parse_with(added, 17, "m1,,m2"), -1, "an empty model name");
    T_EQ_INT(parse_with(added, 17, "m1;m2"), -1, "a model of other characters");
    T_EQ_INT(parse_with(added, 18, "node:a"), -1, "a node with a colon");
    char buf[CLIENTS_MSG_MAX * 2];
    snprintf(buf, sizeof(buf), "%s ", added);
    T_EQ_INT(parse(buf, &m), -1, "a trailing space");
    snprintf(buf, sizeof(buf), "%s extra", added);
    T_EQ_INT(parse(buf, &m), -1, "a field too many");
    T_EQ_INT(parse("client:acme active " D1 " - 0 0 10 0 0 0 0 0 1000 1000 0 0 alice *", &m), -1,
             "a field too few");
    snprintf(buf, sizeof(buf), "%s", added);
    buf[20] = ' ';
    T_EQ_INT(parse(buf, &m), -1, "two spaces");
    T_EQ_INT(clients_msg_parse(added, strlen(added) + 1, &m), -1, "a NUL byte");
    snprintf(buf, sizeof(buf), "%s", rotated);
    char *mo = strstr(buf, "m1,org");
    mo[2] = '\0'; /* "m1" NUL "org/m:v1": the models would read "m1" */
    T_EQ_INT(clients_msg_parse(buf, strlen(rotated), &m), -1, "a NUL inside a field");
    T_EQ_INT(parse("acme active " D1, &m), -1, "no client: prefix (a key status message)");
    T_EQ_INT(parse("k1 cooling rate_limited 1000 31000 node-a", &m), -1, "a key status message");

    /* formatting what cannot be said */
    T_EQ_INT(parse(added, &m), 0, "again");
    clients_msg_t bad = m;
    char out[CLIENTS_MSG_MAX];
    snprintf(bad.def.name, sizeof(bad.def.name), "a b");
    T_EQ_INT(clients_msg_format(&bad, out), 0, "a name with a space is not formatted");
    bad = m;
    bad.def.status = 3;
    T_EQ_INT(clients_msg_format(&bad, out), 0, "nor a bad status");
    bad = m;
    memset(bad.def.digest, 0, 32);
    T_EQ_INT(clients_msg_format(&bad, out), 0, "nor a zero digest");
    bad = m;
    bad.def.updated_ms = -1;
    T_EQ_INT(clients_msg_format(&bad, out), 0, "nor a negative time");
    bad = m;
    snprintf(bad.def.created_by, sizeof(bad.def.created_by), "test uid 1");
    size_t n = clients_msg_format(&bad, out);
    T_OK(n > 0 && strstr(out, " test_uid_1 "), "an actor with spaces is sent with '_'");
    T_EQ_INT(clients_msg_parse(out, n, &m), 0, "and parses");
    return t_done();
}
