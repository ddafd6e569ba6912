"""Checks for the exercises at the end of each page.

An exercise that can be checked automatically gives the reader a `check_*` function
(defined on the page with `checker` below): it runs the reader's attempt and a
reference solution on inputs the reader does not see, and says what differs first:
the type, the shape, the dtype, the values, or a gradient. The page's solution block
then proves the check passes the reference and rejects a typical wrong answer.

    check_softmax = checker(reference_softmax, cases=lambda g: [
        (torch.randn(4, 5, generator=g),), (torch.randn(1, 3, generator=g) * 50,)])
    check_softmax(my_softmax)           # prints "✓ 2 hidden cases match" or raises
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class ExerciseMismatch(AssertionError):
    """The attempt differs from the reference; the message says where."""


def checker(reference: Callable, cases: Callable[[torch.Generator], Iterable[tuple]],
            *, atol: float = 1e-5, rtol: float = 1e-4, grad: bool = False,
            seed: int = 1234) -> Callable:
    """A check function for one exercise.

    reference: the correct function. cases(generator): the hidden inputs, a list of
    argument tuples made with that generator (so they are the same on every run).
    grad=True also compares the gradients of the output's sum with respect to every
    floating-point tensor argument.
    """

    def check(attempt: Callable) -> bool:
        g = torch.Generator().manual_seed(seed)
        all_cases = list(cases(g))
        for i, args in enumerate(all_cases, 1):
            where = f"hidden case {i} of {len(all_cases)}"
            want, want_grads = _run(reference, args, grad)
            try:
                got, got_grads = _run(attempt, args, grad)
            except Exception as e:  # noqa: BLE001 - reported to the reader
                raise ExerciseMismatch(
                    f"{where}: your function raised {type(e).__name__}: {e}") from None
            _compare(got, want, f"{where}: the result", atol, rtol)
            for k, (a, b) in enumerate(zip(got_grads, want_grads)):
                _compare(a, b, f"{where}: the gradient of argument {k}", atol, rtol)
        print(f"✓ {len(all_cases)} hidden cases match")
        return True

    return check


def _run(fn: Callable, args: tuple, grad: bool):
    args = tuple(a.detach().clone().requires_grad_(grad and a.is_floating_point())
                 if isinstance(a, torch.Tensor) else a for a in args)
    out = fn(*args)
    grads = []
    if grad:
        leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return out, [None] * len(leaves)
        grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
        out = out.detach()
    return out, list(grads)


def _compare(got, want, what: str, atol: float, rtol: float) -> None:
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            raise ExerciseMismatch(f"{what} is a {type(got).__name__}, expected a tensor")
        if got.shape != want.shape:
            raise ExerciseMismatch(f"{what} has shape {tuple(got.shape)}, expected "
                                   f"{tuple(want.shape)}")
        if got.dtype != want.dtype:
            raise ExerciseMismatch(f"{what} has dtype {got.dtype}, expected {want.dtype}")
        if not torch.allclose(got, want, atol=atol, rtol=rtol, equal_nan=True):
            diff = (got.double() - want.double()).abs()
            at = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0])
            raise ExerciseMismatch(
                f"{what} differs: largest difference {diff.max().item():.3g} at index "
                f"{at} (yours {got[at].item():.6g}, expected {want[at].item():.6g})")
    elif want is None:
        if got is not None:
            raise ExerciseMismatch(f"{what} should not exist")
    elif isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            raise ExerciseMismatch(f"{what} should be a sequence of {len(want)} items")
        for k, (a, b) in enumerate(zip(got, want)):
            _compare(a, b, f"{what}[{k}]", atol, rtol)
    elif isinstance(want, float):
        if not isinstance(got, (int, float)) or abs(got - want) > atol + rtol * abs(want):
            raise ExerciseMismatch(f"{what} is {got!r}, expected {want:.6g}")
    elif got != want:
        raise ExerciseMismatch(f"{what} is {got!r}, expected {want!r}")
