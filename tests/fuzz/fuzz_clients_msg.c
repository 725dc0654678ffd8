/* fuzz_clients_msg.c - the store client definitions cluster nodes send each other through Redis
 * (server/cluster/clients_msg.h): any bytes parse or are refused without a fault; what parses
 * has a name and node of [A-Za-z0-9._-], a known status, a non-zero digest, models the store
 * accepts, and formats back to the very bytes parsed (one spelling per message: no sign,
 * leading zero or upper-case hex), which parse to the same definition. */
#include "server/cluster/clients_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char zero[32];
    clients_msg_t m, m2;
    char buf[CLIENTS_MSG_MAX];
    if (clients_msg_parse((const char *)data, size, &m) != 0)
        return 0;
    const shm_cdef_raw_t *d = &m.def;
    if (!name_ok(d->name) || !name_ok(m.node) ||
        (d->status != SHM_CDEF_ACTIVE && d->status != SHM_CDEF_REVOKED) ||
        !memcmp(d->digest, zero, 32) || !memcmp(d->digest, d->prev_digest, 32) ||
        !shm_cdef_models_ok(d->spec.models) || d->updated_ms < 0 || d->spec.expires_ms < 0 ||
        strchr(d->created_by, ' '))
        abort();
    size_t n = clients_msg_format(&m, buf);
    if (n == 0)
        abort(); /* what parses can be said */
    if (clients_msg_parse(buf, n, &m2) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
        abort();
    if (n != size || memcmp(buf, data, n) != 0)
        abort(); /* one spelling */
    return 0;
}
