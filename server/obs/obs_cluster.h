/* obs_cluster.h - what the cluster mode (server/cluster/cluster.h) shows: the "cluster" member of
 * /health/full and the llmgate_cluster_* metric families. Nothing without a cluster: section.
 * Any thread (the figures are a copy, cluster_get).
 */
#ifndef LLMGATE_OBS_CLUSTER_H
#define LLMGATE_OBS_CLUSTER_H

#include "server/common/buf.h"

/* ",\"cluster\":{...}" (with the leading comma), or nothing without a cluster. 0 or -1. */
int obs_cluster_json(buf_t *out);

/* The llmgate_cluster_* families, or nothing without a cluster. 0 or -1. */
int obs_cluster_metrics(buf_t *out);

#endif
