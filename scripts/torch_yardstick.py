#!/usr/bin/env python3
"""PyTorch yardstick on the GPU, written as kbench CSV rows (scripts/compare reads them).

The columns of `kbench --csv`; run it in the same call as the Vulkan rows, to set beside them:
  matvec_bf16   torch.matmul(W, x), W bf16 [rows, cols], x bf16: the matvec suite's bf16 shapes
                and Llama-3-8B's (q/o, k/v, gate/up, down, LM head); W rotated among copies that
                exceed 256 MiB (as kbench rotates on GPUs), so it comes from memory, not L2;
  attn_decode   F.scaled_dot_product_attention, one f16 query per head over T cached f16
                positions, GQA: Llama-3-8B (32 q / 8 kv x 128) at T = 8192, 32768 and Qwen3.5
                (32 / 2 x 256) at 32768; caches rotated likewise;
  attn_prefill  the same, causal, n_q = T: 4096 at 32/8 x 128, 2048 at 32/2 x 256;
  read, copy    x.sum() of f32 and dst.copy_(src) over 256 MiB and 1 GiB.
Timing: CUDA events around each call, median of --reps (50) after --warmup (20) calls. bytes and
flops follow kbench's cost models (matvec: W + x and y as f32; attention: K/V cache + Q + O as
f32, 4 * heads * n_q * T_avg * D), so gbps and gflops compare by time with kbench's rows; copy
counts the bytes read and written. Rows are impl "torch", backend "cuda" unless --impl/--backend
say otherwise: scripts/compare joins rows on (family, shape, impl, backend, threads), so
  scripts/torch_yardstick.py --impl vk_cm --backend vulkan -o torch_as_vk_cm.csv
  scripts/compare torch_as_vk_cm.csv attention_vk.csv
shows the Vulkan rows' speed change against PyTorch's (candidate B against baseline A).
--dry-run writes the same rows with made-up times (bytes / 2 TB/s), without torch: a test of the
CSV. scripts/torch_sdpa.py stays for scripts/device-run.sh and the results it made.
  usage: scripts/torch_yardstick.py [-o FILE] [--only REGEX] [--reps N] [--warmup N]
                                    [--impl NAME] [--backend NAME] [--dry-run]
"""
import argparse
import csv
import math
import re
import statistics
import sys

HEADER = ("family,label,shape,impl,backend,threads,status,nmse,max_abs,cosine,cond_err,tolerance,"
          "tol_kind,samples,copies,median_s,min_s,p90_s,noise_pct,ci_lo_s,ci_hi_s,wall_median_s,"
          "bytes,flops,gbps,gflops,pct_peak_bw,pct_peak_flops,message").split(",")
ROTATE_BYTES = 256 << 20  # kbench's rotation on GPUs: inputs cycle through copies exceeding this
MIB = 1 << 20

# (label, rows, cols): the matvec suite's bf16 lines, then Llama-3-8B's matrices
MATVEC = [("qwen35.router", 512, 4096), ("deepseek-v3.router", 256, 7168),
          ("llama3-8b.attn_q_o", 4096, 4096), ("llama3-8b.attn_k_v", 1024, 4096),
          ("llama3-8b.ffn_gate_up", 14336, 4096), ("llama3-8b.ffn_down", 4096, 14336),
          ("llama3-8b.lm_head", 128256, 4096)]
# (label, heads, kv_heads, head_dim, T)
DECODE = [("llama3-8b", 32, 8, 128, 8192), ("llama3-8b", 32, 8, 128, 32768),
          ("qwen35.full", 32, 2, 256, 32768)]
# (label, heads, kv_heads, head_dim, n_q)
PREFILL = [("llama3-8b", 32, 8, 128, 4096), ("qwen35.full", 32, 2, 256, 2048)]
MEM = [256, 1024]  # MiB


def cases():
    """-> [(family, label, shape, bytes, flops, what)]; shape is kbench's text for the case."""
    out = []
    for label, r, c in MATVEC:
        shape = "rows=%d cols=%d tokens=1 experts=0 n_experts=0 shared_x=1" % (r, c)
        out.append(("matvec_bf16", label, shape, r * c * 2 + c * 4 + r * 4, 2 * r * c,
                    ("matvec", r, c)))
    for label, h, hk, d, t in DECODE:
        shape = "heads=%d kv_heads=%d head_dim=%d T=%d kv_f16=1" % (h, hk, d, t)
        out.append(("attn_decode", label, shape, 2 * t * hk * d * 2 + 2 * h * d * 4,
                    4 * h * t * d, ("decode", h, hk, d, t)))
    for label, h, hk, d, n in PREFILL:
        shape = "heads=%d kv_heads=%d head_dim=%d n_q=%d p0=0 kv_f16=1" % (h, hk, d, n)
        out.append(("attn_prefill", label, shape, 2 * n * h * d * 4 + 2 * n * hk * d * 2,
                    4.0 * h * n * ((n + 1) / 2) * d, ("prefill", h, hk, d, n)))
    for mib in MEM:
        out.append(("read", "read.yardstick", "mib=%d" % mib, mib * MIB, mib * MIB // 4,
                    ("read", mib)))
    for mib in MEM:
        out.append(("copy", "copy.yardstick", "mib=%d" % mib, 2 * mib * MIB, 0, ("copy", mib)))
    return out


