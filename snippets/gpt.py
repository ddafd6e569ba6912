"""A character-level GPT on names.txt: data, model, schedule, training, sampling.

Quick tier (the pages): tiny models trained for a few hundred steps. Full tier:
`python -m snippets.gpt` trains four sizes to convergence on the full split,
writes docs/results/makemore-gpt.json after every finished size, and keeps the
largest model's weights in build/gpt/ (never committed) for the fine-tuning
page.
"""
from __future__ import annotations

import math
import pathlib
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from snippets import results
from snippets.data import names
from snippets.makemore_data import split_words, vocabulary

RESULTS = results.path("makemore-gpt")
CHECKPOINT = (pathlib.Path(__file__).resolve().parents[1]
              / "build" / "gpt" / "gpt-full.pt")


# --8<-- [start:data]
def encode_names(words, stoi, block_size=16):
    """One row per name: inputs start with '.', targets end with '.'.

    'emma' -> X = . e m m a . . ...   Y = e m m a . -1 -1 ...
    Targets -1 are padding; the loss ignores them, so every name counts
    exactly its characters plus the end token, as in the MLP's rows.
    """
    X, Y = [], []
    for w in words:
        ix = [stoi[c] for c in w]
        pad = block_size - len(ix) - 1
        X.append([0] + ix + [0] * pad)
        Y.append(ix + [0] + [-1] * pad)
    return torch.tensor(X), torch.tensor(Y)           # (N, T), (N, T)


def name_splits(block_size=16, seed=42):
    """{'train'|'dev'|'test': (X, Y)} by name, the makemore 80/10/10 split."""
    words = names()
    stoi, itos = vocabulary(words)
    parts = split_words(words, seed)
    data = {k: encode_names(p, stoi, block_size)
            for k, p in zip(("train", "dev", "test"), parts)}
    return data, stoi, itos
# --8<-- [end:data]


# --8<-- [start:head]
class Head(nn.Module):
    """One causal self-attention head of size head_size."""

    def __init__(self, n_embd, head_size, block_size):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        tril = torch.tril(torch.ones(block_size, block_size))
        self.register_buffer("tril", tril)          # 1 = may look

    def forward(self, x):                           # (B, T, C)
        B, T, C = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, T, T)
        scores = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        self.weights = F.softmax(scores, dim=-1)    # (B, T, T), rows sum 1
        return self.weights @ v                     # (B, T, hs)
# --8<-- [end:head]


# --8<-- [start:attention]
class CausalSelfAttention(nn.Module):
    """n_head causal heads computed at once; each head has n_embd // n_head
    channels. The last attention weights are kept in .weights for plots."""

    def __init__(self, n_embd, n_head, block_size, dropout=0.0):
        super().__init__()
        assert n_embd % n_head == 0
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)    # all heads' q, k, v
        self.proj = nn.Linear(n_embd, n_embd)       # mixes the heads
        self.drop = nn.Dropout(dropout)
        ones = torch.ones(block_size, block_size, dtype=torch.bool)
        self.register_buffer("causal", torch.tril(ones), persistent=False)
        self.weights = None

    def forward(self, x):                            # (B, T, C)
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=-1)       # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2)
                   for t in (q, k, v))               # each (B, nh, T, hs)
        att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
        att = att.masked_fill(~self.causal[:T, :T], float("-inf"))
        att = att.softmax(dim=-1)
        self.weights = att.detach()
        y = self.drop(att) @ v                       # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)       # heads side by side
        return self.drop(self.proj(y))               # (B, T, C)
# --8<-- [end:attention]


# --8<-- [start:block]
class MLP(nn.Module):
    """Per position: widen 4x, GELU, project back."""

    def __init__(self, n_embd, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
            nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

    def forward(self, x):                            # (B, T, C)
        return self.net(x)


class Block(nn.Module):
    """Attention (tokens talk) then MLP (each token thinks), each wrapped
    in a residual connection and a LayerNorm."""

    def __init__(self, n_embd, n_head, block_size, dropout=0.0,
                 pre_norm=True):
        super().__init__()
        self.pre_norm = pre_norm
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x):                            # (B, T, C)
        if self.pre_norm:              # GPT-2: normalise the branch input
            x = x + self.attn(self.ln1(x))
            x = x + self.mlp(self.ln2(x))
        else:                          # 2017 Transformer: normalise the sum
            x = self.ln1(x + self.attn(x))
            x = self.ln2(x + self.mlp(x))
        return x
# --8<-- [end:block]


