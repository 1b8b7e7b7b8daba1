"""The SparseLoCo codec as plain PyTorch eager ops, the way templar's compress.py / neurons.py express
it (chunk rearrangement, top-k, 4-bin quantization with per-bin means, dense transmitted update,
EF subtraction; median-norm clipping and scatter_reduce mean for aggregation). Written for this
benchmark from the algorithm's description, not copied. Same shapes and timing method as
compression/examples/gpu_bench.rs, so the two can be compared in one run:

    python3 compression/benches/gpu_baseline.py [--small]
"""

import json
import sys
import time

import torch

SMALL = "--small" in sys.argv
LAYERS, HIDDEN, FFN, ITERS = (2, 256, 512, 3) if SMALL else (16, 2048, 8192, 10)
PEERS, TOPK, CHUNK, DECAY = 20, 64, 64, 0.95


def shapes():
    out = []
    for _ in range(LAYERS):
        out += [(HIDDEN, HIDDEN)] * 4 + [(FFN, HIDDEN), (HIDDEN, FFN), (FFN, HIDDEN), (HIDDEN,), (HIDDEN,)]
    return out + [(HIDDEN,)]


def edge(s):
    return next(d for d in range(min(s, CHUNK), 0, -1) if s % d == 0)


def chunk(x):
    if x.dim() == 1:
        w = edge(x.shape[0])
        return x.reshape(-1, w)
    r, c = x.shape
    h, w = edge(r), edge(c)
    return x.reshape(r // h, h, c // w, w).permute(0, 2, 1, 3).reshape(r // h, c // w, h * w)


def unchunk(x, shape):
    if len(shape) == 1:
        return x.reshape(shape)
    r, c = shape
    h, w = edge(r), edge(c)
    return x.reshape(r // h, c // w, h, w).permute(0, 2, 1, 3).reshape(r, c)


def quantize(v):
    shift = v.mean()
    c = v - shift
    std = c.norm() / (c.numel() - 1) ** 0.5
    scale = 6 * std / 4
    if scale == 0 or not torch.isfinite(scale):
        scale = torch.tensor(1.0, device=v.device)
    q = (c / scale + 2).round().clamp(0, 3).to(torch.uint8)
    lookup = torch.zeros(4, device=v.device)
    for b in range(4):
        mask = q == b
        if mask.any():
            lookup[b] = c[mask].mean()
    return q, (shift, scale, lookup)


def dequantize(q, qp):
    shift, _, lookup = qp
    return lookup[q.long()] + shift


def compress(delta, ef):
    ef.mul_(DECAY).add_(delta)
    x = chunk(ef)
    totalk = x.shape[-1]
    k = min(TOPK, totalk)
    idx = x.abs().topk(k, dim=-1, largest=True, sorted=False).indices
    vals = torch.gather(x, -1, idx)
    q, qp = quantize(vals)
    transmitted = torch.zeros_like(x).scatter_(-1, idx, dequantize(q, qp))
    ef.sub_(unchunk(transmitted, ef.shape))
    return idx, q, qp


def aggregate(peers, shape):
    vals = [dequantize(q, qp) for _, q, qp in peers]
    norms = torch.stack([v.norm() for v in vals])
    med = norms.median()
    clip = (med / (norms + 1e-8)).clamp(max=1)
    vals = torch.cat([v * clip[i] for i, v in enumerate(vals)], dim=-1)
    idx = torch.cat([i for i, _, _ in peers], dim=-1)
    x_shape = list(idx.shape[:-1]) + [chunk(torch.empty(shape, device="meta")).shape[-1]]
    out = torch.zeros(x_shape, device=vals.device).scatter_reduce_(-1, idx, vals, "mean", include_self=False)
    return unchunk(out, shape)


def timed(fn, iters):
    fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t) * 1e3)
    return sorted(ms)[len(ms) // 2]


def report(name, ms, params):
    print(json.dumps({"impl": "pytorch-eager", "bench": name, "ms": round(ms, 3), "params": params,
                      "gparams_per_s": round(params / ms / 1e6, 2)}), flush=True)


def main():
    dev = "cuda"
    torch.manual_seed(0)
    sh = shapes()
    numel = sum(torch.Size(s).numel() for s in sh)
    deltas = [torch.randn(s, device=dev) * 1e-3 for s in sh]
    efs = [torch.randn(s, device=dev) * 1e-3 for s in sh]
    with torch.no_grad():
        report("encode (device)", timed(lambda: [compress(d, e) for d, e in zip(deltas, efs)], ITERS), numel)
        peers = [[compress(torch.randn(s, device=dev) * 1e-3, e) for s, e in zip(sh, efs)] for _ in range(PEERS)]
        report("aggregate20 (device-resident peers)",
               timed(lambda: [aggregate([p[i] for p in peers], s) for i, s in enumerate(sh)], ITERS), numel)


if __name__ == "__main__":
    main()
