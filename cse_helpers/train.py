"""The training loop shared by the notebooks and the command line.

    python -m cse_helpers.train --method simcse --model nghuyong/ernie-3.0-base-zh \\
        --train_path data/train.txt --dev_path data/dev.tsv --save_dir runs/simcse

What one step does (the same for every method):

1. take B sentences (identical sentences inside the batch are removed first: they would be each
   other's false negatives), build two views of each (ESimCSE: words repeated in the second view),
   pad the 2B rows together to the longest one (dynamic padding);
2. one forward pass of the 2B rows in train mode (dropout on: that is SimCSE's augmentation) and the
   objective's loss (InfoNCE; + lambda * RTD for DiffCSE), then backward -- or, with
   ``--mini_batch_size M``, the same loss and gradient from M sentences at a time (gradient caching,
   ``cse_helpers.scale.grad_cache``);
3. gradient clipping, AdamW, linear warmup/decay; ESimCSE then updates its momentum encoder.

Under ``torchrun`` (``cse_helpers.scale.distributed``) the B sentences are the global batch: each process
encodes its share, the embeddings are gathered so the loss is the whole batch's, and the processes'
shares of the gradient are added up before step 3; only rank 0 logs, evaluates and saves.

:class:`Trainer` runs them: ``fit`` (the whole run) -> ``epoch`` (one pass over the data) -> ``step``
(the three steps above, on B tokenized sentences). What differs between the methods is in their
objective (``cse_helpers.objectives``): the loop never asks which method runs.

Every ``logging_steps`` it logs the mean loss of that window (not a running mean since the start),
steps/s, sentences/s and the learning rate; every ``valid_steps`` it evaluates on the dev pairs and
keeps the best checkpoint (``save_dir/best``). A NaN or infinite loss stops the run with an error
naming the step; checkpoints already written are left as they were.

Before anything is loaded, every setting is checked, the data is read and checked, and the save
folder is checked once: writable, and either empty, or holding this same run (``--resume``), or
replaced on request (``--overwrite_save_dir``). Before the first step, the free space is checked.
A mistake ends in one paragraph that says what was wrong and what to do (no traceback on the
command line).
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from . import augment
from .checkpoint import (
    STATE_DIR,
    CheckpointError,
    DamagedCheckpointError,
    check_free_space,
    check_writable,
    clear_run,
    list_training_states,
    load_newest_training_state,
    read_trainer_state,
    save_export,
    save_training_state,
    space_needed,
)
from .constants import METHODS
from .data import DataFormatError, read_pairs, read_train_texts
from .encoder import POOLERS, PROJECTORS, SentenceEncoder, check_model_path, resolve_model, set_dropout
from .evaluate import evaluate_pairs, is_better
from .objectives import Objective, objective_class
from .runtime import PRECISIONS, autocast, pick_device, pick_precision, seed_everything, to_device
from .scale.distributed import Ranks, launched_by_torchrun
from .scale.grad_cache import forward_backward

logger = logging.getLogger(__name__)

#: Dev metrics that can pick the best checkpoint (the keys of ``evaluate_pairs``); the classification
#: ones exist for 0/1 labels only.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "best_accuracy", "best_f1")
METRICS = ("spearman", "pearson", *CLASSIFICATION_METRICS, "alignment", "uniformity")
#: Settings that decide what a run computes. A run resumed with another value of one of them would not
#: be the run its checkpoints come from, so ``--resume`` refuses it and names them. (Device, precision,
#: logging, evaluation and saving periods may change between the parts of a run.)
RUN_DEFINING = ("model", "method", "pooler", "mlp_only_train", "projector", "learning_rate", "weight_decay",
                "warmup_ratio", "max_grad_norm", "dropout", "batch_size", "max_seq_len", "num_train_epochs",
                "max_steps", "metric", "temperature", "margin", "dup_rate", "repeat_both_views", "repetition",
                "queue_size", "momentum", "generator", "mask_ratio", "lambda_rtd", "seed")
#: Where a training state of several processes keeps the random generators of ranks 1, 2, ...
OTHER_RANKS_RNG = "other_ranks"
#: ESimCSE's views (``--repetition``): the paper's, and the two ablations of notebook 2.
REPETITIONS = ("second_view", "none", "same_length")
#: The settings that take one of a few values (the command line offers all but the metric as choices; a wrong
#: --metric gets the message of :meth:`TrainingArguments.validate`).
CHOICES = {"method": METHODS, "pooler": POOLERS, "projector": PROJECTORS, "precision": PRECISIONS, "metric": METRICS,
           "repetition": REPETITIONS}


class TrainingError(RuntimeError):
    """A run that cannot go on; the message says what to do."""


class OutOfMemoryError(TrainingError):
    """The GPU ran out of memory; the message says which batch fits (checked after the error)."""


def setting(default, help: str):
    """A field of :class:`TrainingArguments` with its explanation: the one text that ``--help`` shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainingArguments:
    """Every setting of a run. The names are the tutorial's command-line flags plus the methods' own.

    Each field's ``help`` (its metadata) is what ``python -m cse_helpers.train --help`` prints.
    """

    model: str | None = setting(None, "a Hugging Face hub name or a model folder; default: ERNIE 3.0 base when the "
                                      "hub (or its cache) has it, else the small encoder in cse_helpers/default_model")
    method: str = setting("simcse", "the training objective: simcse, esimcse or diffcse")
    train_path: str | None = setting(None, "the training sentences, one per line (UTF-8), e.g. data/train.txt")
    dev_path: str | None = setting(None, "labelled dev pairs, 'sentence1<TAB>sentence2<TAB>label' per line, e.g. "
                                         "data/dev.tsv; without it there is no evaluation and no 'best' export")
    save_dir: str = setting("runs/cse", "where the run is saved: the exports 'best' and 'last', and the training "
                                        "states (save_dir/checkpoints)")
    img_log_dir: str | None = setting(None, "where the figure of the curves goes (default: save_dir)")
    img_log_name: str = setting("curves.png", "the file name of that figure")
    pooler: str | None = setting(None, "how the token vectors become one sentence vector: cls, cls_before_pooler, "
                                       "pooler_output, mean or first_last_avg; default: the pooler saved with the "
                                       "model (cse_helpers.json), else cls")
    mlp_only_train: bool = setting(True, "SimCSE's unsupervised recipe: the cls pooler's MLP head in training only "
                                         "(evaluation and the exports take the raw [CLS] vector)")
    projector: str = setting("mlp", "the head on the pooler: mlp (SimCSE's dense + tanh, cls pooler only) "
                                    "or bn (DiffCSE's BatchNorm projector, any pooler)")
    learning_rate: float = setting(3e-5, "AdamW's peak learning rate (SimCSE's value for BERT-base: 3e-5)")
    weight_decay: float = setting(0.0, "AdamW's weight decay (SimCSE's: 0)")
    warmup_ratio: float = setting(0.1, "the share of the steps over which the learning rate rises linearly; then "
                                       "it decays linearly to 0")
    max_grad_norm: float = setting(1.0, "gradient clipping: the largest norm of all gradients together")
    dropout: float | None = setting(None, "the encoder's hidden and attention dropout, SimCSE's augmentation; "
                                          "default: the model's own (0.1 for BERT/ERNIE); the tutorial used 0.3")
    batch_size: int = setting(64, "sentences per batch (B); each is encoded twice (2B rows), and the other "
                                  "sentences of the batch are its negatives. Under torchrun: the global batch, "
                                  "split over the processes")
    mini_batch_size: int = setting(0, "> 0: gradient caching; the batch is encoded this many sentences at a time "
                                      "and the loss is still the whole batch's, so memory grows with this number, "
                                      "not with --batch_size (about 1.3x the time); 0, or at least the batch (per "
                                      "process under torchrun): one pass")
    max_seq_len: int = setting(64, "tokens per row at most, special tokens included; longer sentences are cut")
    num_train_epochs: int = setting(1, "passes over the training sentences (unless --max_steps is given)")
    max_steps: int = setting(-1, "> 0: stop after that many optimizer steps, whatever --num_train_epochs says")
    valid_steps: int = setting(100, "evaluate on the dev pairs every N steps and at the end; the best score's "
                                    "model is exported to save_dir/best")
    logging_steps: int = setting(10, "every N steps, log the mean loss of those N steps, steps/s, sentences/s "
                                     "and the learning rate")
    eval_batch_size: int = setting(256, "sentences per batch when evaluating")
    metric: str = setting("spearman", "the dev metric that picks the best checkpoint: spearman, pearson, accuracy, "
                                      "precision, recall, f1, best_accuracy, best_f1 (these need 0/1 labels), "
                                      "alignment or uniformity")
    threshold: float = setting(0.5, "the cosine similarity above which a dev pair counts as similar (accuracy, "
                                    "precision, recall, f1)")
    temperature: float = setting(0.05, "InfoNCE's temperature: the cosine similarities are divided by it "
                                       "(SimCSE: 0.05)")
    margin: float = setting(0.0, "an additive margin taken off the positive pair's cosine (0: plain InfoNCE)")
    dup_rate: float = setting(0.32, "ESimCSE: up to this share of a sentence's tokens is repeated in its positive "
                                    "view (the paper: 0.32)")
    repeat_both_views: bool = setting(False, "ESimCSE, the tutorial's variant: repeat words in both views (the "
                                             "paper: in the positive only)")
    repetition: str = setting("second_view", "ESimCSE: which views get repeated words: second_view (the paper), "
                                             "none (ablation: two identical views, as SimCSE, with the queue) or "
                                             "same_length (control: both views get the same number of repeats, at "
                                             "positions drawn apart, so their lengths match as in SimCSE)")
    queue_size: int = setting(160, "ESimCSE: how many momentum-encoder embeddings of earlier batches serve as "
                                   "extra negatives (0: none)")
    momentum: float = setting(0.995, "ESimCSE: the momentum encoder is the moving average momentum * itself + "
                                     "(1 - momentum) * the encoder, after each step")
    generator: str | None = setting(None, "DiffCSE: the masked-LM that fills in the masked tokens; it must share "
                                          "the encoder's tokenizer (default: the model itself)")
    mask_ratio: float = setting(0.3, "DiffCSE: the share of the tokens masked for replaced-token detection")
    lambda_rtd: float = setting(0.005, "DiffCSE: the weight of the replaced-token-detection loss "
                                       "(loss = contrastive + lambda_rtd * rtd)")
    seed: int = setting(42, "seeds every random draw: the same seed and settings repeat a run")
    device: str | None = setting(None, "cpu, cuda, cuda:0, mps or auto; default: a CUDA GPU when there is one, "
                                       "else the CPU")
    precision: str = setting("auto", "auto (bf16 on GPUs of compute capability 8.0+, fp16 on older ones, fp32 on "
                                     "the CPU), fp32, fp16 or bf16")
    save_steps: int = setting(0, "> 0: save the full training state every N steps (and at the end), for --resume")
    save_total_limit: int = setting(2, "how many of those training states to keep (the newest)")
    resume: bool = setting(False, "continue from the newest complete training state in save_dir/checkpoints "
                                  "(with the settings of that run)")
    overwrite_save_dir: bool = setting(False, "delete the run already in save_dir (its exports and training "
                                              "states) first")
    torch_compile: bool = setting(False, "torch.compile the encoder's backbone (see benchmarks/RESULTS.md for when "
                                         "it pays)")
    progress_bar: bool = setting(True, "show a progress bar")

    def validate(self) -> None:
        """Check every setting before anything is loaded (a wrong flag should not cost a model download)."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed and not (name == "pooler" and self.pooler is None):
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}.")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size}: contrastive learning needs at least 2 sentences per "
                             "batch (the other sentences are the negatives); SimCSE uses 64.")
        for name in ("logging_steps", "valid_steps", "num_train_epochs", "eval_batch_size", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: it must be >= 1.")
        for name, low in (("save_steps", 0), ("queue_size", 0), ("max_seq_len", 3), ("mini_batch_size", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)}: it must be >= {low}.")
        # name: (lowest, highest, lowest allowed, highest allowed, what the papers use)
        ranges = {"learning_rate": (0, math.inf, False, False, "SimCSE uses 3e-5"),
                  "temperature": (0, math.inf, False, False, "SimCSE uses 0.05"),
                  "warmup_ratio": (0, 1, True, False, "0.1 is usual"),
                  "weight_decay": (0, math.inf, True, False, "0 is SimCSE's"),
                  "max_grad_norm": (0, math.inf, False, False, "1.0 is usual"),
                  "margin": (0, 1, True, True, "0 is SimCSE's"),
                  "dup_rate": (0, 1, True, True, "ESimCSE uses 0.32"),
                  "momentum": (0, 1, True, True, "ESimCSE uses 0.995"),
                  "mask_ratio": (0, 1, False, False, "DiffCSE uses 0.3"),
                  "lambda_rtd": (0, math.inf, True, False, "DiffCSE uses 0.005"),
                  "dropout": (0, 1, True, False, "SimCSE uses 0.1, the tutorial 0.3"),
                  "threshold": (-1, 1, True, True, "a cosine similarity; the tutorial uses 0.5")}
        for name, (low, high, low_ok, high_ok, usual) in ranges.items():
            value = getattr(self, name)
            if value is None and name == "dropout":
                continue
            inside = (low < value or (low_ok and value == low)) and (value < high or (high_ok and value == high))
            if not (math.isfinite(value) and inside):
                interval = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
                raise ValueError(f"{name}={value}: it must be a number in {interval}; {usual}.")
        if self.device not in (None, "", "auto"):
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ValueError(f"device={self.device!r} is not a device name: use cpu, cuda, cuda:0, mps, or auto "
                                 "(or leave --device out).") from None
        if self.repeat_both_views and self.repetition != "second_view":
            raise ValueError(f"repeat_both_views and repetition={self.repetition!r} contradict each other: "
                             "repeat_both_views is a variant of repetition='second_view'. Pass one of them.")
        if self.resume and self.overwrite_save_dir:
            raise ValueError("resume and overwrite_save_dir contradict each other: --resume continues the run in "
                             "save_dir, --overwrite_save_dir deletes it. Pass one of them.")
        if not self.save_dir:
            raise ValueError("save_dir is empty: pass --save_dir, the folder where the run is saved.")
        if self.train_path is None:
            raise ValueError("No training data: pass --train_path (one sentence per line), "
                             "e.g. data/train.txt, or train_texts= in Python.")


@dataclass
class TrainResult:
    encoder: SentenceEncoder
    history: dict
    best_dir: str | None
    last_dir: str
    best_metric: float | None = None
    #: the trained model's cosine for each dev pair (from the evaluation at the last step); None without dev pairs
    final_scores: list[float] | None = None
    #: the trained objective around ``encoder`` (DiffCSE: with its discriminator, to probe it after training)
    objective: Objective | None = None


@dataclass
class History:
    """What a run logged: one record per logging window and per evaluation."""

    log: list = field(default_factory=list)
    eval: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"log": self.log, "eval": self.eval}


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------

class ViewBuilder:
    """Turns B tokenized sentences into the 2B rows a1 a2 b1 b2 ... of one training batch.

    The sentences are tokenized once, before the loop; here they are only repeated (when the
    method's objective ``repeats_words``: ESimCSE), given their special tokens and padded to the
    longest row of the batch.
    """

    def __init__(self, encoder: SentenceEncoder, method: str, max_seq_len: int, dup_rate: float = 0.32,
                 repeat_both_views: bool = False, seed: int = 0, repetition: str = "second_view"):
        self.encoder, self.method, self.max_seq_len = encoder, method, max_seq_len
        self.repeats_words = objective_class(method).repeats_words
        self.dup_rate, self.repeat_both_views, self.repetition = dup_rate, repeat_both_views, repetition
        self.rng = random.Random(seed)

    def views(self, body: list[int]) -> tuple[list[int], list[int]]:
        if not self.repeats_words or self.repetition == "none":
            return body, body  # SimCSE/DiffCSE: the same tokens twice; dropout makes the difference
        if self.repetition == "same_length":
            return augment.same_length_repetition(body, self.dup_rate, self.rng)
        second = augment.word_repetition(body, self.dup_rate, self.rng)
        first = augment.word_repetition(body, self.dup_rate, self.rng) if self.repeat_both_views else body
        return first, second

    def rows(self, bodies: Sequence[list[int]]) -> list[list[int]]:
        """The 2B rows a1 a2 b1 b2 ... as token-id lists (no special tokens yet)."""
        return [row for body in bodies for row in self.views(body)]

    def __call__(self, bodies: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        return self.encoder.pad(self.rows(bodies), self.max_seq_len)  # input_ids, attention_mask: (2B, L)


def batch_indices(keys: Sequence, batch_size: int, generator: torch.Generator, min_size: int = 2):
    """One epoch of shuffled batches as index lists, identical sentences removed per batch.

    ``keys[i]`` says which sentences are identical (the sentences themselves, or their token ids:
    two texts that tokenize alike are the same row to the model). Returns the batches and the
    number of duplicates removed. The last batch may be smaller. A batch left with fewer than
    ``min_size`` distinct sentences (2, or one per process when there are more than 2 processes)
    joins the previous batch, or, at the start of the epoch, the next one; so with at least
    ``min_size`` distinct keys there is always a batch.
    """
    order = torch.randperm(len(keys), generator=generator).tolist()
    batches, removed, carried = [], 0, []
    for start in range(0, len(order), batch_size):
        seen, batch = set(), []
        for i in carried + order[start:start + batch_size]:
            if keys[i] in seen:
                removed += 1
            else:
                seen.add(keys[i])
                batch.append(i)
        carried = []
        if len(batch) >= min_size:
            batches.append(batch)
        elif batches:
            last = {keys[j] for j in batches[-1]}
            batches[-1].extend(i for i in batch if keys[i] not in last)
            removed += sum(keys[i] in last for i in batch)
        else:
            carried = batch  # a first batch of one distinct sentence: it joins the next
    return batches, removed


# ------------------------------------------------------------------------------------------------
# Checks before anything is loaded
# ------------------------------------------------------------------------------------------------

def check_train_texts(texts: Sequence[str], args: TrainingArguments) -> None:
    """At least 2 different sentences, and at least one batch of them."""
    distinct = len(set(texts))
    if distinct < 2:
        problem = (f"one sentence ({texts[0][:40]!r})" if len(texts) == 1 else
                   f"{len(texts)} sentences, all the same ({texts[0][:40]!r})")
        raise DataFormatError(args.train_path, None, f"{problem}: contrastive learning needs at least 2 different "
                              "sentences (the other sentences of a batch are the negatives).",
                              "Give more sentences, one per line.")
    if len(texts) < args.batch_size:
        raise ValueError(f"{args.train_path}: {len(texts)} sentences, fewer than one batch of {args.batch_size}. "
                         f"Use --batch_size {len(texts)} or less, or more data.")


def _check_dev_pairs(dev_pairs, args: TrainingArguments) -> None:
    labels = {p[2] for p in dev_pairs}
    where = args.dev_path or "dev_pairs"
    if len(labels) < 2 and args.metric not in ("alignment", "uniformity"):
        raise ValueError(f"{where}: all {len(dev_pairs)} pairs have the label {labels.pop()}, so "
                         f"{args.metric} is undefined and no best checkpoint could be chosen. Give a dev set with "
                         "both classes (LCQMC's dev.tsv, or data/dev.tsv).")
    if args.metric in CLASSIFICATION_METRICS and not labels <= {0, 1}:
        raise ValueError(f"{where}: the labels are similarity scores, not 0/1, so there is no {args.metric} and no "
                         "best checkpoint could be chosen. Use --metric spearman (or pearson).")


def fingerprint(rows: Sequence) -> str:
    """``"N:hash"`` of a list of sentences or pairs: tells whether a resumed run has the same data."""
    digest = hashlib.sha256()
    for row in rows:
        text = row if isinstance(row, str) else "\t".join(map(str, row[:3]))
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return f"{len(rows)}:{digest.hexdigest()[:16]}"


def _differences(saved: dict, args: TrainingArguments, data: dict) -> list[str]:
    """What differs between a saved training state and this run: ``["--name A there, B here", ...]``."""
    saved_args = saved.get("args", {})
    found = [f"--{name} {saved_args[name]!r} there, {getattr(args, name)!r} here" for name in RUN_DEFINING
             if name in saved_args and saved_args[name] != getattr(args, name)]
    for name, flag in (("train", "the training data"), ("dev", "the dev pairs")):
        there = saved.get("data", {}).get(name, data[name])
        if there != data[name]:
            found.append(f"{flag} ({there} there, {data[name]} here: N sentences or pairs:hash)")
    there = saved.get("data", {}).get("processes", 1)
    if there != data.get("processes", 1):
        found.append(f"the number of processes ({there} there, {data['processes']} here: resume with torchrun "
                     f"--nproc_per_node {there}, or without torchrun for 1)")
    return found


def plan_save_dir(args: TrainingArguments, data: dict) -> list[str]:
    """The one check of the save folder, before anything is loaded; returns the training states to
    resume from (oldest first; empty: the run starts at step 0).

    - ``overwrite_save_dir``: whatever is there will be deleted (just before training starts).
    - no ``resume``: a folder holding training states (a run that ``--resume`` could continue) is
      refused; exports without training states are replaced, with a warning.
    - ``resume``: every training state must come from this same run (:data:`RUN_DEFINING` and the
      data); one whose ``trainer_state.json`` cannot be read is skipped with a warning.
    """
    check_writable(args.save_dir)
    if args.overwrite_save_dir:
        return []
    root = os.path.join(args.save_dir, STATE_DIR)
    steps = sorted(n for n in os.listdir(root) if n.startswith("step-") and not n.endswith((".tmp", ".old"))) \
        if os.path.isdir(root) else []
    if not args.resume:
        if steps:
            raise CheckpointError(
                f"The save folder {args.save_dir} already holds the training states of a run ({steps[-1]} is the "
                f"newest, in {root}). To continue that run, add --resume; to keep it, choose another --save_dir; "
                "to delete it and start over, add --overwrite_save_dir.")
        return []
    readable, states = [], list_training_states(args.save_dir)
    for path in reversed(states):
        try:
            saved = read_trainer_state(path)
        except DamagedCheckpointError as e:
            older = states[: states.index(path)]
            logger.warning("%s %s", e, f"Falling back to the older checkpoint {older[-1]}." if older else "")
            continue
        differences = _differences(saved, args, data)
        if differences:
            raise CheckpointError(
                f"--resume: the run saved in {path} differs from this one: " + "; ".join(differences) + ". Resume "
                "it with its own settings (the same command as before, plus --resume), or start this run in another "
                "--save_dir (or add --overwrite_save_dir instead of --resume to replace it).")
        readable.insert(0, path)
    if steps and not readable:
        raise CheckpointError(f"--resume: none of the training states in {root} ({', '.join(steps)}) is complete and "
                              "readable (see the warnings above). Start again without --resume and with "
                              "--overwrite_save_dir, or in another --save_dir.")
    return readable


# ------------------------------------------------------------------------------------------------
# Building the pieces
# ------------------------------------------------------------------------------------------------

def build_objective(args: TrainingArguments, encoder: SentenceEncoder) -> Objective:
    """The method's objective (``cse_helpers.objectives.OBJECTIVES``) around ``encoder``."""
    return objective_class(args.method).from_args(args, encoder)


def largest_batch_that_fits(objective: Objective, batch: dict, precision: str) -> int | None:
    """After an out-of-memory error: the largest half, quarter, ... of ``batch`` whose forward and
    backward pass fit, tried on the batch that failed (rows come in pairs of views). None if none does.

    The optimizer's state is not included, so leave some room below the figure.
    """
    sentences = batch["input_ids"].size(0) // 2
    size = sentences // 2
    while size >= 2:
        objective.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:
            with autocast(batch["input_ids"].device, precision):
                loss = objective({k: v[: 2 * size] for k, v in batch.items()})["loss"]
            loss.backward()
            return size
        except torch.cuda.OutOfMemoryError:
            size //= 2
        finally:
            objective.zero_grad(set_to_none=True)
    return None


def tokenize_for_training(encoder: SentenceEncoder, texts: Sequence[str], max_seq_len: int
                          ) -> tuple[list[list[int]], int]:
    """Token ids of each text (no special tokens), cut to what fits in ``max_seq_len``; and how many
    texts were cut.

    Only the first ``32 * (limit + 1)`` characters of a text are tokenized (a 5 MB line would take
    gigabytes as a list of token ids); a text whose prefix gives too few tokens to fill the row
    (tokens of 32+ characters) is tokenized whole.
    """
    limit = encoder.max_body_len(max_seq_len)
    budget = 32 * (limit + 1)
    bodies = encoder.body_ids([text[:budget] for text in texts])
    truncated = 0
    for i, text in enumerate(texts):
        if len(text) > budget and len(bodies[i]) <= limit:
            bodies[i] = encoder.body_ids([text])[0]
        if len(bodies[i]) > limit:
            truncated += 1
            bodies[i] = bodies[i][:limit]
    return bodies, truncated


def check_token_rows(encoder: SentenceEncoder, texts: Sequence[str], bodies: list[list[int]],
                     where: str) -> list[int]:
    """Report sentences that are empty or only [UNK] once tokenized; return each sentence's row key.

    Such sentences (emoji, symbols the vocabulary lacks) are all the same row to the model: they are
    kept, but at most one per batch, and said in a warning with examples. Fewer than 2 different
    rows in all is an error: nothing to contrast.
    """
    unk = encoder.tokenizer.unk_token_id
    blank = [i for i, body in enumerate(bodies) if all(t == unk for t in body)]
    lines = getattr(texts, "line_numbers", None)

    def at(i: int) -> str:
        return f"line {lines[i]}" if lines else f"train_texts[{i}]"

    if blank:
        examples = ", ".join(f"{at(i)} {texts[i][:20]!r}" for i in blank[:3])
        logger.warning("%s: %d of %d training sentences are empty or only [UNK] once tokenized (the model's "
                       "vocabulary has none of their characters), e.g. %s. They are all the same row to the model, so "
                       "at most one of them is used per batch. Check the data, or use a model whose vocabulary "
                       "covers them.", where, len(blank), len(texts), examples)
    keys = [hash(tuple(body)) for body in bodies]
    if len(set(keys)) < 2:
        raise DataFormatError(where, None, f"all {len(texts)} training sentences become the same tokens for this "
                              f"model ({encoder.tokenizer.convert_ids_to_tokens(bodies[0][:5])}), so there is nothing "
                              "to contrast.", "Give sentences in the model's language, or a model whose vocabulary "
                              "covers them.")
    return keys


@dataclass
class LoopState:
    """Where the loop is: what a resumed run needs besides weights and optimizer."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already done
    best_metric: float | None = None
    best_dir: str | None = None
    window: dict = field(default_factory=dict)  # the logging window's sums (LogWindow.state(): plain numbers)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class LogWindow:
    """The sums of one logging window: loss (and its parts), steps, sentences, duplicates removed.

    The loss sums stay tensors on the device, so a GPU step does not wait for the host; ``state()``
    turns them into plain numbers (what a checkpoint stores, as JSON) and ``LogWindow(device, state)``
    takes them back, so a resumed run logs the same means as an uninterrupted one.
    """

    def __init__(self, device: torch.device, saved: dict | None = None):
        saved = saved or {}
        self.device = device
        self.loss = torch.tensor(float(saved.get("loss", 0.0)), device=device)
        self.parts = {name: torch.tensor(float(v), device=device) for name, v in saved.get("parts", {}).items()}
        self.steps = int(saved.get("steps", 0))
        self.sentences = int(saved.get("sentences", 0))
        self.duplicates = int(saved.get("duplicates", 0))
        self.start = time.perf_counter()

    def add(self, out: dict, sentences: int) -> None:
        """One step's output: ``loss`` and the parts of it that the objective returns beside it."""
        self.loss += out["loss"].detach().float()
        for name, part in out.items():
            if name != "loss":
                self.parts[name] = self.parts.get(name, 0) + part.float()
        self.steps += 1
        self.sentences += sentences

    def means(self) -> dict:
        """The window's mean loss (and parts), steps/s and sentences/s."""
        elapsed = time.perf_counter() - self.start
        return {"loss": float(self.loss) / self.steps, **{k: float(v) / self.steps for k, v in self.parts.items()},
                "steps_per_s": self.steps / elapsed, "sentences_per_s": self.sentences / elapsed}

    def state(self) -> dict:
        return {"loss": float(self.loss), "parts": {k: float(v) for k, v in self.parts.items()},
                "steps": self.steps, "sentences": self.sentences, "duplicates": self.duplicates}

    def reset(self) -> None:
        self.__init__(self.device)


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------

class Trainer:
    """The training loop: :meth:`fit` (the run) -> :meth:`epoch` (one pass) -> :meth:`step` (one batch).

    Everything the loop changes lives on the trainer: the optimizer and its schedule, ``state``
    (step, epoch, best checkpoint: what a resumed run needs), ``history`` (what was logged and
    evaluated) and ``window`` (the sums of the current logging window). The objective must be
    ready (``objective.prepare(device, precision)``).

    ``bodies``: the training sentences as token ids without special tokens (``encoder.body_ids``);
    ``keys[i]`` says which of them are identical (default: identical token ids).

    ``ranks``: this process's place among several (``torchrun``; :mod:`cse_helpers.scale.distributed`). Every
    process draws the same batches; each encodes its share of a batch; the loss is the global
    batch's. Only rank 0 logs, evaluates and saves; the others wait for it.
    """

    def __init__(self, args: TrainingArguments, objective: Objective, bodies: Sequence[list[int]],
                 keys: Sequence | None = None, *, dev_pairs: Sequence[tuple] | None = None,
                 data: dict | None = None, truncated: int = 0, on_log: Callable[[dict], None] | None = None,
                 on_evaluate: Callable[[dict], None] | None = None, ranks: Ranks | None = None):
        self.ranks = ranks or Ranks()
        self.args, self.objective, self.encoder = args, objective, objective.encoder
        self.device = self.encoder.device
        self.precision = pick_precision(self.device, args.precision)
        self.bodies, self.dev_pairs, self.truncated = bodies, dev_pairs, truncated
        self.keys = keys if keys is not None else [hash(tuple(body)) for body in bodies]
        self.data = data or {"train": None, "dev": None}  # fingerprints: a resumed run must have the same data
        self.on_log, self.on_evaluate = on_log, on_evaluate
        self.views = ViewBuilder(self.encoder, args.method, args.max_seq_len, args.dup_rate,
                                 args.repeat_both_views, args.seed, args.repetition)
        self.shuffle = torch.Generator().manual_seed(args.seed)
        self.epoch_start_shuffle = self.shuffle.get_state()  # the order of the current epoch is drawn from it
        self.min_batch = max(2, self.ranks.world_size)  # each process needs a sentence of every batch
        steps_per_epoch = len(batch_indices(self.keys, args.batch_size, torch.Generator().manual_seed(args.seed),
                                            self.min_batch)[0])
        self.total_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs
        self._build_optimizer()
        self.state, self.history = LoopState(), History()
        self.last_scores: tuple = (None, None)  # (step, cosine per dev pair) of the latest evaluation
        self.window = LogWindow(self.device)
        self.progress = None  # a progress bar while fit() runs
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=self.device)  # no host sync per step

    def _build_optimizer(self) -> None:
        """AdamW on the trainable parameters, linear warmup then decay, and fp16's GradScaler."""
        from transformers import get_linear_schedule_with_warmup

        args = self.args
        self.trainable = [p for p in self.objective.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=args.learning_rate, weight_decay=args.weight_decay,
                                           fused=self.device.type in ("cuda", "cpu"))  # one kernel for all
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(args.warmup_ratio * self.total_steps),
                                                         self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")

    # ---- the three levels -------------------------------------------------------------------------
    def step(self, bodies: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        """One training step on B tokenized sentences; returns the objective's output (the loss and its parts)."""
        rows = self.views.rows(bodies)  # 1. two views of each sentence: 2B rows (the same on every process)
        share = self.ranks.shard(len(bodies))  # this process's sentences (all of them for a single process)
        batch = to_device(self.encoder.pad(rows[2 * share.start: 2 * share.stop], self.args.max_seq_len),
                          self.device)  # (2n, L), padded to its longest row
        try:
            # 2. the forward pass of the 2B rows (dropout on) -- in one go, or M sentences at a time with
            # gradient caching -- the loss, and its backward pass
            out = forward_backward(self.objective, batch, precision=self.precision,
                                   mini_batch_size=self.args.mini_batch_size, scale=self.scaler.scale,
                                   ranks=self.ranks)
            self.ranks.sum_gradients(self.trainable)  # 3. the processes' shares of the gradient added up,
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.trainable, self.args.max_grad_norm)  # gradient clipping,
            self.scaler.step(self.optimizer)  # AdamW,
            self.scaler.update()
            self.scheduler.step()  # linear warmup/decay,
            self.optimizer.zero_grad(set_to_none=True)
            self.objective.after_optimizer_step()  # and what the objective updates outside the gradient
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory(batch) from None
        return out

    def epoch(self) -> None:
        """The rest of the current epoch (all of it, unless a resumed run starts in its middle)."""
        self.shuffle.set_state(self.epoch_start_shuffle)  # a resumed run redraws the same order for this epoch
        batches, removed = batch_indices(self.keys, self.args.batch_size, self.shuffle, self.min_batch)
        if self.state.batch_in_epoch == 0:
            self.window.duplicates += removed
        for index in batches[self.state.batch_in_epoch:]:
            if self.state.step >= self.total_steps:
                break
            out = self.step([self.bodies[i] for i in index])
            self.state.step += 1
            self.state.batch_in_epoch += 1
            self._after_step(out, len(index))
        if self.state.batch_in_epoch >= len(batches):
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            self.epoch_start_shuffle = self.shuffle.get_state()

    def fit(self, resume_from: Sequence[str] = ()) -> TrainResult:
        """The whole run: continue the training states ``resume_from`` (oldest first) or start in a cleared
        save folder, train ``total_steps`` steps, then export ``last`` (and keep ``best``)."""
        from tqdm.auto import tqdm

        self._start(resume_from)
        if self.ranks.is_main:
            logger.info("method=%s device=%s precision=%s processes=%d steps=%d sentences=%d truncated=%d",
                        self.args.method, self.device, self.precision, self.ranks.world_size, self.total_steps,
                        len(self.bodies), self.truncated)
        self.progress = tqdm(total=self.total_steps, initial=self.state.step, desc=self.args.method,
                             disable=not (self.args.progress_bar and self.ranks.is_main))
        self.window = LogWindow(self.device, self.state.window)
        while self.state.step < self.total_steps:
            self.epoch()
        self.progress.close()
        return self._finish()

    # ---- what happens around the steps -------------------------------------------------------------
    def _after_step(self, out: dict, sentences: int) -> None:
        """Count the step in the logging window; log, evaluate and save when their periods come."""
        step, args = self.state.step, self.args
        self.first_bad_step = torch.where((self.first_bad_step < 0) & ~torch.isfinite(out["loss"].detach()),
                                          torch.full_like(self.first_bad_step, step), self.first_bad_step)
        self.window.add(out, sentences)
        if self.progress is not None:
            self.progress.update(1)
        if self.device.type == "cpu":
            self.check_finite()  # free on the CPU: stop at once
        if self._due(args.logging_steps):
            self.check_finite()  # the loss is the global batch's: every process stops at the same step
            if self.ranks.is_main:
                self.log()
        if self.dev_pairs is not None and self._due(args.valid_steps):
            self.check_finite()
            if self.ranks.is_main:
                self.evaluate()
            self.ranks.barrier()  # the other processes wait for the evaluation (and its 'best' export)
        if args.save_steps > 0 and self._due(args.save_steps):
            self.check_finite()
            self.save_state()

    def _due(self, period: int) -> bool:
        return self.state.step % period == 0 or self.state.step == self.total_steps

    def check_finite(self) -> None:
        """FloatingPointError naming the first step whose loss was NaN or infinite, if there was one."""
        bad = int(self.first_bad_step)
        if bad >= 0:
            args = self.args
            raise FloatingPointError(
                f"The loss became NaN or infinite at step {bad} (method={args.method}, lr={args.learning_rate}, "
                f"precision={self.precision}). Training stopped; checkpoints already written in {args.save_dir} "
                "are unchanged. Try a lower --learning_rate, --precision fp32, or check the data.")

    def log(self) -> None:
        """Record the logging window's means (and call ``on_log``), then start a new window."""
        record = {"step": self.state.step, "epoch": self.state.epoch + 1, **self.window.means(),
                  "learning_rate": self.scheduler.get_last_lr()[0], "duplicates_removed": self.window.duplicates,
                  "truncated": self.truncated}
        self.history.log.append(record)
        if self.progress is not None:
            self.progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}")
        if self.on_log:
            self.on_log(record)
        self.window.reset()

    def evaluate(self) -> None:
        """Score the dev pairs (and call ``on_evaluate``); a better score is exported to ``save_dir/best``."""
        args = self.args
        metrics = evaluate_pairs(self.encoder, self.dev_pairs, threshold=args.threshold,
                                 batch_size=args.eval_batch_size, return_scores=True)
        self.last_scores = (self.state.step, metrics.pop("scores"))  # kept out of the history (one per pair)
        record = {"step": self.state.step, **metrics}
        self.history.eval.append(record)
        if is_better(metrics.get(args.metric), self.state.best_metric, args.metric):
            self.state.best_metric = metrics[args.metric]
            self.state.best_dir = save_export(self.encoder, os.path.join(args.save_dir, "best"), args,
                                              self.history.as_dict())
        if self.on_evaluate:
            self.on_evaluate(record)

    def _out_of_memory(self, batch: dict) -> OutOfMemoryError:
        fits = largest_batch_that_fits(self.objective, batch, self.precision)
        advice = (f"--batch_size {fits} fits this batch's forward and backward pass (checked after the error); "
                  "leave some room for the optimizer. To keep the batch (its negatives), use gradient caching "
                  f"instead: --batch_size {self.args.batch_size} --mini_batch_size {fits}" if fits else
                  "even 2 sentences do not fit")
        return OutOfMemoryError(
            f"CUDA ran out of memory at step {self.state.step + 1} with batch_size={self.args.batch_size} (rows "
            f"padded to {batch['input_ids'].shape[1]} tokens): {advice}. A smaller --max_seq_len also helps. "
            f"Checkpoints in {self.args.save_dir} are unchanged.")

    # ---- the save folder: training states, start and end ----------------------------------------------
    def rng_state(self) -> dict:
        """Every random generator the run draws from, as a training state stores them."""
        rng = {"torch": torch.get_rng_state(), "views": self.views.rng.getstate(),
               "epoch_start_shuffle": self.epoch_start_shuffle}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {**rng, **self.objective.rng_state()}

    def set_rng_state(self, rng: dict) -> None:
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.views.rng.setstate(rng["views"])
        self.epoch_start_shuffle = rng["epoch_start_shuffle"]
        self.objective.set_rng_state(rng)

    def save_state(self) -> None:
        """Write a training state (``save_dir/checkpoints/step-N``) that :meth:`resume` continues exactly.

        Several processes: rank 0 writes it, with every process's random generators (each draws its
        own dropout masks); the others wait."""
        args = self.args
        rng, *others = self.ranks.gather_objects(self.rng_state())
        if self.ranks.is_main:
            if others:
                rng = {**rng, OTHER_RANKS_RNG: others}
            loop = {**self.state.as_dict(), "window": self.window.state()}
            save_training_state(args.save_dir, self.state.step, self.objective, self.optimizer, self.scheduler,
                                self.scaler, rng,
                                {"loop": loop, "history": self.history.as_dict(), "args": dataclasses.asdict(args),
                                 "data": self.data}, keep=args.save_total_limit)
        self.ranks.barrier()

    def resume(self, paths: Sequence[str]) -> None:
        """Continue from the newest readable training state of ``paths`` (oldest first)."""
        path, trainer_state, rng = load_newest_training_state(list(paths), self.objective, self.optimizer,
                                                              self.scheduler, self.scaler)
        self.state = LoopState(**trainer_state["loop"])
        self.history = History(**trainer_state["history"])
        self.set_rng_state(rng[OTHER_RANKS_RNG][self.ranks.rank - 1] if self.ranks.rank else rng)
        logger.info("Resuming from %s (step %d of %d).", path, self.state.step, self.total_steps)

    def _start(self, resume_from: Sequence[str]) -> None:
        """Check the room in the save folder, then continue the run it holds or clear what is there."""
        args = self.args
        if self.ranks.is_main:
            check_free_space(args.save_dir, space_needed(self.encoder, self.objective, self.trainable,
                                                         args.save_steps > 0, args.save_total_limit),
                             f"'best' and 'last' exports{' and training states' if args.save_steps > 0 else ''}")
        if resume_from:
            self.resume(resume_from)  # every process loads the same state (and its own random generators)
            return
        if args.resume:
            logger.info("resume: no complete checkpoint in %s; starting from step 0.",
                        os.path.join(args.save_dir, STATE_DIR))
        if self.ranks.is_main:
            gone = clear_run(args.save_dir, exports_only=not args.overwrite_save_dir)
            if gone:
                logger.warning("Starting a new run in %s: deleted the earlier run's %s.", args.save_dir,
                               ", ".join(os.path.basename(p) for p in gone))
        self.ranks.barrier()

    def _finish(self) -> TrainResult:
        """Export ``last``, the full history beside ``best``, and the curves figure; the encoder in eval mode."""
        args, state = self.args, self.state
        last_dir = os.path.join(args.save_dir, "last")
        if self.ranks.is_main:
            save_export(self.encoder, last_dir, args, self.history.as_dict())
            if state.best_dir is not None:  # the best export's history stops at its step; store the full one too
                with open(os.path.join(state.best_dir, "history_full.json"), "w", encoding="utf-8") as f:
                    json.dump(self.history.as_dict(), f, indent=2, ensure_ascii=False)
            img_dir = args.img_log_dir or args.save_dir
            os.makedirs(img_dir, exist_ok=True)
            shutil.copyfile(os.path.join(last_dir, "curves.png"), os.path.join(img_dir, args.img_log_name))
        scored_step, scores = self.last_scores
        final_scores = scores if scored_step == state.step else None
        # every process returns rank 0's history and best export (its own weights are the same)
        self.history, self.state, final_scores = self.ranks.broadcast_object((self.history, self.state,
                                                                              final_scores))
        state = self.state
        self.encoder.eval()
        return TrainResult(encoder=self.encoder, history=self.history.as_dict(), best_dir=state.best_dir,
                           last_dir=last_dir, best_metric=state.best_metric, final_scores=final_scores,
                           objective=self.objective)


