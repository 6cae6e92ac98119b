"""Several processes, one global batch: what ``torchrun`` needs from the training loop.

    torchrun --nproc_per_node 2 -m cse_helpers.train --batch_size 512 ...   # 2 GPUs, 256 sentences each

``--batch_size`` is the *global* batch B. Each of the W processes (ranks) encodes its share of the
B sentences; the embeddings of all ranks are gathered, so every sentence is scored against all B
candidates, as in one process with the whole batch. That is the point: InfoNCE gets better with more
negatives, and one GPU's memory caps them.

How the gradient stays the one-process gradient (SimCSE's own trick, ``dist.all_gather`` with the
local tensor put back):

1. every rank gathers the others' embeddings *without* gradient and puts its own rows back *with*
   it: ``z_all`` (B, H), identical on every rank;
2. every rank computes the same loss L on ``z_all``; its backward reaches only the rank's own rows,
   so rank r's gradient is the part of dL/dtheta that flows through its sentences;
3. the ranks' gradients are *summed* (one ``all_reduce``): the parts add up to dL/dtheta, exactly
   what one process with the whole batch computes. (Averaging, as DistributedDataParallel does,
   would give dL/dtheta / W.)

A single process is the case W = 1: :class:`Ranks` then does nothing, and the loop never asks how many
processes there are.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: How long a rank waits for the others at a collective before giving up (the main rank's evaluation
#: and saving happen while the others wait at a barrier).
TIMEOUT = datetime.timedelta(minutes=30)
#: Where a training state of several processes keeps the random generators of ranks 1, 2, ...
OTHER_RANKS_RNG = "other_ranks"


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Ranks:
    """This process's place among the W processes of a run (rank 0 of 1 for a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates, saves and shows the progress bar; the others wait for it."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    # ---- starting --------------------------------------------------------------------------------------
    @classmethod
    def from_environment(cls, device: torch.device) -> tuple[Ranks, torch.device]:
        """Join the process group that ``torchrun`` describes in the environment (RANK, WORLD_SIZE,
        LOCAL_RANK, MASTER_ADDR, MASTER_PORT); return this rank and its device.

        NCCL on GPUs (rank r takes ``cuda:LOCAL_RANK``), gloo on the CPU. Without torchrun: rank 0 of 1.
        """
        if not launched_by_torchrun():
            return cls(), device
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise ValueError(f"rank {rank} has LOCAL_RANK {local_rank}, but only {torch.cuda.device_count()} "
                                 "GPU(s) are visible: use --nproc_per_node at most the number of GPUs.")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                                    **({"device_id": device} if device.type == "cuda" else {}))
        return cls(rank, world_size, local_rank), device

    def close(self) -> None:
        """Leave the process group, once every rank is done with it (a rank that leaves while another
        still talks to it makes gloo abort the other)."""
        if self.active and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    # ---- the data: which sentences of a global batch are this rank's ------------------------------------
    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (sizes differ by at most 1, rank 0 first).

        Concatenating the shards in rank order gives the items in their order, so the gathered
        embeddings are the rows of the one-process batch, in the same order."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    # ---- collectives (each a no-op for a single process) ---------------------------------------------------
    def gather(self, z: torch.Tensor) -> torch.Tensor:
        """(n_r, H) rows of each rank -> (sum n_r, H) on every rank, in rank order; this rank's rows keep
        their gradient, the others' are constants (step 1 of the module docstring).

        Ranks may hold different numbers of rows (a global batch of 63 over 2 ranks: 32 and 31); they
        are padded to the largest for the exchange and cut back after."""
        if not self.active:
            return z
        sizes = [torch.zeros((), dtype=torch.long, device=z.device) for _ in range(self.world_size)]
        dist.all_gather(sizes, torch.tensor(z.size(0), device=z.device))
        sizes = [int(s) for s in sizes]
        padded = z.detach().new_zeros((max(sizes), *z.shape[1:]))
        padded[: z.size(0)] = z.detach()
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        parts = [part[:size] for part, size in zip(parts, sizes)]
        parts[self.rank] = z  # our own rows: with their gradient
        return torch.cat(parts, dim=0)

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Sum every gradient over the ranks, in one ``all_reduce`` (step 3 of the module docstring).

        Parameters without a gradient (a pooler the run does not use) are left out, as one process
        leaves them: every rank runs the same graph, so every rank leaves out the same ones."""
        if not self.active:
            return
        parameters = [p for p in parameters if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in parameters])  # one buffer, one message
        dist.all_reduce(flat)
        offset = 0
        for p in parameters:
            p.grad.copy_(flat[offset: offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum over the ranks of a tensor (e.g. the count of DiffCSE's tokens in the global batch)."""
        if self.active:
            value = value.clone()
            dist.all_reduce(value)
        return value

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (the MLP head's random start, for one)."""
        if self.active:
            for tensor in [*module.parameters(), *module.buffers()]:
                if tensor.numel():
                    dist.broadcast(tensor.data, src=0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (anything picklable) on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (each rank's random generators, to save)."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait here until every rank has come (the others wait while rank 0 evaluates or saves)."""
        if self.active:
            dist.barrier()

    # ---- the loop's use of them --------------------------------------------------------------------------------
    def main_then_wait(self, function: Callable[[], None]) -> None:
        """Rank 0 runs ``function()`` (evaluate, save, clear the save folder); the others wait for it."""
        if self.is_main:
            function()
        self.barrier()

    def gather_random_states(self, rng: dict) -> dict:
        """Every rank's random generators in one dict, for rank 0 to save: rank 0's ``rng``, plus the others'
        (in rank order) under :data:`OTHER_RANKS_RNG` when there are several processes."""
        rng, *others = self.gather_objects(rng)
        return {**rng, OTHER_RANKS_RNG: others} if others else rng

    def own_random_states(self, saved: dict) -> dict:
        """This rank's random generators out of what :meth:`gather_random_states` saved."""
        return saved[OTHER_RANKS_RNG][self.rank - 1] if self.rank else saved
