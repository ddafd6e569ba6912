"""A scalar autograd engine and a tiny neural-network library on top of it.

Every number is a `Value` that remembers which values produced it and how;
`backward()` walks that graph in reverse topological order and applies the
chain rule one operation at a time.
"""
from __future__ import annotations

import math
import random


# --8<-- [start:value]
class Value:
    """A scalar that records the operations producing it."""

    def __init__(self, data, _prev=(), _op=""):
        self.data = float(data)
        self.grad = 0.0                 # d(output) / d(self), filled later
        self._prev = tuple(_prev)       # the values this one was made from
        self._op = _op                  # how: "+", "*", "tanh", ...
        self._backward = lambda: None   # pushes self.grad to self._prev

    def __repr__(self):
        return f"Value(data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():                # d(a + b)/da = d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():                # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        assert isinstance(k, (int, float)), "only constant exponents"
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward():                # d(a^k)/da = k a^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():                # d(e^a)/da = e^a
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():                # d tanh(a)/da = 1 - tanh(a)^2
            self.grad += (1 - out.data ** 2) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():                # 1 where a > 0, else 0
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    # Everything else is built from the operations above.
    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1

    def __radd__(self, other):          # 2 + a
        return self + other

    def __rmul__(self, other):          # 2 * a
        return self * other

    def __rsub__(self, other):          # 2 - a
        return other + (-self)

    def __rtruediv__(self, other):      # 2 / a
        return other * self ** -1
# --8<-- [end:value]


# --8<-- [start:backward]
def topological_order(root):
    """Every value that feeds into root, each after all of its inputs."""
    order, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for child in v._prev:
                visit(child)
            order.append(v)             # appended only after its inputs
    visit(root)
    return order


def backward(self):
    """Set .grad of every value in the graph to d(self)/d(value)."""
    self.grad = 1.0                     # d(self)/d(self)
    for v in reversed(topological_order(self)):
        v._backward()                   # v.grad is final: push it down


Value.backward = backward
# --8<-- [end:backward]


# --8<-- [start:nn]
class Neuron:
    """act(w . x + b) with act = "tanh", "relu" or None (linear)."""

    def __init__(self, nin, act="tanh"):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0.0)
        self.act = act

    def __call__(self, x):
        z = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        if self.act == "tanh":
            return z.tanh()
        if self.act == "relu":
            return z.relu()
        return z

    def parameters(self):
        return self.w + [self.b]


class Layer:
    def __init__(self, nin, nout, act="tanh"):
        self.neurons = [Neuron(nin, act) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    """Layers of sizes nin -> nouts[0] -> ... ; the last one is linear."""

    def __init__(self, nin, nouts, act="tanh"):
        sizes = [nin] + list(nouts)
        self.layers = [
            Layer(sizes[i], sizes[i + 1], act if i < len(nouts) - 1 else None)
            for i in range(len(nouts))
        ]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]
# --8<-- [end:nn]