def train(args: TrainingArguments | None = None, *, train_texts: Sequence[str] | None = None,
          dev_pairs: Sequence[tuple] | None = None, encoder: SentenceEncoder | None = None,
          on_log: Callable[[dict], None] | None = None, on_evaluate: Callable[[dict], None] | None = None,
          **overrides) -> TrainResult:
    """Train a sentence encoder with SimCSE, ESimCSE or DiffCSE; return the encoder and its history.

    Args:
        args: a :class:`TrainingArguments`; keyword ``overrides`` change single fields
            (``train(method="esimcse", max_steps=50, ...)``).
        train_texts / dev_pairs: data given directly instead of ``train_path`` / ``dev_path``.
        encoder: an already loaded :class:`SentenceEncoder` (otherwise ``args.model`` is loaded).
        on_log(record) / on_evaluate(record): called at each logging step / evaluation, e.g. to draw
            live curves in a notebook.

    With ``save_steps=N`` the full training state is saved every N steps (and at the end) under
    ``save_dir/checkpoints``; ``resume=True`` continues from the newest complete one, and the
    resumed run ends as the uninterrupted one would (same losses, same weights). A save folder that
    holds another run is refused (``overwrite_save_dir=True`` deletes that run first).
    """
    args = dataclasses.replace(args or TrainingArguments(), **overrides)
    if train_texts is not None and args.train_path is None:
        args.train_path = "<train_texts>"
    args.validate()
    ranks, device = Ranks.from_environment(pick_device(args.device))  # torchrun: join the other processes
    result = _train(args, ranks, device, train_texts, dev_pairs, encoder, on_log, on_evaluate)
    ranks.close()  # (after an error there is no goodbye: the process ends, and torchrun stops the others)
    return result


