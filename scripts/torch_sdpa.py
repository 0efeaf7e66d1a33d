#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention (f16, causal, GQA) on the GPU, for comparison with
kbench's attn_prefill Vulkan rows of the same shape in the same call (scripts/device-run.sh).
Prints one CSV line per shape: heads,kv_heads,head_dim,n_q,T,median_s,min_s,gflops.
    scripts/torch_sdpa.py [heads kv_heads head_dim n ...]   (default 32 8 128 4096 and 32 2 256 4096)"""
import statistics, sys
import torch
import torch.nn.functional as F

def bench(h, hk, d, n):
    q = torch.randn(1, h, n, d, device="cuda", dtype=torch.float16)
    k = torch.randn(1, hk, n, d, device="cuda", dtype=torch.float16)
    v = torch.randn(1, hk, n, d, device="cuda", dtype=torch.float16)
    f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    for _ in range(20):  # warm-up, clocks up
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(100):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1e-3)
    med = statistics.median(times)
    flops = 4.0 * h * n * ((n + 1) / 2) * d  # kbench's cost model: 4*H*n_q*T_avg*D
    print(f"{h},{hk},{d},{n},{n},{med:.6g},{min(times):.6g},{flops / med * 1e-9:.1f}")

args = [int(a) for a in sys.argv[1:]] or [32, 8, 128, 4096, 32, 2, 256, 4096]
print("heads,kv_heads,head_dim,n_q,T,median_s,min_s,gflops")
for i in range(0, len(args), 4):
    bench(*args[i:i + 4])
