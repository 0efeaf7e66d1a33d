#!/usr/bin/env python3
"""PyTorch MoE routing on the GPU, the yardstick for kbench's moe_route vk rows of the same
shape in the same call (KERNELS.md section 7):
  softmax: torch.topk on softmax(logits), the K weights renormalized (Qwen3.5: E 512, K 10);
  grouped: DeepSeek-V3's group-limited sigmoid in torch ops as vLLM's grouped_topk writes it
           (E 256, K 8, 8 groups, top 4, correction bias, x2.5).
f32 logits, CUDA events around each call, median of 200 after 50 warm-up calls; the logits
rotate among copies of >= 256 MiB in all (as kbench's Vulkan rows), so calls do not find them
in L2. One CSV line per shape: mode,tokens,E,K,median_us,min_us,p90_us.
    scripts/torch_moe_route.py [tokens ...]      (default 1 16 512 4096)"""
import statistics, sys
import torch

def softmax_topk(logits, k):
    p = torch.softmax(logits, dim=-1)
    w, ids = torch.topk(p, k, dim=-1)
    return ids, w / w.sum(dim=-1, keepdim=True)

def grouped_topk(logits, bias, k, n_group=8, topk_group=4, scale=2.5):
    t, e = logits.shape
    scores = logits.sigmoid()
    s = scores + bias.unsqueeze(0)
    group_scores = s.view(t, n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(t, n_group, e // n_group).reshape(t, -1)
    ids = torch.topk(s.masked_fill(~score_mask.bool(), float("-inf")), k=k, dim=-1,
                     sorted=False)[1]
    w = scores.gather(1, ids)
    return ids, w / w.sum(dim=-1, keepdim=True) * scale

def bench(mode, tokens, e, k):
    copies = max(1, min(64, (256 << 20) // (tokens * e * 4)))
    logits = [2 * torch.randn(tokens, e, device="cuda") for _ in range(copies)]
    bias = 0.1 * (2 * torch.rand(e, device="cuda") - 1)
    f = (lambda l: softmax_topk(l, k)) if mode == "softmax" else (lambda l: grouped_topk(l, bias, k))
    for i in range(50):
        f(logits[i % copies])
    torch.cuda.synchronize()
    times = []
    for i in range(200):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); f(logits[i % copies]); b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1e3)  # ms -> us
    times.sort()
    print(f"{mode},{tokens},{e},{k},{statistics.median(times):.2f},{times[0]:.2f},"
          f"{times[int(0.9 * len(times))]:.2f}", flush=True)

tokens = [int(a) for a in sys.argv[1:]] or [1, 16, 512, 4096]
print("mode,tokens,E,K,median_us,min_us,p90_us")
for t in tokens:
    bench("softmax", t, 512, 10)
    bench("grouped", t, 256, 8)
