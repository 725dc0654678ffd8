/* clients_msg.c - a store client's definition between cluster nodes (clients_msg.h). */
#include "server/cluster/clients_msg.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const unsigned char zero_digest[32];

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int name_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static void hex(const unsigned char d[32], char out[65])
{
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[64] = '\0';
}

static int unhex(const char *s, size_t n, unsigned char d[32])
{
    if (n != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            d[i / 2] = (unsigned char)(v << 4);
        else
            d[i / 2] |= (unsigned char)v;
    }
    return 0;
}

size_t clients_msg_format(const clients_msg_t *m, char *buf)
{
    const shm_cdef_raw_t *d = &m->def;
    char dg[65], pdg[65], by[40];
    const shm_cdef_spec_t *sp = &d->spec;
    if (!name_ok(d->name, strnlen(d->name, sizeof(d->name)), SHM_NAME_MAX) ||
        !name_ok(m->node, strnlen(m->node, sizeof(m->node)), 63) ||
        (d->status != SHM_CDEF_ACTIVE && d->status != SHM_CDEF_REVOKED) ||
        !memcmp(d->digest, zero_digest, 32) || !shm_cdef_models_ok(sp->models) ||
        d->prev_until_ms < 0 || sp->expires_ms < 0 || d->created_ms < 0 || d->updated_ms < 0 ||
        d->revoked_ms < 0 || d->rotated_ms < 0)
        return 0;
    hex(d->digest, dg);
    if (memcmp(d->prev_digest, zero_digest, 32))
        hex(d->prev_digest, pdg);
    else
        snprintf(pdg, sizeof(pdg), "-");
    size_t bl = strnlen(d->created_by, sizeof(d->created_by) - 1);
    for (size_t i = 0; i < bl; i++) {
        unsigned char c = (unsigned char)d->created_by[i];
        by[i] = name_char(c) || c == '@' ? (char)c : '_';
    }
    by[bl] = '\0';
    if (bl == 0)
        snprintf(by, sizeof(by), "-");
    int n = snprintf(
        buf, CLIENTS_MSG_MAX,
        CLIENTS_MSG_PREFIX "%s %s %s %s %lld %lld %u %u %llu %llu %llu %llu %lld %lld %lld %lld "
                           "%s %s %s",
        d->name, d->status == SHM_CDEF_ACTIVE ? "active" : "revoked", dg, pdg,
        (long long)d->prev_until_ms, (long long)sp->expires_ms, sp->rpm, sp->rpd,
        (unsigned long long)sp->tokens_per_day, (unsigned long long)sp->tokens_per_month,
        (unsigned long long)sp->cost_per_day_micro_usd,
        (unsigned long long)sp->cost_per_month_micro_usd, (long long)d->created_ms,
        (long long)d->updated_ms, (long long)d->revoked_ms, (long long)d->rotated_ms, by,
        sp->models[0] ? sp->models : "*", m->node);
    return n > 0 && n < CLIENTS_MSG_MAX ? (size_t)n : 0;
}

typedef struct span_s {
    const char *p;
    size_t n;
} span_t;

/* An unsigned decimal of one spelling (no sign, no leading zero) up to max. */
static int number(span_t f, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n == 0 || f.n > 20 || (f.n > 1 && f.p[0] == '0'))
        return -1;
    for (size_t i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return -1;
        unsigned dig = (unsigned)(f.p[i] - '0');
        if (v > (max - dig) / 10)
            return -1;
        v = v * 10 + dig;
    }
    *out = v;
    return 0;
}

static int ms(span_t f, int64_t *out)
{
    uint64_t v;
    if (number(f, INT64_MAX, &v))
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int u32(span_t f, uint32_t *out)
{
    uint64_t v;
    if (number(f, UINT32_MAX, &v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int u64(span_t f, uint64_t *out)
{
    return number(f, UINT64_MAX, out);
}

#define NFIELDS 19

int clients_msg_parse(const char *p, size_t len, clients_msg_t *m)
{
    const size_t plen = sizeof(CLIENTS_MSG_PREFIX) - 1;
    span_t f[NFIELDS];
    unsigned nf = 0;
    memset(m, 0, sizeof(*m));
    if (len >= CLIENTS_MSG_MAX || len <= plen || memcmp(p, CLIENTS_MSG_PREFIX, plen) ||
        memchr(p, '\0', len))
        return -1; /* a NUL would cut a field short of what was sent */
    const char *s = p + plen, *end = p + len;
    /* exactly NFIELDS fields split by single spaces: no empty one, no trailing space */
    while (1) {
        const char *e = s;
        while (e < end && *e != ' ')
            e++;
        if (e == s || nf == NFIELDS)
            return -1;
        f[nf++] = (span_t){s, (size_t)(e - s)};
        if (e == end)
            break;
        s = e + 1;
    }
    if (nf != NFIELDS)
        return -1;
    shm_cdef_raw_t *d = &m->def;
    shm_cdef_spec_t *sp = &d->spec;
    if (!name_ok(f[0].p, f[0].n, SHM_NAME_MAX) || !name_ok(f[18].p, f[18].n, 63))
        return -1;
    memcpy(d->name, f[0].p, f[0].n);
    memcpy(m->node, f[18].p, f[18].n);
    if (f[1].n == 6 && !memcmp(f[1].p, "active", 6))
        d->status = SHM_CDEF_ACTIVE;
    else if (f[1].n == 7 && !memcmp(f[1].p, "revoked", 7))
        d->status = SHM_CDEF_REVOKED;
    else
        return -1;
    if (unhex(f[2].p, f[2].n, d->digest) || !memcmp(d->digest, zero_digest, 32))
        return -1;
    if (!(f[3].n == 1 && f[3].p[0] == '-') &&
        (unhex(f[3].p, f[3].n, d->prev_digest) || !memcmp(d->prev_digest, zero_digest, 32) ||
         !memcmp(d->prev_digest, d->digest, 32)))
        return -1;
    if (ms(f[4], &d->prev_until_ms) || ms(f[5], &sp->expires_ms) || u32(f[6], &sp->rpm) ||
        u32(f[7], &sp->rpd) || u64(f[8], &sp->tokens_per_day) || u64(f[9], &sp->tokens_per_month) ||
        u64(f[10], &sp->cost_per_day_micro_usd) || u64(f[11], &sp->cost_per_month_micro_usd) ||
        ms(f[12], &d->created_ms) || ms(f[13], &d->updated_ms) || ms(f[14], &d->revoked_ms) ||
        ms(f[15], &d->rotated_ms))
        return -1;
    /* created_by */
    if (f[16].n >= sizeof(d->created_by))
        return -1;
    if (!(f[16].n == 1 && f[16].p[0] == '-')) {
        for (size_t i = 0; i < f[16].n; i++)
            if (!name_char((unsigned char)f[16].p[i]) && f[16].p[i] != '@')
                return -1;
        memcpy(d->created_by, f[16].p, f[16].n);
    }
    /* models */
    if (f[17].n > SHM_CDEF_MODELS_MAX)
        return -1;
    if (!(f[17].n == 1 && f[17].p[0] == '*')) {
        memcpy(sp->models, f[17].p, f[17].n);
        sp->models[f[17].n] = '\0';
        if (!shm_cdef_models_ok(sp->models) || !sp->models[0])
            return -1;
    }
    return 0;
}
