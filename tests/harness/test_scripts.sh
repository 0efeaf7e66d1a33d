#!/usr/bin/env bash
# Tests of scripts/compare and scripts/plot on the fixtures in tests/harness/fixtures/.
# usage: bash tests/harness/test_scripts.sh [SOURCE_DIR]   (default: two directories above this script)
# Exit 0 when every check passes; the last line says "N passed, M failed".

set -u

SRC=${1:-"$(dirname "$0")/../.."}
if ! SRC=$(cd "$SRC" 2>/dev/null && pwd); then
    echo "test_scripts: no source directory '${1:-}'" >&2
    exit 2
fi
FIX="$SRC/tests/harness/fixtures"
COMPARE="$SRC/scripts/compare"
PLOT="$SRC/scripts/plot"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kbench-test-scripts.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT

pass=0
fail=0
skip=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1: $2"
    if [ -s "$TMP/out" ]; then sed 's/^/     | /' "$TMP/out"; fi
}

# run NAME EXPECTED_RC CMD...: runs CMD (stdout and stderr to $TMP/out), checks its exit status.
run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$TMP/out" 2>&1
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name" "exit $rc, expected $want"
        return 1
    fi
    if grep -q "Traceback" "$TMP/out"; then
        bad "$name" "Python traceback in the output"
        return 1
    fi
    return 0
}

# has NAME REGEX: the last output matches REGEX (extended).
has() { grep -Eq -- "$2" "$TMP/out" || { bad "$1" "output lacks /$2/"; return 1; }; }
hasnt() { ! grep -Eq -- "$2" "$TMP/out" || { bad "$1" "output has /$2/"; return 1; }; }

# slower NAME N: exactly N table rows end in "slower".
slower() {
    local n
    n=$(grep -Ec ' slower$' "$TMP/out")
    [ "$n" -eq "$2" ] || { bad "$1" "$n rows slower, expected $2"; return 1; }
}

is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

for s in "$COMPARE" "$PLOT"; do
    if [ -x "$s" ]; then ok "executable: ${s#$SRC/}"; else bad "executable: ${s#$SRC/}" "missing or not executable"; fi
done
for f in baseline.json equal.json regress.json fail.json baseline.csv regress.csv malformed.json calibration.json; do
    [ -s "$FIX/$f" ] || bad "fixture $f" "missing"
done

# --- compare ----------------------------------------------------------------------------------
REGRESSED='^matvec_q4_0 +llama3-8b\.attn_q_o +rows=4096 cols=4096 tokens=1 +avx2 +cpu +2 '

t="compare baseline vs equal run: exit 0"
run "$t" 0 "$COMPARE" "$FIX/baseline.json" "$FIX/equal.json" &&
    has "$t" "^no regression" && slower "$t" 0 && hasnt "$t" " (faster|failed)( |$)" &&
    has "$t" " [01]\.[0-9]{4} +same" &&          # Mann-Whitney p-values
    has "$t" "few samples:in +same" &&           # the n=5 row
    has "$t" "vk +vulkan +0 .* skip +no Vulkan device" && ok "$t"

t="compare baseline vs planted 30% regression: exit 1, that row slower"
run "$t" 1 "$COMPARE" "$FIX/baseline.json" "$FIX/regress.json" &&
    has "$t" "${REGRESSED}.*-23\.[0-9]% +<0\.0001 +slower" &&
    has "$t" "^  matvec_q4_0 rows=4096 cols=4096 tokens=1 avx2 cpu t2: 23\.[0-9]% slower" &&
    slower "$t" 1 && has "$t" "^matvec_q4_0 .* ref +cpu +1 .* faster$" && ok "$t"

t="compare with a threshold above the regression: exit 0"
run "$t" 0 "$COMPARE" "$FIX/baseline.json" "$FIX/regress.json" --threshold 30 &&
    has "$t" "^no regression" && ok "$t"

