"""The training loop shared by the notebooks and the command line.

    python -m cse_helpers.train --method simcse --model nghuyong/ernie-3.0-base-zh \\
        --train_path data/train.txt --dev_path data/dev.tsv --save_dir runs/simcse

What one step does (the same for every method):

1. take B sentences (identical sentences inside the batch are removed first: they would be each
   other's false negatives), build two views of each (ESimCSE: words repeated in the second view),
   pad the 2B rows together to the longest one (dynamic padding);
2. one forward pass of the 2B rows in train mode (dropout on: that is SimCSE's augmentation);
3. the objective's loss (InfoNCE; + lambda * RTD for DiffCSE), backward, gradient clipping, AdamW,
   linear warmup/decay; ESimCSE then updates its momentum encoder.

Every ``logging_steps`` it logs the mean loss of that window (not a running mean since the start),
steps/s, sentences/s and the learning rate; every ``valid_steps`` it evaluates on the dev pairs and
keeps the best checkpoint (``save_dir/best``). A NaN or infinite loss stops the run with an error
naming the step; checkpoints already written are left as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from . import augment
from .checkpoint import STATE_DIR, list_training_states, load_training_state, save_export, save_training_state
from .data import read_pairs, read_train_texts
from .evaluate import evaluate_pairs, is_better
from .models import (
    POOLERS,
    PROJECTORS,
    DiffCSE,
    ESimCSE,
    SentenceEncoder,
    SimCSE,
    load_generator,
    resolve_model,
    set_dropout,
)
from .runtime import PRECISIONS, autocast, pick_device, pick_precision, seed_everything

logger = logging.getLogger(__name__)

METHODS = ("simcse", "esimcse", "diffcse")


@dataclass
class TrainingArguments:
    """Every setting of a run. The names are the tutorial's command-line flags plus the methods' own."""

    model: str | None = None  # a hub name or a directory; None: ERNIE 3.0 base if reachable, else DEFAULT_MODEL
    method: str = "simcse"
    train_path: str | None = None
    dev_path: str | None = None
    save_dir: str = "runs/cse"
    img_log_dir: str | None = None  # where the curves figure goes (default: save_dir)
    img_log_name: str = "curves.png"
    pooler: str | None = None  # None: the pooler saved with the model (cse_helpers.json), else "cls"
    mlp_only_train: bool = True  # SimCSE's unsupervised recipe: the cls head in training only
    projector: str = "mlp"  # "bn": DiffCSE's BatchNorm projector as the cls head
    learning_rate: float = 3e-5  # SimCSE's value for BERT-base
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    dropout: float | None = None  # None keeps the model's own (0.1 for BERT/ERNIE); the tutorial used 0.3
    batch_size: int = 64
    max_seq_len: int = 64
    num_train_epochs: int = 1
    max_steps: int = -1  # > 0 stops after that many steps
    valid_steps: int = 100
    logging_steps: int = 10
    eval_batch_size: int = 256
    metric: str = "spearman"  # the dev metric that picks the best checkpoint
    threshold: float = 0.5
    temperature: float = 0.05
    margin: float = 0.0
    dup_rate: float = 0.32
    repeat_both_views: bool = False  # the tutorial's variant: word repetition on both views
    queue_size: int = 160
    momentum: float = 0.995
    generator: str | None = None  # DiffCSE: a masked-LM sharing the tokenizer (default: the model itself)
    mask_ratio: float = 0.3
    lambda_rtd: float = 0.005
    seed: int = 42
    device: str | None = None
    precision: str = "auto"
    save_steps: int = 0  # > 0: save the full training state every N steps (and at the end) for --resume
    save_total_limit: int = 2  # how many of those training states to keep (newest first)
    resume: bool = False  # continue from the newest complete training state in save_dir/checkpoints
    torch_compile: bool = False  # torch.compile the encoder's backbone (see benchmarks/RESULTS.md for when it pays)
    progress_bar: bool = True

    def validate(self) -> None:
        """Check settings before anything is loaded (a wrong flag should not cost a model download)."""
        choices = {"method": METHODS, "pooler": POOLERS, "projector": PROJECTORS, "precision": PRECISIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed and not (name == "pooler" and self.pooler is None):
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}.")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size}: contrastive learning needs at least 2 sentences per "
                             "batch (the other sentences are the negatives); SimCSE uses 64.")
        for name in ("logging_steps", "valid_steps", "num_train_epochs", "eval_batch_size", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: it must be >= 1.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio={self.warmup_ratio}: it must be in [0, 1).")
        if self.learning_rate <= 0 or self.temperature <= 0:
            raise ValueError("learning_rate and temperature must be > 0.")
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

    The sentences are tokenized once, before the loop; here they are only repeated (ESimCSE),
    given their special tokens and padded to the longest row of the batch.
    """

    def __init__(self, encoder: SentenceEncoder, method: str, max_seq_len: int, dup_rate: float = 0.32,
                 repeat_both_views: bool = False, seed: int = 0):
        self.encoder, self.method, self.max_seq_len = encoder, method, max_seq_len
        self.dup_rate, self.repeat_both_views = dup_rate, repeat_both_views
        self.rng = random.Random(seed)

    def views(self, body: list[int]) -> tuple[list[int], list[int]]:
        if self.method != "esimcse":
            return body, body  # SimCSE/DiffCSE: the same tokens twice; dropout makes the difference
        second = augment.word_repetition(body, self.dup_rate, self.rng)
        first = augment.word_repetition(body, self.dup_rate, self.rng) if self.repeat_both_views else body
        return first, second

    def __call__(self, bodies: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        rows = [row for body in bodies for row in self.views(body)]  # 2B rows, interleaved
        return self.encoder.pad(rows, self.max_seq_len)  # input_ids, attention_mask: (2B, L)


def batch_indices(texts: Sequence[str], batch_size: int, generator: torch.Generator):
    """Yield one epoch of shuffled batches as index lists, identical sentences removed per batch.

    Returns the batches and the number of duplicates removed. The last batch may be smaller;
    a batch left with fewer than 2 distinct sentences is merged into the previous one.
    """
    order = torch.randperm(len(texts), generator=generator).tolist()
    batches, removed = [], 0
    for start in range(0, len(order), batch_size):
        seen, batch = set(), []
        for i in order[start:start + batch_size]:
            if texts[i] in seen:
                removed += 1
            else:
                seen.add(texts[i])
                batch.append(i)
        if len(batch) < 2 and batches:
            batches[-1].extend(i for i in batch if texts[i] not in {texts[j] for j in batches[-1]})
        elif len(batch) >= 2:
            batches.append(batch)
    return batches, removed


# ------------------------------------------------------------------------------------------------
# Building the pieces
# ------------------------------------------------------------------------------------------------

def build_objective(args: TrainingArguments, encoder: SentenceEncoder) -> SimCSE:
    """The method's module (SimCSE, ESimCSE or DiffCSE) around ``encoder``."""
    if args.method == "simcse":
        return SimCSE(encoder, args.temperature, args.margin)
    if args.method == "esimcse":
        return ESimCSE(encoder, args.temperature, args.margin, args.queue_size, args.momentum)
    from transformers import AutoModel

    generator = load_generator(args.generator or args.model, encoder)
    discriminator = AutoModel.from_pretrained(args.model, add_pooling_layer=False) \
        if _accepts_pooling_flag(args.model) else AutoModel.from_pretrained(args.model)
    return DiffCSE(encoder, generator, discriminator, args.temperature, args.margin, args.mask_ratio,
                   args.lambda_rtd, seed=args.seed)


def _accepts_pooling_flag(name_or_path: str) -> bool:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(name_or_path).model_type in ("bert", "ernie", "roberta")


def largest_batch_that_fits(objective: SimCSE, batch: dict, precision: str) -> int | None:
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


def _check_dev_pairs(dev_pairs, args: TrainingArguments) -> None:
    labels = {p[2] for p in dev_pairs}
    if len(labels) < 2 and args.metric not in ("alignment", "uniformity"):
        where = args.dev_path or "dev_pairs"
        raise ValueError(f"{where}: all {len(dev_pairs)} pairs have the label {labels.pop()}, so "
                         f"{args.metric} is undefined and no best checkpoint could be chosen. Give a dev set with "
                         "both classes (LCQMC's dev.tsv, or data/dev.tsv).")


@dataclass
class LoopState:
    """Where the loop is: what a resumed run needs besides weights and optimizer."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of the current epoch already done
    best_metric: float | None = None
    best_dir: str | None = None
    window: dict = field(default_factory=dict)  # sums of the current logging window (python floats)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------

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
    resumed run ends as the uninterrupted one would (same losses, same weights).
    """
    args = dataclasses.replace(args or TrainingArguments(), **overrides)
    if train_texts is not None and args.train_path is None:
        args.train_path = "<train_texts>"
    args.validate()

    # ---- data first: a bad file fails before any model is loaded ----
    texts = list(train_texts) if train_texts is not None else read_train_texts(args.train_path)
    if len(texts) < args.batch_size:
        raise ValueError(f"{args.train_path}: {len(texts)} sentences, fewer than one batch of {args.batch_size}. "
                         f"Use --batch_size {max(2, len(texts))} or less, or more data.")
    if dev_pairs is None and args.dev_path:
        dev_pairs = read_pairs(args.dev_path)
    if dev_pairs is not None:
        _check_dev_pairs(dev_pairs, args)

    args.model = resolve_model(args.model)
    seed_everything(args.seed)
    device = pick_device(args.device)
    precision = pick_precision(device, args.precision)

    if encoder is None:
        encoder = SentenceEncoder.from_pretrained(args.model, pooler=args.pooler, dropout=args.dropout,
                                                  mlp_only_train=args.mlp_only_train, projector=args.projector,
                                                  max_seq_len=args.max_seq_len)
    elif args.dropout is not None:
        set_dropout(encoder.backbone, args.dropout)
    encoder.check_max_seq_len(args.max_seq_len)
    encoder.max_seq_len = args.max_seq_len
    objective = build_objective(args, encoder).to(device)
    if args.method == "diffcse" and precision != "fp32":  # frozen, inference only: half precision is enough
        objective.generator.to(torch.bfloat16 if precision == "bf16" else torch.float16)
    objective.train()
    if args.torch_compile:  # in place (parameter names unchanged); dynamic: padded lengths vary per batch
        encoder.backbone.compile(dynamic=True)

    # ---- tokenize once ----
    bodies = encoder.body_ids(texts)
    limit = encoder.max_body_len(args.max_seq_len)
    truncated = sum(len(b) > limit for b in bodies)
    bodies = [b[:limit] for b in bodies]
    if truncated:
        logger.warning("%d of %d sentences are longer than max_seq_len=%d and were truncated.",
                       truncated, len(texts), args.max_seq_len)
    views = ViewBuilder(encoder, args.method, args.max_seq_len, args.dup_rate, args.repeat_both_views, args.seed)
    shuffle = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = len(batch_indices(texts, args.batch_size, torch.Generator().manual_seed(args.seed))[0])
    total_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs

    # ---- optimizer ----
    from transformers import get_linear_schedule_with_warmup

    trainable = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, weight_decay=args.weight_decay,
                                  fused=device.type in ("cuda", "cpu"))  # one kernel for all parameters
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    history = History()
    state = LoopState()
    epoch_start_shuffle = shuffle.get_state()
    if args.resume:
        saved = list_training_states(args.save_dir)
        if saved:
            trainer_state, rng = load_training_state(saved[-1], objective, optimizer, scheduler, scaler)
            state = LoopState(**trainer_state["loop"])
            history = History(**trainer_state["history"])
            torch.set_rng_state(rng["torch"])
            if device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state_all(rng["cuda"])
            views.rng.setstate(rng["views"])
            epoch_start_shuffle = rng["epoch_start_shuffle"]
            if "mask" in rng:
                objective.mask_generator(device).set_state(rng["mask"])
            logger.info("Resuming from %s (step %d of %d).", saved[-1], state.step, total_steps)
        else:
            logger.info("resume: no complete checkpoint in %s; starting from step 0.",
                        os.path.join(args.save_dir, STATE_DIR))
    img_dir = args.img_log_dir or args.save_dir
    logger.info("method=%s device=%s precision=%s steps=%d sentences=%d truncated=%d", args.method, device,
                precision, total_steps, len(texts), truncated)

    def evaluate(step: int) -> None:
        metrics = evaluate_pairs(encoder, dev_pairs, threshold=args.threshold, batch_size=args.eval_batch_size)
        record = {"step": step, **metrics}
        history.eval.append(record)
        if is_better(metrics.get(args.metric), state.best_metric, args.metric):
            state.best_metric = metrics[args.metric]
            state.best_dir = save_export(encoder, os.path.join(args.save_dir, "best"), args, history.as_dict())
        if on_evaluate:
            on_evaluate(record)

    def save_state() -> None:
        rng = {"torch": torch.get_rng_state(), "views": views.rng.getstate(),
               "epoch_start_shuffle": epoch_start_shuffle}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if isinstance(objective, DiffCSE) and objective.seed is not None:
            rng["mask"] = objective.mask_generator(device).get_state()
        loop = state.as_dict()
        loop["window"] = {k: float(v) if torch.is_tensor(v) else v for k, v in window.items() if k != "start"}
        save_training_state(args.save_dir, state.step, objective, optimizer, scheduler, scaler, rng,
                            {"loop": loop, "history": history.as_dict(), "args": dataclasses.asdict(args)},
                            keep=args.save_total_limit)

    from tqdm.auto import tqdm

    progress = tqdm(total=total_steps, initial=state.step, desc=args.method, disable=not args.progress_bar)
    restored = state.window or {}
    window = {"loss": torch.tensor(restored.get("loss", 0.0), device=device), "steps": restored.get("steps", 0),
              "sentences": restored.get("sentences", 0), "duplicates": restored.get("duplicates", 0),
              "parts": {k: torch.tensor(v, device=device) for k, v in restored.get("parts", {}).items()},
              "start": time.perf_counter()}
    first_bad_step = torch.full((), -1, dtype=torch.long, device=device)  # no host sync per step on GPU

    def check_finite() -> None:
        bad = int(first_bad_step)
        if bad >= 0:
            raise FloatingPointError(
                f"The loss became NaN or infinite at step {bad} (method={args.method}, lr={args.learning_rate}, "
                f"precision={precision}). Training stopped; checkpoints already written in {args.save_dir} are "
                "unchanged. Try a lower --learning_rate, --precision fp32, or check the data.")

    def optimizer_step(batch: dict) -> dict:
        with autocast(device, precision):
            out = objective(batch)
        scaler.scale(out["loss"]).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trainable, args.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        objective.after_optimizer_step()
        return out

    while state.step < total_steps:
        shuffle.set_state(epoch_start_shuffle)  # a resumed run redraws the same order for this epoch
        batches, removed = batch_indices(texts, args.batch_size, shuffle)
        if state.batch_in_epoch == 0:
            window["duplicates"] += removed
        for index in batches[state.batch_in_epoch:]:
            if state.step >= total_steps:
                break
            batch = {k: v.to(device, non_blocking=True) for k, v in views([bodies[i] for i in index]).items()}
            try:
                out = optimizer_step(batch)
            except torch.cuda.OutOfMemoryError:
                fits = largest_batch_that_fits(objective, batch, precision)
                advice = (f"--batch_size {fits} fits this batch's forward and backward pass (checked after the "
                          "error); leave some room for the optimizer" if fits else "even 2 sentences do not fit")
                raise RuntimeError(
                    f"CUDA ran out of memory at step {state.step + 1} with batch_size={args.batch_size} "
                    f"(rows padded to {batch['input_ids'].shape[1]} tokens): {advice}. A smaller --max_seq_len "
                    f"also helps. Checkpoints in {args.save_dir} are unchanged.") from None
            state.step += 1
            state.batch_in_epoch += 1

            detached = out["loss"].detach()
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(detached),
                                         torch.full_like(first_bad_step, state.step), first_bad_step)
            window["loss"] += detached.float()
            for name in ("contrastive", "rtd"):
                if name in out:
                    window["parts"][name] = window["parts"].get(name, 0) + out[name].float()
            window["steps"] += 1
            window["sentences"] += len(index)
            progress.update(1)
            if device.type == "cpu":
                check_finite()  # free on the CPU: stop at once

            step = state.step
            if step % args.logging_steps == 0 or step == total_steps:
                check_finite()
                elapsed = time.perf_counter() - window["start"]
                record = {"step": step, "epoch": state.epoch + 1, "loss": float(window["loss"]) / window["steps"],
                          **{k: float(v) / window["steps"] for k, v in window["parts"].items()},
                          "learning_rate": scheduler.get_last_lr()[0],
                          "steps_per_s": window["steps"] / elapsed, "sentences_per_s": window["sentences"] / elapsed,
                          "duplicates_removed": window["duplicates"], "truncated": truncated}
                history.log.append(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}")
                if on_log:
                    on_log(record)
                window.update(loss=torch.zeros((), device=device), steps=0, sentences=0, duplicates=0, parts={},
                              start=time.perf_counter())
            if dev_pairs is not None and (step % args.valid_steps == 0 or step == total_steps):
                check_finite()
                evaluate(step)
            if args.save_steps > 0 and (step % args.save_steps == 0 or step == total_steps):
                check_finite()
                save_state()
        if state.batch_in_epoch >= len(batches):
            state.epoch += 1
            state.batch_in_epoch = 0
            epoch_start_shuffle = shuffle.get_state()
    progress.close()

    last_dir = save_export(encoder, os.path.join(args.save_dir, "last"), args, history.as_dict())
    if state.best_dir is not None:  # the best export's history stops at its step; store the full one too
        with open(os.path.join(state.best_dir, "history_full.json"), "w", encoding="utf-8") as f:
            json.dump(history.as_dict(), f, indent=2, ensure_ascii=False)
    os.makedirs(img_dir, exist_ok=True)
    shutil.copyfile(os.path.join(last_dir, "curves.png"), os.path.join(img_dir, args.img_log_name))
    encoder.eval()
    return TrainResult(encoder=encoder, history=history.as_dict(), best_dir=state.best_dir, last_dir=last_dir,
                       best_metric=state.best_metric)


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """One flag per field of :class:`TrainingArguments` (``--name value``; booleans ``--x/--no-x``)."""
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(TrainingArguments):
        flag = f"--{f.name}"
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), None)
            if kind is None:
                kind = float if "float" in str(f.type) else int if str(f.type).startswith("int") else str
            choices = {"method": METHODS, "pooler": POOLERS, "projector": PROJECTORS,
                       "precision": PRECISIONS}.get(f.name)
            parser.add_argument(flag, type=kind, default=f.default, choices=choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = TrainingArguments(**vars(build_parser().parse_args(argv)))
    try:
        result = train(args, on_log=lambda r: logger.info(
            "step %d loss %.4f lr %.2e %.1f steps/s %.0f sentences/s", r["step"], r["loss"], r["learning_rate"],
            r["steps_per_s"], r["sentences_per_s"]),
            on_evaluate=lambda r: logger.info("step %d eval %s", r["step"], {
                k: round(v, 4) for k, v in r.items() if isinstance(v, float)}))
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved: {result.last_dir}" + (f" (best {args.metric} {result.best_metric:.4f}: {result.best_dir})"
                                          if result.best_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