def _train(args: TrainingArguments, ranks: Ranks, device: torch.device, train_texts, dev_pairs, encoder,
           on_log, on_evaluate) -> TrainResult:
    if args.batch_size < ranks.world_size:
        raise ValueError(f"batch_size={args.batch_size} is the global batch, split over {ranks.world_size} "
                         "processes: each needs at least one sentence. Use a larger --batch_size.")
    texts, dev_pairs = read_data(args, train_texts, dev_pairs)  # a bad file fails before any model is loaded
    data = {"train": fingerprint(texts), "dev": fingerprint(dev_pairs) if dev_pairs is not None else None,
            "processes": ranks.world_size}
    check_model_paths(args, encoder)  # then the model's paths and the save folder: still nothing loaded
    resume_from = plan_save_dir(args, data)

    seed_everything(args.seed + ranks.rank)  # each process its own dropout masks (rank 0: the one-process run's)
    encoder = load_encoder(args, encoder)
    objective = build_objective(dataclasses.replace(args, seed=args.seed + ranks.rank), encoder)
    objective.prepare(device, pick_precision(device, args.precision))
    ranks.broadcast_module(objective)  # rank 0's random heads on every process: one model, W copies
    if args.torch_compile:  # in place (parameter names unchanged); dynamic: padded lengths vary per batch
        encoder.backbone.compile(dynamic=True)
    bodies, truncated = tokenize_for_training(encoder, texts, args.max_seq_len)  # tokenize once
    if truncated:
        logger.warning("%d of %d sentences are longer than max_seq_len=%d and were truncated.",
                       truncated, len(texts), args.max_seq_len)
    keys = check_token_rows(encoder, texts, bodies, args.train_path)  # identical rows share a key
    trainer = Trainer(args, objective, bodies, keys, dev_pairs=dev_pairs, data=data, truncated=truncated,
                      on_log=on_log, on_evaluate=on_evaluate, ranks=ranks)
    return trainer.fit(resume_from)


