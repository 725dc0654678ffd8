/* attempt.h - running a proxied request through the key policy (see attempt.c's note).
 *
 * attempt_start() takes a scanned request whose model is resolved and runs attempts until
 * the response is complete or an error answer was sent; it always ends the request with
 * conn_request_done (directly or through conn_respond*). The loop's thread only.
 */
#ifndef LLMGATE_ATTEMPT_H
#define LLMGATE_ATTEMPT_H

#include <stddef.h>

struct conn_s;
struct req_s;
struct proxy_s;

void attempt_start(struct conn_s *c, struct req_s *r);

/* The client is gone or the connection closes: drop upstream work, release the
 * reservation as cancelled. Idempotent. */
void attempt_abort(struct req_s *r);

/* While the upstream is paused for r, the client took bytes; queued is what is still
 * queued to it (the upstream resumes below the low watermark). */
void attempt_drain(struct req_s *r, size_t queued);

/* Record the proxy's held-back successes now (the worker's check, its exit). */
void attempt_flush_records(struct proxy_s *p);
/* Admit the requests queued in this loop iteration, in one store transaction with the held
 * successes, and go on with each (the worker's check). */
void attempt_run_admissions(struct proxy_s *p);
/* Take r off the admission queue, if it is on it (a request that ends). */
void attempt_forget(struct req_s *r);
/* Record the objects the responses of this loop iteration created, in one store
 * transaction, then send what each response held back for it (the worker's check, its
 * exit; and at once when the queue is full). */
void attempt_flush_objects(struct proxy_s *p);
/* r ends: its object (if unwritten) is still recorded, its held bytes are dropped. */
void attempt_obj_detach(struct req_s *r);

#endif
