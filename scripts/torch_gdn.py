#!/usr/bin/env python3
"""PyTorch GatedDeltaNet decode on the GPU, the yardstick for kbench's gdn_decode vk rows of the
same shape in the same call (KERNELS.md section 5), and a copy of the state (the decode's
floor: the state is read and written once per token):
  decode: S <- g S; u = S k; S <- S + beta (v - u) k^T; o = S q, in torch ops on f32 states
          [batch, hv, dv, dk] (GQA: k and q per key head, repeated to the value heads);
  copy:   S1.copy_(S0) of the same bytes.
CUDA events around each call, median of 100 after 20 warm-up calls. One CSV line per shape:
what,batch,hk,hv,dk,dv,median_us,state_bytes,GBps (GBps: state bytes read + written / time).
    scripts/torch_gdn.py [batch ...]      (default 1 16; Qwen3.5 heads: hk 16, hv 64, 128)"""
import statistics, sys
import torch

def timed(f, n=100, warm=20):
    for _ in range(warm):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b) * 1e3)
    return statistics.median(ts)

def main():
    batches = [int(a) for a in sys.argv[1:]] or [1, 16]
    hk, hv, dk, dv = 16, 64, 128, 128
    print("what,batch,hk,hv,dk,dv,median_us,state_bytes,GBps")
    for b in batches:
        dev = "cuda"
        S = torch.randn(b, hv, dv, dk, device=dev) * 0.1
        S1 = torch.empty_like(S)
        q = torch.nn.functional.normalize(torch.randn(b, hk, dk, device=dev), dim=-1)
        k = torch.nn.functional.normalize(torch.randn(b, hk, dk, device=dev), dim=-1)
        v = torch.randn(b, hv, dv, device=dev)
        g = torch.rand(b, hv, 1, 1, device=dev) * 0.1 + 0.9
        beta = torch.rand(b, hv, 1, device=dev)
        rep = hv // hk
        def step():
            kk = k.repeat_interleave(rep, dim=1)            # [b, hv, dk]
            qq = q.repeat_interleave(rep, dim=1)
            s = S * g                                       # decayed state (a new tensor)
            u = torch.einsum("bhvk,bhk->bhv", s, kk)
            s.add_(torch.einsum("bhv,bhk->bhvk", beta * (v - u), kk))
            S1.copy_(s)
            return torch.einsum("bhvk,bhk->bhv", s, qq)
        nbytes = S.numel() * 4
        for what, f in (("decode", step), ("copy", lambda: S1.copy_(S))):
            us = timed(f)
            print(f"{what},{b},{hk},{hv},{dk},{dv},{us:.2f},{nbytes},{2 * nbytes / us / 1e3:.1f}")

if __name__ == "__main__":
    main()
