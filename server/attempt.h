/* attempt.h - running a proxied request through the key policy (see attempt.c's note).
 *
 * attempt_start() takes a scanned request whose model is resolved and runs attempts until
 * the response is complete or an error answer was sent; it always ends the request with
 * conn_request_done (directly or through conn_respond*). Worker thread only.
 */
#ifndef LLMGATE_ATTEMPT_H
#define LLMGATE_ATTEMPT_H

struct conn_s;
struct req_s;

void attempt_start(struct conn_s *c, struct req_s *r);

struct worker_s;
/* Record the worker's held-back successes now (the worker's check, its exit). */
void attempt_flush_records(struct worker_s *w);
/* Admit the requests queued in this loop iteration, in one store transaction with the held
 * successes, and go on with each (the worker's check). */
void attempt_run_admissions(struct worker_s *w);
/* Take r off the worker's admission queue, if it is on it (a request that ends). */
void attempt_forget(struct req_s *r);

#endif
