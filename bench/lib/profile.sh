#!/usr/bin/env bash
# bench/lib/profile.sh - where llmgate spends its time, next to nginx, under bench/run.sh's load.
#
#   bench/lib/profile.sh [--seconds S] [--workers N] [--no-strace] [--no-perf] [--callgrind N]
#
# Same set-up as bench/run.sh (release build, mock, llmgate, nginx on loopback, pinned).
# For chat and SSE, per request:
#   - syscalls at full speed (perf stat raw_syscalls:sys_enter), and by name (strace -c -f:
#     slows the target a lot, so counts per request only, never rates);
#   - malloc/calloc/realloc/free calls and LMDB transactions (mdb_txn_begin, read-only or
#     not, mdb_txn_commit), with uprobes (perf probe), removed again at exit;
#   - a CPU profile of llmgate: perf record -g (dwarf), top functions by self time and the
#     callers of the allocator and of LMDB.
# --callgrind N: also N requests of llmgate under valgrind --tool=callgrind (slow) with the
# instrumentation switched on after the warm-up only (callgrind_control -i on).
# Without a working perf, the uprobe counts and the profile come from callgrind instead.
# Writes bench/results/profile-<timestamp>/ and prints summary.md.
set -u

SECS=5
DO_STRACE=1
DO_PERF=1
CALLGRIND_REQS=0
WORKERS=1
WRK_CONNS=64
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECS=$2; shift ;;
    --no-strace) DO_STRACE=0 ;;
    --no-perf) DO_PERF=0 ;;
    --callgrind) CALLGRIND_REQS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile.sh: unknown argument \"$1\"" >&2; exit 1 ;;
    esac
    shift
done

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

PROBES_ADDED=0
remove_probes() {
    [ "$PROBES_ADDED" = 1 ] && perf probe -q --del 'probe_bench:*' 2>/dev/null
    PROBES_ADDED=0
}
WORK=$(mktemp -d /tmp/llmgate-profile.XXXXXX)
trap 'cleanup; remove_probes; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

OUT=$BENCH_DIR/results/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || die "cannot create $OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

ensure_tools
command -v strace >/dev/null || apt_install strace || DO_STRACE=0
command -v perf >/dev/null || { say "no perf (apt-get install linux-perf)"; DO_PERF=0; }
build_release

NCPU=$(nproc)
PIN=0
if [ "$NCPU" -ge 2 ] && [ "$WORKERS" -lt "$NCPU" ]; then
    PIN=1; CLIENT_CPUS=$((NCPU - 1)); SERVER_CPUS=0-$((NCPU - 2)); [ "$NCPU" = 2 ] && SERVER_CPUS=0
fi
WRK_THREADS=1
[ "$PIN" = 1 ] || WRK_THREADS=$NCPU
MOCK_THREADS=1

start_mock
configure_llmgate
start_llmgate
probe_llmgate_obs
start_nginx "$([ "$LLMGATE_ACCESS_LOG_LINES" -gt 0 ] && echo 1 || echo 0)"
cp "$WORK/llmgate.yaml" "$WORK/nginx/nginx.conf" "$OUT/"

url_of() { # TARGET MODE
    case "$1" in
    llmgate) echo "http://127.0.0.1:$LLMGATE_PORT" ;;
    nginx) [ "$2" = stream ] && echo "http://127.0.0.1:$NGINX_SSE_PORT" ||
        echo "http://127.0.0.1:$NGINX_PORT" ;;
    direct) echo "http://127.0.0.1:$MOCK_PORT" ;;
    esac
}
pids_of() { # TARGET -> comma-separated pids (nginx: workers only; the master idles)
    case "$1" in
    llmgate) echo "$LLMGATE_PID" ;;
    nginx) pgrep -P "$NGINX_PID" | paste -sd, ;;
    direct) echo "$MOCK_PID" ;;
    esac
}

