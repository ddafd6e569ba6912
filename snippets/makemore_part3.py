"""The makemore part-3 MLP and its five initialisations, from bad to BatchNorm.

Context of 3 characters, 10-d embeddings, 200 tanh units, 27 outputs. The
variants differ only in how the weights start (and whether a BatchNorm sits
before the tanh). Quick tier: the pages train a few hundred steps. Full tier:
`python -m snippets.makemore_part3` trains each variant 200,000 steps as in
the lecture and writes docs/results/makemore-part3.json.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from snippets import results
from snippets.makemore_data import splits

RESULTS = results.path("makemore-part3")
VOCAB, BLOCK, N_EMBD, N_HIDDEN = 27, 3, 10, 200
SEED = 2147483647
# the lecture's final losses (train, dev) for each variant
TARGETS = {"original": (2.1245, 2.1682), "softmax_fix": (2.07, 2.13),
           "tanh_fix": (2.0356, 2.1027), "kaiming": (2.0377, 2.1070),
           "batchnorm": (2.0668, 2.1048)}

# --8<-- [start:variants]
#                 W1 scale    b1 scale  W2 scale  b2 scale  BatchNorm
VARIANTS = {
    "original":    (1.0,       1.0,      1.0,      1.0,      False),
    "softmax_fix": (1.0,       1.0,      0.01,     0.0,      False),
    "tanh_fix":    (0.2,       0.01,     0.01,     0.0,      False),
    "kaiming":     ("kaiming", 0.01,     0.01,     0.0,      False),
    "batchnorm":   ("kaiming", None,     0.01,     0.0,      True),
}
# --8<-- [end:variants]


# --8<-- [start:init]
def init_params(variant="kaiming", seed=SEED, device="cpu"):
    """Parameters (and BatchNorm running statistics) for one variant."""
    w1, b1, w2, b2, bn = VARIANTS[variant]
    g = torch.Generator().manual_seed(seed)
    fan_in = N_EMBD * BLOCK                              # 30
    if w1 == "kaiming":
        w1 = (5 / 3) / fan_in**0.5                       # tanh gain
    P = {"C": torch.randn(VOCAB, N_EMBD, generator=g),   # (27, 10)
         "W1": torch.randn(fan_in, N_HIDDEN, generator=g) * w1}
    if b1 is not None:                        # BatchNorm makes b1 useless
        P["b1"] = torch.randn(N_HIDDEN, generator=g) * b1
    P["W2"] = torch.randn(N_HIDDEN, VOCAB, generator=g) * w2  # (200, 27)
    P["b2"] = torch.randn(VOCAB, generator=g) * b2
    if bn:
        P["bngain"] = torch.ones(1, N_HIDDEN)            # gamma starts at 1
        P["bnbias"] = torch.zeros(1, N_HIDDEN)           # beta starts at 0
    P = {k: v.to(device).requires_grad_() for k, v in P.items()}
    running = ({"mean": torch.zeros(1, N_HIDDEN, device=device),
                "std": torch.ones(1, N_HIDDEN, device=device)} if bn else None)
    return P, running, g
# --8<-- [end:init]


# --8<-- [start:forward]
def forward(P, X, running=None, training=True, momentum=0.001):
    """Logits (N, 27), plus the pre-activations and the tanh outputs."""
    emb = P["C"][X]                                   # (N, 3, 10)
    embcat = emb.view(emb.shape[0], -1)               # (N, 30)
    hpreact = embcat @ P["W1"]                        # (N, 200)
    if "b1" in P:
        hpreact = hpreact + P["b1"]
    if "bngain" in P:
        if training:                                  # this batch's stats
            mean = hpreact.mean(0, keepdim=True)      # (1, 200)
            std = hpreact.std(0, keepdim=True)        # (1, 200)
            with torch.no_grad():                     # for inference
                running["mean"].lerp_(mean, momentum)
                running["std"].lerp_(std, momentum)
        else:                                         # the stored estimates
            mean, std = running["mean"], running["std"]
        hpreact = P["bngain"] * (hpreact - mean) / std + P["bnbias"]
    h = torch.tanh(hpreact)                           # (N, 200)
    logits = h @ P["W2"] + P["b2"]                    # (N, 27)
    return logits, hpreact, h
# --8<-- [end:forward]


# --8<-- [start:train]
def train(variant, Xtr, Ytr, steps=200_000, batch_size=32, lr=0.1,
          decay_at=100_000, log_every=0, device="cpu"):
    """Minibatch SGD; lr drops tenfold at `decay_at`. Returns P, running,
    and the per-step training losses."""
    P, running, g = init_params(variant, device=device)
    losses, threads = [], torch.get_num_threads()
    if device == "cpu":   # tiny matmuls: extra threads only add waiting
        torch.set_num_threads(1)
    for i in range(steps):
        ix = torch.randint(0, len(Xtr), (batch_size,), generator=g)
        Xb, Yb = Xtr[ix].to(device), Ytr[ix].to(device)
        logits, _, _ = forward(P, Xb, running, training=True)
        loss = F.cross_entropy(logits, Yb)
        for p in P.values():
            p.grad = None
        loss.backward()
        step = lr if i < decay_at else lr / 10
        with torch.no_grad():
            for p in P.values():
                p -= step * p.grad
        losses.append(loss.item())
        if log_every and i % log_every == 0:
            print(f"  {variant:11s} {i:7d}/{steps}: {loss.item():.4f}",
                  flush=True)
    torch.set_num_threads(threads)
    return P, running, losses


@torch.no_grad()
def split_loss(P, running, X, Y, device="cpu"):
    """Mean cross-entropy over a whole split, BatchNorm in inference mode."""
    logits, _, _ = forward(P, X.to(device), running, training=False)
    return F.cross_entropy(logits, Y.to(device)).item()
# --8<-- [end:train]


def full_tier_runs(steps=200_000):
    """The full tier's independent runs: one per variant (each seeds its own
    generator, so they may run in any order, in parallel)."""
    return {name: {"steps": steps} for name in VARIANTS}


def full_tier_run(name, steps=200_000):
    """Train one variant as in the lecture; its train and dev losses."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data, _, _ = splits(BLOCK)
    Xtr, Ytr = data["train"]
    P, running, _ = train(name, Xtr, Ytr, steps=steps,
                          log_every=20_000, device=device)
    tr = split_loss(P, running, Xtr, Ytr, device)
    dev = split_loss(P, running, *data["dev"], device)
    print(f"{name}: train {tr:.4f} dev {dev:.4f} (lecture "
          f"{TARGETS[name][0]} / {TARGETS[name][1]})", flush=True)
    return {"train": round(tr, 4), "dev": round(dev, 4),
            "target_train": TARGETS[name][0], "target_dev": TARGETS[name][1],
            "steps": steps}


def full_tier_merge(runs, start, out=RESULTS):
    """The variants' losses into one results file."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = {r.pop("steps") for r in runs.values()}
    assert len(steps) == 1, steps
    result = {
        "recipe": {"steps": steps.pop(), "batch_size": 32, "lr": 0.1,
                   "lr_after_100000": 0.01, "seed": SEED,
                   "block_size": BLOCK, "n_embd": N_EMBD,
                   "n_hidden": N_HIDDEN},
        "runs": runs,
        **results.stamp(device, start),
    }
    results.save(result, out)
    print(f"wrote {out}")
    return result


def full_tier(out=RESULTS, steps=200_000):
    """Train the five variants as in the lecture, one after another; write
    the losses."""
    start = time.time()
    runs = {name: full_tier_run(name, **kwargs)
            for name, kwargs in full_tier_runs(steps).items()}
    return full_tier_merge(runs, start, out)


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
