#!/usr/bin/env bash
# Every test, as CI runs it (.ci/run, after scripts/install-deps.sh): the default build's tests,
# the sanitizer build's (ASan + UBSan, the CLI fuzzer among them), and 60 s of libFuzzer on the
# suite and shape parsers (clang). About 10 minutes on 2 cores; stops at the first failure.
#   bash scripts/test.sh            all three
#   bash scripts/test.sh default    one of: default, sanitize, fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${KB_JOBS:-2}
run() {
    local p=$1
    echo "== $p: configure, build, test" >&2
    cmake --preset "$p" > /dev/null
    cmake --build --preset "$p" -j"$jobs"
    ctest --preset "$p" -j"$jobs"
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