# --8<-- [start:model]
@dataclass
class GPTConfig:
    vocab_size: int = 27
    block_size: int = 16       # 15 letters at most, plus '.'
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    dropout: float = 0.0
    pre_norm: bool = True


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.n_embd
        self.tok = nn.Embedding(cfg.vocab_size, C)   # what the token is
        self.pos = nn.Embedding(cfg.block_size, C)   # where it is
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.Sequential(*[
            Block(C, cfg.n_head, cfg.block_size, cfg.dropout, cfg.pre_norm)
            for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(C) if cfg.pre_norm else nn.Identity()
        self.head = nn.Linear(C, cfg.vocab_size)
        for m in self.modules():                      # small, GPT-2 style
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets=None):            # idx (B, T)
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok(idx) + self.pos(pos))  # (B, T, C)
        x = self.blocks(x)                            # (B, T, C)
        logits = self.head(self.ln_f(x))              # (B, T, vocab)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                               ignore_index=-1)
        return logits, loss


def n_params(model):
    return sum(p.numel() for p in model.parameters())
# --8<-- [end:model]


# --8<-- [start:schedule]
def lr_at(step, max_lr, warmup, total, min_lr):
    """Linear warm-up to max_lr, then half a cosine down to min_lr."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
# --8<-- [end:schedule]


# --8<-- [start:train]
def make_optimizer(model, lr, weight_decay):
    """AdamW; decay only the matrices (weights, embeddings), not the
    biases and LayerNorm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2],
               "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2],
               "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), fused=True)


def train(model, X, Y, steps, batch_size=32, max_lr=3e-3, min_lr=None,
          warmup=None, weight_decay=0.1, seed=0, eval_every=0,
          eval_fn=None, log_every=0):
    """AdamW, warm-up + cosine, gradient clipping at norm 1. Returns the
    minibatch losses and, every eval_every steps, (step, characters seen,
    eval_fn(model))."""
    warmup = max(1, steps // 20) if warmup is None else warmup
    min_lr = max_lr / 10 if min_lr is None else min_lr
    opt = make_optimizer(model, max_lr, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_at(s, max_lr, warmup, steps, min_lr) / max_lr)
    g = torch.Generator().manual_seed(seed)
    losses, evals, seen, start = [], [], 0, time.time()
    model.train()
    for step in range(steps):
        ix = torch.randint(len(X), (batch_size,), generator=g)
        xb, yb = X[ix], Y[ix]                         # (B, block_size)
        T = int((yb >= 0).sum(1).max())               # longest name + '.'
        _, loss = model(xb[:, :T], yb[:, :T])         # drop pure padding
        seen += int((yb >= 0).sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            evals.append((step + 1, seen, eval_fn(model)))
            model.train()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:6d}/{steps}: loss {loss.item():.4f}"
                  f" [{time.time() - start:.0f} s]", flush=True)
    model.eval()
    return losses, evals
# --8<-- [end:train]


