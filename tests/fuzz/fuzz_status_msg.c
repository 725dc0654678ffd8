/* fuzz_status_msg.c - the key status and circuit messages nodes send each other through Redis
 * (server/cluster/status_msg.h): any bytes parse or are refused without a fault; what parses
 * has names without spaces or colons and a shared status (a circuit's closed or open), and
 * formats back to the very bytes parsed (one spelling per message, so nodes never disagree on
 * what was said). */
#include "server/cluster/status_msg.h"
#include "shm/shm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    status_msg_t m, m2;
    char buf[STATUS_MSG_MAX];
    if (status_msg_parse((const char *)data, size, &m) != 0)
        return 0;
    int st_ok = m.kind == STATUS_MSG_CIRCUIT
                    ? m.status == SHM_CIRCUIT_CLOSED || m.status == SHM_CIRCUIT_OPEN
                    : m.kind == STATUS_MSG_KEY && m.status >= 0 && m.status < SHM_ST_COUNT &&
                          m.status != SHM_ST_HALF_OPEN;
    if (!st_ok || m.reason < 0 || m.reason >= SHM_RS_COUNT || strchr(m.key, ' ') ||
        strchr(m.node, ' ') || strchr(m.key, ':') || !m.key[0] || !m.node[0])
        abort();
    size_t n = status_msg_format(&m, buf);
    if (n == 0)
        abort(); /* what parses can be said */
    if (status_msg_parse(buf, n, &m2) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
        abort();
    /* the same text, unless the numbers had another spelling ("+1", "007") */
    if (n == size && memcmp(buf, data, n) != 0)
        abort();
    return 0;
}
