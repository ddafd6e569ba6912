"""The makemore data pipeline: vocabulary, context windows, word-level splits.

Every makemore page and full-tier run builds its data here, so the numbers
agree across pages: the same vocabulary (`.` is index 0, then a..z), the same
shuffle of the words (Python's `random.seed(42)`), the same 80/10/10 split.
"""
from __future__ import annotations

import random

import torch

from snippets.data import names

# --8<-- [start:vocab]
def vocabulary(words: list[str]) -> tuple[dict[str, int], dict[int, str]]:
    """Character <-> index maps; '.' (index 0) marks both start and end."""
    chars = sorted(set("".join(words)))
    stoi = {"." : 0} | {c: i + 1 for i, c in enumerate(chars)}
    itos = {i: c for c, i in stoi.items()}
    return stoi, itos
# --8<-- [end:vocab]


# --8<-- [start:build_dataset]
def build_dataset(words: list[str], block_size: int,
                  stoi: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per character: the previous `block_size` indices -> the next."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size          # start padded with '.'
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]    # slide the window by one
    return torch.tensor(X), torch.tensor(Y)  # (N, block_size), (N,)
# --8<-- [end:build_dataset]


# --8<-- [start:split_words]
def split_words(words: list[str], seed: int = 42,
                fractions: tuple[float, float] = (0.8, 0.9)):
    """Shuffle a copy of the words, cut at 80 % and 90 %: train, dev, test."""
    words = list(words)
    random.Random(seed).shuffle(words)
    n1, n2 = (int(f * len(words)) for f in fractions)
    return words[:n1], words[n1:n2], words[n2:]
# --8<-- [end:split_words]


def splits(block_size: int = 3, seed: int = 42):
    """{'train'|'dev'|'test': (X, Y)} built from names.txt, plus stoi, itos."""
    words = names()
    stoi, itos = vocabulary(words)
    parts = split_words(words, seed)
    data = {k: build_dataset(p, block_size, stoi)
            for k, p in zip(("train", "dev", "test"), parts)}
    return data, stoi, itos


if __name__ == "__main__":
    data, stoi, itos = splits(3)
    for k, (X, Y) in data.items():
        print(f"{k:5s} X {tuple(X.shape)}  Y {tuple(Y.shape)}")
