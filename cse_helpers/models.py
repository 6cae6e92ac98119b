"""The sentence encoder and the three training objectives: SimCSE, ESimCSE and DiffCSE.

``SentenceEncoder`` wraps any Hugging Face encoder (``AutoModel``: BERT, RoBERTa, ERNIE, ...) and
turns a batch of token ids into one vector per sentence with a *pooler*. The objectives take an
encoder and a batch of two views per sentence and return a loss:

- :class:`SimCSE` (Gao et al., 2021): the two views are the same sentence; the encoder's own
  dropout makes them differ. Both views go through the encoder in ONE forward pass of 2B rows.
- :class:`ESimCSE` (Wu et al., 2022): the second view has some tokens repeated (against SimCSE's
  length bias), and a queue of embeddings from a momentum (EMA) copy of the encoder adds negatives.
- :class:`DiffCSE` (Chuang et al., 2022): SimCSE plus replaced-token detection: a frozen masked-LM
  generator edits the sentence, and a discriminator, conditioned on the sentence embedding, has to
  find the edited tokens. ``total = contrastive + lambda_rtd * rtd``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .constants import DEFAULT_MODEL, ERNIE_MODEL, METHODS
from .losses import IGNORE_INDEX, info_nce
from .runtime import autocast, pick_precision, to_device

logger = logging.getLogger(__name__)

POOLERS = ("cls", "cls_before_pooler", "pooler_output", "mean", "first_last_avg")
PROJECTORS = ("mlp", "bn")
CONFIG_NAME = "cse_helpers.json"  # pooler settings saved beside the Hugging Face files
HEAD_NAME = "cse_head.safetensors"  # weights of the MLP / BatchNorm head, when there is one


def resolve_model(name_or_path: str | None) -> str:
    """``name_or_path`` itself, or for None: ERNIE 3.0 base when it can be loaded (hub or cache),
    else the small Chinese encoder shipped in the package (``cse_helpers.DEFAULT_MODEL``)."""
    if name_or_path:
        return name_or_path
    from transformers import AutoConfig

    from . import default_model_available

    try:
        AutoConfig.from_pretrained(ERNIE_MODEL)
        return ERNIE_MODEL
    except (OSError, ValueError) as e:
        if not default_model_available():
            raise
        logger.warning("%s cannot be loaded (%s); using the shipped default model %s.", ERNIE_MODEL,
                       str(e).splitlines()[0][:120], DEFAULT_MODEL)
        return DEFAULT_MODEL


class ModelLoadError(ValueError):
    """A model (``--model``, ``--generator``) that cannot be loaded; the message names the path or the
    damaged file and says what to do."""


def check_model_path(name_or_path: str, what: str = "model") -> None:
    """Fail fast, before anything is loaded, on a local path that is not a saved model.

    A name that exists on disk must be a directory holding ``config.json``. A name that does not
    exist is refused when it can only be a path: absolute, starting with ``.`` or ``~``, or with
    more than one ``/`` (a hub name is ``name`` or ``org/name``); others are left to the hub.
    """
    path = os.path.expanduser(str(name_or_path))
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return
        inner = [os.path.join(path, n) for n in ("best", "last")
                 if os.path.isfile(os.path.join(path, n, "config.json"))]
        hint = (f"Did you mean {inner[0]} (a training run's export)?" if inner else
                "Pass the directory written by save_pretrained (config.json, the weights and the tokenizer).")
        raise ModelLoadError(f"{what} {name_or_path}: this directory holds no config.json, so it is not a saved "
                             f"model. {hint}")
    if os.path.exists(path):
        raise ModelLoadError(f"{what} {name_or_path}: this is a file; pass the model's directory (the one holding "
                             "config.json).")
    if os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or "\\" in path:
        raise ModelLoadError(f"{what} {name_or_path}: no such directory. Check the path (relative paths start at "
                             f"{os.getcwd()}), or pass a hub name such as {ERNIE_MODEL}.")


def _damaged_safetensors(path: str) -> list[str]:
    """The ``*.safetensors`` files under the directory ``path`` whose header or length is broken."""
    from safetensors import safe_open

    damaged = []
    for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        if name.endswith(".safetensors"):
            try:
                with safe_open(os.path.join(path, name), framework="pt"):
                    pass
            except Exception:  # safetensors raises its own SafetensorError (no common base but Exception)
                damaged.append(os.path.join(path, name))
    return damaged


@contextlib.contextmanager
def explain_load_errors(name_or_path: str, what: str = "model"):
    """Turn the errors of loading ``name_or_path`` (transformers, huggingface_hub, safetensors,
    tokenizers each raise their own kinds, with pages of repo-id advice) into one ModelLoadError."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        damaged = _damaged_safetensors(os.path.expanduser(str(name_or_path)))
        if damaged:
            message = (f"{damaged[0]} cannot be read ({first}): the file is damaged or was cut off while being "
                       f"written or copied. Copy the {what} again, or use another checkpoint of it.")
        elif os.path.isdir(os.path.expanduser(str(name_or_path))):
            message = (f"{what} {name_or_path} could not be loaded ({type(e).__name__}: {first}). Is the directory "
                       "complete (config.json, the weights, the tokenizer files)? Copy it again if not.")
        else:
            message = (f"{what} {name_or_path}: not a directory here, and the Hugging Face hub could not give it "
                       f"({first}). Check the name, or pass a local model directory (offline, the shipped "
                       "cse_helpers/default_model works).")
        raise ModelLoadError(message) from None