for mode in chat stream; do
    for t in llmgate nginx direct; do run_wrk "$(url_of "$t" "$mode")" "$mode" 1 >/dev/null; done
done

# ---- uprobes: allocator and LMDB -----------------------------------------------------------

LIBC=$(ldd "$LLMGATE_BIN" | awk '/libc\.so/ {print $3}')
LIBLMDB=$(ldd "$LLMGATE_BIN" | awk '/liblmdb/ {print $3}')
EVENTS=raw_syscalls:sys_enter
if [ "$DO_PERF" = 1 ] && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    if perf probe -q -x "$LIBC" --add 'probe_bench:malloc=malloc' 2>"$WORK/probe.err" &&
        perf probe -q -x "$LIBC" --add 'probe_bench:calloc=calloc' 2>>"$WORK/probe.err" &&
        perf probe -q -x "$LIBC" --add 'probe_bench:realloc=realloc' 2>>"$WORK/probe.err" &&
        perf probe -q -x "$LIBC" --add 'probe_bench:free=free' 2>>"$WORK/probe.err"; then
        PROBES_ADDED=1
        EVENTS=$EVENTS,probe_bench:malloc,probe_bench:calloc,probe_bench:realloc,probe_bench:free
        if [ -n "$LIBLMDB" ] &&
            perf probe -q -x "$LIBLMDB" --add 'probe_bench:txn_begin=mdb_txn_begin flags=%dx:x32' \
                2>>"$WORK/probe.err" &&
            perf probe -q -x "$LIBLMDB" --add 'probe_bench:txn_commit=mdb_txn_commit' \
                2>>"$WORK/probe.err"; then
            EVENTS=$EVENTS,probe_bench:txn_begin,probe_bench:txn_commit
        fi
    else
        say "uprobes unavailable ($(tail -1 "$WORK/probe.err")): allocation counts need --callgrind"
        PROBES_ADDED=1
        remove_probes
    fi
else
    DO_PERF=0
fi

echo "mode,target,requests,event,count,per_request" >"$OUT/counts.csv"
if [ "$DO_PERF" = 1 ]; then
    for mode in chat stream; do
        for t in llmgate nginx direct; do
            perf stat -x, -e "$EVENTS" -p "$(pids_of "$t")" -o "$WORK/stat.txt" &
            sp=$!
            sleep 0.3
            line=$(run_wrk "$(url_of "$t" "$mode")" "$mode" "$SECS")
            kill -INT "$sp"; wait "$sp" 2>/dev/null
            n=$(kv "$line" requests)
            grep -v '^#' "$WORK/stat.txt" | awk -F, -v m="$mode" -v t="$t" -v n="$n" \
                'NF > 3 && $1 ~ /^[0-9]+$/ {printf "%s,%s,%d,%s,%d,%.2f\n", m, t, n, $3, $1, $1 / n}' \
                >>"$OUT/counts.csv"
            say "$t $mode: $n requests counted"
        done
    done
    # LMDB: read-only (MDB_RDONLY = 0x20000) or write transactions, from the probe's argument.
    if [[ $EVENTS == *txn_begin* ]]; then
        for mode in chat stream; do
            perf record -q -e probe_bench:txn_begin -p "$LLMGATE_PID" -o "$WORK/txn.data" \
                2>/dev/null &
            sp=$!
            sleep 0.3
            line=$(run_wrk "$(url_of llmgate "$mode")" "$mode" 2)
            kill -INT "$sp"; wait "$sp" 2>/dev/null
            n=$(kv "$line" requests)
            perf script -i "$WORK/txn.data" 2>/dev/null | grep -o 'flags=0x[0-9a-f]*' | sort |
                uniq -c | while read -r c f; do
                    f=${f#flags=}
                    kind=write
                    (((f & 0x20000) != 0)) && kind=read
                    echo "$mode,llmgate,$n,lmdb_${kind}_txn(flags $f),$c,$(awk -v c="$c" -v n="$n" 'BEGIN {printf "%.2f", c / n}')"
                done >>"$OUT/counts.csv"
        done
    fi
fi
remove_probes

# ---- syscalls by name: strace -c -f ------------------------------------------------------

if [ "$DO_STRACE" = 1 ]; then
    for mode in chat stream; do
        for t in llmgate nginx; do
            pflags=""
            for p in $(pids_of "$t" | tr , ' '); do pflags="$pflags -p $p"; done
            # shellcheck disable=SC2086
            strace -c -f -qq $pflags -o "$WORK/strace.txt" &
            sp=$!
            sleep 0.5
            line=$(run_wrk "$(url_of "$t" "$mode")" "$mode" "$SECS")
            kill -INT "$sp"; wait "$sp" 2>/dev/null
            n=$(kv "$line" requests)
            {
                echo "# strace -c -f of $t ($mode): $n requests; calls per request in the last column"
                awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
                        name = $NF; calls = $4
                        printf "%-18s %10d %8.2f\n", name, calls, calls / n; total += calls }
                    END { printf "%-18s %10d %8.2f\n", "TOTAL", total, total / n }' "$WORK/strace.txt"
            } >"$OUT/strace-$t-$mode.txt"
            say "strace $t $mode: $(tail -1 "$OUT/strace-$t-$mode.txt")"
        done
    done
