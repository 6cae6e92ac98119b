"""Unsupervised SimCSE (Gao et al., 2021): the two views are the same sentence; the encoder's own dropout makes
them differ. Both views go through the encoder in ONE forward pass of 2B rows, then InfoNCE."""

from __future__ import annotations

import torch

from ..defaults import paper
from ..encoder import SentenceEncoder
from ..losses import info_nce
from .base import Objective


class SimCSE(Objective):
    """Unsupervised SimCSE: a sentence and itself, made different by dropout, are a positive pair.

    The batch holds 2B rows in the order a1 a2 b1 b2 ... (each sentence twice); one forward pass
    encodes both views, then ``info_nce(z1, z2)``.
    """

    def __init__(self, encoder: SentenceEncoder, temperature: float = paper("temperature"),
                 margin: float = paper("margin")):
        super().__init__(encoder)
        self.temperature, self.margin = temperature, margin

    @classmethod
    def from_args(cls, args, encoder: SentenceEncoder) -> SimCSE:
        return cls(encoder, args.temperature, args.margin)

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return info_nce(z1, z2, temperature=self.temperature, margin=self.margin)
