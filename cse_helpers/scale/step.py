"""The one seam through which :mod:`cse_helpers.scale` enters the training loop.

With one process and the whole batch in one pass, :meth:`cse_helpers.train.Trainer.step` computes the loss
plainly: ``out = objective(batch)``, then ``out["loss"].backward()``. When the run asks for more (``torchrun``
started several processes, or ``--mini_batch_size`` is smaller than the batch), the trainer hands the
forward and backward pass to a :class:`ScaledStep` instead, chosen once when the trainer is built
(:func:`scaled_step`). The loss and the gradient are the same; only where and how they are computed differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from ..objectives import Objective
from .distributed import Ranks
from .grad_cache import forward_backward


class ScaledStep:
    """The forward and backward pass of one step with gradient caching and/or several processes.

    ``share`` picks this process's rows of the global batch; ``forward_backward`` computes the global
    batch's loss from them (:func:`~cse_helpers.scale.grad_cache.forward_backward`, ``mini_batch_size``
    sentences at a time) and adds up the processes' shares of the gradient (:meth:`Ranks.sum_gradients`).
    """

    def __init__(self, objective: Objective, parameters: Iterable[torch.nn.Parameter], ranks: Ranks,
                 mini_batch_size: int, precision: str, scale: Callable[[torch.Tensor], torch.Tensor]):
        self.objective, self.parameters, self.ranks = objective, list(parameters), ranks
        self.mini_batch_size, self.precision, self.scale = mini_batch_size, precision, scale

    def share(self, rows: Sequence[list[int]]) -> Sequence[list[int]]:
        """This process's rows of the 2B rows a1 a2 b1 b2 ... (both views of its sentences; all of them for one
        process)."""
        sentences = self.ranks.shard(len(rows) // 2)
        return rows[2 * sentences.start: 2 * sentences.stop]

    def forward_backward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The global batch's loss (detached, with its parts) and its whole gradient in ``.grad``."""
        out = forward_backward(self.objective, batch, precision=self.precision, mini_batch_size=self.mini_batch_size,
                               scale=self.scale, ranks=self.ranks)
        self.ranks.sum_gradients(self.parameters)  # the processes' shares of the gradient added up
        return out


def scaled_step(objective: Objective, parameters: Iterable[torch.nn.Parameter], ranks: Ranks, batch_size: int,
                mini_batch_size: int, precision: str, scale: Callable[[torch.Tensor], torch.Tensor]
                ) -> ScaledStep | None:
    """A :class:`ScaledStep` when the run asks for one (several processes, or mini-batches smaller than the
    batch); None for the plain step."""
    if ranks.active or 0 < mini_batch_size < batch_size:
        return ScaledStep(objective, parameters, ranks, mini_batch_size, precision, scale)
    return None
