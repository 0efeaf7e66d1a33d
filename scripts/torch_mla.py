#!/usr/bin/env python3
"""PyTorch yardstick for kbench's mla_decode on the GPU: DeepSeek-V3 MLA decode in the absorbed
form with plain torch ops (bmm, matmul, softmax), bf16 cache and weights, f32 softmax, the
absorption of W_UK and W_UV inside the timed region (as kbench times it). Cold: the cache and
weights are rotated among copies that together exceed 256 MiB (more than any GPU L2).
CUDA events around each call, median of 100 after warm-up. One CSV line per shape:
heads,T,n_q,median_s,min_s,gbps,gflops (bytes and flops by kbench's cost model).
    scripts/torch_mla.py [heads T n_q ...]   (default 128 32768 1  128 131072 1)"""
import math, statistics, sys
import torch

R, ROPE, NOPE, VD = 512, 64, 128, 128
MSCALE = 0.1 * math.log(40.0) + 1.0
SCALE = MSCALE * MSCALE / math.sqrt(NOPE + ROPE)

def mla(q_nope, q_pe, c, k_pe, w_uk, w_uv, mask):
    # q_nope [H, n, 128], q_pe [H, n, 64], c [T, R], k_pe [T, 64], w_uk / w_uv [H, 128, R]
    qa = torch.bmm(q_nope, w_uk)                               # q' = W_UK^T q_nope: [H, n, R]
    s = (qa @ c.T + q_pe @ k_pe.T).float() * SCALE             # [H, n, T]
    p = torch.softmax(s + mask, dim=-1).to(c.dtype)
    ov = p @ c                                                 # [H, n, R]
    return torch.bmm(ov, w_uv.transpose(1, 2))                 # W_UV ov: [H, n, v]

def bench(h, t, n):
    dev, bf = "cuda", torch.bfloat16
    nbytes = t * (R + ROPE) * 2 + h * (NOPE + VD) * R * 2 + n * h * (NOPE + ROPE + VD) * 4
    copies = max(1, -(-256 * 2**20 // nbytes))
    sets = [(torch.randn(t, R, device=dev, dtype=bf), torch.randn(t, ROPE, device=dev, dtype=bf),
             torch.randn(h, NOPE, R, device=dev, dtype=bf) / math.sqrt(R),
             torch.randn(h, VD, R, device=dev, dtype=bf) / math.sqrt(R)) for _ in range(copies)]
    q_nope = torch.randn(h, n, NOPE, device=dev, dtype=bf) * 1.3
    q_pe = torch.randn(h, n, ROPE, device=dev, dtype=bf)
    # causal among the n queries: query i attends 0 .. t - n + i
    mask = torch.zeros(n, t, device=dev)
    for i in range(n):
        mask[i, t - n + i + 1:] = float("-inf")
    f = lambda k: mla(q_nope, q_pe, *sets[k % copies], mask)
    for k in range(20):  # warm-up, clocks up
        f(k)
    torch.cuda.synchronize()
    times = []
    for k in range(100):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(k); b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1e-3)
    med = statistics.median(times)
    t_avg = (t - n) + (n + 1) / 2
    flops = n * h * (2 * t_avg * (2 * R + ROPE) + 2 * (NOPE + VD) * R)
    print(f"{h},{t},{n},{med:.6g},{min(times):.6g},{nbytes / med * 1e-9:.1f},{flops / med * 1e-9:.1f}")

args = [int(a) for a in sys.argv[1:]] or [128, 32768, 1, 128, 131072, 1]
print("heads,T,n_q,median_s,min_s,gbps,gflops")
for i in range(0, len(args), 3):
    bench(*args[i:i + 3])
