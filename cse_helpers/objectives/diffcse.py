"""DiffCSE (Chuang et al., 2022): SimCSE plus replaced-token detection: a frozen masked-LM generator edits the
sentence, and a discriminator, conditioned on the sentence embedding, has to find the edited tokens.
``total = contrastive + lambda_rtd * rtd``. Also BERT's masking (:func:`mask_tokens`, shared with pretraining)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..defaults import check_in_range, paper
from ..encoder import SentenceEncoder, accepts_pooling_flag, check_model_path, explain_load_errors
from ..losses import IGNORE_INDEX
from .simcse import SimCSE


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, mask_token_id: int, vocab_size: int,
                mask_ratio: float = paper("mask_ratio"), generator: torch.Generator | None = None, *,
                selected: torch.Tensor | None = None, first_random_id: int = 0, replace_all: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking on the positions where ``maskable`` is True.

    Each maskable position is selected with probability ``mask_ratio``; of the selected ones 80%
    become [MASK], 10% a random token (an id in ``[first_random_id, vocab_size)``), 10% stay as they
    are. Returns ``(masked_ids, selected)``, both (N, L).

    Two variants for pretraining (``cse_helpers.pretrain``): ``selected`` gives the positions to mask
    (e.g. whole words) instead of drawing them, and ``replace_all`` turns every selected position
    into [MASK] (a held-out evaluation). The draws come in a fixed order (selection, [MASK],
    random), each a uniform number per position, so a seeded ``generator`` repeats them.
    """
    device = input_ids.device  # a generator, if given, must live there too (no copies, no host sync)

    def draw(p: float) -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device) < p

    if selected is None:
        selected = draw(mask_ratio) & maskable
    if replace_all:
        return torch.where(selected, torch.full_like(input_ids, mask_token_id), input_ids), selected
    to_mask = selected & draw(0.8)
    to_random = selected & ~to_mask & draw(0.5)
    random_ids = torch.randint(first_random_id, vocab_size, input_ids.shape, generator=generator, device=device)
    masked_ids = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked_ids = torch.where(to_random, random_ids, masked_ids)
    return masked_ids, selected


