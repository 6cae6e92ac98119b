"""What every training objective gives the loop: the loss of a batch of two views per sentence, in parts.

The objectives, one per file: :mod:`.simcse`, :mod:`.esimcse`, :mod:`.diffcse`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..encoder import SentenceEncoder


def split_views(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2N, H) rows a1 a2 b1 b2 ... -> ``z1`` (N, H) the first views, ``z2`` (N, H) the second views."""
    z = z.view(-1, 2, z.size(-1))  # (N, 2, H)
    return z[:, 0], z[:, 1]


class Objective(nn.Module):
    """What the training loop asks of every objective: the loss of a batch, in parts.

    A batch holds 2N rows a1 a2 b1 b2 ... (two views of N sentences). The loss has two kinds of parts:

    - the *contrastive* part (:meth:`contrastive_loss`) compares every embedding with every other
      one, so it needs the embeddings of the whole batch (:meth:`embed`) at once;
    - a *local* part (:meth:`local_loss`, DiffCSE's replaced-token detection) that each sentence
      computes on its own.

    ``forward(batch)`` puts them together for a batch that fits in memory: the one-process training step
    is ``objective(batch)["loss"].backward()``. Keeping the parts apart lets ``cse_helpers.scale.grad_cache``
    compute the same loss from embeddings made a few rows at a time, or on several processes
    (``cse_helpers.scale.distributed``): more negatives than one forward pass holds.

    Each other hook has a default that does nothing; an objective with state of its own (ESimCSE's
    queue, DiffCSE's frozen generator and its random masks) overrides the ones it needs. So the loop
    (``cse_helpers.train``) and the checkpoints (``cse_helpers.checkpoint``) never ask which method runs.
    """

    #: Whether the second view of a sentence has words repeated (ESimCSE; built by ``batches.ViewBuilder``).
    repeats_words = False
    #: The head on the pooler that the method's paper uses (``TrainingArguments.projector``): SimCSE's ``mlp``;
    #: the course trains each method with its paper's (the command line's default stays ``mlp``).
    paper_projector = "mlp"
    #: Whether the objective needs models besides the encoder (DiffCSE's generator and discriminator), so
    #: that it cannot be built around an encoder alone (the loss playground then needs one given).
    needs_models = False
    #: The run settings (``TrainingArguments`` fields) that belong to this method alone, beside the ones every
    #: method reads (temperature, margin, ...): e.g. what the loss playground offers as the method's own knobs.
    method_settings: tuple[str, ...] = ()
    #: ``state_dict`` prefixes of frozen modules: never trained, so a training state leaves them out.
    frozen_prefixes: tuple[str, ...] = ()

    def __init__(self, encoder: SentenceEncoder):
        super().__init__()
        self.encoder = encoder

    # ---- building --------------------------------------------------------------------------------
    @classmethod
    def check_paths(cls, args) -> None:
        """Check the objective's own model paths (``args``: the run's TrainingArguments), before anything loads."""

    @classmethod
    def from_args(cls, args, encoder: SentenceEncoder) -> Objective:
        """The objective for a run's settings (``args``: TrainingArguments) around ``encoder``."""
        raise NotImplementedError

    def prepare(self, device: torch.device, precision: str) -> Objective:
        """Move to ``device``, in train mode (``precision``: "fp32", "bf16" or "fp16", for frozen parts)."""
        self.to(device)
        self.train()
        return self

    # ---- the loss, in parts ---------------------------------------------------------------------------
    def embed(self, batch: dict) -> torch.Tensor:
        """(2N, L) rows a1 a2 b1 b2 ... -> (2N, H) embeddings (train mode: dropout on)."""
        return self.encoder(batch["input_ids"], batch["attention_mask"])

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The loss that compares the whole batch: ``z1``, ``z2`` (B, H) -> a scalar."""
        raise NotImplementedError

    def local_terms(self, batch: dict) -> torch.Tensor | None:
        """How many terms :meth:`local_loss` averages over in these rows (None: there is no local loss)."""
        return None

    def local_loss(self, z1: torch.Tensor, batch: dict, terms: torch.Tensor) -> dict[str, torch.Tensor]:
        """The part of the loss each sentence computes alone, from its first-view embedding ``z1`` (n, H)
        and its rows of ``batch`` (2n, L); ``terms``: the count of :meth:`local_terms` in the *whole*
        batch, so that the parts of a batch cut in pieces add up to the mean over the batch.

        Returns ``{"loss": what is added to the contrastive loss, name: each part, detached}``."""
        raise NotImplementedError

    def after_loss(self, batch: dict, gather: Callable[[torch.Tensor], torch.Tensor] = lambda z: z) -> None:
        """What happens once the loss of ``batch`` is known (ESimCSE: enqueue its sentences). ``gather``
        turns this process's rows into the global batch's (several processes; else it is the identity)."""

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """The loss of a batch in one forward pass: ``{"loss": what is minimised, "contrastive": ..., parts}``
        (the parts detached, for the log)."""
        z = self.embed(batch)  # (2B, H): rows a1 a2 b1 b2 ...
        contrastive = self.contrastive_loss(*split_views(z))  # z1, z2: (B, H) each
        out = {"loss": contrastive, "contrastive": contrastive.detach()}
        terms = self.local_terms(batch)
        if terms is not None:  # a local part (DiffCSE's RTD) from the first views
            z1 = split_views(z)[0]  # (B, H), taken anew as grad_cache takes it: the same gradient, bit for bit
            local = self.local_loss(z1, batch, terms)
            out = {**out, **local, "loss": contrastive + local["loss"]}
        self.after_loss(batch)
        return out

    # ---- after each optimizer step -----------------------------------------------------------------
    def after_optimizer_step(self) -> None:
        """Updates outside the gradient (ESimCSE's momentum encoder)."""

    # ---- what a training state saves besides the trained weights -------------------------------------
    def extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors that are not weights but that a resumed run needs (ESimCSE: its queue), CPU, contiguous."""
        return {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take the entries of :meth:`extra_state` out of ``tensors`` (a saved state) and put them back."""

    def rng_state(self) -> dict:
        """The state of the objective's own random generators (DiffCSE's masking), by name."""
        return {}

    def set_rng_state(self, state: dict) -> None:
        """Restore what :meth:`rng_state` returned (``state`` may hold other generators' entries too)."""
