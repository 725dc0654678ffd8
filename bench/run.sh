#!/usr/bin/env bash
# bench/run.sh - llmgate against nginx proxy_pass and against the mock upstream directly.
#
#   bench/run.sh [--rounds N] [--seconds S] [--quick] [--workers N] [--conns C]
#                [--no-pin] [--idle N | --no-idle] [--modes LIST | --no-stream] [--out DIR]
#
# LIST: comma-separated, of chat, stream, responses-stream, messages-stream,
# xlate-chat-stream, xlate-messages-stream (all by default; --no-stream = --modes chat).
# Prints figures and writes bench/results/report-<timestamp>.{md,csv,png}; asserts nothing.
# Installs wrk and nginx-light (and gnuplot-nox, optional) from Debian when missing, builds
# llmgate in release mode in build-bench/, starts everything on 127.0.0.1 and kills what it
# started when it exits. See bench/README.md for what each column means.
set -u

ROUNDS=3
SECONDS_PER_RUN=10
WARMUP=2
WORKERS=1
WRK_CONNS=64
PIN_MODE=auto
IDLE_CONNS=10000
ALL_MODES="chat stream responses-stream messages-stream xlate-chat-stream xlate-messages-stream"
MODES=$ALL_MODES
RESULTS_DIR=""

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_PER_RUN=$2; shift ;;
    --quick) ROUNDS=3; SECONDS_PER_RUN=3; WARMUP=1 ;;
    --workers) WORKERS=$2; shift ;;
    --conns) WRK_CONNS=$2; shift ;;
    --no-pin) PIN_MODE=off ;;
    --idle) IDLE_CONNS=$2; shift ;;
    --no-idle) IDLE_CONNS=0 ;;
    --no-stream) MODES=chat ;;
    --modes) MODES=${2//,/ }; shift ;;
    --out) RESULTS_DIR=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument \"$1\"" >&2; usage >&2; exit 1 ;;
    esac
    shift
done

# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

for mode in $MODES; do
    case " $ALL_MODES " in
    *" $mode "*) ;;
    *) die "--modes: unknown mode \"$mode\" (known: ${ALL_MODES// /, })" ;;
    esac
done
[ -n "$MODES" ] || die "--modes: no mode given (known: ${ALL_MODES// /, })"
has_mode() { case " $MODES " in *" $1 "*) return 0 ;; esac; return 1; }
# A translated mode is read against its passthrough mode of the same run.
for mode in xlate-chat-stream xlate-messages-stream; do
    has_mode "$mode" && ! has_mode "$(passthrough_mode "$mode")" &&
        say "$mode without $(passthrough_mode "$mode"): the report will have no" \
            "translated/passthrough ratio (add $(passthrough_mode "$mode") to --modes)"
done

trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
TS=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/raw-$TS
mkdir -p "$RAW" || die "cannot create $RAW"
WORK=$(mktemp -d /tmp/llmgate-bench.XXXXXX)
trap 'cleanup; rm -rf "$WORK"' EXIT

# ---- set-up ------------------------------------------------------------------------------

ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$IDLE_CONNS" -gt 0 ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 512)) ]; then
    say "open-file limit $(ulimit -n) is too low for $IDLE_CONNS idle connections;" \
        "using $(($(ulimit -n) - 512))"
    IDLE_CONNS=$(($(ulimit -n) - 512))
fi

ensure_tools
build_release

# Pinning. On 2 cores everything competes; with one worker per server, the load generator
# gets the last core and the servers (mock + target) the others, so that wrk never steals
# the target's CPU and every target shares its core with the same mock. With as many
# workers as cores, pinning would starve the workers: nothing is pinned then.
NCPU=$(nproc)
PIN=0
if [ "$PIN_MODE" = auto ] && [ "$NCPU" -ge 2 ] && [ "$WORKERS" -lt "$NCPU" ]; then
    PIN=1
    CLIENT_CPUS=$((NCPU - 1))
    SERVER_CPUS=0-$((NCPU - 2))
    [ "$NCPU" = 2 ] && SERVER_CPUS=0
    WRK_THREADS=1
    MOCK_THREADS=$((NCPU - 1))