def stats(ts):
    """kbench's: median, min, p90 (linear interpolation), noise = 1.4826 MAD / median in %."""
    s = sorted(ts)
    med = statistics.median(s)
    pos = 0.9 * (len(s) - 1)
    lo = int(math.floor(pos))
    p90 = s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)
    mad = statistics.median([abs(x - med) for x in s])
    return med, s[0], p90, 1.4826 * mad / med * 100.0 if med > 0 else 0.0


def copies_for(nbytes):
    return max(1, -(-ROTATE_BYTES // nbytes))


def make_runner(torch, what):
    """-> (fn(i) running call i on copy i % copies, copies, what it ran)."""
    F = torch.nn.functional
    dev = "cuda"
    if what[0] == "matvec":
        _, r, c = what
        n = copies_for(r * c * 2)
        ws = [torch.randn(r, c, device=dev, dtype=torch.bfloat16) for _ in range(n)]
        x = torch.randn(c, device=dev, dtype=torch.bfloat16)
        return (lambda i: torch.matmul(ws[i % n], x)), n, "torch.matmul bf16"
    if what[0] in ("decode", "prefill"):
        _, h, hk, d, t = what
        nq = 1 if what[0] == "decode" else t
        n = copies_for(2 * t * hk * d * 2) if what[0] == "decode" else 1
        q = torch.randn(1, h, nq, d, device=dev, dtype=torch.float16)
        kv = [(torch.randn(1, hk, t, d, device=dev, dtype=torch.float16),
               torch.randn(1, hk, t, d, device=dev, dtype=torch.float16)) for _ in range(n)]
        causal = what[0] == "prefill"
        return (lambda i: F.scaled_dot_product_attention(
            q, kv[i % n][0], kv[i % n][1], is_causal=causal, enable_gqa=True)), n, \
            "F.scaled_dot_product_attention f16%s, GQA" % (" causal" if causal else "")
    if what[0] == "read":
        x = torch.rand(what[1] * MIB // 4, device=dev, dtype=torch.float32)
        return (lambda i: x.sum()), 1, "x.sum() f32"
    src = torch.rand(what[1] * MIB // 4, device=dev, dtype=torch.float32)
    dst = torch.empty_like(src)
    return (lambda i: dst.copy_(src)), 1, "dst.copy_(src) f32"


def time_gpu(torch, fn, reps, warmup):
    for i in range(warmup):  # clocks up, caches and workspaces set up
        fn(i)
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(warmup + i)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3)
    return ts


def row(args, fam, label, shape, nbytes, flops, status, ts, copies, msg):
    r = dict.fromkeys(HEADER, "")
    r.update(family=fam, label=label, shape=shape, impl=args.impl, backend=args.backend,
             threads=0, status=status, bytes="%.6g" % nbytes, flops="%.6g" % flops,
             message=msg)
    if ts:
        med, mn, p90, noise = stats(ts)
        r.update(samples=len(ts), copies=copies, median_s="%.6g" % med, min_s="%.6g" % mn,
                 p90_s="%.6g" % p90, noise_pct="%.4g" % noise,
                 gbps="%.6g" % (nbytes / med * 1e-9), gflops="%.6g" % (flops / med * 1e-9))
    return r


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="details: the comment at the top of this script")
    ap.add_argument("-o", "--output", default="-", help="CSV file (default: stdout)")
    ap.add_argument("--only", default="", help="regex on 'family shape': the cases to run")
    ap.add_argument("--reps", type=int, default=50, help="timed calls per case (default 50)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    ap.add_argument("--impl", default="torch", help="impl column (default torch)")
    ap.add_argument("--backend", default="cuda", help="backend column (default cuda)")
    ap.add_argument("--dry-run", action="store_true",
                    help="no torch, no GPU: made-up times (bytes / 2 TB/s), to test the CSV")
    args = ap.parse_args(argv)
    if args.reps < 1 or args.warmup < 0:
        ap.error("--reps must be at least 1, --warmup at least 0")
    sel = [c for c in cases() if re.search(args.only, c[0] + " " + c[2])]
    if not sel:
        ap.error("--only %r selects no case" % args.only)
    torch = None
    if not args.dry_run:
        import torch  # noqa: F811 (only here: --dry-run runs without it)
        if not torch.cuda.is_available():
            sys.exit("torch_yardstick: torch %s sees no CUDA device" % torch.__version__)
        where = "torch %s, %s" % (torch.__version__, torch.cuda.get_device_name())
    out = sys.stdout if args.output == "-" else open(args.output, "w", newline="")
    w = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    w.writeheader()
    for fam, label, shape, nbytes, flops, what in sel:
        if args.dry_run:
            t = nbytes / 2e12
            ts = [t * (1 + 0.01 * ((i * 7) % 5)) for i in range(args.reps)]
            r = row(args, fam, label, shape, nbytes, flops, "pass", ts, 1, "dry run: made-up times")
        else:
            try:
                fn, ncopies, desc = make_runner(torch, what)
                ts = time_gpu(torch, fn, args.reps, args.warmup)
                r = row(args, fam, label, shape, nbytes, flops, "pass", ts, ncopies,
                        "%s (%s)" % (desc, where))
                del fn
            except RuntimeError as e:  # out of memory, no kernel for the shape: say so, go on
                r = row(args, fam, label, shape, nbytes, flops, "error", None, 0,
                        "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200]))
            torch.cuda.empty_cache()
        w.writerow(r)
        out.flush()
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main(sys.argv[1:])
