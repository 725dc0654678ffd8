/* clients_msg.h - a store client's definition as cluster nodes send it to each other
 * (clients.h), one line of space-separated fields:
 *     client:<name> <active|revoked> <digest> <prev_digest|-> <prev_until_ms> <expires_ms>
 *         <rpm> <rpd> <tokens_day> <tokens_month> <cost_day_micro> <cost_month_micro>
 *         <created_ms> <updated_ms> <revoked_ms> <rotated_ms> <created_by> <models|*> <node>
 * Digests are the SHA-256 of keys in 64 lowercase hex digits (the key itself is never sent:
 * no server has it); "-" for no previous digest. name and node of [A-Za-z0-9._-] (at most
 * SHM_NAME_MAX and 63 bytes); created_by of [A-Za-z0-9._@-] ("-" for none; other characters
 * become '_' when formatted); models as shm_cdef_models_ok accepts them, "*" for all. Numbers
 * are decimal without sign, leading zeros or '+' ("0" is 0). The "client:" prefix tells it
 * from a key status message on the same channel (status_msg.h: a key name has no ':').
 * It arrives from Redis, written by any node: parse it as untrusted. Pure functions, any thread.
 */
#ifndef LLMGATE_CLIENTS_MSG_H
#define LLMGATE_CLIENTS_MSG_H

#include "shm/shm_cdef.h"

#include <stddef.h>

#define CLIENTS_MSG_MAX    1280 /* bytes of a message, NUL included */
#define CLIENTS_MSG_PREFIX "client:"

typedef struct clients_msg_s {
    shm_cdef_raw_t def; /* .cluster unused */
    char node[64];
} clients_msg_t;

/* Writes m into buf (CLIENTS_MSG_MAX bytes); returns its length, or 0 if m cannot be sent (a
 * name or node of other characters, a bad status, models, or a negative number). */
size_t clients_msg_format(const clients_msg_t *m, char *buf);

/* Parses p[0..len): 0 and *m, or -1 (not such a message: ignored). */
int clients_msg_parse(const char *p, size_t len, clients_msg_t *m);

#endif
