#!/usr/bin/env bash
# Repeats a kbench selection in N back-to-back rounds (CSV per round), for figures on a noisy
# shared machine: scripts/rounds-summary.py then quotes per-round ratios to the read row.
#   scripts/bench-rounds.sh N OUTDIR [kbench args...]
set -euo pipefail
n=$1 dir=$2; shift 2
kb=${KBENCH:-$(cd "$(dirname "$0")/.." && pwd)/build/kbench}
mkdir -p "$dir"
for i in $(seq 1 "$n"); do
  "$kb" -q --csv -o "$dir/round$i.csv" "$@"
done
