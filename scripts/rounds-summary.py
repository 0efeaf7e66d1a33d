#!/usr/bin/env python3
"""Summarises scripts/bench-rounds.sh output: for each CPU row, the median GB/s over rounds and
the median over rounds of (row GB/s / that round's read GB/s at the same thread count), the
read row being the largest `read` case with the best implementation.
    scripts/rounds-summary.py DIR"""
import csv, glob, statistics, sys

files = sorted(glob.glob(sys.argv[1] + "/round*.csv"))
if not files:
    sys.exit("rounds-summary: no round*.csv in " + sys.argv[1])
gb, ratio = {}, {}
for f in files:
    rows = [r for r in csv.DictReader(open(f)) if r["status"] == "pass" and r["gbps"]]
    read = {}
    for r in rows:
        if r["family"] == "read" and r["backend"] == "cpu":
            t = r["threads"]
            read[t] = max(read.get(t, 0.0), float(r["gbps"]))
    for r in rows:
        if r["family"] == "read" or r["backend"] != "cpu":
            continue
        k = (r["family"], r["shape"], r["impl"], r["threads"])
        gb.setdefault(k, []).append(float(r["gbps"]))
        if r["threads"] in read:
            ratio.setdefault(k, []).append(float(r["gbps"]) / read[r["threads"]] * 100)
print(f"{len(files)} rounds; medians over rounds")
print(f"{'family':12} {'shape':34} {'impl':9} {'thr':>3} {'GB/s':>7} {'% of read':>9}  (per-round %)")
for k in sorted(gb):
    pr = ratio.get(k, [])
    print(f"{k[0]:12} {k[1]:34} {k[2]:9} {k[3]:>3} {statistics.median(gb[k]):7.2f} "
          f"{statistics.median(pr) if pr else float('nan'):9.1f}  ({' '.join(f'{x:.0f}' for x in pr)})")
