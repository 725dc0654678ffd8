/* cfgref.h - a loaded configuration shared by reference, so it can be replaced (SIGHUP).
 *
 * Whoever keeps pointers into a cfg_t holds a reference: the main thread (the current
 * config), each worker (its current config) and each request in flight (the config it
 * was routed with - its model, deployment and key pointers stay valid to its end). The
 * last cfgref_put frees the configuration. Any thread.
 */
#ifndef LLMGATE_CFGREF_H
#define LLMGATE_CFGREF_H

#include <stdatomic.h>

#include "config/config.h"

typedef struct cfg_ref_s {
    cfg_t *cfg;
    atomic_int refs;
    unsigned generation; /* 1 for the config loaded at start, +1 per reload */
} cfg_ref_t;

/* Takes ownership of cfg; the new reference count is 1. NULL on allocation failure. */
cfg_ref_t *cfgref_new(cfg_t *cfg, unsigned generation);
cfg_ref_t *cfgref_get(cfg_ref_t *r);
void cfgref_put(cfg_ref_t *r);

#endif
