"""One training step's loss and backward pass, for a batch of any size: gradient caching.

The contrastive loss compares every sentence of a batch with every other, so its gradient needs all
B embeddings at once; a plain backward pass keeps the activations of all 2B rows of the encoder, and
memory caps B. Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup") cuts the encoder out of the loss, because the loss only sees the
embeddings ``z`` (2B, H):

1. encode the batch M sentences (2M rows) at a time *without* gradient, and keep only ``z``;
2. compute the loss on the whole ``z`` and backpropagate to ``z`` alone: ``g = dloss/dz`` (2B, H),
   the "cache" (small: B x H numbers);
3. encode each piece again, this time with gradient, and backpropagate ``sum(z_piece * g_piece)``:
   by the chain rule its gradient for the encoder's weights is that piece's share of dloss/dtheta.

The shares add up to the gradient of the whole batch, while only one piece's activations are held at
a time: memory grows with M, not with B. The price is a second forward pass (about 1.3x the time).
Step 3 must see the same dropout masks as step 1 (dropout *is* SimCSE's augmentation), so the random
state is saved before each piece in step 1 and restored before it in step 3.

DiffCSE's replaced-token detection needs no other sentence, so it is computed piece by piece in step 3
(each piece's tokens divided by the count of the whole batch: the pieces add up to the batch's mean).
BatchNorm layers (DiffCSE's ``bn`` projector) see the statistics of each piece, as on each GPU of a
multi-GPU run of DiffCSE's own code.

With several processes (:mod:`cse_helpers.scale.distributed`), ``batch`` is this process's share of the
global batch and the loss is computed on the embeddings gathered from every process; the same
function serves both, with or without pieces.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..objectives import Objective, split_views
from ..runtime import autocast
from .distributed import Ranks

SINGLE_PROCESS = Ranks()


def pieces(batch: dict[str, torch.Tensor], rows: int) -> list[dict[str, torch.Tensor]]:
    """Cut a batch of (2n, L) tensors into pieces of ``rows`` rows (even: a sentence's two views stay
    together), each cut to its own longest row (less padding; the attention mask makes it exact)."""
    lengths = batch["attention_mask"].sum(dim=1).tolist()  # one copy to the host for all the pieces
    out = []
    for start in range(0, len(lengths), rows):
        length = max(lengths[start:start + rows])
        out.append({name: tensor[start:start + rows, :length] for name, tensor in batch.items()})
    return out


def random_state(device: torch.device):
    """The state of the generators that dropout draws from on ``device`` (the CPU's, and the GPU's)."""
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def set_random_state(state, device: torch.device) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def forward_backward(objective: Objective, batch: dict[str, torch.Tensor], *, precision: str = "fp32",
                     mini_batch_size: int = 0, scale: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                     ranks: Ranks = SINGLE_PROCESS) -> dict[str, torch.Tensor]:
    """The loss of ``batch`` (2n rows a1 a2 b1 b2 ...), and its gradient accumulated into ``.grad``.

    Args:
        mini_batch_size: M > 0 with 2M < 2n rows: gradient caching, M sentences per piece; else one
            forward pass with gradient (the plain way).
        scale: fp16's loss scaling (``GradScaler.scale``); the identity otherwise.
        ranks: several processes: the loss is the global batch's; the gradient here is this
            process's share of it (:meth:`Ranks.sum_gradients` adds the shares up).

    Returns the objective's output for the log, detached: ``loss``, ``contrastive`` and the local parts
    (DiffCSE's ``rtd``), each the value of the global batch.
    """
    device = batch["input_ids"].device
    terms = objective.local_terms(batch)  # DiffCSE: this share's real tokens; None for the others
    if terms is not None:
        terms = ranks.sum(terms)  # ... of the global batch
    local_parts: list[dict] = []

    def local_loss(z: torch.Tensor, rows: dict) -> torch.Tensor:
        """The local part of the loss of ``rows`` (0 when the objective has none), noted for the log."""
        if terms is None:
            return torch.zeros((), device=device)
        out = objective.local_loss(split_views(z)[0], rows, terms)
        local_parts.append({name: value.detach() for name, value in out.items()})
        return out["loss"]

    rows = batch["input_ids"].size(0)
    if mini_batch_size <= 0 or 2 * mini_batch_size >= rows:  # the plain way: one pass with gradient
        with autocast(device, precision):
            z = objective.embed(batch)  # (2n, H)
            contrastive = objective.contrastive_loss(*split_views(ranks.gather(z)))  # z1, z2: (B, H) each
            loss = contrastive + local_loss(z, batch)
        scale(loss).backward()
    else:
        parts, states, embeddings = pieces(batch, 2 * mini_batch_size), [], []
        with torch.no_grad(), autocast(device, precision):  # 1. embeddings only, no activations kept
            for piece in parts:
                states.append(random_state(device))
                embeddings.append(objective.embed(piece))  # (2M, H)
        z = torch.cat(embeddings).requires_grad_()  # (2n, H): the leaves whose gradient is the cache
        with autocast(device, precision):  # 2. the loss on all the embeddings, back to z only
            contrastive = objective.contrastive_loss(*split_views(ranks.gather(z)))
        scale(contrastive).backward()
        for piece, state, grad in zip(parts, states, z.grad.split(2 * mini_batch_size)):
            set_random_state(state, device)  # 3. the same dropout masks as in step 1
            with autocast(device, precision):
                z_piece = objective.embed(piece)  # (2M, H), with gradient this time
                surrogate = (z_piece.float() * grad.float()).sum() + scale(local_loss(z_piece, piece))
            surrogate.backward()  # this piece's share of dloss/dtheta
    with autocast(device, precision):
        objective.after_loss(batch, ranks.gather)  # ESimCSE: enqueue the global batch's sentences
    out = {"contrastive": contrastive.detach()}
    for name in local_parts[0] if local_parts else ():  # each piece's and each process's share, added up
        out[name] = ranks.sum(torch.stack([part[name] for part in local_parts]).sum())
    out["loss"] = out["contrastive"] + out.pop("loss", 0.0)  # a local part's "loss" is what it adds
    return out