class DiffCSE(SimCSE):
    """DiffCSE: SimCSE + conditional replaced-token detection (RTD), ``contrastive + lambda * RTD``.

    1. The first view of each sentence is masked (``mask_ratio`` 0.3, 80/10/10) and a frozen masked-LM
       ``generator`` puts its top prediction at the masked positions.
    2. The ``discriminator`` (an encoder of the same size) reads the edited sentence, with the input
       embedding at the [CLS] position replaced by the sentence embedding z1, so the gradient of the
       RTD loss reaches the sentence encoder: z1 must carry what the sentence said.
    3. A linear head predicts, for each real token (not padding, not special tokens), whether it
       was replaced. lambda_rtd = 0.005 (DiffCSE's value for BERT): the RTD loss is larger than the
       contrastive loss by about two orders of magnitude, so it is scaled down.
    """

    frozen_prefixes = ("generator.",)  # the generator never changes: checkpoints leave it out
    paper_projector = paper("diffcse_projector")  # the paper's BatchNorm projector (the course's default for DiffCSE)
    needs_models = True  # a generator and a discriminator besides the encoder: from_args loads them
    method_settings = ("generator", "mask_ratio", "lambda_rtd")
    MASK_RNG_KEY = "mask"  # the masking generator's name in a training state's random states

    def __init__(self, encoder: SentenceEncoder, generator: nn.Module, discriminator: nn.Module,
                 temperature: float = paper("temperature"), margin: float = paper("margin"),
                 mask_ratio: float = paper("mask_ratio"), lambda_rtd: float = paper("lambda_rtd"),
                 seed: int | None = None):
        super().__init__(encoder, temperature, margin)
        check_in_range("mask_ratio", mask_ratio)
        if discriminator.config.hidden_size != encoder.hidden_size:
            raise ValueError(f"The discriminator's hidden size {discriminator.config.hidden_size} differs from the "
                             f"encoder's {encoder.hidden_size}; the sentence embedding is its [CLS] input.")
        if generator.config.vocab_size != encoder.backbone.config.vocab_size:
            raise ValueError(f"The generator has a vocabulary of {generator.config.vocab_size} tokens, the encoder "
                             f"{encoder.backbone.config.vocab_size}: they must share the tokenizer. Pick a generator "
                             "of the same model family (e.g. the encoder's own masked-LM checkpoint).")
        self.generator = generator.requires_grad_(False).eval()
        self.discriminator = discriminator
        self.rtd_head = nn.Linear(encoder.hidden_size, 2)
        self.mask_ratio, self.lambda_rtd = mask_ratio, lambda_rtd
        self.seed = seed
        self._mask_generators: dict[str, torch.Generator] = {}
        self.register_buffer("special_ids", torch.tensor(sorted(set(encoder.tokenizer.all_special_ids))),
                             persistent=False)

    # ---- building: the generator (a masked-LM) and the discriminator (a copy of the encoder) ---------
    @classmethod
    def check_paths(cls, args) -> None:
        if args.generator:
            check_model_path(args.generator, "--generator")

    @classmethod
    def from_args(cls, args, encoder: SentenceEncoder) -> DiffCSE:
        from transformers import AutoModel

        generator = load_generator(args.generator or args.model, encoder)
        with explain_load_errors(args.model):
            discriminator = AutoModel.from_pretrained(args.model, add_pooling_layer=False) \
                if accepts_pooling_flag(args.model) else AutoModel.from_pretrained(args.model)
        return cls(encoder, generator, discriminator, args.temperature, args.margin, args.mask_ratio,
                   args.lambda_rtd, seed=args.seed)

    def prepare(self, device: torch.device, precision: str) -> DiffCSE:
        super().prepare(device, precision)
        if precision != "fp32":  # frozen, inference only: half precision is enough
            self.generator.to(torch.bfloat16 if precision == "bf16" else torch.float16)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()  # frozen: never dropout
        return self

    # ---- the random masks, repeatable and saved with a training state ---------------------------------
    def mask_generator(self, device: torch.device) -> torch.Generator | None:
        """The seeded random generator for masking, on ``device`` (None when no seed was given)."""
        if self.seed is None:
            return None
        key = str(torch.device(device))
        if key not in self._mask_generators:
            self._mask_generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._mask_generators[key]

    def rng_state(self) -> dict:
        if self.seed is None:
            return {}
        return {self.MASK_RNG_KEY: self.mask_generator(self.encoder.device).get_state()}

    def set_rng_state(self, state: dict) -> None:
        if self.MASK_RNG_KEY in state:
            self.mask_generator(self.encoder.device).set_state(state[self.MASK_RNG_KEY])

    # ---- the loss ---------------------------------------------------------------------------------------
    def replace_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, let the generator fill in, and label: returns (edited_ids, rtd_labels, maskable).

        ``rtd_labels`` is 1 where the edited token differs from the original, 0 where it is the same,
        and -100 (ignored) on padding and special tokens. ``generator`` draws the masks instead of the
        objective's own seeded one (which then stays where it was).
        """
        maskable = self.maskable(input_ids, attention_mask)
        generator = generator if generator is not None else self.mask_generator(input_ids.device)
        masked_ids, selected = mask_tokens(input_ids, maskable, self.encoder.tokenizer.mask_token_id,
                                           len(self.encoder.tokenizer), self.mask_ratio, generator)
        with torch.inference_mode():
            predicted = self.generator(input_ids=masked_ids, attention_mask=attention_mask).logits.argmax(-1)
        edited = torch.where(selected, predicted.clone(), input_ids)  # (N, L), the top prediction where masked
        labels = (edited != input_ids).long().masked_fill(~maskable, IGNORE_INDEX)
        return edited, labels, maskable

    def maskable(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(N, L) True on the real tokens: not padding, not [CLS]/[SEP]/... (the RTD loss is over these)."""
        return attention_mask.bool() & ~torch.isin(input_ids, self.special_ids)

    def rtd_loss(self, z1: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 terms: torch.Tensor | None = None) -> torch.Tensor:
        """The replaced-token-detection loss of sentences ``input_ids`` (n, L) with embeddings ``z1`` (n, H):
        the sum over their real tokens divided by ``terms`` (default: their count, i.e. the mean)."""
        edited, labels, _ = self.replace_tokens(input_ids, attention_mask)
        return self.detection_loss(z1, edited, labels, attention_mask, terms)

    def detection_loss(self, z1: torch.Tensor, edited: torch.Tensor, labels: torch.Tensor,
                       attention_mask: torch.Tensor, terms: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's cross-entropy on edited sentences ``edited`` (n, L) with their RTD ``labels``
        (from :meth:`replace_tokens`), conditioned on the sentence embeddings ``z1`` (n, H): the sum over
        the real tokens divided by ``terms`` (default: their count)."""
        embeds = self.discriminator.get_input_embeddings()(edited)  # (n, L, H)
        embeds = torch.cat([z1.unsqueeze(1).to(embeds.dtype), embeds[:, 1:]], dim=1)  # [CLS] slot <- z1
        hidden = self.discriminator(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        logits = self.rtd_head(hidden)  # (n, L, 2)
        total = F.cross_entropy(logits.float().view(-1, 2), labels.view(-1), ignore_index=IGNORE_INDEX,
                                reduction="sum")
        if terms is None:
            terms = (labels != IGNORE_INDEX).sum()
        # 0 (not 0/0 = NaN) for a batch without real tokens, e.g. all emoji or [CLS][SEP]
        return total / terms.clamp(min=1)

    def local_terms(self, batch: dict) -> torch.Tensor:
        originals = slice(0, None, 2)  # the first view of each sentence
        return self.maskable(batch["input_ids"][originals], batch["attention_mask"][originals]).sum()

    def local_loss(self, z1: torch.Tensor, batch: dict, terms: torch.Tensor) -> dict[str, torch.Tensor]:
        originals = slice(0, None, 2)
        input_ids, attention_mask = batch["input_ids"][originals], batch["attention_mask"][originals]
        edited, labels, _ = self.replace_tokens(input_ids, attention_mask)
        rtd = self.detection_loss(z1, edited, labels, attention_mask, terms)
        # "replaced": the share of the batch's real tokens whose label is 1 (pieces and processes add up to it),
        # the p of the RTD loss's base rate H(p)
        replaced = (labels == 1).sum().float() / terms.clamp(min=1)
        return {"loss": self.lambda_rtd * rtd, "rtd": rtd.detach(), "replaced": replaced.detach()}

    def held_out_batches(self, texts: Sequence[str], batch_size: int = 32, seed: int = 0):
        """For each full batch of ``batch_size`` held-out ``texts``: ``(h, edited, labels, attention_mask)``, what
        the discriminator sees in training, without gradients: h (n, H) through the projector as in training,
        the edited sentences and their RTD labels (n, L) (masks drawn by a generator seeded with ``seed``).

        Encoder and discriminator are in evaluation mode until the loop ends (no dropout; BatchNorm with its
        running statistics), then back in their mode.
        """
        was_training = self.training
        self.eval()
        generator = torch.Generator(device=self.encoder.device).manual_seed(seed)
        try:
            for start in range(0, len(texts) - batch_size + 1, batch_size):
                with torch.no_grad():
                    batch = self.encoder.batch(texts[start:start + batch_size])
                    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]  # (n, L)
                    h = self.encoder(input_ids, attention_mask, apply_head=True)  # (n, H)
                    edited, labels, _ = self.replace_tokens(input_ids, attention_mask, generator)
                yield h, edited, labels, attention_mask
        finally:
            self.train(was_training)

    @torch.no_grad()
    def conditioning_probe(self, texts: Sequence[str], batch_size: int = 32, seed: int = 0) -> list[dict]:
        """The test of "RTD makes the sentence embedding h carry the sentence's content", on held-out ``texts``.

        For each full batch (:meth:`held_out_batches`): the discriminator's RTD loss on the same edits with each
        sentence's own h (``"own"``) and with h shuffled across the batch (``"shuffled"``: sentence i gets the h
        of sentence i-1, so none keeps its own), the share of real tokens replaced (``"replaced"``, p) and the
        loss of a predictor that knows only p (``"base_rate"``, :func:`binary_entropy`). If the discriminator
        reads what h says about its own sentence, the shuffled h gives a higher loss.
        """
        rows = []
        for h, edited, labels, attention_mask in self.held_out_batches(texts, batch_size, seed):
            own = self.detection_loss(h, edited, labels, attention_mask)
            shuffled = self.detection_loss(h.roll(1, dims=0), edited, labels, attention_mask)
            replaced = float((labels == 1).sum() / (labels != IGNORE_INDEX).sum().clamp(min=1))
            rows.append({"own": float(own), "shuffled": float(shuffled), "replaced": replaced,
                         "base_rate": binary_entropy(replaced)})
        return rows


def binary_entropy(p: float) -> float:
    """H(p) = -p log p - (1-p) log(1-p), in nats: the RTD loss of a predictor that knows only the rate p of
    replaced tokens (it gives every token the probability p of being replaced); 0 at p = 0 or 1."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p}: a rate must be in [0, 1].")
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def load_generator(name_or_path: str, encoder: SentenceEncoder) -> nn.Module:
    """Load a masked-LM generator for DiffCSE and check it shares the encoder's tokenizer.

    The generator reads the encoder's token ids, so both must use the same vocabulary: a generator
    whose tokenizer maps any token to another id is refused with a ValueError.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    check_model_path(name_or_path, "generator")
    with explain_load_errors(name_or_path, "generator"):
        theirs = AutoTokenizer.from_pretrained(name_or_path).get_vocab()
    ours = encoder.tokenizer.get_vocab()
    if theirs != ours:
        differing = sorted(set(theirs.items()) ^ set(ours.items()))[:3]
        raise ValueError(f"The generator {name_or_path!r} does not share the encoder's vocabulary "
                         f"({len(theirs)} vs {len(ours)} tokens; e.g. {differing}). DiffCSE's generator must use "
                         "the encoder's tokenizer: pass --generator with a masked-LM of the same family "
                         "(by default the encoder's own checkpoint).")
    with explain_load_errors(name_or_path, "generator"):
        return AutoModelForMaskedLM.from_pretrained(name_or_path)
