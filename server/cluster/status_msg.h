/* status_msg.h - the text of a key status change as nodes send it to each other (status.h):
 *     <key> <status> <reason> <since_ms> <until_ms> <node>
 * status and reason by their store names (shm_status_name, shm_reason_name); key and node of
 * [A-Za-z0-9._-] (key names may hold what the config allows them: no spaces). It arrives from
 * Redis, written by any node: parse it as untrusted. Pure functions, any thread.
 */
#ifndef LLMGATE_STATUS_MSG_H
#define LLMGATE_STATUS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define STATUS_MSG_MAX 256 /* bytes of a message, NUL included */

typedef struct status_msg_s {
    char key[64];
    int status; /* enum shm_status, never SHM_ST_HALF_OPEN */
    int reason; /* enum shm_reason */
    int64_t since_ms, until_ms;
    char node[64];
} status_msg_t;

/* Writes m into buf (STATUS_MSG_MAX bytes); returns its length, or 0 if m cannot be sent (a
 * name too long or with a space, a status or reason out of range, half-open). */
size_t status_msg_format(const status_msg_t *m, char *buf);

/* Parses p[0..len): 0 and *m, or -1 (not such a message: ignored). */
int status_msg_parse(const char *p, size_t len, status_msg_t *m);

#endif
