#!/usr/bin/env bash
# Profiles only the timed region of one kernel: perf record starts disabled (-D -1) and kbench
# enables it around each timing loop through perf's control FIFOs (--perf-ctl).
#   scripts/perf-kernel.sh KERNEL [kbench options...]
#   e.g. scripts/perf-kernel.sh matvec_q4_0 --shape rows=14336,cols=4096 --impl avx2 --threads 1
# Env: KBENCH (default build/kbench), PERF_OUT (perf.data path, default a temp dir).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
kernel=$1; shift
here=$(cd "$(dirname "$0")/.." && pwd)
kb=${KBENCH:-$here/build/kbench}
[ -x "$kb" ] || { echo "perf-kernel: $kb not built (cmake --build --preset default)" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf-kernel: perf not installed (apt-get install linux-perf)" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -f "$dir/ctl" "$dir/ack"' EXIT
mkfifo "$dir/ctl" "$dir/ack"
out=${PERF_OUT:-$dir/perf.data}
# Hardware cycles where the machine has counters; otherwise the cpu-clock software event.
event=(-e cycles)
if ! perf stat -e cycles -x, true 2>&1 | grep -q '^[0-9]'; then
  echo "perf-kernel: no hardware counters on this machine: sampling on cpu-clock instead" >&2
  event=(-e cpu-clock)
fi
perf record "${event[@]}" -g -D -1 --control "fifo:$dir/ctl,$dir/ack" -o "$out" -- \
  "$kb" --kernel "$kernel" --perf-ctl "$dir/ctl,$dir/ack" --duration 2 -q "$@"
perf report -i "$out" --stdio --no-children --sort symbol --percent-limit 1 2>/dev/null | head -80
echo "perf-kernel: profile in $out" >&2
