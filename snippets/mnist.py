"""MNIST from pixel similarity to a small MLP: the code the MNIST pages share.

Quick tier (the pages): train on a seeded 8,000-image part of the 10,000 MNIST
test images, measure on the other 2,000. Full tier: `python -m snippets.mnist`
trains on the 60,000 training images, measures on the 10,000 test images and
writes docs/results/mnist.json.
"""
from __future__ import annotations

import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from snippets import results
from snippets.data import available, mnist

RESULTS = results.path("mnist")
HIDDEN, EPOCHS, LR, BS = 64, 5, 0.5, 64  # quick-tier hyperparameters
FULL_EPOCHS = 10


# --8<-- [start:split]
def flat(images):
    """uint8 images (N, 28, 28) -> float vectors (N, 784) in [0, 1]."""
    return images.float().div(255).view(len(images), -1)


def test_split(n_train=8000, seed=0, device="cpu"):
    """A seeded split of the 10,000 test images into (x, y) train and valid."""
    images, labels = mnist("test")               # (10000, 28, 28), (10000,)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=g)
    x, y = flat(images)[perm].to(device), labels[perm].to(device)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
# --8<-- [end:split]


# --8<-- [start:means]
def class_means(x, y):
    """The mean image of each digit 0..9: (10, 784)."""
    return torch.stack([x[y == c].mean(0) for c in range(10)])


def distances(x, centres, kind="rmse"):
    """Distance of every image to every centre: (N, K)."""
    diff = x[:, None, :] - centres[None, :, :]    # (N, K, 784) by broadcasting
    if kind == "l1":
        return diff.abs().mean(-1)                # mean absolute difference
    return diff.pow(2).mean(-1).sqrt()            # root of the mean square
# --8<-- [end:means]


# --8<-- [start:model]
def init_params(sizes, seed=0, device="cpu"):
    """[W1, b1, W2, b2, ...]: W (n_in, n_out) ~ N(0, 1 / n_in), b = 0."""
    g = torch.Generator().manual_seed(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [torch.randn(n_in, n_out, generator=g) / math.sqrt(n_in),
                   torch.zeros(n_out)]
    return [p.to(device).requires_grad_() for p in params]


def forward(params, x):
    """Linear layers with a ReLU between them: (N, 784) -> logits (N, 10)."""
    *hidden, W, b = params
    for W_h, b_h in zip(hidden[::2], hidden[1::2]):
        x = (x @ W_h + b_h).clip(min=0)           # ReLU: negatives -> 0
    return x @ W + b


def cross_entropy(logits, y):
    """Mean of -log softmax(logits)[y], computed stably."""
    z = logits - logits.max(1, keepdim=True).values  # (N, 10), row max 0
    log_p = z - z.exp().sum(1, keepdim=True).log()   # (N, 10)
    return -log_p[torch.arange(len(y), device=y.device), y].mean()
# --8<-- [end:model]


# --8<-- [start:sgd]
def accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def train_sgd(params, train, valid, epochs=EPOCHS, lr=LR, bs=BS, seed=0):
    """Mini-batch SGD by hand; returns [(train loss, valid accuracy)]."""
    (x, y), (x_v, y_v) = train, valid
    g = torch.Generator().manual_seed(seed)      # the order of the batches
    history = []
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(y), generator=g).split(bs):
            idx = idx.to(y.device)
            loss = cross_entropy(forward(params, x[idx]), y[idx])  # predict
            loss.backward()                       # gradient
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad              # step
                    p.grad = None                 # .grad accumulates: reset
            total += loss.detach() * len(idx)
        with torch.no_grad():
            acc = accuracy(forward(params, x_v), y_v)
        history.append((total.item() / len(y), acc))
    return history
# --8<-- [end:sgd]


# --8<-- [start:nn]
def mlp(hidden=HIDDEN):
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


def train_nn(model, train, valid, epochs=EPOCHS, lr=LR, bs=BS, seed=0):
    """The same loop; torch.nn and torch.optim keep the parameters."""
    (x, y), (x_v, y_v) = train, valid
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(y), generator=g).split(bs):
            idx = idx.to(y.device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        with torch.no_grad():
            acc = accuracy(model(x_v), y_v)
        history.append((total.item() / len(y), acc))
    return history
# --8<-- [end:nn]


def full_tier(out=RESULTS, epochs=FULL_EPOCHS):
    """Train on the 60,000 training images, measure on the 10,000 test ones."""
    if not available("train"):
        sys.exit("The full tier needs the 60,000 MNIST training images, which "
                 "are not on this machine. Fetch them with `python -m "
                 "snippets.data fetch mnist` (or point DLNOTES_DATA_DIR at a "
                 "folder holding train-images-idx3-ubyte.gz), then run "
                 "`python -m snippets.mnist` again. Nothing was written.")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.time()
    train, test = [(flat(x).to(device), y.to(device))
                   for x, y in (mnist("train"), mnist("test"))]
    acc = {}

    def done(name, value):
        acc[name] = value
        print(f"[{time.time() - start:6.1f} s] {name}: {value:.2%}", flush=True)

    means = class_means(*train)
    is37 = (test[1] == 3) | (test[1] == 7)
    x37, y37 = test[0][is37], test[1][is37]
    for kind in ("l1", "rmse"):
        says3 = distances(x37, means[[3, 7]], kind).argmin(1) == 0
        done(f"3 vs 7, distance to mean images ({kind})",
             (says3 == (y37 == 3)).float().mean().item())
        done(f"ten digits, distance to mean images ({kind})",
             accuracy(-distances(test[0], means, kind), test[1]))
    for name, sizes in [("linear model, SGD by hand", [784, 10]),
                        (f"MLP 784-{HIDDEN}-10, SGD by hand",
                         [784, HIDDEN, 10])]:
        params = init_params(sizes, device=device)
        done(name, train_sgd(params, train, test, epochs)[-1][1])
    torch.manual_seed(0)
    model = mlp().to(device)
    done(f"MLP 784-{HIDDEN}-10, torch.nn + torch.optim",
         train_nn(model, train, test, epochs)[-1][1])
    result = {
        "train": "MNIST training set, 60,000 images",
        "eval": "MNIST test set, 10,000 images",
        "hyperparameters": {"epochs": epochs, "lr": LR, "batch_size": BS,
                            "hidden": HIDDEN},
        "accuracy": acc,
        **results.stamp(device, start),
    }
    results.save(result, out)
    print(f"wrote {out}")
    return result


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