# --8<-- [start:evaluate]
@torch.no_grad()
def evaluate(model, X, Y, chunk=4096):
    """Mean loss per character (end tokens included) over a whole split."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(X), chunk):
        logits = model(X[i:i + chunk])                # (b, T, vocab)
        y = Y[i:i + chunk]
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                 ignore_index=-1, reduction="sum").item()
        count += (y >= 0).sum().item()
    model.train(was_training)
    return total / count


@torch.no_grad()
def sample(model, itos, n, generator, temperature=1.0):
    """n names, one character at a time, each seeing all it wrote so far."""
    model.eval()
    device = next(model.parameters()).device
    idx = torch.zeros(n, 1, dtype=torch.long, device=device)   # '.'
    for _ in range(model.cfg.block_size):
        logits = model(idx)[:, -1, :] / temperature             # (n, vocab)
        probs = logits.softmax(dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=generator)  # (n, 1)
        idx = torch.cat([idx, nxt.to(device)], dim=1)
    out = []
    for row in idx[:, 1:].tolist():
        word = "".join(itos[i] for i in row)
        out.append(word.split(".")[0])
    return out
# --8<-- [end:evaluate]


# The full tier: four sizes, one recipe. (name, n_layer, n_head, n_embd)
SIZES = [
    ("tiny", 1, 2, 16),
    ("small", 2, 4, 32),
    ("medium", 3, 4, 48),
    ("large", 4, 4, 64),
]
RECIPE = {"steps": 12_000, "batch_size": 64, "max_lr": 2e-3, "min_lr": 2e-4,
          "warmup": 500, "weight_decay": 0.1, "dropout": 0.1, "seed": 42,
          "evals": 24}


def train_recorded(model, Xtr, Ytr, Xdev, Ydev, recipe, itos, points,
                   sampler=None):
    """Train with a full-tier recipe, dev loss measured `evals` times; what a
    full tier records of the run, with 12 names from `sampler` (default:
    `sample`). snippets.recurrent_lm uses it too."""
    r, t0 = recipe, time.time()
    losses, evals = train(
        model, Xtr, Ytr, r["steps"], batch_size=r["batch_size"],
        max_lr=r["max_lr"], min_lr=r["min_lr"], warmup=r["warmup"],
        weight_decay=r["weight_decay"], seed=r["seed"],
        eval_every=r["steps"] // r["evals"],
        eval_fn=lambda m: evaluate(m, Xdev, Ydev),
        log_every=r["steps"] // 6)
    curve = torch.tensor(losses).view(points, -1).mean(1)   # `points` means
    g = torch.Generator().manual_seed(r["seed"])
    return {
        "params": n_params(model),
        "train": evaluate(model, Xtr, Ytr),
        "dev": evaluate(model, Xdev, Ydev),
        "dev_curve": [{"step": s, "tokens": n, "dev": round(d, 4)}
                      for s, n, d in evals],
        "loss_curve": [round(v, 4) for v in curve.tolist()],
        "samples": (sampler or sample)(model, itos, 12, g),
        "run_seconds": round(time.time() - t0, 1)}


def full_tier_runs(sizes=SIZES, recipe=RECIPE):
    """The full tier's independent runs, one per size (each seeds itself);
    the last size also keeps its model."""
    return {name: {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd,
                   "recipe": recipe, "keep": name == sizes[-1][0]}
            for name, n_layer, n_head, n_embd in sizes}


def full_tier_run(name, n_layer, n_head, n_embd, recipe=RECIPE, keep=False,
                  checkpoint=CHECKPOINT):
    """Train one size with the recipe on the full split; dev loss measured
    `evals` times during the run (the loss-against-tokens curve)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)               # small ops: one core is enough
    cpu_start = time.process_time()
    data, stoi, itos = name_splits()
    (Xtr, Ytr), (Xdev, Ydev) = [(X.to(device), Y.to(device))
                                for X, Y in (data["train"], data["dev"])]
    r = recipe
    cfg = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                    dropout=r["dropout"])
    torch.manual_seed(r["seed"])
    model = GPT(cfg).to(device)
    print(f"== {name}: {n_params(model)} parameters", flush=True)
    run = {"name": name, "config": asdict(cfg),
           **train_recorded(model, Xtr, Ytr, Xdev, Ydev, r, itos,
                            points=200)}
    print(f"   train {run['train']:.4f}, dev {run['dev']:.4f}"
          f" [{run['run_seconds']:.0f} s]", flush=True)
    if keep:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": asdict(cfg),
                    "state_dict": model.state_dict()}, checkpoint)
    return {**run, "cpu_seconds": round(time.process_time() - cpu_start, 1)}


def full_tier_merge(runs, start, out=RESULTS, sizes=SIZES, recipe=RECIPE):
    """The sizes so far (in the order of SIZES) into one results file."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data, _, _ = name_splits()
    Ytr, Ydev = data["train"][1], data["dev"][1]
    runs = [dict(run) for run in runs.values()]
    cpu = sum(run.pop("cpu_seconds", 0.0) for run in runs)
    result = {"recipe": {**recipe, "split": "split_words(seed=42), 80/10/10; "
                         "dev = the WaveNet's val", "block_size": 16,
                         "tokens": "target characters (end tokens "
                         "included) in the minibatches so far"},
              "train_targets": int((Ytr >= 0).sum()),
              "dev_targets": int((Ydev >= 0).sum()),
              "runs": runs, "complete": len(runs) == len(sizes),
              "cpu_seconds": round(cpu, 1), **results.stamp(device, start)}
    results.save(result, out)
    return result


def full_tier(out=RESULTS, checkpoint=CHECKPOINT, sizes=SIZES, recipe=RECIPE):
    """Train every size with one recipe on the full split, one after
    another; the JSON grows size by size; the largest model is kept in
    build/."""
    start, runs = time.time(), {}
    for name, kwargs in full_tier_runs(sizes, recipe).items():
        runs[name] = full_tier_run(name, **kwargs, checkpoint=checkpoint)
        result = full_tier_merge(runs, start, out, sizes, recipe)
    print(f"wrote {out} [{time.time() - start:.0f} s]")
    return result


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


def load_checkpoint(path=CHECKPOINT, device="cpu"):
    """The full tier's largest model, or None where it has not been run."""
    if not pathlib.Path(path).exists():
        return None
    saved = torch.load(path, map_location=device)
    model = GPT(GPTConfig(**saved["config"])).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


if __name__ == "__main__":
    full_tier()
