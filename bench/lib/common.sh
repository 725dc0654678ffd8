# shellcheck shell=bash disable=SC2034
# bench/lib/common.sh - shared by bench/run.sh and bench/lib/profile.sh (sourced, not run).
#
# Starts the mock upstream, llmgate and nginx on loopback, each under taskset when pinning
# is on, remembers every pid it started and kills exactly those at exit. Measures CPU time
# from /proc/PID/stat and memory from /proc/PID/status.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO_DIR/build-bench}
LIB_DIR=$BENCH_DIR/lib
CLK_TCK=$(getconf CLK_TCK)

STARTED_PIDS=()

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- processes -------------------------------------------------------------------------

cleanup() {
    local p
    for p in "${STARTED_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${STARTED_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$p" 2>/dev/null
    done
    STARTED_PIDS=()
}

# Stops one process we started (TERM, then KILL after 2 s) and forgets it.
stop_pid() {
    local p=$1 keep=()
    kill -TERM "$p" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    for q in "${STARTED_PIDS[@]}"; do [ "$q" != "$p" ] && keep+=("$q"); done
    STARTED_PIDS=("${keep[@]}")
}

# CPU sets: with pinning, the load generator gets one core and the servers the other.
pin_servers() { if [ "$PIN" = 1 ]; then echo "taskset -c $SERVER_CPUS"; fi; }
pin_client() { if [ "$PIN" = 1 ]; then echo "taskset -c $CLIENT_CPUS"; fi; }

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

wait_http() { # URL [seconds]
    local url=$1 t=${2:-10} i
    for ((i = 0; i < t * 20; i++)); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.05
    done
    return 1
}

# ---- packages and build ----------------------------------------------------------------

apt_install() { # PKG...: installs (never upgrades) what is missing
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    # RUNLEVEL=1: the nginx package must not start a system nginx on port 80.
    if ! $sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "$@" >&2; then
        $sudo apt-get update >&2 || return 1
        $sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "$@" >&2
    fi
}

ensure_tools() {
    local need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v curl >/dev/null || need+=(curl)
    command -v python3 >/dev/null || need+=(python3)
    command -v taskset >/dev/null || need+=(util-linux)
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        apt_install "${need[@]}" || die "cannot install ${need[*]}"
    fi
    if ! command -v gnuplot >/dev/null; then
        say "installing gnuplot-nox (optional, for the chart)"
        apt_install gnuplot-nox || say "no gnuplot: the report will have no PNG"
    fi
    NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
}

build_release() {
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        say "meson setup $BUILD_DIR --buildtype=release"
        meson setup "$BUILD_DIR" "$REPO_DIR" --buildtype=release >&2 || die "meson setup failed"
    fi
    # Only the two binaries: tests that are being written elsewhere must not block a run.
    ninja -C "$BUILD_DIR" server/llmgate bench/mock/mock-upstream >&2 || die "build failed"
    LLMGATE_BIN=$BUILD_DIR/server/llmgate
    MOCK_BIN=$BUILD_DIR/bench/mock/mock-upstream
}

# ---- the mock upstream -----------------------------------------------------------------

start_mock() { # sets MOCK_PID MOCK_PORT
    MOCK_PORT=$(free_port)
    $(pin_servers) "$MOCK_BIN" --listen "127.0.0.1:$MOCK_PORT" --threads "$MOCK_THREADS" \
        --quiet >"$WORK/mock.out" 2>"$WORK/mock.err" &
    MOCK_PID=$!
    STARTED_PIDS+=("$MOCK_PID")
    wait_http "http://127.0.0.1:$MOCK_PORT/_mock/stats" || die "mock-upstream did not start"
}

# ---- llmgate -----------------------------------------------------------------------------

CLIENT_KEY=sk-llmgate-bench-client