else
    CLIENT_CPUS=""
    SERVER_CPUS=""
    WRK_THREADS=$NCPU
    MOCK_THREADS=$NCPU
fi

start_mock
configure_llmgate
if [ "$LLMGATE_ANTHROPIC" = 0 ]; then
    # no /v1/messages, no providers to translate to or from
    for mode in messages-stream xlate-chat-stream xlate-messages-stream; do
        has_mode "$mode" || continue
        say "this llmgate build has no api: anthropic (no /v1/messages): $mode left out"
        MODES=$(echo "$MODES" | tr ' ' '\n' | grep -vx "$mode" | paste -sd' ')
    done
    [ -n "$MODES" ] || die "no mode left to run"
fi
start_llmgate

# Sanity: every target answers each request the same way: chat (always: the idle phase
# uses it) and every streaming mode that runs, with the end event of its API and no error
# event. In the translated modes llmgate must answer in the client's format, from the
# providers of the other one; nginx and direct get (and must pass) the passthrough request.
check_post() { # NAME URL PATH BODY WHAT [HEADER...]: a 200, the answer in $WORK/check.out
    local name=$1 url=$2 path=$3 body=$4 what=$5 code
    shift 5
    code=$(curl -sN --max-time 10 -o "$WORK/check.out" -w '%{http_code}' \
        -H 'Content-Type: application/json' "$@" -d "$body" "$url$path")
    [ "$code" = 200 ] ||
        die "$name: $what request (POST $path) answered $code: $(head -c 300 "$WORK/check.out")"
}
check_events() { # NAME WHAT LAST_EVENT BAD_EVENT_RE: LAST_EVENT is the last event line
    local last
    last=$(grep '^event: ' "$WORK/check.out" | tail -1)
    [ "$last" = "event: $3" ] ||
        die "$1: $2 request did not end with event $3 (last: \"${last:-no event}\"):" \
            "$(head -c 300 "$WORK/check.out")"
    ! grep -Eq "^event: ($4)\$" "$WORK/check.out" ||
        die "$1: $2 request sent an error event: $(grep -E -A1 "^event: ($4)\$" "$WORK/check.out" |
            head -c 300)"
}
check_chat_sse() { # NAME WHAT: chat SSE, every data line a chat.completion.chunk but the last,
    local last bad # data: [DONE]; no named events; some content and the usage chunk
    last=$(grep '^data: ' "$WORK/check.out" | tail -1)
    [ "$last" = 'data: [DONE]' ] ||
        die "$1: $2 request did not end with data: [DONE] (last: \"${last:-no data line}\"):" \
            "$(head -c 300 "$WORK/check.out")"
    bad=$(grep '^data: ' "$WORK/check.out" | grep -v '^data: \[DONE\]$' |
        grep -v '"object": *"chat\.completion\.chunk"' | head -1)
    [ -z "$bad" ] || die "$1: $2 answer has a data line that is no chat.completion.chunk:" \
        "$(echo "$bad" | head -c 300)"
    ! grep -q '^event: ' "$WORK/check.out" ||
        die "$1: $2 answer has named events (chat SSE has none):" \
            "$(grep -m1 -A1 '^event: ' "$WORK/check.out" | head -c 300)"
    grep -q '"delta": *{[^}]*"content": *"[^"]' "$WORK/check.out" ||
        die "$1: $2 answer has no content delta: $(head -c 300 "$WORK/check.out")"
    grep -q '"usage": *{' "$WORK/check.out" ||
        die "$1: $2 answer has no usage chunk (stream_options.include_usage asked for one):" \
            "$(tail -c 300 "$WORK/check.out")"
}
check_messages_sse() { # NAME WHAT: Anthropic events, message_start first, message_stop last
    local first
    check_events "$1" "$2" message_stop error
    first=$(grep -m1 '^event: ' "$WORK/check.out")
    [ "$first" = "event: message_start" ] ||
        die "$1: $2 answer did not start with event message_start (first: \"$first\")"
    grep -q '"type": *"text_delta"' "$WORK/check.out" ||
        die "$1: $2 answer has no text_delta: $(head -c 300 "$WORK/check.out")"
    ! grep -q '^data: \[DONE\]' "$WORK/check.out" ||
        die "$1: $2 answer has a data: [DONE] (Anthropic's stream sends none)"
}
check_target() { # NAME URL STREAM_URL
    local body auth=(-H "Authorization: Bearer $CLIENT_KEY")
    body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    check_post "$1" "$2" /v1/chat/completions "$body" chat "${auth[@]}"
    if has_mode stream; then
        check_post "$1" "$3" /v1/chat/completions "${body%\}},\"stream\":true}" stream "${auth[@]}"
        grep -q 'data: \[DONE\]' "$WORK/check.out" ||
            die "$1: stream request did not end with [DONE]"
    fi
    if has_mode responses-stream; then
        check_post "$1" "$3" /v1/responses '{"model":"gpt-4o-mini","input":"hi","stream":true}' \
            responses-stream "${auth[@]}"
        check_events "$1" responses-stream response.completed \
            'response\.failed|response\.incomplete|error'
        ! grep -q '^data: \[DONE\]' "$WORK/check.out" ||
            die "$1: responses-stream answer has a data: [DONE] (the Responses API sends none)"
    fi
    if has_mode messages-stream; then
        body='{"model":"claude-bench","max_tokens":16,"messages":[{"role":"user","content":"hi"}]'
        check_post "$1" "$3" /v1/messages "$body,\"stream\":true}" messages-stream \
            -H "x-api-key: $CLIENT_KEY" -H 'anthropic-version: 2023-06-01'
        check_events "$1" messages-stream message_stop error
    fi
    # The translated modes: llmgate translates; the others answer the passthrough request.
    local model what
    if has_mode xlate-chat-stream; then
        model=claude-bench-x what=xlate-chat-stream
        [ "$1" = llmgate ] || model=gpt-4o-mini what="xlate-chat-stream (its reference, stream)"
        body='{"model":"'$model'","max_tokens":16,"messages":[{"role":"user","content":"hi"}]'
        check_post "$1" "$3" /v1/chat/completions \
            "$body,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" "$what" \
            "${auth[@]}"
        check_chat_sse "$1" "$what"
    fi
    if has_mode xlate-messages-stream; then
        model=gpt-bench-x what=xlate-messages-stream
        [ "$1" = llmgate ] ||
            model=claude-bench what="xlate-messages-stream (its reference, messages-stream)"
        body='{"model":"'$model'","max_tokens":16,"messages":[{"role":"user","content":"hi"}]'
        check_post "$1" "$3" /v1/messages "$body,\"stream\":true}" "$what" \
            -H "x-api-key: $CLIENT_KEY" -H 'anthropic-version: 2023-06-01'
        check_messages_sse "$1" "$what"
    fi
}
check_target direct "http://127.0.0.1:$MOCK_PORT" "http://127.0.0.1:$MOCK_PORT"
check_target llmgate "http://127.0.0.1:$LLMGATE_PORT" "http://127.0.0.1:$LLMGATE_PORT"
probe_llmgate_obs
NGINX_ACCESS_LOG=0
[ "$LLMGATE_ACCESS_LOG_LINES" -gt 0 ] && NGINX_ACCESS_LOG=1
start_nginx "$NGINX_ACCESS_LOG"
check_target nginx "http://127.0.0.1:$NGINX_PORT" "http://127.0.0.1:$NGINX_SSE_PORT"

