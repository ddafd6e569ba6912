"""Transfer learning and augmentation on MNIST without downloads.

Pretrain the CNN of snippets/mnist_cnn.py on digits 0-4, then learn digits
5-9 from a few labelled images: from scratch, with the pretrained body frozen
under a new head, or fine-tuning everything; each with and without random
affine augmentation. All images come from the 10,000 MNIST test images.

Quick tier (the page): one draw of 10 labelled images per digit, 50 steps.
Full tier: `python -m snippets.transfer` repeats the comparison for 5, 10 and
50 labelled images per digit, 5 draws each, and writes
docs/results/transfer.json.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from snippets import results
from snippets.mnist_cnn import accuracy, cnn, image_split, train_cnn

RESULTS = results.path("transfer")
PRE_EPOCHS, STEPS, K = 1, 50, 10          # quick tier
FULL = {"pre_epochs": 3, "steps": 100, "ks": [5, 10, 50],
        "seeds": [0, 1, 2, 3, 4]}
METHODS = ("scratch", "frozen", "fine-tune")


# --8<-- [start:augment]
def random_affine(x, g, degrees=15.0, shift=0.1, scale=(0.9, 1.1)):
    """Rotate, scale and shift each image of (N, C, H, W) at random.

    Angle uniform in +-degrees, scale uniform in `scale`, shift uniform in
    +-shift of the image size along each axis; the draws come from the CPU
    generator g. Pixels that come from outside the image are 0.
    """
    u = torch.rand(len(x), 4, generator=g).to(x.device)     # (N, 4)
    angle = (2 * u[:, 0] - 1) * math.radians(degrees)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    t = (2 * u[:, 2:] - 1) * 2 * shift        # (N, 2); the image spans 2
    cos, sin = angle.cos() / s, angle.sin() / s
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1),
                         torch.stack([sin, cos, t[:, 1]], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)  # (N, C, H, W)
# --8<-- [end:augment]


# --8<-- [start:tasks]
def tasks(device="cpu"):
    """The source task: digits 0-4 of the 8,000-image part, (train, valid).
    The target task: every 5-9 of the 10,000 images, relabelled 0-4."""
    (x, y), (x_v, y_v) = image_split(device=device)
    source = (x[y < 5], y[y < 5]), (x_v[y_v < 5], y_v[y_v < 5])
    X, Y = torch.cat([x, x_v]), torch.cat([y, y_v])
    return source, (X[Y >= 5], Y[Y >= 5] - 5)


def few_labels(y, k, seed=0):
    """k seeded indices per class of y, and a mask of all the others."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(int(y.max()) + 1):
        of_c = (y == c).nonzero()[:, 0].cpu()
        picked.append(of_c[torch.randperm(len(of_c), generator=g)[:k]])
    idx = torch.cat(picked).to(y.device)
    rest = torch.ones(len(y), dtype=torch.bool, device=y.device)
    rest[idx] = False
    return idx, rest
# --8<-- [end:tasks]


# --8<-- [start:adapt]
def adapt(base, method, x, y, steps=STEPS, augment=None, seed=0):
    """Learn the target task from (x, y), full batch, `steps` Adam steps.

    scratch: a fresh CNN. frozen: base's layers fixed, a new head trained.
    fine-tune: base's layers and a new head, all trained, with a 10 times
    smaller learning rate so the pretrained weights move less.
    """
    torch.manual_seed(seed)
    model = cnn(n_out=5).to(x.device)
    if method != "scratch":
        model.load_state_dict(base.state_dict())
        model[-1].reset_parameters()                # a new, random head
    if method == "frozen":
        for p in model[:-1].parameters():
            p.requires_grad_(False)
    lr = 1e-3 if method == "fine-tune" else 1e-2
    train_cnn(model, x, y, epochs=steps, bs=len(y), lr=lr, seed=seed,
              augment=augment)
    return model
# --8<-- [end:adapt]


def pretrain(source, epochs=PRE_EPOCHS, seed=0):
    """The CNN trained on the source task (digits 0-4)."""
    (x, y), _ = source
    torch.manual_seed(seed)
    base = cnn(n_out=5).to(x.device)
    train_cnn(base, x, y, epochs=epochs, seed=seed)
    return base


def compare(base, target, k, seed=0, steps=STEPS):
    """{(method, augmented): accuracy on the unlabelled rest}, one draw."""
    X, Y = target
    idx, rest = few_labels(Y, k, seed)
    acc = {}
    for aug in (False, True):
        for method in METHODS:
            model = adapt(base, method, X[idx], Y[idx], steps,
                          random_affine if aug else None, seed)
            acc[method, aug] = accuracy(model, X[rest], Y[rest])
    return acc, int(rest.sum())


def full_tier(out=RESULTS, cfg=FULL):
    """The comparison for several label counts and draws; JSON in out."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    start = time.time()
    source, target = tasks(device)
    base = pretrain(source, cfg["pre_epochs"])
    pre_acc = accuracy(base, *source[1])
    print(f"pretrained on 0-4: {pre_acc:.2%} on held-out 0-4", flush=True)
    runs = []
    for k in cfg["ks"]:
        for seed in cfg["seeds"]:
            acc, n_eval = compare(base, target, k, seed, cfg["steps"])
            runs.append({"k": k, "seed": seed, "n_eval": n_eval,
                         "accuracy": {f"{m}{' + aug' if a else ''}": v
                                      for (m, a), v in acc.items()}})
            print(f"[{time.time() - start:6.1f} s] k={k} seed={seed}: "
                  + ", ".join(f"{n} {v:.3f}"
                              for n, v in runs[-1]["accuracy"].items()),
                  flush=True)
    result = {"config": {**cfg, "pre_train": "digits 0-4 of the 8,000-image "
                         "part of the MNIST test set",
                         "eval": "every 5-9 of the 10,000 MNIST test images "
                         "except the labelled ones"},
              "pretrain_accuracy": pre_acc, "runs": runs,
              **results.stamp(device, start)}
    results.save(result, out)
    print(f"wrote {out}")
    return result


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
