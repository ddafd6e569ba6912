"""DistributedDataParallel on the CPU: two processes, gloo, one small model.

Processes started with spawn or a fork server import the function they run
by module and name, so the worker lives here, not on a page: a page's own
functions cannot be imported by a fresh interpreter. `run()` starts the
processes, waits for them and returns what each rank saw. Command line:
`python -m snippets.ddp`.

The processes come from a fork server, a fresh process that has imported this
module (a plain fork of the calling process can hang: see `start_method`),
or, where there is no fork server, from spawn, each child importing it.
"""
from __future__ import annotations

import copy
import os
import socket
import tempfile

import torch
import torch._dynamo  # noqa: F401  DDP's constructor imports it; preload it
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(seed: int) -> nn.Module:
    """A tiny regression MLP; its buffer `tag` records the seed."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    model.register_buffer("tag", torch.tensor(float(seed)))
    return model


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# --8<-- [start:worker]
def worker(rank, world_size, port, x, y, steps, lr, out_dir):
    """One process of the group: its own model copy, its own shard of x."""
    torch.set_num_threads(1)                 # the ranks share the cores
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = make_model(seed=rank)        # a different init on purpose
        rec = {"before": params(model), "tag_before": model.tag.item()}
        ddp = DDP(model)                     # broadcasts rank 0's state
        rec.update(start=params(model), tag_after=model.tag.item())
        x_r, y_r = x.chunk(world_size)[rank], y.chunk(world_size)[rank]
        local = copy.deepcopy(model)         # same weights, no DDP
        F.mse_loss(local(x_r), y_r).backward()     # this shard's gradient
        rec["local_grads"] = [p.grad.clone() for p in local.parameters()]
        opt = torch.optim.SGD(ddp.parameters(), lr=lr)
        for step in range(steps):
            opt.zero_grad()
            F.mse_loss(ddp(x_r), y_r).backward()   # all-reduce happens here
            if step == 0:
                rec["ddp_grads"] = [p.grad.clone() for p in model.parameters()]
            opt.step()
        rec["final"] = params(model)
        torch.save(rec, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # Saved: end the process now. Freeing `ddp` on return can hang: its process
    # group's destructor holds the GIL while it waits for a gloo thread that
    # needs the GIL (https://github.com/pytorch/pytorch/issues/56297).
    os._exit(0)
# --8<-- [end:worker]


# --8<-- [start:launch]
def start_method() -> str:
    """A fork server where there is one, else spawn; never a plain fork."""
    # A plain fork copies the process with its locks but not its threads:
    # a lock another thread held at that moment stays locked in the child
    # forever. A test runner's I/O thread and torch's thread pools make that
    # a real hang, so the children come from a fork server: a fresh process
    # that imports this module (and torch) once and forks each child from it.
    if "forkserver" in mp.get_all_start_methods():
        # torch's import leaves one more thread in the server, numpy's
        # OpenBLAS pool, idle and made fork-safe by OpenBLAS's fork handlers
        mp.set_forkserver_preload([__name__])
        return "forkserver"
    return "spawn"


def run(x, y, world_size=2, steps=5, lr=0.1):
    """Start world_size processes; return each rank's record, by rank."""
    method = start_method()
    with tempfile.TemporaryDirectory() as out_dir:
        mp.start_processes(worker, nprocs=world_size, join=True,
                           start_method=method,
                           args=(world_size, free_port(), x, y, steps, lr,
                                 out_dir))
        return [torch.load(os.path.join(out_dir, f"rank{r}.pt"))
                for r in range(world_size)]
# --8<-- [end:launch]


# --8<-- [start:single]
def single_process(x, y, steps=5, lr=0.1):
    """The same training in one process, on the whole batch at once."""
    model = make_model(seed=0)               # rank 0's init
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    return params(model)
# --8<-- [end:single]


if __name__ == "__main__":
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    ranks = run(x, y)
    for got, want in zip(ranks[0]["final"], single_process(x, y)):
        torch.testing.assert_close(got, want)
    print("two processes with DDP == one process on the whole batch")
