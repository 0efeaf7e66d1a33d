#!/usr/bin/env python3
"""CSV and JSON from one kbench run describe the same rows with the same numbers: one CSV row per
JSON row, same keys, numeric fields equal to CSV's printed precision, and a JSON document with
the machine facts and samples. Runs the real binary (KBENCH or ./kbench)."""
import csv, json, math, os, subprocess, sys, tempfile

kb = os.environ.get("KBENCH", "./kbench")
tmp = tempfile.mkdtemp()
c, j = os.path.join(tmp, "r.csv"), os.path.join(tmp, "r.json")
cmd = [kb, "--kernel", "matvec_q8_0|read", "--shape", "rows=33,cols=64,tokens=1,2,mib=1",
       "--threads", "1,2", "--min-time", "0", "--max-time", "0.02", "--min-samples", "3",
       "-q", "--no-vulkan", "--csv", "-o", c, "--json", j]
r = subprocess.run(cmd, capture_output=True, text=True)
passed = failed = 0

def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)

check(r.returncode == 0, f"kbench exit {r.returncode}: {r.stderr}")
rows = list(csv.DictReader(open(c)))
doc = json.load(open(j))
jrows = doc["rows"]
check(len(rows) == len(jrows) and len(rows) > 4, f"{len(rows)} CSV rows, {len(jrows)} JSON rows")
check("cpu" in doc["machine"] and "command" in doc["kbench"], "machine facts and command in JSON")
num = ["nmse", "max_abs", "cosine", "cond_err", "tolerance", "median_s", "min_s", "p90_s", "noise_pct",
       "ci_lo_s", "ci_hi_s", "wall_median_s", "bytes", "flops", "gbps", "gflops", "pct_peak_bw",
       "pct_peak_flops"]
for a, b in zip(rows, jrows):
    key = (a["family"], a["shape"], a["impl"], a["threads"])
    check(key == (b["family"], b["shape"], b["impl"], str(b["threads"])), f"row order {key}")
    check(a["status"] == b["status"] and a["message"] == b["message"], f"status {key}")
    check(int(a["samples"]) == b["samples"] and int(a["copies"]) == b["copies"], f"counts {key}")
    if b["samples"]:
        stride = b["sample_stride"]
        check(len(b["sample_s"]) == (b["samples"] + stride - 1) // stride, f"samples {key}")
    for f in num:
        x, y = a[f], b[f]
        if x == "" or y is None:
            check(x == "" and y is None, f"{f} present in one file only {key}: {x!r} {y!r}")
        else:
            check(math.isclose(float(x), y, rel_tol=1e-5, abs_tol=1e-300), f"{f} {key}: {x} vs {y}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