{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null)$(
        [ -n "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null | head -1)" ] && echo +dirty)"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "ncpu=$NCPU"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rounds=$ROUNDS"
    echo "seconds=$SECONDS_PER_RUN"
    echo "workers=$WORKERS"
    echo "wrk=-t $WRK_THREADS -c $WRK_CONNS"
    echo "pin=$PIN"
    echo "client_cpus=$CLIENT_CPUS"
    echo "server_cpus=$SERVER_CPUS"
    echo "mock_threads=$MOCK_THREADS"
    echo "nginx=$("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')"
    echo "nginx_access_log=$NGINX_ACCESS_LOG"
    echo "llmgate_auth=$AUTH_MODE"
    echo "llmgate_obs_configured=$LLMGATE_OBS"
    echo "llmgate_metrics_served=$LLMGATE_METRICS_SERVED"
    echo "llmgate_access_log_lines_at_check=$LLMGATE_ACCESS_LOG_LINES"
    echo "idle_conns=$IDLE_CONNS"
    echo "modes=$MODES"
    echo "llmgate_anthropic=$LLMGATE_ANTHROPIC"
} >"$RAW/meta.env"
cp "$WORK/llmgate.yaml" "$WORK/nginx/nginx.conf" "$RAW/"
say "pin=$PIN (servers on cpu ${SERVER_CPUS:-any}, wrk on cpu ${CLIENT_CPUS:-any})," \
    "workers=$WORKERS, wrk -t $WRK_THREADS -c $WRK_CONNS, mock threads $MOCK_THREADS"