t="compare with the metric gbps: exit 1, same row"
run "$t" 1 "$COMPARE" "$FIX/baseline.json" "$FIX/regress.json" --metric gbps &&
    has "$t" "${REGRESSED}.* slower$" && ok "$t"

t="compare baseline vs a FAIL row: exit 1"
run "$t" 1 "$COMPARE" "$FIX/baseline.json" "$FIX/fail.json" &&
    has "$t" "^matvec_q4_0 .* avx2 +cpu +1 .*FAIL .* failed +nmse" &&
    has "$t" "passes in A, FAIL in B" &&
    has "$t" "^read .* avx2 .* gone$" && has "$t" "^matvec_q8_0 .* avx2 +cpu +2 .* new$" && ok "$t"

t="compare CSV vs CSV regression (spread test): exit 1"
run "$t" 1 "$COMPARE" "$FIX/baseline.csv" "$FIX/regress.csv" &&
    has "$t" "${REGRESSED}.* spread:out +slower" && slower "$t" 1 && ok "$t"

t="compare CSV vs CSV, same file: exit 0"
run "$t" 0 "$COMPARE" "$FIX/baseline.csv" "$FIX/baseline.csv" && has "$t" "spread:in +same" && ok "$t"

t="compare CSV baseline vs JSON candidate: exit 1"
run "$t" 1 "$COMPARE" "$FIX/baseline.csv" "$FIX/regress.json" && has "$t" "${REGRESSED}.* slower$" &&
    ok "$t"

t="compare a malformed JSON: exit 2"
run "$t" 2 "$COMPARE" "$FIX/baseline.json" "$FIX/malformed.json" &&
    has "$t" "malformed\.json: invalid JSON" && ok "$t"

printf 'name,value\nx,1\n' >"$TMP/notkb.csv"
t="compare a CSV that is not kbench's: exit 2"
run "$t" 2 "$COMPARE" "$TMP/notkb.csv" "$FIX/baseline.csv" && has "$t" "header lacks" && ok "$t"

head -n 3 "$FIX/baseline.csv" >"$TMP/short.csv"
echo "read,x,mib=64,ref,cpu,1,pass" >>"$TMP/short.csv"
t="compare a CSV row with missing fields: exit 2"
run "$t" 2 "$COMPARE" "$FIX/baseline.csv" "$TMP/short.csv" && has "$t" "row 4: 7 fields" && ok "$t"

t="compare a missing file: exit 2"
run "$t" 2 "$COMPARE" "$FIX/baseline.csv" "$TMP/nonexistent.json" && has "$t" "cannot read" && ok "$t"

# --- plot -------------------------------------------------------------------------------------
if command -v gnuplot >/dev/null 2>&1; then
    t="plot a CSV: PNGs per family and a roofline"
    if run "$t" 0 "$PLOT" "$FIX/baseline.csv" -o "$TMP/png"; then
        good=1
        for f in read_throughput matvec_q4_0_throughput matvec_q8_0_throughput roofline; do
            is_png "$TMP/png/$f.png" || { bad "$t" "$f.png missing or not a PNG"; good=0; }
            grep -qx "$TMP/png/$f.png" "$TMP/out" || { bad "$t" "$f.png not printed"; good=0; }
        done
        [ "$good" = 1 ] && ok "$t"
    fi

    t="plot a JSON with a calibration file"
    if run "$t" 0 "$PLOT" "$FIX/regress.json" -o "$TMP/png2" --calibration "$FIX/calibration.json"; then
        is_png "$TMP/png2/roofline.png" && is_png "$TMP/png2/matvec_q4_0_throughput.png" && ok "$t" ||
            bad "$t" "PNG missing"
    fi

    t="plot with the png (libgd) terminal"
    run "$t" 0 "$PLOT" "$FIX/baseline.csv" -o "$TMP/png3" --terminal png &&
        { is_png "$TMP/png3/roofline.png" && ok "$t" || bad "$t" "PNG missing"; }
else
    skip=$((skip + 3))
    echo "skip plot PNG checks: gnuplot not installed (apt-get install gnuplot-nox)"
fi

