#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...] - build the libFuzzer targets with clang and run each
# for SECONDS (default 60), one after the other, on its seed corpus.
#
#   tests/fuzz/run.sh 20                  # every target, 20 s each (CI)
#   tests/fuzz/run.sh 600 fuzz_request    # one target, 10 minutes
#
# Needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev). Builds in
# build-fuzz (CC=clang, -Dfuzzers=true, -Dsanitize=none: the targets add
# -fsanitize=fuzzer,address,undefined themselves). New inputs go to build-fuzz/corpus/TARGET,
# the seeds in tests/fuzz/corpus/TARGET are only read. A crash leaves its input as
# build-fuzz/crash-TARGET-*, prints it, and makes the script exit 1. Extra libFuzzer
# options: FUZZ_ARGS (e.g. FUZZ_ARGS=-jobs=2). Runs under `nice` (FUZZ_NICE, default 10).
set -euo pipefail

cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    targets=(fuzz_request fuzz_usage fuzz_api fuzz_config fuzz_xlate_messages_openai
        fuzz_xlate_chat_anthropic fuzz_xlate_chat_gemini fuzz_xlate_responses_chat
        fuzz_status_msg fuzz_clients_msg fuzz_admin_query)
build=build-fuzz

if ! command -v clang >/dev/null; then
    echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzzers=true -Dsanitize=none >/dev/null
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >/dev/null

rc=0
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    log="$build/$t.log"
    # setsid + stdin from /dev/null: nothing the target opens can wait for a terminal
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        setsid nice -n "${FUZZ_NICE:-10}" "$build/tests/fuzz/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crash-$t-" "${dict[@]}" ${FUZZ_ARGS:-} \
        "$corpus" "tests/fuzz/corpus/$t" </dev/null >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz: $t: ok, ${execs:-?} execs in ${secs} s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l)"
    else
        rc=1
        echo "fuzz: $t: FAILED (log: $log)"
        grep -E "ERROR|invariant|SUMMARY|Test unit written" "$log" | head -20
    fi
done
exit $rc