fi

# ---- CPU profile: perf record -g --------------------------------------------------------------

if [ "$DO_PERF" = 1 ]; then
    for mode in chat stream; do
        perf record -q -e cpu-clock -F 1999 --call-graph dwarf,16384 -p "$LLMGATE_PID" \
            -o "$WORK/perf-$mode.data" 2>/dev/null &
        sp=$!
        sleep 0.3
        run_wrk "$(url_of llmgate "$mode")" "$mode" "$SECS" >/dev/null
        kill -INT "$sp"; wait "$sp" 2>/dev/null
        perf report -i "$WORK/perf-$mode.data" --no-children --sort dso,symbol --stdio \
            -g none --percent-limit 0.5 2>/dev/null | grep -v '^$' >"$OUT/perf-self-$mode.txt"
        perf report -i "$WORK/perf-$mode.data" --children --sort symbol --stdio -g none \
            --percent-limit 2 2>/dev/null | grep -v '^$' >"$OUT/perf-children-$mode.txt"
        perf report -i "$WORK/perf-$mode.data" --no-children --sort dso --stdio -g none \
            2>/dev/null | grep -v '^$' >"$OUT/perf-dso-$mode.txt"
        say "perf $mode: $(grep -c . "$OUT/perf-self-$mode.txt") lines in perf-self-$mode.txt"
    done
fi

# ---- callgrind: exact instruction counts and call counts ------------------------------------

if [ "$CALLGRIND_REQS" -gt 0 ] && command -v valgrind >/dev/null; then
    stop_pid "$LLMGATE_PID"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
        "$LLMGATE_BIN" --config "$WORK/llmgate.yaml" --log-level warn \
        >"$WORK/cg.stdout" 2>"$WORK/cg.stderr" &
    LLMGATE_PID=$!
    STARTED_PIDS+=("$LLMGATE_PID")
    wait_http "http://127.0.0.1:$LLMGATE_PORT/v1/models" 60 || die "llmgate under callgrind did not start"
    run_wrk "$(url_of llmgate chat)" chat 2 >/dev/null
    for mode in chat stream; do
        callgrind_control -z "$LLMGATE_PID" >/dev/null
        callgrind_control -i on "$LLMGATE_PID" >/dev/null
        # a fixed number of requests: 4 connections, each N/4 requests (wrk counts time only)
        python3 - "$LLMGATE_PORT" "$CALLGRIND_REQS" "$mode" "$CLIENT_KEY" <<'EOF'