# ---- measuring ---------------------------------------------------------------------------

busy_ticks() { # all CPUs: user nice system irq softirq steal
    awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

target_url() { # TARGET MODE
    case "$1" in
    direct) echo "http://127.0.0.1:$MOCK_PORT" ;;
    llmgate) echo "http://127.0.0.1:$LLMGATE_PORT" ;;
    nginx) [ "$2" = chat ] && echo "http://127.0.0.1:$NGINX_PORT" ||
        echo "http://127.0.0.1:$NGINX_SSE_PORT" ;; # every streaming mode: buffering off
    esac
}

target_pid() {
    case "$1" in
    direct) echo "$MOCK_PID" ;;
    llmgate) echo "$LLMGATE_PID" ;;
    nginx) echo "$NGINX_PID" ;;
    esac
}

echo "mode,target,round,requests,duration_us,bytes,p50_us,p90_us,p99_us,max_us,errors," \
    "cpu_ticks,mock_cpu_ticks,wrk_cpu_ticks,clk_tck,busy_ticks,wall_us,ncpu,rss_kb,hwm_kb" | tr -d ' ' >"$RAW/runs.csv"

# One wrk run; appends a row to runs.csv and prints a line.
measure() { # MODE TARGET ROUND SECONDS
    local mode=$1 t=$2 round=$3 secs=$4 pid c0 c1 m0 m1 b0 b1 w0 w1 out line err wrk_ticks
    pid=$(target_pid "$t")
    c0=$(cpu_ticks "$pid"); m0=$(cpu_ticks "$MOCK_PID"); b0=$(busy_ticks); w0=$(date +%s%N)
    # `times` in the same subshell: the CPU time of wrk (its only sizeable child)
    # the translated modes: llmgate only; the others get the passthrough request
    out=$(run_wrk "$(target_url "$t" "$mode")" "$(client_mode "$t" "$mode")" "$secs"; times)
    c1=$(cpu_ticks "$pid"); m1=$(cpu_ticks "$MOCK_PID"); b1=$(busy_ticks); w1=$(date +%s%N)
    line=$(echo "$out" | grep '^WRK_RESULT')
    [ -n "$line" ] || die "wrk gave no result for $t ($mode)"
    wrk_ticks=$(echo "$out" | tail -1 | awk -v hz="$CLK_TCK" '{
        n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
        printf "%d", n * hz + 0.5 }')
    err=$(($(kv "$line" err_connect) + $(kv "$line" err_read) + $(kv "$line" err_write) +
        $(kv "$line" err_status) + $(kv "$line" err_timeout)))
    [ "$round" = 0 ] && return 0 # warm-up
    echo "$mode,$t,$round,$(kv "$line" requests),$(kv "$line" duration_us),$(kv "$line" bytes)," \
        "$(kv "$line" p50_us),$(kv "$line" p90_us),$(kv "$line" p99_us),$(kv "$line" max_us)," \
        "$err,$((c1 - c0)),$((m1 - m0)),$wrk_ticks,$CLK_TCK,$((b1 - b0)),$(((w1 - w0) / 1000))," \
        "$NCPU," \
        "$(mem_kb VmRSS "$pid"),$(mem_kb VmHWM "$pid")" | tr -d ' ' >>"$RAW/runs.csv"
    awk -v m="$mode" -v t="$t" -v r="$round" -v n="$(kv "$line" requests)" \
        -v d="$(kv "$line" duration_us)" -v p50="$(kv "$line" p50_us)" \
        -v p99="$(kv "$line" p99_us)" -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v e="$err" 'BEGIN {
        printf "  round %s %-21s %-7s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f ms/1k req  errors %d\n",
            r, m, t, n / (d / 1e6), p50 / 1000, p99 / 1000, (c * 1000 / hz) / (n / 1000), e }' >&2
}