t="plot a malformed JSON: exit 2"
run "$t" 2 "$PLOT" "$FIX/malformed.json" -o "$TMP/png4" && has "$t" "invalid JSON" && ok "$t"

t="plot without gnuplot on PATH: exit 2"
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [ -n "$PY" ]; then
    run "$t" 2 env PATH=/nonexistent "$PY" "$PLOT" "$FIX/baseline.csv" -o "$TMP/png5" &&
        has "$t" "gnuplot not found" && ok "$t"
else
    bad "$t" "no python3"
fi

# Hostile inputs (issue 19): a message and exit 2, never a traceback
row='"family": "read", "shape": "mib=1", "impl": "avx2", "status": "pass"'
printf '{"rows": [{%s, "threads": "inf", "median_s": 1}]}\n' "$row" > "$TMP/h_inf.json"
printf '{"rows": [{%s, "threads": 1e999, "median_s": 1}]}\n' "$row" > "$TMP/h_e999.json"
python3 -c "print('{\"rows\": [{$row, \"threads\": 1, \"median_s\": 1' + '0' * 400 + '}]}')" > "$TMP/h_bigint.json"
python3 -c "print('{\"rows\": [{$row, \"threads\": 1, \"median_s\": 1' + '0' * 5000 + '}]}')" > "$TMP/h_digits.json"
python3 -c "print('[' * 100000 + ']' * 100000)" > "$TMP/h_deep.json"
for h in inf e999; do
    for s in "$COMPARE" "$PLOT"; do
        t="${s##*/} threads $h: no traceback"
        "$s" "$TMP/h_$h.json" "$TMP/h_$h.json" -o "$TMP/hp" >"$TMP/out" 2>&1
        hasnt "$t" "Traceback" && ok "$t"
    done
done
for h in bigint digits deep; do
    t="compare $h: exit 2"
    run "$t" 2 "$COMPARE" "$TMP/h_$h.json" "$TMP/h_$h.json" && ok "$t"
    t="plot $h: exit 2"
    run "$t" 2 "$PLOT" "$TMP/h_$h.json" -o "$TMP/hp" && ok "$t"
done
# scripts/torch_yardstick.py writes what compare reads (--dry-run: made-up times, no torch)
YARD="$SRC/scripts/torch_yardstick.py"
t="torch_yardstick --dry-run: a CSV compare reads"
run "$t" 0 python3 "$YARD" --dry-run -o "$TMP/yard.csv" &&
    run "$t" 0 "$COMPARE" "$TMP/yard.csv" "$TMP/yard.csv" && has "$t" "16 rows: 16 same" && ok "$t"
t="torch_yardstick rows under a Vulkan impl name join kbench rows of the same shape"
sed 's/,torch,cuda,/,vk,vulkan,/' "$TMP/yard.csv" | grep -E '^(family|read,.*mib=256,)' >"$TMP/yard_vk.csv"
run "$t" 0 python3 "$YARD" --dry-run --only 'read mib=256' --impl vk --backend vulkan -o "$TMP/yard2.csv" &&
    run "$t" 0 "$COMPARE" "$TMP/yard2.csv" "$TMP/yard_vk.csv" && has "$t" "1 rows: 1 same" && ok "$t"

# .ci/run runs exactly the README's test command (the line after "# the tests")
t=".ci/run runs the README's test command"
readme_cmd=$(sed -n '/^# the tests/,/^bash /p' "$SRC/README.md" | tail -1)
ci_cmd=$(grep '^bash scripts/install-deps.sh' "$SRC/.ci/run")
if [ -n "$readme_cmd" ] && [ "$readme_cmd" = "$ci_cmd" ] && [[ $ci_cmd == *"ctest --preset"* ]]; then
    ok "$t"
else
    bad "$t" "README: '$readme_cmd' vs .ci/run: '$ci_cmd'"
fi

echo "$pass passed, $fail failed$([ "$skip" -gt 0 ] && echo ", $skip skipped")"
[ "$fail" -eq 0 ]
