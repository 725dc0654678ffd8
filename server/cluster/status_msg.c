/* status_msg.c - the text of a key status or circuit change (status_msg.h). */
#include "server/cluster/status_msg.h"

#include "shm/shm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIRCUIT_PREFIX "circuit:"

/* The characters of a name in a message: those the config allows, [A-Za-z0-9._-]. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A status the messages carry: a key's but half-open, a circuit's closed or open. */
static int status_ok(int kind, int status)
{
    if (kind == STATUS_MSG_CIRCUIT)
        return status == SHM_CIRCUIT_CLOSED || status == SHM_CIRCUIT_OPEN;
    return kind == STATUS_MSG_KEY && status >= 0 && status < SHM_ST_COUNT &&
           status != SHM_ST_HALF_OPEN;
}

static const char *status_name(int kind, int status)
{
    return kind == STATUS_MSG_CIRCUIT ? shm_circuit_name(status) : shm_status_name(status);
}

size_t status_msg_format(const status_msg_t *m, char *buf)
{
    if (!name_ok(m->key, strnlen(m->key, sizeof(m->key))) ||
        !name_ok(m->node, strnlen(m->node, sizeof(m->node))) || !status_ok(m->kind, m->status) ||
        m->reason < 0 || m->reason >= SHM_RS_COUNT)
        return 0;
    int n = snprintf(buf, STATUS_MSG_MAX, "%s%s %s %s %lld %lld %s",
                     m->kind == STATUS_MSG_CIRCUIT ? CIRCUIT_PREFIX : "", m->key,
                     status_name(m->kind, m->status), shm_reason_name(m->reason),
                     (long long)m->since_ms, (long long)m->until_ms, m->node);
    return n > 0 && n < STATUS_MSG_MAX ? (size_t)n : 0;
}

/* The next space-separated field of [*p, end) into out (outlen bytes with NUL). */
static int field(const char **p, const char *end, char *out, size_t outlen)
{
    const char *s = *p, *e = s;
    while (e < end && *e != ' ')
        e++;
    if (e == s || (size_t)(e - s) >= outlen)
        return -1;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    *p = e < end ? e + 1 : e;
    return 0;
}

static int number(const char *s, int64_t *out)
{
    char *end;
    if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
        return -1; /* out of range: refused, not saturated (one spelling per message) */
    *out = v;
    return 0;
}

int status_msg_parse(const char *p, size_t len, status_msg_t *m)
{
    const char *end = p + len;
    char st[32], rs[32], since[24], until[24];
    const size_t plen = sizeof(CIRCUIT_PREFIX) - 1;
    memset(m, 0, sizeof(*m));
    if (len >= STATUS_MSG_MAX || memchr(p, '\0', len) || (len && p[len - 1] == ' '))
        return -1; /* one spelling: no trailing space */
    if (len > plen && !memcmp(p, CIRCUIT_PREFIX, plen)) {
        m->kind = STATUS_MSG_CIRCUIT;
        p += plen;
    }
    if (field(&p, end, m->key, sizeof(m->key)) || field(&p, end, st, sizeof(st)) ||
        field(&p, end, rs, sizeof(rs)) || field(&p, end, since, sizeof(since)) ||
        field(&p, end, until, sizeof(until)) || field(&p, end, m->node, sizeof(m->node)) ||
        p != end)
        return -1;
    if (!name_ok(m->key, strlen(m->key)) || !name_ok(m->node, strlen(m->node)) ||
        number(since, &m->since_ms) || number(until, &m->until_ms))
        return -1;
    m->status = m->reason = -1;
    int nst = m->kind == STATUS_MSG_CIRCUIT ? SHM_CIRCUIT_HALF_OPEN + 1 : SHM_ST_COUNT;
    for (int i = 0; i < nst; i++)
        if (!strcmp(st, status_name(m->kind, i)))
            m->status = i;
    for (int i = 0; i < SHM_RS_COUNT; i++)
        if (!strcmp(rs, shm_reason_name(i)))
            m->reason = i;
    if (!status_ok(m->kind, m->status) || m->reason < 0)
        return -1;
    return 0;
}
