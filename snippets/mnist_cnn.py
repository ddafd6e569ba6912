"""A small convolutional network for MNIST, shared by the convolutions,
learned-features and transfer-learning pages.

Quick tier only: the pages train it on the seeded 8,000-image part of the
10,000 MNIST test images (`snippets.mnist.test_split`) and measure it on the
other 2,000.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from snippets.mnist import test_split

EPOCHS, LR, BS = 1, 1e-2, 64  # quick-tier hyperparameters


# --8<-- [start:data]
def image_split(n_train=8000, seed=0, device="cpu"):
    """test_split with the images as (N, 1, 28, 28) instead of (N, 784)."""
    (x, y), (x_v, y_v) = test_split(n_train, seed, device)
    return (x.view(-1, 1, 28, 28), y), (x_v.view(-1, 1, 28, 28), y_v)
# --8<-- [end:data]


# --8<-- [start:model]
def cnn(c1=8, c2=16, n_out=10):
    """(N, 1, 28, 28) -> logits (N, n_out); shapes for c1=8, c2=16."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 5, stride=2, padding=2),  # (N, 8, 14, 14)
        nn.ReLU(),
        nn.MaxPool2d(2),                           # (N, 8, 7, 7)
        nn.Conv2d(c1, c2, 3, padding=1),           # (N, 16, 7, 7)
        nn.ReLU(),
        nn.Flatten(),                              # (N, 784)
        nn.Linear(c2 * 7 * 7, n_out),              # (N, 10): the head
    )
# --8<-- [end:model]


# --8<-- [start:train]
def train_cnn(model, x, y, epochs=EPOCHS, lr=LR, bs=BS, seed=0,
              augment=None):
    """Adam on mini-batches in a seeded order; returns the batch losses.

    Only parameters with requires_grad are trained. augment(x_batch,
    generator) -> x_batch, if given, transforms each batch.
    """
    trained = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trained, lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(bs):
            idx = idx.to(y.device)
            xb = x[idx] if augment is None else augment(x[idx], g)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy(model, x, y, chunk=1000):
    """Share of x that model classifies as y, in chunks of `chunk` images."""
    model.eval()
    right = sum((model(xc).argmax(1) == yc).sum().item()
                for xc, yc in zip(x.split(chunk), y.split(chunk)))
    return right / len(y)
# --8<-- [end:train]


# --8<-- [start:filters]
def plot_filters(conv, title):
    """Draw the (C_out, 1, k, k) kernels of a Conv2d, each scaled to its own
    largest |weight|; red positive, blue negative. Returns the figure."""
    import matplotlib.pyplot as plt

    w = conv.weight.detach().cpu()[:, 0]             # (C_out, k, k)
    w = w / w.abs().amax((1, 2), keepdim=True)       # each in [-1, 1]
    fig, axes = plt.subplots(1, len(w), figsize=(1.1 * len(w), 1.5))
    for i, (ax, k) in enumerate(zip(axes, w)):
        ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(str(i), fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
# --8<-- [end:filters]
