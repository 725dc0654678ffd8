/* status_msg.h - the text of a key status or provider circuit change as nodes send it to each
 * other (status.h):
 *     <key> <status> <reason> <since_ms> <until_ms> <node>
 *     circuit:<provider> <circuit> <reason> <since_ms> <until_ms> <node>
 * status, circuit and reason by their store names (shm_status_name, shm_circuit_name,
 * shm_reason_name); key, provider and node of [A-Za-z0-9._-] (what the config allows them, so
 * "circuit:" is never a key). It arrives from Redis, written by any node: parse it as
 * untrusted. Pure functions, any thread.
 */
#ifndef LLMGATE_STATUS_MSG_H
#define LLMGATE_STATUS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define STATUS_MSG_MAX 256 /* bytes of a message, NUL included */

enum { STATUS_MSG_KEY = 0, STATUS_MSG_CIRCUIT };

typedef struct status_msg_s {
    int kind;     /* STATUS_MSG_KEY or _CIRCUIT */
    char key[64]; /* the key, or the provider of a circuit */
    int status;   /* enum shm_status, never SHM_ST_HALF_OPEN; for a circuit enum shm_circuit,
                     CLOSED or OPEN */
    int reason;   /* enum shm_reason */
    int64_t since_ms, until_ms;
    char node[64];
} status_msg_t;

/* Writes m into buf (STATUS_MSG_MAX bytes); returns its length, or 0 if m cannot be sent (a
 * name too long or of other characters, a status or reason out of range, half-open). */
size_t status_msg_format(const status_msg_t *m, char *buf);

/* Parses p[0..len): 0 and *m, or -1 (not such a message: ignored). */
int status_msg_parse(const char *p, size_t len, status_msg_t *m);

#endif
