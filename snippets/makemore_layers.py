"""Our own torch.nn for makemore: the layers of the WaveNet-style model.

Each layer is a plain Python object called like a torch.nn module
(`layer(x)`), with `.parameters()` and a `.training` flag. The constructors
take the same leading arguments as their torch.nn namesakes. Two layouts
differ from torch.nn on purpose, and the pages say so: `Linear.weight` is
(in, out) (torch stores (out, in)), and `BatchNorm1d` takes 3-d input as
(N, L, C), channels last (torch expects (N, C, L)).
"""
from __future__ import annotations

import torch


class Module:
    """What every layer shares: a training flag and a parameter list."""

    training = True

    def parameters(self) -> list[torch.Tensor]:
        return []

    def train(self, mode: bool = True):
        self.training = mode
        for layer in getattr(self, "layers", []):
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)


# --8<-- [start:linear]
class Linear(Module):
    """x @ W + b; W starts as randn / sqrt(fan_in), b as zeros."""

    def __init__(self, in_features, out_features, bias=True, device=None):
        w = torch.randn((in_features, out_features)) / in_features**0.5
        self.weight = w.to(device).requires_grad_()        # (in, out)
        self.bias = (torch.zeros(out_features, device=device)
                     .requires_grad_() if bias else None)  # (out,)

    def __call__(self, x):                                 # (..., in)
        self.out = x @ self.weight
        if self.bias is not None:
            self.out = self.out + self.bias
        return self.out                                    # (..., out)

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])
# --8<-- [end:linear]


# --8<-- [start:batchnorm]
class BatchNorm1d(Module):
    """Normalise each channel (the last dim) over the batch, then scale.

    2-d input (N, C): statistics over dim 0. 3-d input (N, L, C): over
    dims (0, 1), one mean and variance per channel. With buggy=True, 3-d
    input is reduced over dim 0 only: one statistic per (position, channel).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None,
                 buggy=False):
        self.eps, self.momentum, self.buggy = eps, momentum, buggy
        self.gamma = torch.ones(num_features, device=device).requires_grad_()
        self.beta = torch.zeros(num_features, device=device).requires_grad_()
        self.running_mean = torch.zeros(num_features, device=device)
        self.running_var = torch.ones(num_features, device=device)

    def __call__(self, x):
        if self.training:
            dim = 0 if x.ndim == 2 or self.buggy else (0, 1)
            mean = x.mean(dim, keepdim=True)                # (1, C), (1, 1, C)
            var = x.var(dim, keepdim=True, unbiased=False)  # biased, as torch
            n = x.numel() // mean.numel()                   # values per stat
            with torch.no_grad():                           # buffers, no grad
                m = self.momentum
                self.running_mean = (1 - m) * self.running_mean + m * mean
                self.running_var = ((1 - m) * self.running_var
                                    + m * var * n / (n - 1))  # unbiased
        else:
            mean, var = self.running_mean, self.running_var
        xhat = (x - mean) / torch.sqrt(var + self.eps)
        self.out = self.gamma * xhat + self.beta
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]


def buggy_batchnorm(num_features, **kwargs):
    """The lecture's first version: on (N, L, C) it reduces over dim 0 only."""
    return BatchNorm1d(num_features, buggy=True, **kwargs)
# --8<-- [end:batchnorm]


# --8<-- [start:tanh]
class Tanh(Module):
    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out
# --8<-- [end:tanh]


# --8<-- [start:embedding]
class Embedding(Module):
    """A lookup table: row i of the weight is the vector of token i."""

    def __init__(self, num_embeddings, embedding_dim, device=None):
        w = torch.randn((num_embeddings, embedding_dim))
        self.weight = w.to(device).requires_grad_()         # (V, C)

    def __call__(self, ix):                                 # (B, T) int64
        self.out = self.weight[ix]                          # (B, T, C)
        return self.out

    def parameters(self):
        return [self.weight]
# --8<-- [end:embedding]


# --8<-- [start:flatten]
class FlattenConsecutive(Module):
    """(B, T, C) -> (B, T // n, n * C): concatenate n neighbouring vectors.

    When a single group remains (T == n) the middle dim is dropped: (B, n*C).
    """

    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out
# --8<-- [end:flatten]


# --8<-- [start:sequential]
class Sequential(Module):
    """Call the layers in order; collect their parameters in order."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]
# --8<-- [end:sequential]
