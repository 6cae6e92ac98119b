"""The sentence encoder: any Hugging Face encoder turned into one vector per sentence.

``SentenceEncoder`` wraps any Hugging Face encoder (``AutoModel``: BERT, RoBERTa, ERNIE, ...) and
turns a batch of token ids into one vector per sentence with a *pooler* (``cls``, ``mean``, ...),
optionally through a head (SimCSE's MLP, DiffCSE's BatchNorm projector). It also loads models with
errors that say what to do, pads token rows, and sets the encoder's dropout (SimCSE's augmentation).
The training objectives that use it are in :mod:`cse_helpers.objectives`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .constants import DEFAULT_MODEL, ERNIE_MODEL
from .defaults import check_in_range
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
    """A ValueError unless ``p`` is a dropout probability in [0, 1) (:func:`cse_helpers.defaults.check_in_range`)."""
    check_in_range("dropout", p)


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
        :class:`~cse_helpers.batches.ViewBuilder`): its two views of each text, (2N, L), rows a1 a2 b1 b2 ...
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


def accepts_pooling_flag(name_or_path: str) -> bool:
    """Whether ``AutoModel.from_pretrained`` takes ``add_pooling_layer`` for this model (BERT's family)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(name_or_path).model_type in ("bert", "ernie", "roberta")