# Writes $WORK/llmgate.yaml: 2 OpenAI-compatible providers on the mock, 10 keys each (rpm
# high enough never to bind), one model over both (chat and the Responses API); with
# ANTHROPIC 1 the same again with api: anthropic (x-api-key) for a second model, the one
# /v1/messages is served for, and two models that make llmgate translate: claude-bench-x
# (chat clients on the api: anthropic providers) and gpt-bench-x (Messages clients on the
# OpenAI-compatible ones); client keys, metrics and access log when the config schema
# knows them (probed with --check-config).
gen_llmgate_config() { # OBS(0|1) ANTHROPIC(0|1)
    local f=$WORK/llmgate.yaml i p digest obs=$1 anthropic=$2 provs=(a b)
    digest=$(printf %s "$CLIENT_KEY" | sha256sum | cut -d' ' -f1)
    {
        echo "# generated by bench/run.sh"
        echo "listen: [\"127.0.0.1:$LLMGATE_PORT\"]"
        echo "workers: $WORKERS"
        echo "state_dir: $WORK/state"
        echo "shutdown_timeout_ms: 1000"
        echo "limits:"
        echo "  max_connections: 30000"
        echo "policy:"
        echo "  strategy: round_robin"
        echo "providers:"
        [ "$anthropic" = 1 ] && provs+=(c d)
        for p in "${provs[@]}"; do
            echo "  - name: bench-$p"
            echo "    base_url: http://127.0.0.1:$MOCK_PORT/v1"
            # anthropic: x-api-key and anthropic-version: 2023-06-01, the defaults
            case $p in c | d) echo "    api: anthropic" ;; esac
            echo "    pool_max_idle: 64"
            echo "    keys:"
            for i in $(seq -w 1 10); do
                echo "      - name: bench-$p-$i"
                echo "        secret_env: BENCH_KEY_${p^^}_$i"
                echo "        rpm: 10000000"
            done
        done
        echo "models:"
        echo "  - name: bench-chat"
        echo "    aliases: [gpt-4o-mini]"
        echo "    deployments:"
        echo "      - {provider: bench-a, model: mock-model-a}"
        echo "      - {provider: bench-b, model: mock-model-b}"
        echo "    input_price_per_m: 0.15"
        echo "    output_price_per_m: 0.60"
        if [ "$anthropic" = 1 ]; then
            echo "  - name: claude-bench"
            echo "    deployments:"
            echo "      - {provider: bench-c, model: mock-claude-c}"
            echo "      - {provider: bench-d, model: mock-claude-d}"
            echo "    input_price_per_m: 3.00"
            echo "    output_price_per_m: 15.00"
            # translated: the same providers, reached from the other client API
            echo "  - name: claude-bench-x"
            echo "    deployments:"
            echo "      - {provider: bench-c, model: mock-claude-c}"
            echo "      - {provider: bench-d, model: mock-claude-d}"
            echo "    input_price_per_m: 3.00"
            echo "    output_price_per_m: 15.00"
            echo "  - name: gpt-bench-x"
            echo "    deployments:"
            echo "      - {provider: bench-a, model: mock-model-a}"
            echo "      - {provider: bench-b, model: mock-model-b}"
            echo "    input_price_per_m: 0.15"
            echo "    output_price_per_m: 0.60"
        fi
        if [ "$AUTH_MODE" = client_keys ]; then
            echo "client_keys:"
            echo "  - name: bench-client"
            echo "    sha256: $digest"
        else
            echo "allow_unauthenticated: true"
        fi
        if [ "$obs" = 1 ]; then
            echo "metrics:"
            echo "  listen: \"127.0.0.1:$METRICS_PORT\""
            echo "access_log:"
            echo "  path: $WORK/llmgate-access.log"
        fi
    } >"$f"
}

export_key_env() {
    local p i
    for p in A B C D; do
        for i in $(seq -w 1 10); do
            export "BENCH_KEY_${p}_$i=sk-bench-${p,,}-$i"
        done
    done
}

# Chooses the richest configuration this build accepts; sets LLMGATE_OBS, AUTH_MODE and
# LLMGATE_ANTHROPIC (0: a build without api: anthropic, which serves no /v1/messages).
configure_llmgate() {
    local out
    LLMGATE_PORT=$(free_port)
    METRICS_PORT=$(free_port)
    export_key_env
    mkdir -p "$WORK/state"
    chmod 700 "$WORK/state"
    for AUTH_MODE in client_keys unauthenticated; do
        for LLMGATE_OBS in 1 0; do
            for LLMGATE_ANTHROPIC in 1 0; do
                gen_llmgate_config "$LLMGATE_OBS" "$LLMGATE_ANTHROPIC"
                if out=$("$LLMGATE_BIN" --check-config "$WORK/llmgate.yaml" 2>&1); then
                    say "llmgate config: auth=$AUTH_MODE metrics+access_log=$LLMGATE_OBS" \
                        "anthropic=$LLMGATE_ANTHROPIC ($out)"
                    return 0
                fi
                echo "$out" >>"$WORK/check-config.log"
            done
        done
    done
    die "no generated llmgate config is valid, see $WORK/check-config.log"
}

start_llmgate() { # sets LLMGATE_PID
    $(pin_servers) "$LLMGATE_BIN" --config "$WORK/llmgate.yaml" --log-level warn \
        >"$WORK/llmgate.out" 2>"$WORK/llmgate.err" &
    LLMGATE_PID=$!
    STARTED_PIDS+=("$LLMGATE_PID")
    wait_http "http://127.0.0.1:$LLMGATE_PORT/v1/models" 15 ||
        die "llmgate did not start: $(tail -5 "$WORK/llmgate.err")"
}

