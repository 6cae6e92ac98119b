"""ESimCSE (Wu et al., 2022): the second view has some tokens repeated (against SimCSE's length bias), and a
queue of embeddings from a momentum (EMA) copy of the encoder adds negatives."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

from ..defaults import PAPERS, check_in_range, paper
from ..encoder import SentenceEncoder
from ..losses import info_nce
from .simcse import SimCSE


class MomentumEncoder(nn.Module):
    """An exponential-moving-average copy of an encoder, always in eval mode (no dropout, no grad).

    After each optimizer step: ``theta_m <- momentum * theta_m + (1 - momentum) * theta``.
    """

    def __init__(self, encoder: SentenceEncoder, momentum: float = paper("momentum")):
        super().__init__()
        check_in_range("momentum", momentum)
        self.momentum = momentum
        self.encoder = copy.deepcopy(encoder)
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True):  # stays in eval mode whatever the parent does
        return super().train(False)

    @torch.no_grad()
    def update(self, encoder: SentenceEncoder) -> None:
        ema = [p for p in self.encoder.parameters()]
        online = [p.detach() for p in encoder.parameters()]
        torch._foreach_lerp_(ema, online, 1.0 - self.momentum)  # ema + (1 - m)(online - ema)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, apply_head: bool) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask, apply_head=apply_head)


class EmbeddingQueue(nn.Module):
    """A first-in-first-out queue of the newest ``size`` embeddings (ESimCSE's extra negatives).

    ``embeddings`` is (Q, H) with Q <= size, oldest row first, newest last.
    """

    def __init__(self, size: int = paper("queue_size")):
        super().__init__()
        if size < 0:
            raise ValueError(f"queue_size={size}: it must be >= 0 ({PAPERS['queue_size']}).")
        self.size = size
        self.register_buffer("embeddings", torch.empty(0), persistent=False)

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor) -> None:
        if self.size == 0:
            return
        z = z.detach().float()
        queue = z if self.embeddings.numel() == 0 else torch.cat([self.embeddings, z], dim=0)
        self.embeddings = queue[-self.size:]  # drop the oldest rows

    def __len__(self) -> int:
        return self.embeddings.size(0) if self.embeddings.numel() else 0


class ESimCSE(SimCSE):
    """ESimCSE: the second view has repeated words (``repeats_words``: the views are built by
    :class:`cse_helpers.batches.ViewBuilder`), plus a momentum queue.

    Loss: ``info_nce(z1, z2, queue=queue)``, where ``queue`` holds the newest Q embeddings that the
    momentum encoder (dropout off) made of the sentences of earlier batches. This batch's sentences
    are enqueued after the loss, so a sentence is never its own negative.
    """

    repeats_words = True
    method_settings = ("dup_rate", "repeat_both_views", "repetition", "queue_size", "momentum")
    QUEUE_KEY = "queue.embeddings"  # the queue's name in a training state

    def __init__(self, encoder: SentenceEncoder, temperature: float = paper("temperature"),
                 margin: float = paper("margin"), queue_size: int = paper("queue_size"),
                 momentum: float = paper("momentum")):
        super().__init__(encoder, temperature, margin)
        self.momentum_encoder = MomentumEncoder(encoder, momentum)
        self.queue = EmbeddingQueue(queue_size)

    @classmethod
    def from_args(cls, args, encoder: SentenceEncoder) -> ESimCSE:
        return cls(encoder, args.temperature, args.margin, args.queue_size, args.momentum)

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        queue = self.queue.embeddings if len(self.queue) else None  # (Q, H)
        return info_nce(z1, z2, temperature=self.temperature, margin=self.margin, queue=queue)

    def after_loss(self, batch: dict, gather: Callable[[torch.Tensor], torch.Tensor] = lambda z: z) -> None:
        """Enqueue the momentum encoder's embeddings of this batch's sentences (of every process's share)."""
        if self.queue.size == 0:  # no queue (queue_size=0, an ablation): the momentum encoder has nothing to do
            return
        originals = slice(0, None, 2)  # rows a1 b1 c1 ...: the sentences without repetition
        negatives = self.momentum_encoder(batch["input_ids"][originals], batch["attention_mask"][originals],
                                          apply_head=self.encoder.head is not None)  # (n, H)
        self.queue.enqueue(gather(negatives))  # (B, H): the same queue on every process

    def after_optimizer_step(self) -> None:
        if self.queue.size:  # the momentum encoder only makes the queue's embeddings
            self.momentum_encoder.update(self.encoder)

    def extra_state(self) -> dict[str, torch.Tensor]:
        if not len(self.queue):
            return {}
        return {self.QUEUE_KEY: self.queue.embeddings.detach().cpu().contiguous()}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        queue, device = tensors.pop(self.QUEUE_KEY, None), self.encoder.device
        self.queue.embeddings = queue.to(device) if queue is not None else torch.empty(0, device=device)
