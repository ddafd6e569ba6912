"""Character-level recurrent language models on names.txt: RNN, LSTM, GRU.

The data, the split, the training recipe (AdamW, warm-up + cosine, clipping)
and the dev loss are those of the GPT pages (`snippets.gpt`), so the numbers
sit in one table with the MLP, the WaveNet and the GPT. Quick tier (the page):
small models for a few hundred steps. Full tier: `python -m
snippets.recurrent_lm` trains an RNN, an LSTM and a GRU of similar size on the
full split and writes docs/results/makemore-rnn.json after every finished run.
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from snippets import results
from snippets.gpt import n_params, name_splits, train_recorded

RESULTS = results.path("makemore-rnn")


# --8<-- [start:model]
class CharRNN(nn.Module):
    """Embedding -> recurrent layer (nn.RNN, nn.LSTM or nn.GRU) -> logits.

    The recurrent layer reads a row left to right, so the logits at step t
    see the characters 0..t only: no mask is needed, and the padding after
    a name's end never reaches the name's own predictions.
    """

    def __init__(self, kind="lstm", n_embd=16, n_hidden=64, num_layers=1,
                 vocab_size=27):
        super().__init__()
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.kind = kind
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.rnn = rnn(n_embd, n_hidden, num_layers, batch_first=True)
        self.head = nn.Linear(n_hidden, vocab_size)

    def forward(self, idx, targets=None, state=None, return_state=False):
        out, state = self.rnn(self.tok(idx), state)    # (B, T, H)
        logits = self.head(out)                        # (B, T, vocab)
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                   ignore_index=-1)
            return logits, loss
        return (logits, state) if return_state else logits
# --8<-- [end:model]


# --8<-- [start:sample]
@torch.no_grad()
def sample(model, itos, n, generator, max_len=20):
    """n names, one character per step; the state carries the past, so each
    step feeds only the newest character."""
    model.eval()
    device = next(model.parameters()).device
    idx = torch.zeros(n, 1, dtype=torch.long, device=device)    # '.'
    state, rows = None, []
    for _ in range(max_len):
        logits, state = model(idx, state=state, return_state=True)
        probs = logits[:, -1].softmax(dim=-1).cpu()              # (n, vocab)
        idx = torch.multinomial(probs, 1, generator=generator).to(device)
        rows.append(idx)
    out = []
    for row in torch.cat(rows, dim=1).tolist():                 # (n, max_len)
        out.append("".join(itos[i] for i in row).split(".")[0])
    return out
# --8<-- [end:sample]


# The full tier: three cells of similar size, one recipe (the GPT's length).
# (name, kind, n_embd, n_hidden)
MODELS = [
    ("RNN", "rnn", 24, 160),
    ("GRU", "gru", 24, 96),
    ("LSTM", "lstm", 24, 84),
]
RECIPE = {"steps": 12_000, "batch_size": 64, "max_lr": 1e-2, "min_lr": 1e-3,
          "warmup": 200, "weight_decay": 0.01, "seed": 42, "evals": 12}


def full_tier(out=RESULTS, models=MODELS, recipe=RECIPE):
    """Train each model with one recipe on the full training split; dev
    loss is measured `evals` times per run (the curves on the page)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    start, cpu_start, runs = time.time(), time.process_time(), []
    data, stoi, itos = name_splits()
    (Xtr, Ytr), (Xdev, Ydev) = [(X.to(device), Y.to(device))
                                for X, Y in (data["train"], data["dev"])]
    r = recipe
    result = {"recipe": {**r, "split": "split_words(seed=42), 80/10/10; "
                         "dev = the GPT's dev and the WaveNet's val",
                         "optimiser": "snippets.gpt.train: AdamW, warm-up + "
                         "cosine, gradient clipping at norm 1"},
              "train_targets": int((Ytr >= 0).sum()),
              "dev_targets": int((Ydev >= 0).sum()),
              "runs": runs, "complete": False}
    for name, kind, n_embd, n_hidden in models:
        torch.manual_seed(r["seed"])
        model = CharRNN(kind, n_embd, n_hidden).to(device)
        print(f"== {name}: {n_params(model)} parameters", flush=True)
        runs.append({"name": name, "kind": kind, "n_embd": n_embd,
                     "n_hidden": n_hidden,
                     **train_recorded(model, Xtr, Ytr, Xdev, Ydev, r, itos,
                                      points=100, sampler=sample)})
        print(f"   train {runs[-1]['train']:.4f}, dev {runs[-1]['dev']:.4f}"
              f" [{runs[-1]['run_seconds']:.0f} s]", flush=True)
        result.update({
            "complete": len(runs) == len(models),
            "cpu_seconds": round(time.process_time() - cpu_start, 1),
            **results.stamp(device, start)})
        results.save(result, out)
    print(f"wrote {out} [{time.time() - start:.0f} s]")
    return result


def load_results(path=RESULTS):
    """The full tier's measurements, or None where it has not been run."""
    return results.load(path)


if __name__ == "__main__":
    full_tier()
