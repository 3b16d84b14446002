"""End-to-end training step of a GPT-style model with flashcore patched into SDPA, against torch's
own SDPA backends, all in one process (issue 6: "the patched small-GPT training step ... is faster
end to end").

    PYTHONPATH=<flashcore install> python bench/train_step.py [--layers 8 --embed 2048 --heads 16
                                                              --seq 4096 --batch 4 --steps 10]

Each configuration runs the same model and batch: warm-up steps, then timed steps (forward, loss,
backward, no optimizer), CUDA events. The configurations take turns for --rounds rounds (A B C D
A B C D ...), so a drift in the card's clocks over the run reaches all of them alike; each one's
figure is the median over all its timed steps. The first configuration's loss is the reference
the others are compared with. Prints a table and optionally writes JSON records.
"""

import argparse
import contextlib
import json
import os
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


class Block(torch.nn.Module):
    def __init__(self, e, heads):
        super().__init__()
        self.heads = heads
        self.n1 = torch.nn.LayerNorm(e)
        self.qkv = torch.nn.Linear(e, 3 * e, bias=False)
        self.proj = torch.nn.Linear(e, e, bias=False)
        self.n2 = torch.nn.LayerNorm(e)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(e, 4 * e), torch.nn.GELU(), torch.nn.Linear(4 * e, e))

    def forward(self, x):
        b, s, e = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, s, 3, self.heads, e // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, e))
        return x + self.mlp(self.n2(x))


class GPT(torch.nn.Module):
    def __init__(self, vocab, e, heads, layers, ctx):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, e)
        self.pos = torch.nn.Embedding(ctx, e)
        self.blocks = torch.nn.ModuleList(Block(e, heads) for _ in range(layers))
        self.norm = torch.nn.LayerNorm(e)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x) @ self.tok.weight.T


def step(model, ids):
    model.zero_grad(set_to_none=True)
    logits = model(ids[:, :-1])
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    return loss.detach()


def timed(model, ids, steps, warmup=3):
    """The times of `steps` steps (ms) after `warmup` untimed ones, and the last step's loss."""
    for _ in range(warmup):
        loss = step(model, ids)
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        loss = step(model, ids)
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return times, float(loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--embed", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    import flashcore

    torch.manual_seed(0)
    model = GPT(32000, a.embed, a.heads, a.layers, a.seq + 1).to("cuda", torch.bfloat16).train()
    ids = torch.randint(0, 32000, (a.batch, a.seq + 1), device="cuda")
    configs = [
        ("sdpa_default", contextlib.nullcontext),
        ("sdpa_cudnn", lambda: sdpa_kernel(SDPBackend.CUDNN_ATTENTION)),
        ("sdpa_flash", lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)),
        ("flashcore", flashcore.patched),
    ]
    print(f"GPT bf16: {a.layers} layers, embed {a.embed}, {a.heads} heads (d {a.embed // a.heads}), "
          f"batch {a.batch} x seq {a.seq}, causal; forward + backward per step; "
          f"{a.rounds} rounds of {a.steps} timed steps per configuration")
    times = {name: [] for name, _ in configs}
    losses, grads = {}, {}
    # The gradient of the first block's QKV projection (every attention gradient flows into it),
    # from each configuration's last step: relative L2 distance to the first configuration's.
    probe = model.blocks[0].qkv.weight
    for _ in range(a.rounds):
        for name, ctx in configs:
            with ctx():
                t, losses[name] = timed(model, ids, a.steps)
            times[name] += t
            grads[name] = probe.grad.float().clone()
    g_ref = grads[configs[0][0]]
    recs, ref = [], None
    for name, _ in configs:
        ms, loss = statistics.median(times[name]), losses[name]
        ref = loss if ref is None else ref
        grad_rel = float((grads[name] - g_ref).norm() / g_ref.norm())
        recs.append({"backend": name, "ms_per_step": ms, "loss": loss, "qkv0_grad_rel": grad_rel,
                     "ms_min": min(times[name]), "ms_max": max(times[name]), "timed_steps": len(times[name])})
        print(f"{name:14s} {ms:9.2f} ms/step (min {min(times[name]):.2f}, max {max(times[name]):.2f})  "
              f"loss {loss:.5f} (vs first {loss - ref:+.2e}), block-0 QKV grad vs first {grad_rel:.2e}")
    base = min(r["ms_per_step"] for r in recs if r["backend"] != "flashcore")
    fc = next(r for r in recs if r["backend"] == "flashcore")
    print(f"flashcore vs the fastest SDPA backend: {base / fc['ms_per_step']:.3f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"config": dict(vars(a), json=os.path.basename(a.json)), "device": torch.cuda.get_device_name(), "records": recs}, f, indent=1)


if __name__ == "__main__":
    main()