class MLPHead(nn.Module):
    """SimCSE's head for the ``cls`` pooler: ``tanh(W h + b)`` on the [CLS] vector."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, H)
        return torch.tanh(self.dense(h))


class ProjectionMLP(nn.Module):
    """DiffCSE's BatchNorm projector: Linear, BN, ReLU, Linear, BN without affine (hidden 2H).

    As ``ProjectionMLP`` in Chuang et al.'s code (voidism/DiffCSE, ``diffcse/models.py``): Linear(H, 2H, no bias),
    BatchNorm1d(2H), ReLU, Linear(2H, H, no bias), BatchNorm1d(H, affine=False). In training the last layer
    standardises every dimension over the batch (mean 0, variance 1 across its rows).
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden_size, 2 * hidden_size, bias=False), nn.BatchNorm1d(2 * hidden_size), nn.ReLU(),
            nn.Linear(2 * hidden_size, hidden_size, bias=False), nn.BatchNorm1d(hidden_size, affine=False))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, H)
        return self.net(h)


def dropout_settings(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every ``(module, attribute)`` that holds a dropout probability of ``model``.

    That is each ``nn.Dropout``'s ``p`` and, in transformers 4.x, the float ``dropout_prob`` that the
    SDPA attention of BERT, RoBERTa, XLM-R, DistilBERT... reads at each forward (5.x reads its
    ``nn.Dropout``'s ``p``): without it, attention dropout would stay at 0.1.
    """
    settings = [(m, "p") for m in model.modules() if isinstance(m, nn.Dropout)]
    return settings + [(m, "dropout_prob") for m in model.modules()
                       if isinstance(getattr(m, "dropout_prob", None), float)]


def check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout={p}: it must be in [0, 1). SimCSE uses 0.1; the tutorial 0.3.")


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout of ``model`` (hidden and attention) to ``p``: SimCSE's augmentation."""
    check_dropout(p)
    for module, name in dropout_settings(model):
        setattr(module, name, p)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(model.config, name):
            setattr(model.config, name, p)


def special_token_template(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sentence ([CLS] / [SEP] for BERT, <s> </s> ...)."""
    body = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(body) + 1):
        if full[start:start + len(body)] == body:
            return full[:start], full[start + len(body):]
    raise ValueError(f"Cannot find how {type(tokenizer).__name__} adds special tokens around a sentence.")


def pad_sequences(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths -> ``(ids, mask)``, both (N, L) with L the longest row (dynamic padding).

    ``ids`` holds ``pad_id`` after the end of each row; ``mask`` is 1 on the row's own entries, 0 on
    the padding (the attention mask)."""
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def write_encoder_settings(save_dir: str, pooler: str, mlp_only_train: bool = True, projector: str = "mlp",
                           max_seq_len: int = 64) -> None:
    """Write the pooler settings that :meth:`SentenceEncoder.from_pretrained` reads (``cse_helpers.json``)."""
    settings = {"pooler": pooler, "mlp_only_train": mlp_only_train, "projector": projector, "max_seq_len": max_seq_len}
    with open(os.path.join(save_dir, CONFIG_NAME), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)


class SentenceEncoder(nn.Module):
    """A Hugging Face encoder plus a pooler: token ids (N, L) -> sentence embeddings (N, H).

    Poolers (SimCSE's names):
        ``cls``: the [CLS] vector through an MLP head; with ``mlp_only_train`` (SimCSE's unsupervised
            recipe, the default) the head is used in training only, so evaluation and plain
            ``AutoModel`` users take the raw [CLS] vector.
        ``cls_before_pooler``: the raw [CLS] vector of the last layer.
        ``pooler_output``: the model's own pooler (BERT's dense + tanh on [CLS]).
        ``mean``: the average of the last layer over real tokens (padding masked out).
        ``first_last_avg``: the average of the first and last layers' token averages.

    Projectors (the head on top of the pooler): ``mlp``, SimCSE's dense + tanh, for the ``cls`` pooler only
    (no head with the others); ``bn``, DiffCSE's BatchNorm projector (:class:`ProjectionMLP`), with any pooler.
    With ``mlp_only_train`` either head is used in training only.

    The attention mask is always passed, so a sentence's embedding does not depend on how much
    padding its batch has.
    """

    def __init__(self, backbone: nn.Module, tokenizer, pooler: str = "cls", mlp_only_train: bool = True,
                 projector: str = "mlp", max_seq_len: int = 64, name_or_path: str | None = None):
        super().__init__()
        if pooler not in POOLERS:
            raise ValueError(f"pooler={pooler!r} is not one of {', '.join(POOLERS)}.")
        if projector not in PROJECTORS:
            raise ValueError(f"projector={projector!r} is not one of {', '.join(PROJECTORS)}.")
        self.backbone, self.tokenizer = backbone, tokenizer
        self.pooler, self.mlp_only_train, self.projector = pooler, mlp_only_train, projector
        self.name_or_path = name_or_path
        hidden = backbone.config.hidden_size
        # SimCSE's MLP head belongs to the cls pooler; DiffCSE's BatchNorm projector goes on whatever the pooler
        # gives (Chuang et al. put it on [CLS]; the course's quick-mode model averages its tokens)
        self.head = ProjectionMLP(hidden) if projector == "bn" else MLPHead(hidden) if pooler == "cls" else None
        self.prefix_ids, self.suffix_ids = special_token_template(tokenizer)
        self.max_seq_len = max_seq_len
        self.check_max_seq_len(max_seq_len)

    # ---- loading and saving -----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str, pooler: str | None = None, dropout: float | None = None,
                        mlp_only_train: bool | None = None, projector: str | None = None,
                        max_seq_len: int | None = None, **model_kwargs) -> SentenceEncoder:
        """Load an encoder from the hub or a directory (including one saved by :meth:`save_pretrained`).

        ``dropout`` sets the encoder's hidden and attention dropout (None keeps the model's own).
        Settings saved with the model are used unless given here.
        """
        from transformers import AutoModel, AutoTokenizer

        saved = {}
        config_path = os.path.join(str(name_or_path), CONFIG_NAME)
        check_model_path(name_or_path)
        with explain_load_errors(name_or_path):
            if os.path.isfile(config_path):
                with open(config_path, encoding="utf-8") as f:
                    saved = json.load(f)
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            backbone = AutoModel.from_pretrained(name_or_path, **model_kwargs)
        encoder = cls(backbone, tokenizer,
                      pooler=pooler or saved.get("pooler", "cls"),
                      mlp_only_train=saved.get("mlp_only_train", True) if mlp_only_train is None else mlp_only_train,
                      projector=projector or saved.get("projector", "mlp"),
                      max_seq_len=max_seq_len or saved.get("max_seq_len", 64),
                      name_or_path=str(name_or_path))
        head_path = os.path.join(str(name_or_path), HEAD_NAME)
        same_head = saved.get("projector", "mlp") == encoder.projector
        if encoder.head is not None and os.path.isfile(head_path) and same_head:
            from safetensors.torch import load_file
            with explain_load_errors(name_or_path):
                encoder.head.load_state_dict(load_file(head_path))
        if dropout is not None:
            set_dropout(encoder.backbone, dropout)
        return encoder

    def save_pretrained(self, save_dir: str) -> None:
        """Save in the Hugging Face layout (safetensors) plus the tokenizer and the pooler settings.

        ``AutoModel.from_pretrained(save_dir)`` loads the encoder; ``SentenceEncoder.from_pretrained``
        also restores the pooler and its head.
        """
        from safetensors.torch import save_file

        os.makedirs(save_dir, exist_ok=True)
        self.backbone.save_pretrained(save_dir)
        self.tokenizer.save_pretrained(save_dir)
        write_encoder_settings(save_dir, self.pooler, self.mlp_only_train, self.projector, self.max_seq_len)
        if self.head is not None:
            state = {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}
            save_file(state, os.path.join(save_dir, HEAD_NAME))

    # ---- tokenization -----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    def check_max_seq_len(self, max_seq_len: int) -> None:
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if max_seq_len < len(self.prefix_ids) + len(self.suffix_ids) + 1:
            raise ValueError(f"max_seq_len={max_seq_len} leaves no room for a token besides the special ones.")
        if limit is not None and max_seq_len > limit:
            raise ValueError(f"max_seq_len={max_seq_len} is above this model's limit of {limit} positions "
                             f"({self.name_or_path or type(self.backbone).__name__}); use --max_seq_len {limit} "
                             "or less (LCQMC questions fit in 64).")

    def body_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text without special tokens and without truncation."""
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def max_body_len(self, max_seq_len: int | None = None) -> int:
        """How many real tokens fit once the special tokens are added."""
        return (max_seq_len or self.max_seq_len) - len(self.prefix_ids) - len(self.suffix_ids)

    def pad(self, bodies: Sequence[Sequence[int]], max_seq_len: int | None = None) -> dict[str, torch.Tensor]:
        """Add special tokens, truncate to ``max_seq_len``, pad to the longest row (dynamic padding).

        Returns ``input_ids`` and ``attention_mask``, both (N, L) with L <= max_seq_len.
        """
        limit = self.max_body_len(max_seq_len)
        rows = [self.prefix_ids + list(body[:limit]) + self.suffix_ids for body in bodies]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids, attention_mask = pad_sequences(rows, pad_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def batch(self, texts: Sequence[str], views: Callable | None = None) -> dict[str, torch.Tensor]:
        """``texts`` as a batch on this encoder's device, ready for ``encoder(**batch)``.

        Without ``views``: one row per text, padded (:meth:`pad`), (N, L). With ``views`` (a
        :class:`~cse_helpers.train.ViewBuilder`): its two views of each text, (2N, L), rows a1 a2 b1 b2 ...
        """
        build = views if views is not None else self.pad
        return to_device(build(self.body_ids(texts)), self.device)

    # ---- forward ----------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                apply_head: bool | None = None) -> torch.Tensor:
        """(N, L) token ids and mask -> (N, H) sentence embeddings (not normalised).

        ``apply_head`` forces the ``cls`` head on or off (the momentum encoder uses this); by default
        it is on in training and, with ``mlp_only_train``, off in evaluation.
        """
        outputs = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                                output_hidden_states=self.pooler == "first_last_avg")
        last = outputs.last_hidden_state  # (N, L, H)
        if self.pooler in ("cls", "cls_before_pooler"):
            pooled = last[:, 0]  # (N, H)
        elif self.pooler == "pooler_output":
            if outputs.pooler_output is None:
                raise ValueError(f"{type(self.backbone).__name__} has no pooler; use pooler='cls'.")
            pooled = outputs.pooler_output
        else:
            mask = attention_mask.unsqueeze(-1).to(last.dtype)  # (N, L, 1)
            tokens = last if self.pooler == "mean" else (outputs.hidden_states[1] + last) / 2
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1)  # (N, H)
        if apply_head is None:
            apply_head = self.training or not self.mlp_only_train
        if self.head is not None and apply_head:
            pooled = self.head(pooled)
        return pooled

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128, normalize: bool = True,
               max_seq_len: int | None = None, show_progress: bool = False) -> torch.Tensor:
        """Embed ``texts`` -> (N, H) float32 CPU tensor, in eval mode (no dropout), without gradients.

        Each distinct text is encoded once, in batches of similar length (little padding); the
        rows come back in the order of ``texts``. The model's train/eval mode is restored after.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of sentences; wrap a single sentence in a list.")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: it must be >= 1.")
        distinct = list(dict.fromkeys(texts))
        bodies = self.body_ids(distinct)
        order = sorted(range(len(distinct)), key=lambda i: len(bodies[i]), reverse=True)
        was_training = self.training
        self.eval()
        precision = pick_precision(self.device)
        out = torch.empty(len(distinct), self.hidden_size)
        try:
            starts = range(0, len(order), batch_size)
            if show_progress:
                from tqdm.auto import tqdm
                starts = tqdm(starts, desc="encode")
            for start in starts:
                index = order[start:start + batch_size]
                batch = to_device(self.pad([bodies[i] for i in index], max_seq_len), self.device)
                with autocast(self.device, precision):  # bf16/fp16 on a GPU, fp32 on the CPU
                    z = self(batch["input_ids"], batch["attention_mask"]).float()
                out[index] = (F.normalize(z, dim=-1) if normalize else z).cpu()
        finally:
            self.train(was_training)
        position = {text: i for i, text in enumerate(distinct)}
        return out[[position[t] for t in texts]]


# ------------------------------------------------------------------------------------------------
# Objectives
# ------------------------------------------------------------------------------------------------

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

    ``forward(batch)`` puts them together for a batch that fits in memory. Keeping them apart lets
    ``cse_helpers.grad_cache`` compute the same loss from embeddings made a few rows at a time, or on
    several processes (``cse_helpers.distributed``): more negatives than one forward pass holds.

    Each other hook has a default that does nothing; an objective with state of its own (ESimCSE's
    queue, DiffCSE's frozen generator and its random masks) overrides the ones it needs. So the loop
    (``cse_helpers.train``) and the checkpoints (``cse_helpers.checkpoint``) never ask which method runs.
    """

    #: Whether the second view of a sentence has words repeated (ESimCSE; built by ``train.ViewBuilder``).
    repeats_words = False
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
        z1, z2 = split_views(self.embed(batch))  # (B, H) each
        contrastive = self.contrastive_loss(z1, z2)
        out = {"loss": contrastive, "contrastive": contrastive.detach()}
        terms = self.local_terms(batch)
        if terms is not None:
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


class SimCSE(Objective):
    """Unsupervised SimCSE: a sentence and itself, made different by dropout, are a positive pair.

    The batch holds 2B rows in the order a1 a2 b1 b2 ... (each sentence twice); one forward pass
    encodes both views, then ``info_nce(z1, z2)``.
    """

    def __init__(self, encoder: SentenceEncoder, temperature: float = 0.05, margin: float = 0.0):
        super().__init__(encoder)
        self.temperature, self.margin = temperature, margin

    @classmethod
    def from_args(cls, args, encoder: SentenceEncoder) -> SimCSE:
        return cls(encoder, args.temperature, args.margin)

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return info_nce(z1, z2, temperature=self.temperature, margin=self.margin)


class MomentumEncoder(nn.Module):
    """An exponential-moving-average copy of an encoder, always in eval mode (no dropout, no grad).

    After each optimizer step: ``theta_m <- momentum * theta_m + (1 - momentum) * theta``.
    """

    def __init__(self, encoder: SentenceEncoder, momentum: float = 0.995):
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum={momentum}: it must be in [0, 1] (ESimCSE uses 0.995).")
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

    def __init__(self, size: int = 160):
        super().__init__()
        if size < 0:
            raise ValueError(f"queue_size={size}: it must be >= 0 (ESimCSE uses 160).")
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
    """ESimCSE: the second view has repeated words (done by the collator), plus a momentum queue.

    Loss: ``info_nce(z1, z2, queue=queue)``, where ``queue`` holds the newest Q embeddings that the
    momentum encoder (dropout off) made of the sentences of earlier batches. This batch's sentences
    are enqueued after the loss, so a sentence is never its own negative.
    """

    repeats_words = True
    QUEUE_KEY = "queue.embeddings"  # the queue's name in a training state

    def __init__(self, encoder: SentenceEncoder, temperature: float = 0.05, margin: float = 0.0,
                 queue_size: int = 160, momentum: float = 0.995):
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


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, mask_token_id: int, vocab_size: int,
                mask_ratio: float = 0.3, generator: torch.Generator | None = None, *,
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
    MASK_RNG_KEY = "mask"  # the masking generator's name in a training state's random states

    def __init__(self, encoder: SentenceEncoder, generator: nn.Module, discriminator: nn.Module,
                 temperature: float = 0.05, margin: float = 0.0, mask_ratio: float = 0.3,
                 lambda_rtd: float = 0.005, seed: int | None = None):
        super().__init__(encoder, temperature, margin)
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio={mask_ratio}: it must be in (0, 1) (DiffCSE uses 0.3).")
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
                if _accepts_pooling_flag(args.model) else AutoModel.from_pretrained(args.model)
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


def _accepts_pooling_flag(name_or_path: str) -> bool:
    """Whether ``AutoModel.from_pretrained`` takes ``add_pooling_layer`` for this model (BERT's family)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(name_or_path).model_type in ("bert", "ernie", "roberta")


# ------------------------------------------------------------------------------------------------
# The registry: the one place that maps a method's name (``--method``) to its objective
# ------------------------------------------------------------------------------------------------

#: In the order of :data:`METHODS` (tests/test_models.py checks that both name the same methods).
OBJECTIVES: dict[str, type[Objective]] = {"simcse": SimCSE, "esimcse": ESimCSE, "diffcse": DiffCSE}


def objective_class(method: str) -> type[Objective]:
    """The objective class of a method name (one of :data:`cse_helpers.constants.METHODS`)."""
    if method not in OBJECTIVES:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}.")
    return OBJECTIVES[method]
