#!/usr/bin/env bash
# Every test, as CI runs it (the README's test command, .ci/run), with a time limit per phase: the default build's tests,
# the sanitizer build's (ASan + UBSan at -O1, the CLI fuzzer among them), and 60 s of libFuzzer
# on the suite and shape parsers (clang). About 15 minutes on 2 cores from nothing built; stops
# at the first failure. Each phase has a time limit (KB_PHASE_LIMIT seconds, default 1500), so a
# hang fails with its phase named instead of running into CI's limit.
#   bash scripts/test.sh            all three
#   bash scripts/test.sh default    one of: default, sanitize, fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${KB_JOBS:-2}
limit=${KB_PHASE_LIMIT:-1500}
run() {
    local p=$1 t0=$SECONDS
    echo "== $p: configure, build, test" >&2
    cmake --preset "$p" > /dev/null
    timeout "$limit" cmake --build --preset "$p" -j"$jobs" ||
        { echo "== $p: build failed or passed ${limit} s" >&2; return 1; }
    timeout "$limit" ctest --preset "$p" -j"$jobs" --timeout 600 < /dev/null ||
        { echo "== $p: tests failed or passed ${limit} s" >&2; return 1; }
    echo "== $p: done in $((SECONDS - t0)) s" >&2
}
if [ $# -gt 0 ]; then
    for p in "$@"; do run "$p"; done
else
    run default
    run sanitize
    if command -v clang > /dev/null; then
        run fuzz
    else
        echo "== fuzz: skipped, no clang (scripts/install-deps.sh installs it)" >&2
    fi
fi
echo "== all tests passed in $SECONDS s" >&2
