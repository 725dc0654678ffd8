/* obs_cluster.c - the cluster mode in /health/full and the metrics (obs_cluster.h). */
#include "server/obs/obs_cluster.h"

#include "server/cluster/cluster.h"
#include "server/obs/prom.h"

int obs_cluster_json(buf_t *out)
{
    cluster_info_t ci;
    cluster_get(&ci);
    if (ci.mode == CLUSTER_OFF)
        return 0;
    /* the node id is [A-Za-z0-9._-]: nothing to escape */
    return buf_printf(out,
                      ",\"cluster\":{\"node\":\"%s\",\"mode\":\"%s\",\"redis_up\":%s,"
                      "\"last_contact_ms\":%lld,\"degraded_since_ms\":%lld,\"grants\":%llu,"
                      "\"units\":%llu,\"refills\":%llu,\"refill_p50_us\":%llu,"
                      "\"refill_max_us\":%llu,\"status_published\":%llu,\"status_applied\":%llu}",
                      ci.node, cluster_mode_name(ci.mode), ci.redis_up ? "true" : "false",
                      (long long)ci.last_contact_ms, (long long)ci.degraded_since_ms,
                      (unsigned long long)ci.grants, (unsigned long long)ci.units,
                      (unsigned long long)ci.refills, (unsigned long long)ci.refill_p50_us,
                      (unsigned long long)ci.refill_max_us, (unsigned long long)ci.published,
                      (unsigned long long)ci.applied) < 0
               ? -1
               : 0;
}

static int one(buf_t *out, const char *name, const char *type, const char *help, double v)
{
    return prom_family(out, name, type, help) | prom_sample(out, name, NULL, v);
}

int obs_cluster_metrics(buf_t *out)
{
    cluster_info_t ci;
    int rc = 0;
    cluster_get(&ci);
    if (ci.mode == CLUSTER_OFF)
        return 0;
    rc |= one(out, "llmgate_cluster_degraded", "gauge",
              "1 while this host admits on its safe share because Redis cannot be reached.",
              ci.mode == CLUSTER_DEGRADED);
    rc |= one(out, "llmgate_cluster_redis_up", "gauge",
              "1 while the command connection to Redis is up.", ci.redis_up);
    rc |= one(out, "llmgate_cluster_redis_roundtrips_total", "counter",
              "Commands sent to Redis (each one round trip, pipelined).", (double)ci.roundtrips);
    rc |= one(out, "llmgate_cluster_lease_refills_total", "counter",
              "Grants of a shared limit received from Redis.", (double)ci.refills);
    rc |= prom_family(out, "llmgate_cluster_lease_refill_seconds", "summary",
                      "Round trip of the lease calls that brought a grant.");
    rc |= prom_sample(out, "llmgate_cluster_lease_refill_seconds_sum", NULL,
                      (double)ci.refill_us / 1e6);
    rc |= prom_sample(out, "llmgate_cluster_lease_refill_seconds_count", NULL, (double)ci.refills);
    rc |= one(out, "llmgate_cluster_lease_grants", "gauge", "Grants held by this host now.",
              (double)ci.grants);
    rc |= one(out, "llmgate_cluster_lease_units", "gauge",
              "Units of shared limits held unused by this host now.", (double)ci.units);
    rc |= one(out, "llmgate_cluster_status_published_total", "counter",
              "Key status changes of this host sent to the other nodes.", (double)ci.published);
    rc |= one(out, "llmgate_cluster_status_applied_total", "counter",
              "Key status changes of other nodes taken by this host.", (double)ci.applied);
    return rc ? -1 : 0;
}