# After a few requests: does this build really serve /metrics and write the access log?
# The log is written by a thread every 200 ms (ACCESSLOG_FLUSH_MS): the lines of the sanity
# check are waited for, up to 2 s, or nginx would run without its access log.
probe_llmgate_obs() {
    local i
    LLMGATE_METRICS_SERVED=0
    LLMGATE_ACCESS_LOG_LINES=0
    [ "$LLMGATE_OBS" = 1 ] || return 0
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
        grep -q 200 && LLMGATE_METRICS_SERVED=1
    for ((i = 0; i < 40; i++)); do
        [ -f "$WORK/llmgate-access.log" ] &&
            LLMGATE_ACCESS_LOG_LINES=$(wc -l <"$WORK/llmgate-access.log")
        # an access log on stdout (if the path were ignored) is counted too
        [ "$LLMGATE_ACCESS_LOG_LINES" -gt 0 ] ||
            LLMGATE_ACCESS_LOG_LINES=$(grep -c -e 'chat/completions' -e '"request_id":' \
                "$WORK/llmgate.out" 2>/dev/null)
        LLMGATE_ACCESS_LOG_LINES=${LLMGATE_ACCESS_LOG_LINES:-0}
        [ "$LLMGATE_ACCESS_LOG_LINES" -gt 0 ] && break
        sleep 0.05
    done
}

# ---- nginx ---------------------------------------------------------------------------------

# Two servers in one nginx: the plain proxy_pass (buffering on, the default) for the
# non-streaming runs and the same with proxy_buffering off for every SSE mode (chat,
# Responses, Messages), as any nginx in front of an LLM API must do to stream. Both pass
# every path to the mock.
start_nginx() { # ACCESS_LOG(0|1); sets NGINX_PID NGINX_PORT NGINX_SSE_PORT
    local alog=off
    NGINX_PORT=$(free_port)
    NGINX_SSE_PORT=$(free_port)
    mkdir -p "$WORK/nginx/logs"
    [ "$1" = 1 ] && alog="$WORK/nginx/logs/access.log"
    sed -e "s|@WORKERS@|$WORKERS|g" -e "s|@PREFIX@|$WORK/nginx|g" \
        -e "s|@MOCK_PORT@|$MOCK_PORT|g" -e "s|@PORT@|$NGINX_PORT|g" \
        -e "s|@SSE_PORT@|$NGINX_SSE_PORT|g" -e "s|@ACCESS_LOG@|$alog|g" \
        -e "s|@USER@|$( [ "$(id -u)" = 0 ] && echo 'user root;' )|g" \
        "$LIB_DIR/nginx.conf.in" >"$WORK/nginx/nginx.conf"
    "$NGINX_BIN" -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/test.log" ||
        die "nginx config invalid: $(cat "$WORK/nginx/test.log")"
    $(pin_servers) "$NGINX_BIN" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
        >"$WORK/nginx/stdout" 2>&1 &
    NGINX_PID=$!
    STARTED_PIDS+=("$NGINX_PID")
    wait_http "http://127.0.0.1:$NGINX_PORT/nginx-alive" 10 || die "nginx did not start"
}

# ---- measuring -----------------------------------------------------------------------------

# A pid and its children (nginx: master and workers).
pid_tree() {
    local p=$1
    echo "$p"
    pgrep -P "$p" 2>/dev/null
}

cpu_ticks() { # PID... -> utime+stime of these processes and their children, in ticks
    local p sum=0 t
    for p in $(for q in "$@"; do pid_tree "$q"; done); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

mem_kb() { # FIELD PID... -> sum of /proc/PID/status FIELD (VmHWM, VmRSS) over the tree
    local f=$1 p sum=0 v
    shift
    for p in $(for q in "$@"; do pid_tree "$q"; done); do
        v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# The path each mode posts to (the bodies and headers are in chat.lua).
mode_path() { # MODE
    case "$1" in
    chat | stream | xlate-chat-stream) echo /v1/chat/completions ;;
    responses-stream) echo /v1/responses ;;
    messages-stream | xlate-messages-stream) echo /v1/messages ;;
    *) die "unknown mode \"$1\"" ;;
    esac
}

# The passthrough mode a translated mode is compared with: the same client request to a
# model whose providers speak the client's API.
passthrough_mode() { # MODE
    case "$1" in
    xlate-chat-stream) echo stream ;;
    xlate-messages-stream) echo messages-stream ;;
    *) echo "$1" ;;
    esac
}

# The request a target gets in MODE: only llmgate translates; nginx and the mock alone get
# the passthrough request of the same client instead (nginx proxying chat SSE or Messages
# SSE), the reference the translated figures are read against.
client_mode() { # TARGET MODE
    if [ "$1" = llmgate ]; then echo "$2"; else passthrough_mode "$2"; fi
}

# Runs wrk against URL for SECONDS with the chat script; prints its WRK_RESULT line.
# MODE: chat | stream | responses-stream | messages-stream | xlate-chat-stream |
# xlate-messages-stream
run_wrk() { # URL MODE SECONDS
    local url=$1 mode=$2 secs=$3
    $(pin_client) wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${secs}s" --timeout 10s --latency \
        -s "$LIB_DIR/chat.lua" "$url$(mode_path "$mode")" -- "$mode" "$CLIENT_KEY" 2>&1 |
        grep '^WRK_RESULT' | tail -1
}

kv() { # LINE KEY -> value of KEY=value in LINE
    echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'
}