TARGETS="direct llmgate nginx"

say "warm-up (${WARMUP} s per target and mode)"
for mode in $MODES; do
    for t in $TARGETS; do measure "$mode" "$t" 0 "$WARMUP"; done
done
probe_llmgate_obs # now after some thousand requests
echo "llmgate_access_log_lines_after_warmup=$LLMGATE_ACCESS_LOG_LINES" >>"$RAW/meta.env"
echo "llmgate_metrics_served_after_warmup=$LLMGATE_METRICS_SERVED" >>"$RAW/meta.env"

for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round of $ROUNDS (${SECONDS_PER_RUN} s per run)"
    for mode in $MODES; do
        for t in $TARGETS; do measure "$mode" "$t" "$round" "$SECONDS_PER_RUN"; done
    done
done

# ---- the dashboard: chat req/s with the page open (polling) and closed ---------------------

echo "round,state,requests,duration_us,cpu_ticks,polls,poll_errors" >"$RAW/dashboard.csv"

dash_run() { # ROUND STATE(closed|open)
    local line pid=$LLMGATE_PID c0 c1 pp="" polls="" perr=""
    if [ "$2" = open ]; then
        python3 "$LIB_DIR/dash_poll.py" --port "$METRICS_PORT" --interval 1 \
            >"$WORK/dash-poll.out" 2>&1 &
        pp=$!
        STARTED_PIDS+=("$pp")
        sleep 0.5
    fi
    c0=$(cpu_ticks "$pid")
    line=$(run_wrk "$(target_url llmgate chat)" "$(client_mode llmgate chat)" "$DASH_SECONDS" |
        grep '^WRK_RESULT')
    c1=$(cpu_ticks "$pid")
    if [ -n "$pp" ]; then
        kill -TERM "$pp" 2>/dev/null
        wait "$pp" 2>/dev/null
        polls=$(awk '/^POLLS/ {print $2}' "$WORK/dash-poll.out")
        perr=$(awk '/^POLLS/ {print $4}' "$WORK/dash-poll.out")
    fi
    echo "$1,$2,$(kv "$line" requests),$(kv "$line" duration_us),$((c1 - c0)),${polls:-0},${perr:-0}" \
        >>"$RAW/dashboard.csv"
    awk -v r="$1" -v s="$2" -v n="$(kv "$line" requests)" -v d="$(kv "$line" duration_us)" \
        -v p="${polls:-0}" -v e="${perr:-0}" 'BEGIN {
        printf "  round %s dashboard %-6s %9.0f req/s  (polls %d, errors %d)\n", r, s, n / (d / 1e6), p, e }' >&2
}

# Runs of at least 10 s (a poll a second), in the order closed/open, then open/closed, so a
# drift of the machine does not favour one side.
DASH_SECONDS=$((SECONDS_PER_RUN < 10 ? 10 : SECONDS_PER_RUN))
echo "clk_tck=$CLK_TCK" >>"$RAW/meta.env"
if has_mode chat && [ "$LLMGATE_OBS" = 1 ]; then
    say "dashboard: chat with the page polling the admin API every second vs closed"
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then
            dash_run "$round" closed
            dash_run "$round" open
        else
            dash_run "$round" open
            dash_run "$round" closed
        fi
    done
