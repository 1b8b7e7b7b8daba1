"""The same LLaMA model and training step as model/examples/train_bench.rs, in plain PyTorch eager:
fp32 parameters, bf16 autocast, F.scaled_dot_product_attention (GQA), F.rms_norm, interleaved-pair
RoPE, SwiGLU, fused AdamW (as templar's miner uses), grad-norm clipping at 1.0, random tokens at
sequence length 2048. Prints one JSON object per preset.

    python3 model/benches/train_baseline.py --preset 1b:8 [--steps 10] [--peak-tflops 989.4]
"""

import argparse
import json
import math
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # vocab, dim, layers, heads, kv_heads, ffn, rope_theta, tied
    "tiny": (50304, 128, 2, 4, 2, 384, 10000.0, True),
    "150m": (32000, 1024, 12, 16, 16, 2688, 10000.0, False),
    "1b": (32000, 2048, 16, 8, 8, 8192, 10000.0, False),
    "8b": (32000, 4096, 32, 32, 8, 14336, 500000.0, False),
}
SEQ = 2048


class Block(nn.Module):
    def __init__(self, dim, heads, kv, ffn):
        super().__init__()
        hd = dim // heads
        self.heads, self.kv, self.hd = heads, kv, hd
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, kv * hd, bias=False)
        self.wv = nn.Linear(dim, kv * hd, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.w1 = nn.Linear(dim, ffn, bias=False)
        self.w2 = nn.Linear(ffn, dim, bias=False)
        self.w3 = nn.Linear(dim, ffn, bias=False)
        self.attention_norm = nn.Parameter(torch.ones(dim))
        self.ffn_norm = nn.Parameter(torch.ones(dim))

    @staticmethod
    def rope(x, cos, sin):
        b, t, h, d = x.shape
        p = x.view(b, t, h, d // 2, 2)
        x0, x1 = p[..., 0], p[..., 1]
        cos, sin = cos.view(1, t, 1, d // 2), sin.view(1, t, 1, d // 2)
        return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1).view(b, t, h, d)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        h = F.rms_norm(x, (d,), self.attention_norm, 1e-5)
        q = self.rope(self.wq(h).view(b, t, self.heads, self.hd), cos, sin).transpose(1, 2)
        k = self.rope(self.wk(h).view(b, t, self.kv, self.hd), cos, sin).transpose(1, 2)
        v = self.wv(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.kv != self.heads)
        x = x + self.wo(a.transpose(1, 2).reshape(b, t, d))
        h = F.rms_norm(x, (d,), self.ffn_norm, 1e-5)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Llama(nn.Module):
    def __init__(self, vocab, dim, layers, heads, kv, ffn, theta, tied):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads, kv, ffn) for _ in range(layers)])
        self.norm = nn.Parameter(torch.ones(dim))
        self.output = None if tied else nn.Linear(dim, vocab, bias=False)
        self.hd, self.theta = dim // heads, theta

    def forward(self, tokens):
        t = tokens.shape[1]
        inv = torch.exp(torch.arange(self.hd // 2, device=tokens.device) * (-2 * math.log(self.theta) / self.hd))
        ang = torch.arange(t, device=tokens.device)[:, None].float() * inv[None]
        cos, sin = ang.cos(), ang.sin()
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = F.rms_norm(x, (x.shape[-1],), self.norm, 1e-5)
        w = self.tok_embeddings.weight if self.output is None else self.output.weight
        return F.linear(x, w)


def matmul_params(model, tied):
    n = sum(p.numel() for p in model.parameters())
    return n if tied else n - model.tok_embeddings.weight.numel()


def gpu_mem_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True).stdout.strip()
        return int(out)
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", action="append")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=989.4)
    args = ap.parse_args()
    for spec in args.preset or ["150m:16", "1b:8"]:
        name, micro = (spec.split(":") + ["8"])[:2]
        micro = int(micro)
        cfg = PRESETS[name]
        torch.manual_seed(0)
        model = Llama(*cfg).cuda()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
        tokens = torch.randint(cfg[0], (micro, SEQ), device="cuda")
        labels = torch.cat([tokens[:, 1:], torch.full((micro, 1), -100, device="cuda")], 1)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(tokens)
            loss = F.cross_entropy(logits.view(-1, cfg[0]).float(), labels.view(-1), ignore_index=-100)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        secs = time.perf_counter() - t
        tps = args.steps * micro * SEQ / secs
        mfu = 6 * matmul_params(model, cfg[7]) * tps / (args.peak_tflops * 1e12)
        print(json.dumps({"impl": "pytorch-eager", "preset": name, "micro_batch": micro, "seq": SEQ,
                          "tokens_per_s": round(tps), "mfu": round(mfu, 4), "step_ms": round(secs * 1e3 / args.steps, 1),
                          "gpu_mem_mib": gpu_mem_mib(), "loss": round(loss, 4),
                          "max_allocated_mib": torch.cuda.max_memory_allocated() // 2**20}), flush=True)
        del model, opt
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
