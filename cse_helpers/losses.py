"""Contrastive losses on sentence embeddings (no model inside: the math alone, testable by hand).

Notation of the papers: a batch of B sentences is encoded twice; ``z1`` (B, D) holds the first view,
``z2`` (B, D) the second. Row i of z1 and row i of z2 are a *positive pair*; every other row of z2
is a *negative* for row i ("in-batch negatives"). ESimCSE adds Q more negatives from a ``queue``.

InfoNCE (SimCSE, eq. 1), for row i::

    loss_i = -log  exp((cos(z1_i, z2_i) - margin) / temperature)
                   ---------------------------------------------------------------------------
                   exp((cos(z1_i, z2_i) - margin) / t) + sum_{j != i} exp(cos(z1_i, z2_j) / t)
                                                       + sum_{q} exp(cos(z1_i, queue_q) / t)

which is cross-entropy over the row of logits with the target i. ``scale`` = 1 / temperature is
the name sentence-transformers uses (its default 20 is temperature 0.05).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .defaults import paper

IGNORE_INDEX = -100  # the value cross-entropy skips, and the tutorial's diagonal marker


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` (N, D) with every row of ``b`` (M, D): (N, M)."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _scale(temperature: float, scale: float | None) -> float:
    if scale is None:
        if temperature <= 0:
            raise ValueError(f"temperature={temperature}: it must be > 0 (SimCSE uses 0.05).")
        return 1.0 / temperature
    if scale <= 0:
        raise ValueError(f"scale={scale}: it must be > 0 (scale = 1 / temperature; 20 means 0.05).")
    return scale


def info_nce_logits(z1: torch.Tensor, z2: torch.Tensor, temperature: float = paper("temperature"), margin: float = 0.0,
                    queue: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """The (B, B + Q) logits of :func:`info_nce`: cosines, margin on the diagonal, times 1/temperature."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (B, D); got {tuple(z1.shape)} and {tuple(z2.shape)}.")
    sim = cosine_matrix(z1, z2)  # (B, B): sim[i, j] = cos(z1_i, z2_j)
    if queue is not None and queue.numel():
        sim = torch.cat([sim, cosine_matrix(z1, queue.to(z1.dtype))], dim=1)  # (B, B + Q)
    batch_size = z1.size(0)
    positives = torch.eye(batch_size, sim.size(1), device=sim.device, dtype=sim.dtype)
    return (sim - margin * positives) * _scale(temperature, scale)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = paper("temperature"), margin: float = 0.0,
             queue: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """InfoNCE / NT-Xent of SimCSE, with the tutorial's margin and ESimCSE's queue. Returns a scalar.

    Args:
        z1: (B, D) first view. z2: (B, D) second view; row i of z2 is the positive of row i of z1.
        temperature: divides the cosines (SimCSE: 0.05). Ignored when ``scale`` is given.
        margin: subtracted from the positive (diagonal) cosines only: the positive must beat the
            negatives by at least this much (additive margin; the tutorial used it with scale 20).
        queue: (Q, D) extra negatives (ESimCSE's momentum queue), or None.
        scale: 1 / temperature, the sentence-transformers name.

    Cross-entropy against targets 0..B-1, averaged over the B rows.
    """
    logits = info_nce_logits(z1, z2, temperature, margin, queue, scale)  # (B, B + Q)
    targets = torch.arange(z1.size(0), device=z1.device)  # the positive of row i is column i
    return F.cross_entropy(logits.float(), targets)


def simcse_label_matrix(batch_size: int) -> torch.Tensor:
    """The tutorial's (2B, 2B) label matrix for the interleaved order a1 a2 b1 b2 c1 c2 ...

    ``-100`` on the diagonal (a sentence is not compared with itself; cross-entropy ignores -100),
    ``1`` where a row meets its twin (a1-a2, b1-b2, ...), ``0`` elsewhere (negatives).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: it must be >= 1.")
    n = 2 * batch_size
    index = torch.arange(n)
    labels = torch.zeros(n, n, dtype=torch.long)
    labels[index, index ^ 1] = 1  # 0<->1, 2<->3, ...: the twin of each view
    labels[index, index] = IGNORE_INDEX
    return labels


def simcse_matrix_loss(z: torch.Tensor, temperature: float = paper("temperature"), margin: float = 0.0,
                       same_view_negatives: bool = True) -> torch.Tensor:
    """The loss over the (2B, 2B) view that uses :func:`simcse_label_matrix`.

    ``z`` is (2B, D) in the interleaved order a1 a2 b1 b2 ... Every one of the 2B rows is an anchor;
    its target is its twin, the diagonal (-100) is masked out, and every other entry is a negative
    -- including the *same view* of other sentences (a1 vs b1), which :func:`info_nce` does not use.
    With ``same_view_negatives=False`` those are masked too, and the loss equals the symmetric
    ``(info_nce(z1, z2) + info_nce(z2, z1)) / 2`` (tested).
    """
    if z.dim() != 2 or z.size(0) % 2:
        raise ValueError(f"z must be (2B, D) with views interleaved; got {tuple(z.shape)}.")
    labels = simcse_label_matrix(z.size(0) // 2).to(z.device)  # (2B, 2B)
    sim = cosine_matrix(z, z) - margin * (labels == 1)  # (2B, 2B)
    masked = labels == IGNORE_INDEX
    if not same_view_negatives:
        index = torch.arange(z.size(0), device=z.device)
        masked = masked | ((index[:, None] % 2) == (index[None, :] % 2))  # a1-b1, a2-b2, ...
    logits = (sim / temperature).float().masked_fill(masked, float("-inf"))
    return F.cross_entropy(logits, labels.argmax(dim=1))  # argmax finds the 1 (the twin) in each row
