"""The makemore MLP (Bengio et al. 2003) and the full-tier reproduction.

Pages import the model pieces; `python -m snippets.makemore_mlp` reproduces
the lecture numbers (bigram counting, the bigram network trained to
convergence, the part-2 MLP) and writes docs/results/makemore-mlp.json.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from snippets.data import names
from snippets import results
from snippets.makemore_data import splits, vocabulary

RESULTS = results.path("makemore-mlp")
TARGETS = {"bigram_counting_nll": 2.454, "mlp_train": 2.126, "mlp_dev": 2.170}


# --8<-- [start:init]
def init_mlp(vocab_size=27, block_size=3, n_embd=10, n_hidden=200,
             g=None, device="cpu"):
    """Parameters C, W1, b1, W2, b2 drawn from N(0, 1), as in the lecture."""
    shapes = [(vocab_size, n_embd), (block_size * n_embd, n_hidden),
              (n_hidden,), (n_hidden, vocab_size), (vocab_size,)]
    params = [torch.randn(s, generator=g).to(device) for s in shapes]
    for p in params:
        p.requires_grad_()
    return params
# --8<-- [end:init]


# --8<-- [start:forward]
def forward(params, X):
    """Context indices (B, block_size) -> logits (B, vocab_size)."""
    C, W1, b1, W2, b2 = params
    emb = C[X]                                   # (B, block_size, n_embd)
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)  # (B, n_hidden)
    return h @ W2 + b2                           # (B, vocab_size)
# --8<-- [end:forward]


# --8<-- [start:train]
def train(params, X, Y, steps, lr, batch_size=32, g=None, log_every=0):
    """Minibatch SGD; lr is a number or a function of the step. -> losses"""
    losses = []
    for i in range(steps):
        ix = torch.randint(0, X.shape[0], (batch_size,), generator=g)
        ix = ix.to(X.device)
        loss = F.cross_entropy(forward(params, X[ix]), Y[ix])
        for p in params:
            p.grad = None
        loss.backward()
        step = lr(i) if callable(lr) else lr
        with torch.no_grad():
            for p in params:
                p -= step * p.grad
        losses.append(loss.item())
        if log_every and (i % log_every == 0 or i == steps - 1):
            print(f"  step {i:7d}/{steps}: minibatch loss {loss.item():.4f}",
                  flush=True)
    return losses


@torch.no_grad()
def evaluate(params, X, Y):
    """Average negative log-likelihood over a whole split."""
    return F.cross_entropy(forward(params, X), Y).item()
# --8<-- [end:train]


# --8<-- [start:sample]
@torch.no_grad()
def sample(params, itos, block_size=3, n=5, g=None):
    """Draw n names, one character at a time, from '.'-padded context."""
    device = params[0].device
    out = []
    for _ in range(n):
        context, chars = [0] * block_size, []
        while True:
            logits = forward(params, torch.tensor([context], device=device))
            p = F.softmax(logits, dim=1).cpu()
            ix = torch.multinomial(p, 1, generator=g).item()
            if ix == 0:
                break
            chars.append(itos[ix])
            context = context[1:] + [ix]
        out.append("".join(chars))
    return out
# --8<-- [end:sample]


def bigram_counts(device="cpu"):
    """27x27 count matrix N over all 228,146 bigrams of names.txt."""
    words = names()
    stoi, _ = vocabulary(words)
    xs, ys = [], []
    for w in words:
        seq = [0] + [stoi[ch] for ch in w] + [0]
        xs += seq[:-1]
        ys += seq[1:]
    x, y = torch.tensor(xs, device=device), torch.tensor(ys, device=device)
    return torch.bincount(x * 27 + y, minlength=729).view(27, 27).float()


def bigram_network(N, lr=50.0, max_steps=5000, tol=1e-7):
    """Full-batch gradient descent on W (27x27) until the loss stops moving.

    The loss over all bigrams equals the count-weighted form used here."""
    g = torch.Generator().manual_seed(2147483647)
    W = torch.randn(27, 27, generator=g).to(N.device).requires_grad_()
    prev = float("inf")
    for step in range(1, max_steps + 1):
        loss = -(N * F.log_softmax(W, dim=1)).sum() / N.sum()
        W.grad = None
        loss.backward()
        W.data -= lr * W.grad
        if step % 1000 == 0:
            print(f"  bigram network step {step}: loss {loss.item():.5f}",
                  flush=True)
        if prev - loss.item() < tol:
            break
        prev = loss.item()
    return {"steps": step, "lr": lr, "loss": loss.item()}


def full_tier_runs(steps=200_000):
    """The full tier's independent runs: (a) and (b) recount the bigrams
    (a second), (c) seeds its own generator."""
    return {"bigram_counting": {}, "bigram_network": {},
            "mlp": {"steps": steps}}


def full_tier_run(name, steps=200_000):
    """One part of the full tier on one thread (batch-32 steps: threads cost
    more than they save, measured 5-15x on 2 cores)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    N = bigram_counts(device)
    if name == "bigram_counting":
        P = (N + 1) / (N + 1).sum(1, keepdim=True)
        nll = (-(N * P.log()).sum() / N.sum()).item()
        print(f"(a) bigram counting, +1 smoothing: mean NLL {nll:.4f}", flush=True)
        return {"nll": nll, "bigrams": int(N.sum().item())}
    if name == "bigram_network":
        print("(b) bigram network, full-batch gradient descent", flush=True)
        net = bigram_network(N)
        print(f"    converged after {net['steps']} steps: {net['loss']:.4f}")
        return net
    assert name == "mlp", name
    print(f"(c) MLP: block 3, n_embd 10, 200 hidden, {steps} steps", flush=True)
    data, _, _ = splits(3)
    (Xtr, Ytr), (Xdev, Ydev) = [(X.to(device), Y.to(device))
                                for X, Y in (data["train"], data["dev"])]
    g = torch.Generator().manual_seed(2147483647)
    params = init_mlp(g=g, device=device)
    t0 = time.time()
    train(params, Xtr, Ytr, steps, lambda i: 0.1 if i < steps // 2 else 0.01,
          g=g, log_every=10_000)
    mlp = {"train": evaluate(params, Xtr, Ytr),
           "dev": evaluate(params, Xdev, Ydev),
           "steps": steps, "batch_size": 32,
           "train_seconds": round(time.time() - t0, 1)}
    print(f"    train {mlp['train']:.4f}  dev {mlp['dev']:.4f}", flush=True)
    return mlp


def full_tier_merge(runs, start, out=RESULTS):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {**runs, "targets": TARGETS, **results.stamp(device, start)}
    results.save(result, out)
    print(f"wrote {out} ({result['wall_seconds']:.0f} s)")
    return result


def full_tier(out=RESULTS):
    """(a), (b) and (c) one after another."""
    start = time.time()
    print("makemore full tier on "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}", flush=True)
    runs = {name: full_tier_run(name, **kwargs)
            for name, kwargs in full_tier_runs().items()}
    return full_tier_merge(runs, start, out)


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
