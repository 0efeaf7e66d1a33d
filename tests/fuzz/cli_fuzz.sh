#!/usr/bin/env bash
# The CLI fuzzer: N generated command lines (valid and broken options, values, shapes, suite files
# with random bytes) run against a kbench binary, normally the sanitizer build's. Fails on a
# signal, a sanitizer report, or an exit status other than 0, 1 or 2. A line still running after
# 20 s is stopped and counted, not failed: a family's default shape under ASan legitimately runs
# that long (attn_prefill heads=128: an 18 s reference), so a hang cannot be told from it here.
# The whole run stops generating lines after KB_FUZZ_BUDGET seconds (default 300).
# usage: tests/fuzz/cli_fuzz.sh KBENCH [N [SEED]]
set -u
KB=${1:?usage: cli_fuzz.sh KBENCH [N [SEED]]}
N=${2:-150}
RANDOM=${3:-12345}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kbench-cli-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1

pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }
# (no catch-all regexes: every family at its default shape is a legitimately long run)
families=(read matvec_q8_0 matvec_q4_0 matvec_a4 matvec_a8 matvec_a2 matvec_bf16 attn_decode attn_prefill
          nosuch '(' 'matvec_q[48]_0')
keys=(rows cols tokens mib group experts n_experts shared_x heads kv_heads head_dim T n_q p0 kv_f16 bogus '' '=')
vals=(0 1 2 3 7 31 32 33 64 96 128 -1 999999999999999999999 abc '' 1,2 7,7 32,64,96 1e3 0x10 ' ' ',' '1,,2')
opts=(--check --check --check -q --no-vulkan --no-vulkan --hot --interleave --quick --full --time-ref --csv
      --list --version --help --bogus)
valopts=("--threads" "--seed" "--min-time" "--max-time" "--noise" "--min-samples" "--repetitions"
         "--iterations" "--duration" "--device" "--inputs" "--impl" "--kernel" "--shape" "--suite"
         "--json" "-o" "--dump" "--calibration" "--perf-ctl")
optvals=(1 2 0 -3 1e30 0.001 nan inf '' x 1,1 64 random outliers zeros bogus ref '^vk$' avx2 '('
         "$TMP/out.x" "$TMP/dir/" /nonexistent/x '' matvec attention "$TMP/s.suite" "$TMP")

shape() {
    local s="" n=$((RANDOM % 4)) i
    for ((i = 0; i < n; i++)); do s+="${s:+,}$(pick "${keys[@]}")=$(pick "${vals[@]}")"; done
    echo "$s"
}

bad=0
long=0
budget=${KB_FUZZ_BUDGET:-300}
for ((k = 1; k <= N; k++)); do
    if [ "$SECONDS" -ge "$budget" ]; then
        echo "cli_fuzz: time budget of ${budget} s reached after $((k - 1)) lines"
        N=$((k - 1))
        break
    fi
    # a random suite file for this round: a valid line, a mutated one, random bytes
    { echo "read mib=$(pick 1 2 3 0 -1) label=$(pick a b 'é' '')"
      echo "$(pick "${families[@]}") $(shape | tr , ' ')"
      head -c $((RANDOM % 64)) /dev/urandom; echo; } > "$TMP/s.suite"
    args=(--check -q --threads "$(pick 1 2)" --max-time 0.05)
    [ $((RANDOM % 3)) -eq 0 ] && args=()
    args+=(--kernel "$(pick "${families[@]}")" --shape "$(shape)")
    m=$((RANDOM % 4))
    for ((i = 0; i < m; i++)); do
        if [ $((RANDOM % 2)) -eq 0 ]; then args+=("$(pick "${opts[@]}")")
        else args+=("$(pick "${valopts[@]}")" "$(pick "${optvals[@]}")"); fi
    done
    [ $((RANDOM % 5)) -eq 0 ] && args=(--suite "$TMP/s.suite" --check -q --no-vulkan)
    timeout 20 "$KB" "${args[@]}" > "$TMP/out" 2>&1 < /dev/null
    rc=$?
    if [ $rc -eq 124 ]; then
        long=$((long + 1))
        rc=0
    fi
    if [ $rc -gt 2 ] || grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|Segmentation|Aborted" "$TMP/out"; then
        bad=$((bad + 1))
        echo "FAIL (exit $rc): $KB $(printf "'%s' " "${args[@]}")"
        head -20 "$TMP/out" | sed 's/^/   | /'
        cp "$TMP/s.suite" "$TMP/../kbench-cli-fuzz-failing-$k.suite" 2>/dev/null
    fi
done
echo "cli_fuzz: $N command lines, $bad failed, $long stopped after 20 s"
[ $bad -eq 0 ]
