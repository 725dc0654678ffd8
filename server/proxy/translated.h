/* translated.h - an attempt on a provider that speaks another format than the client.
 *
 * attempt.c asks tr_begin for every attempt: when the deployment's provider serves the
 * client's API as it is, nothing changes (the bytes pass, as before); otherwise the pair
 * of xlate.h translates the request now, and the answer as it comes (tr_body, tr_finish,
 * tr_error). The stream state and the JSON answer being gathered live in req_t and are
 * freed by tr_end (a new attempt, the end of the request). The loop's thread only.
 */
#ifndef LLMGATE_TRANSLATED_H
#define LLMGATE_TRANSLATED_H

#include <stddef.h>

#include "server/common/buf.h"
#include "server/xlate/xlate.h"

struct req_s;

/* The most of a JSON answer gathered to be translated (a 2xx, non-streamed). */
#define TR_BODY_MAX (32u << 20)

/* Whether the provider format api serves the client's operation of r, as it is or translated
 * (for the route filter). */
unsigned tr_formats(const api_adapter_t *a, const api_op_t *op);

/* The attempt of r goes to prov (the deployment's upstream model is model). 0: as it is; 1:
 * translated (r->up_body holds the provider's body, *path its path); XLATE_EREFUSE (err says
 * why: the client's 400); XLATE_ENOMEM. */
int tr_begin(struct req_s *r, const cfg_provider_t *prov, const char *model, const char **path,
             xlate_error_t *err);

/* A 2xx answer of the provider, as it comes: the client's bytes to send are appended to out
 * (a stream) or the bytes are gathered (a JSON answer, sent by tr_finish). 0 or XLATE_E*. */
int tr_body(struct req_s *r, const char *data, size_t len, buf_t *out);

/* The 2xx answer ended (complete 1, or cut 0): the rest of the client's bytes into out.
 * 0 or XLATE_E*. */
int tr_finish(struct req_s *r, int complete, buf_t *out);

/* A provider's error answer in the client API's shape: *status_out and out. 0 or XLATE_E*. */
int tr_error(struct req_s *r, int status, const char *body, size_t len, buf_t *out,
             int *status_out);

/* Free the attempt's translation state (idempotent). */
void tr_end(struct req_s *r);

#endif