def read_data(args: TrainingArguments, train_texts: Sequence[str] | None, dev_pairs: Sequence[tuple] | None
              ) -> tuple[Sequence[str], Sequence[tuple] | None]:
    """The training sentences and dev pairs (given, or read from ``train_path`` / ``dev_path``), checked."""
    texts = train_texts if train_texts is not None else read_train_texts(args.train_path)
    check_train_texts(texts, args)
    if dev_pairs is None and args.dev_path:
        dev_pairs = read_pairs(args.dev_path)
    if dev_pairs is not None:
        _check_dev_pairs(dev_pairs, args)
    return texts, dev_pairs


def check_model_paths(args: TrainingArguments, encoder: SentenceEncoder | None) -> None:
    """Refuse a model path that is no saved model (and the objective's own paths), before anything loads;
    then fill in the default model when none is given."""
    if encoder is None and args.model:
        check_model_path(args.model, "--model")
    objective_class(args.method).check_paths(args)
    args.model = resolve_model(args.model)


def load_encoder(args: TrainingArguments, encoder: SentenceEncoder | None) -> SentenceEncoder:
    """``args.model`` loaded with the run's pooler and dropout (or ``encoder``, given its dropout)."""
    if encoder is None:
        encoder = SentenceEncoder.from_pretrained(args.model, pooler=args.pooler, dropout=args.dropout,
                                                  mlp_only_train=args.mlp_only_train, projector=args.projector,
                                                  max_seq_len=args.max_seq_len)
    elif args.dropout is not None:
        set_dropout(encoder.backbone, args.dropout)
    encoder.check_max_seq_len(args.max_seq_len)
    encoder.max_seq_len = args.max_seq_len
    return encoder


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """One flag per field of :class:`TrainingArguments` (``--name value``; booleans ``--x/--no-x``)."""
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(TrainingArguments):
        flag, explanation = f"--{f.name}", f.metadata["help"]
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=explanation)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), None)
            if kind is None:
                kind = float if "float" in str(f.type) else int if str(f.type).startswith("int") else str
            choices = CHOICES.get(f.name) if f.name != "metric" else None  # a wrong --metric: validate()'s message
            parser.add_argument(flag, type=kind, default=f.default, choices=choices, help=explanation)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    rank = os.environ.get("RANK") if launched_by_torchrun() else None  # under torchrun: rank 0 tells the story
    if rank is not None:
        faulthandler.enable()  # a rank that the C++ of NCCL or gloo aborts prints where its threads were
    logging.basicConfig(level=logging.INFO if rank in (None, "0") else logging.WARNING,
                        format="%(asctime)s %(levelname)s " + (f"[rank {rank}] " if rank else "") + "%(message)s")
    args = TrainingArguments(**vars(build_parser().parse_args(argv)))
    try:
        result = train(args, on_log=lambda r: logger.info(
            "step %d loss %.4f lr %.2e %.1f steps/s %.0f sentences/s", r["step"], r["loss"], r["learning_rate"],
            r["steps_per_s"], r["sentences_per_s"]),
            on_evaluate=lambda r: logger.info("step %d eval %s", r["step"], {
                k: round(v, 4) for k, v in r.items() if isinstance(v, float)}))
    except (ValueError, FileNotFoundError, FloatingPointError, CheckpointError, TrainingError) as e:
        print(f"error{f' (rank {rank})' if rank else ''}: {e}", file=sys.stderr)
        return 2
    if rank not in (None, "0"):
        return 0
    print(f"saved: {result.last_dir}" + (f" (best {args.metric} {result.best_metric:.4f}: {result.best_dir})"
                                          if result.best_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
