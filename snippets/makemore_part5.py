"""makemore part 5: from a 3-character MLP to a WaveNet-style tree.

Quick tier (the pages): `flat_model`, `hierarchical_model`, `train` and
`evaluate` on few steps. Full tier: `python -m snippets.makemore_part5`
reruns the lecture's five experiments (200,000 steps each) and writes
docs/results/makemore-part5.json after every finished run.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from snippets import results
from snippets.makemore_data import splits
from snippets.makemore_layers import (BatchNorm1d, Embedding,
                                      FlattenConsecutive, Linear, Sequential,
                                      Tanh, buggy_batchnorm)

RESULTS = results.path("makemore-part5")
VOCAB = 27


# --8<-- [start:models]
def flat_model(block_size, n_embd, n_hidden, device=None):
    """All block_size characters concatenated, one hidden layer."""
    model = Sequential(
        Embedding(VOCAB, n_embd, device=device),          # (B, T, n_embd)
        FlattenConsecutive(block_size),                    # (B, T * n_embd)
        Linear(n_embd * block_size, n_hidden, bias=False, device=device),
        BatchNorm1d(n_hidden, device=device), Tanh(),      # (B, n_hidden)
        Linear(n_hidden, VOCAB, device=device))            # (B, 27)
    with torch.no_grad():
        model.layers[-1].weight *= 0.1    # start less confident
    return model


def hierarchical_model(n_embd, n_hidden, levels=3, buggy=False,
                       device=None):
    """Fuse pairs level by level: 2**levels characters -> one vector."""
    norm = buggy_batchnorm if buggy else BatchNorm1d
    layers, width = [Embedding(VOCAB, n_embd, device=device)], n_embd
    for _ in range(levels):                # (B, T, w) -> (B, T/2, n_hidden)
        layers += [FlattenConsecutive(2),
                   Linear(2 * width, n_hidden, bias=False, device=device),
                   norm(n_hidden, device=device), Tanh()]
        width = n_hidden
    model = Sequential(*layers, Linear(n_hidden, VOCAB, device=device))
    with torch.no_grad():
        model.layers[-1].weight *= 0.1
    return model
# --8<-- [end:models]


# --8<-- [start:train]
def train(model, X, Y, steps, batch_size=32, lr=(0.1, 0.01), decay_at=None,
          log_every=0, name=""):
    """Minibatch SGD; lr[0] until decay_at (3/4 of steps), then lr[1]."""
    decay_at = steps * 3 // 4 if decay_at is None else decay_at
    params, losses, start = model.parameters(), [], time.time()
    model.train()
    for i in range(steps):
        ix = torch.randint(0, X.shape[0], (batch_size,)).to(X.device)
        loss = F.cross_entropy(model(X[ix]), Y[ix])
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= (lr[0] if i < decay_at else lr[1]) * p.grad
        losses.append(loss.item())
        if log_every and (i + 1) % log_every == 0:
            print(f"{name} step {i + 1:6d}/{steps}: loss {loss.item():.4f}"
                  f" [{time.time() - start:.0f} s]", flush=True)
    return losses


@torch.no_grad()
def evaluate(model, X, Y, chunk=16384):
    """Mean loss over a whole split, BatchNorm on its running statistics."""
    model.eval()
    total = sum(F.cross_entropy(model(X[i:i + chunk]), Y[i:i + chunk],
                                reduction="sum").item()
                for i in range(0, len(X), chunk))
    model.train()
    return total / len(X)
# --8<-- [end:train]


# The lecture's five runs: (name, block_size, model factory, params,
# lecture train/val loss).
RUNS = [
    ("original 3-char context, n_embd 10, 200 hidden", 3,
     lambda d: flat_model(3, 10, 200, device=d), 12097, (2.058, 2.105)),
    ("context 8, flat", 8,
     lambda d: flat_model(8, 10, 200, device=d), 22097, (1.918, 2.027)),
    ("context 8, hierarchical (n_hidden 68)", 8,
     lambda d: hierarchical_model(10, 68, buggy=True, device=d), 22397,
     (1.941, 2.029)),
    ("hierarchical, BatchNorm bug fixed", 8,
     lambda d: hierarchical_model(10, 68, device=d), 22397, (1.912, 2.022)),
    ("scaled up: n_embd 24, n_hidden 128", 8,
     lambda d: hierarchical_model(24, 128, device=d), 76579, (1.769, 1.993)),
]


def full_tier_runs(steps=200_000):
    """The full tier's independent runs, one per model of RUNS (each seeds
    the global generator itself, so they may run in any order, in parallel)."""
    return {name: {"steps": steps} for name, *_ in RUNS}


def full_tier_run(name, steps=200_000):
    """The lecture's recipe for one run of RUNS; its losses and curve."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)               # small ops: one core is enough
    _, block_size, factory, n_params, target = next(r for r in RUNS
                                                    if r[0] == name)
    data, _, _ = splits(block_size)
    (Xtr, Ytr), (Xva, Yva) = [(X.to(device), Y.to(device))
                              for X, Y in (data["train"], data["dev"])]
    torch.manual_seed(42)
    model = factory(device)
    count = sum(p.numel() for p in model.parameters())
    assert count == n_params, (name, count, n_params)
    print(f"== {name}: {count} parameters", flush=True)
    t0 = time.time()
    losses = train(model, Xtr, Ytr, steps, log_every=10_000, name=name)
    curve = torch.tensor(losses).log10().view(-1, steps // 200).mean(1)
    run = {
        "name": name, "block_size": block_size, "params": count,
        "train": evaluate(model, Xtr, Ytr), "val": evaluate(model, Xva, Yva),
        "target": {"train": target[0], "val": target[1]},
        "log10_loss_curve": [round(v, 4) for v in curve.tolist()],
        "run_seconds": round(time.time() - t0, 1)}
    print(f"   train {run['train']:.4f} (lecture {target[0]}), "
          f"val {run['val']:.4f} (lecture {target[1]})", flush=True)
    return run


def full_tier_merge(runs, start, out=RESULTS, steps=200_000):
    """The runs so far (in the order of RUNS) into one results file."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"recipe": {"steps": steps, "batch_size": 32, "lr": [0.1, 0.01],
                         "decay_at": steps * 3 // 4, "seed": 42,
                         "split": "split_words(seed=42), 80/10/10; val = dev"},
              "runs": list(runs.values()), "complete": len(runs) == len(RUNS),
              **results.stamp(device, start)}
    results.save(result, out)
    return result


def full_tier(steps=200_000, out=RESULTS):
    """The lecture's recipe for each run, one after another; the JSON grows
    run by run."""
    start, runs = time.time(), {}
    for name, kwargs in full_tier_runs(steps).items():
        runs[name] = full_tier_run(name, **kwargs)
        result = full_tier_merge(runs, start, out, steps)
    print(f"wrote {out} [{time.time() - start:.0f} s]")
    return result


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
