#!/usr/bin/env bash
# dev.sh - the two set-up commands of the README.
#
#   ./dev.sh demo   install what is missing, build, start the mock upstream and llmgate on
#                   config/demo.yaml, print a ready curl line (Ctrl-C stops both)
#   ./dev.sh test   install what is missing, build (ASan+UBSan), run every test
#   ./dev.sh package  build the Debian package (dpkg-buildpackage) in /tmp and check it
#                   (its files, lintian); ./dev.sh test runs this too
#
# Runs as root on Debian 12 (or with sudo available). Nothing is downloaded but Debian
# packages and, for the SDK compatibility tests, the npm packages pinned in
# tests/integration/sdk/package-lock.json (openai, @anthropic-ai/sdk, ai, @ai-sdk/openai,
# @langchain/openai, and puppeteer-core for the dashboard test in Debian's chromium).
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)

DEBS=(build-essential pkg-config meson ninja-build python3 ca-certificates openssl curl
      libuv1-dev libmbedtls-dev libcyaml-dev libyaml-dev liblmdb-dev libjsmn-dev libjansson-dev
      libhiredis-dev redis-server
      node-llhttp
      nodejs npm tmux prometheus clang libclang-rt-14-dev
      libsystemd-dev systemd procps scdoc bash-completion python3-yaml
      debhelper dpkg-dev lintian)
# Only for ./dev.sh test: the dashboard test drives Debian's Chromium (headless) from Node.
TEST_DEBS=(chromium)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_deps() {
    local missing=()
    for p in "${DEBS[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    # nodejs/npm may come from elsewhere (a newer Node on the image): accept working binaries.
    if command -v node >/dev/null && command -v npm >/dev/null; then
        missing=("${missing[@]/nodejs/}")
        missing=("${missing[@]/npm/}")
    fi
    local want=()
    for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
    if [ ${#want[@]} -gt 0 ]; then
        echo "== installing: ${want[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
            "${want[@]}" >/dev/null
    fi
}

# Exit 0 when every package of the SDK tests' lock file is installed at its locked version
# (top-level and transitive), so a changed or half-finished install is redone.
sdk_deps_installed() {
    node - "$ROOT/tests/integration/sdk" <<'JS'
const fs = require("fs"), path = require("path");
const dir = process.argv[2];
let lock;
try {
    lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8"));
} catch (e) {
    process.exit(1);
}
for (const [where, p] of Object.entries(lock.packages || {})) {
    if (!where || p.optional || p.link) continue;
    try {
        const got = JSON.parse(fs.readFileSync(path.join(dir, where, "package.json"), "utf8"));
        if (got.version !== p.version) process.exit(1);
    } catch (e) {
        process.exit(1);
    }
}
JS
}

build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}

cmd_demo() {
    install_deps
    build build
    mkdir -p .demo
    export DEMO_KEY_A1=demo-secret-a1 DEMO_KEY_A2=demo-secret-a2 DEMO_KEY_B1=demo-secret-b1
    ./build/bench/mock/mock-upstream --listen 127.0.0.1:18081 --threads 1 >.demo/mock.log 2>&1 &
    local mock=$!
    ./build/server/llmgate --config config/demo.yaml 2>&1 | tee .demo/llmgate.log &
    local gw=$!
    trap 'kill $gw $mock 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
    for _ in $(seq 1 100); do
        curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && break
        sleep 0.1
    done
    cat <<'EOF'

llmgate is ready on http://127.0.0.1:8080 (mock upstream on 127.0.0.1:18081). Try:

  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
       -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

  curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
       -d '{"model":"mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  # the Responses API on an api: openai-chat provider (translated to chat completions)
  curl -s http://127.0.0.1:8080/v1/responses -H 'Content-Type: application/json' \
       -d '{"model":"deepseek-chat","input":"Hello"}'

Ctrl-C stops both.
EOF
    wait $gw
}

cmd_test() {
    install_deps "${TEST_DEBS[@]}"
    # The SDK compatibility tests use the official client SDKs from npm, as locked.
    if ! sdk_deps_installed; then
        echo "== installing the npm packages of tests/integration/sdk"
        (cd tests/integration/sdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    build build-asan -Dsanitize=address
    local rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 || rc=$?
    # The same suites under ThreadSanitizer (workers, the store shared between threads and
    # processes, the access-log and alert threads).
    build build-tsan -Dsanitize=thread
    meson test -C build-tsan --print-errorlogs --num-processes 2 || rc=$?
    # The libFuzzer targets (request path, usage scanner, config loader), briefly.
    tests/fuzz/run.sh 20 || rc=1
    # The Debian package, built as a packager would (release build, ~2 min) and checked.
    tests/package/deb_test.sh || rc=1
    # A closing line every CI reads: "N passed, N failed".
    # (both sanitizer runs counted: every suite twice)
    python3 - build-asan/meson-logs/testlog.json build-tsan/meson-logs/testlog.json <<'PY'
import json, sys
ok = bad = skip = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif res == "SKIP":
            skip += 1
        else:
            bad += 1
print(f"{ok} passed, {bad} failed, {skip} skipped")
PY
    return $rc
}

cmd_package() {
    install_deps
    tests/package/deb_test.sh --keep
}

case "${1:-}" in
demo) cmd_demo ;;
test) cmd_test ;;
package) cmd_package ;;
*)
    echo "usage: ./dev.sh demo | ./dev.sh test | ./dev.sh package" >&2
    exit 1
    ;;
esac