fi

# ---- connection scaling: N idle keep-alive connections held during a run ------------------

echo "target,idle_requested,idle_held,idle_failed,setup_s,rss_before_kb,rss_held_kb,hwm_kb," \
    "rps_before,rps_held,p99_before_us,p99_held_us,still_open,closed_by_peer" |
    tr -d ' ' >"$RAW/idle.csv"

idle_phase() { # TARGET
    local t=$1 pid url held rss0 rss1 hwm hp line0 line1 ok failed secs done_line
    pid=$(target_pid "$t")
    url=$(target_url "$t" chat)
    line0=$(run_wrk "$url" chat "$SECONDS_PER_RUN")
    rss0=$(mem_kb VmRSS "$pid")
    $(pin_client) python3 "$LIB_DIR/idle_hold.py" --port "${url##*:}" --count "$IDLE_CONNS" \
        --key "$CLIENT_KEY" >"$WORK/hold-$t.out" 2>"$WORK/hold-$t.err" &
    hp=$!
    STARTED_PIDS+=("$hp")
    for _ in $(seq 1 600); do
        grep -q '^HELD' "$WORK/hold-$t.out" && break
        kill -0 "$hp" 2>/dev/null || break
        sleep 0.2
    done
    held=$(grep '^HELD' "$WORK/hold-$t.out")
    [ -n "$held" ] || { say "$t: the idle holder did not finish: $(tail -3 "$WORK/hold-$t.err")"; stop_pid "$hp"; return; }
    ok=$(kv "$held" ok); failed=$(kv "$held" failed); secs=$(kv "$held" seconds)
    sleep 1
    rss1=$(mem_kb VmRSS "$pid")
    line1=$(run_wrk "$url" chat "$SECONDS_PER_RUN")
    hwm=$(mem_kb VmHWM "$pid")
    kill -TERM "$hp" 2>/dev/null
    for _ in $(seq 1 50); do grep -q '^DONE' "$WORK/hold-$t.out" && break; sleep 0.1; done
    done_line=$(grep '^DONE' "$WORK/hold-$t.out")
    stop_pid "$hp"
    echo "$t,$IDLE_CONNS,$ok,$failed,$secs,$rss0,$rss1,$hwm," \
        "$(awk -v n="$(kv "$line0" requests)" -v d="$(kv "$line0" duration_us)" 'BEGIN {printf "%.0f", n / (d / 1e6)}')," \
        "$(awk -v n="$(kv "$line1" requests)" -v d="$(kv "$line1" duration_us)" 'BEGIN {printf "%.0f", n / (d / 1e6)}')," \
        "$(kv "$line0" p99_us),$(kv "$line1" p99_us)," \
        "$(kv "$done_line" still_open),$(kv "$done_line" closed_by_peer)" | tr -d ' ' >>"$RAW/idle.csv"
    say "$t: $ok idle connections held (failed $failed) in ${secs}s; RSS $((rss0 / 1024)) -> $((rss1 / 1024)) MiB"
    sleep 2 # let the server reap the closed connections before the next phase
}

if [ "$IDLE_CONNS" -gt 0 ]; then
    say "connection scaling: $IDLE_CONNS idle keep-alive connections"
    for t in llmgate nginx; do idle_phase "$t"; done
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.env"
grep -c . "$WORK/nginx/logs/access.log" 2>/dev/null | sed 's/^/nginx_access_log_lines=/' >>"$RAW/meta.env"
[ -f "$WORK/llmgate-access.log" ] &&
    echo "llmgate_access_log_lines_end=$(wc -l <"$WORK/llmgate-access.log")" >>"$RAW/meta.env"
cp "$WORK/llmgate.err" "$RAW/llmgate.err" 2>/dev/null

# ---- the report ------------------------------------------------------------------------------

python3 "$BENCH_DIR/report.py" --raw "$RAW" --out "$RESULTS_DIR/report-$TS"
