#!/usr/bin/env bash
# bench/cluster.sh - what the cluster mode (issue 15) costs: plain chat through one llmgate
# host with a cluster: section (redis-server on loopback, every key leased) against the same
# host without it, alternating, in the same run.
#
#   bench/cluster.sh [--rounds N] [--seconds S]
#
# Prints per round req/s and llmgate CPU per request for both, the ratios (goal: >= 0.9 x
# req/s), the Redis round trips per request (llmgate_cluster_redis_roundtrips_total over the
# requests; goal <= 0.05) and the lease refill round trip (mean of
# llmgate_cluster_lease_refill_seconds). Asserts nothing. Pinning as bench/run.sh.
set -u
ROUNDS=3
SECONDS_PER_RUN=10
WARMUP=2
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_PER_RUN=$2; shift ;;
    *) echo "bench/cluster.sh: unknown argument \"$1\"" >&2; exit 1 ;;
    esac
    shift
done
. "$(dirname "$0")/lib/common.sh"
WORKERS=1
WRK_CONNS=64
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/llmgate-bench-cluster.XXXXXX)
trap 'cleanup; rm -rf "$WORK"' EXIT
ensure_tools
command -v redis-server >/dev/null || apt_install redis-server
build_release
NCPU=$(nproc)
PIN=0
WRK_THREADS=2
MOCK_THREADS=2
if [ "$NCPU" -ge 2 ]; then
    PIN=1
    CLIENT_CPUS=$((NCPU - 1))
    SERVER_CPUS=0-$((NCPU - 2))
    [ "$NCPU" = 2 ] && SERVER_CPUS=0
    WRK_THREADS=1
    MOCK_THREADS=$((NCPU - 1))
fi

REDIS_PORT=$(free_port)
$(pin_client) redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
STARTED_PIDS+=("$!")
REDIS_PID=$!
for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done

start_mock
configure_llmgate
[ "$LLMGATE_OBS" = 1 ] || die "this build serves no metrics: the cluster figures need them"
cp "$WORK/llmgate.yaml" "$WORK/off.yaml"
{
    cat "$WORK/off.yaml"
    echo "cluster:"
    echo "  redis: \"127.0.0.1:$REDIS_PORT\""
    echo "  node_id: bench"
    echo "  expected_nodes: 1"
} >"$WORK/on.yaml"

metric() { # NAME -> value from llmgate's /metrics (sum over label sets)
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.6f", s + 0}'
}

run_one() { # off|on -> "req_s cpu_us_per_req rt_per_req refill_ms"
    local which=$1 line reqs t0 t1 rt0 rt1 r0 r1 rs0 rs1 rc0 rc1
    rm -rf "$WORK/state"
    mkdir -p "$WORK/state" && chmod 700 "$WORK/state"
    cp "$WORK/$which.yaml" "$WORK/llmgate.yaml"
    start_llmgate
    run_wrk "http://127.0.0.1:$LLMGATE_PORT" chat "$WARMUP" >/dev/null
    r0=$(metric llmgate_requests_total)
    rt0=$(metric llmgate_cluster_redis_roundtrips_total)
    t0=$(cpu_ticks "$LLMGATE_PID")
    line=$(run_wrk "http://127.0.0.1:$LLMGATE_PORT" chat "$SECONDS_PER_RUN")
    t1=$(cpu_ticks "$LLMGATE_PID")
    r1=$(metric llmgate_requests_total)
    rt1=$(metric llmgate_cluster_redis_roundtrips_total)
    rs1=$(metric llmgate_cluster_lease_refill_seconds_sum)
    rc1=$(metric llmgate_cluster_lease_refill_seconds_count)
    stop_pid "$LLMGATE_PID"
    reqs=$(kv "$line" requests)
    python3 - "$reqs" "$SECONDS_PER_RUN" "$t0" "$t1" "$CLK_TCK" "$r0" "$r1" "$rt0" "$rt1" \
        "$rs1" "$rc1" <<'PY'
import sys
reqs, secs, t0, t1, tck, r0, r1, rt0, rt1, rs, rc = map(float, sys.argv[1:])
served = max(r1 - r0, 1)
print(f"{reqs / secs:.0f} {(t1 - t0) / tck * 1e6 / max(reqs, 1):.1f} "
      f"{(rt1 - rt0) / served:.5f} {rs / rc * 1e3 if rc else 0:.3f}")
PY
}

say "chat, 1 worker, $WRK_CONNS connections, $ROUNDS rounds of ${SECONDS_PER_RUN}s, off/on alternating"
printf '%-6s %-4s %10s %12s %12s %12s\n' round mode req/s cpu_us/req redis_rt/req refill_ms
declare -a OFF_R OFF_C ON_R ON_C
for r in $(seq 1 "$ROUNDS"); do
    for which in off on; do
        read -r rs cpu rt refill <<<"$(run_one "$which")"
        printf '%-6s %-4s %10s %12s %12s %12s\n' "$r" "$which" "$rs" "$cpu" "$rt" "$refill"
        if [ "$which" = off ]; then OFF_R+=("$rs"); OFF_C+=("$cpu"); else ON_R+=("$rs"); ON_C+=("$cpu"); fi
    done
done
python3 - "${OFF_R[*]}" "${OFF_C[*]}" "${ON_R[*]}" "${ON_C[*]}" <<'PY'
import statistics, sys
offr, offc, onr, onc = ([float(x) for x in a.split()] for a in sys.argv[1:])
mr = statistics.median
print(f"median req/s: off {mr(offr):.0f}, on {mr(onr):.0f}: on/off {mr(onr) / mr(offr):.3f} x (goal >= 0.9)")
print(f"median CPU per request: off {mr(offc):.1f} us, on {mr(onc):.1f} us: on/off {mr(onc) / mr(offc):.3f} x")
PY
say "redis-server CPU over the run: $(( $(cpu_ticks "$REDIS_PID") * 1000 / CLK_TCK )) ms"