import http.client, json, sys, threading
port, total, mode, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = {"model": "gpt-4o-mini", "max_tokens": 64, "temperature": 0.2, "messages": [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "Say hello to the benchmark in one short sentence."}]}
if mode == "stream":
    body["stream"] = True
data = json.dumps(body, separators=(",", ":"))
def client(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        c.request("POST", "/v1/chat/completions", data, {"Content-Type": "application/json",
                  "Authorization": "Bearer " + key})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
ts = [threading.Thread(target=client, args=(total // 4,)) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
        callgrind_control -i off "$LLMGATE_PID" >/dev/null
        callgrind_control -d "cg-$mode" "$LLMGATE_PID" >/dev/null
        sleep 1
        f=$(ls -t "$WORK"/cg.out* 2>/dev/null | head -1)
        [ -n "$f" ] || continue
        cp "$f" "$OUT/callgrind-$mode.out"
        callgrind_annotate --inclusive=no "$f" 2>/dev/null | head -45 >"$OUT/callgrind-self-$mode.txt"
        callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -90 >"$OUT/callgrind-incl-$mode.txt"
        # who calls the allocator (call counts in parentheses)
        callgrind_annotate --tree=caller "$f" 2>/dev/null |
            grep -B14 '\*  .*:\(malloc\|calloc\|realloc\) \[' >"$OUT/callgrind-alloc-callers-$mode.txt"
        # call counts of the allocator and of LMDB, per request
        for fn in malloc calloc realloc free mdb_txn_begin mdb_txn_commit mdb_txn_abort mdb_get mdb_put \
            mdb_txn_reset mdb_txn_renew; do
            calls=$(awk -v fn="$fn" '
                /^c?fn=\(/ { key = substr($0, index($0, "("), index($0, ")") - index($0, "(") + 1)
                             name = substr($0, index($0, ")") + 2)
                             if (name != "") id[key] = name
                             if ($0 ~ /^cfn=/) cur = id[key] }
                /^calls=/ { if (cur == fn) { split(substr($0, 7), a, " "); n += a[1] } }
                END { print n + 0 }' "$f")
            echo "$mode,llmgate-callgrind,$CALLGRIND_REQS,$fn,$calls,$(awk -v c="$calls" -v n="$CALLGRIND_REQS" 'BEGIN {printf "%.2f", c / n}')" >>"$OUT/counts.csv"
        done
        rm -f "$WORK"/cg.out*
    done
fi

# ---- summary ---------------------------------------------------------------------------------

{
    echo "# llmgate profile $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "git $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
        "workers $WORKERS, wrk -t $WRK_THREADS -c $WRK_CONNS, ${SECS} s per measurement, pinned: $PIN."
    echo
    echo "## Counts per request (perf stat; uprobes on libc and liblmdb)"
    echo
    echo "| mode | target | event | count | per request |"
    echo "|---|---|---|---:|---:|"
    tail -n +2 "$OUT/counts.csv" | awk -F, '{printf "| %s | %s | %s | %d | %s |\n", $1, $2, $4, $5, $6}'
    for f in "$OUT"/strace-*.txt; do
        [ -f "$f" ] || continue
        echo
        echo '```'
        cat "$f"
        echo '```'
    done
    for mode in chat stream; do
        [ -f "$OUT/perf-dso-$mode.txt" ] || continue
        echo
        echo "## llmgate $mode: CPU by object (perf, cpu-clock)"
        echo
        echo '```'
        grep -E '^ +[0-9.]+%' "$OUT/perf-dso-$mode.txt"
        echo '```'
    done
    for mode in chat stream; do
        [ -f "$OUT/perf-self-$mode.txt" ] || continue
        echo
        echo "## llmgate $mode: top functions by self time (perf, cpu-clock)"
        echo
        echo '```'
        grep -E '^ +[0-9.]+%' "$OUT/perf-self-$mode.txt" | head -25
        echo '```'
    done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
say "profile written to $OUT"
