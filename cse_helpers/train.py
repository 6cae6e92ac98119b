"""The training loop shared by the notebooks and the command line.

    python -m cse_helpers.train --method simcse --model nghuyong/ernie-3.0-base-zh \\
        --train_path data/train.txt --dev_path data/dev.tsv --save_dir runs/simcse

What one step does (the same for every method):

1. take B sentences (identical sentences inside the batch are removed first: they would be each
   other's false negatives), build two views of each (ESimCSE: words repeated in the second view),
   pad the 2B rows together to the longest one (dynamic padding; :mod:`cse_helpers.batches`);
2. one forward pass of the 2B rows in train mode (dropout on: that is SimCSE's augmentation) and the
   objective's loss (InfoNCE; + lambda * RTD for DiffCSE), then backward -- or, with
   ``--mini_batch_size M``, the same loss and gradient from M sentences at a time (gradient caching,
   ``cse_helpers.scale.grad_cache``, which enters :meth:`Trainer.step` through one seam only when asked);
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

Before anything is loaded, every setting is checked (:mod:`cse_helpers.arguments`), the data is read
and checked, and the save folder is checked once (:mod:`cse_helpers.preflight`): writable, and either
empty, or holding this same run (``--resume``), or replaced on request (``--overwrite_save_dir``).
Before the first step, the free space is checked. A mistake ends in one paragraph that says what was
wrong and what to do (no traceback on the command line).
"""


import dataclasses
import faulthandler
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .arguments import TrainingArguments, build_parser
from .batches import ViewBuilder, batch_indices, check_token_rows, tokenize_for_training
from .checkpoint import (
    STATE_DIR,
    CheckpointError,
    check_free_space,
    clear_run,
    load_newest_training_state,
    save_export,
    save_training_state,
    space_needed,
)
from .encoder import SentenceEncoder, set_dropout
from .evaluate import evaluate_pairs, is_better
from .loop_state import History, LogWindow, LoopState
from .objectives import Objective, objective_class
from .preflight import check_model_paths, fingerprint, plan_save_dir, read_data, texts_source
from .runtime import autocast, pick_device, pick_precision, seed_everything, to_device
from .scale.distributed import Ranks, launched_by_torchrun
from .scale.memory import out_of_memory_advice
from .scale.step import scaled_step

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """A run that cannot go on; the message says what to do."""


class OutOfMemoryError(TrainingError):
    """The GPU ran out of memory; the message says which batch fits (checked after the error)."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained encoder, its history and where its exports are."""

    encoder: SentenceEncoder
    history: dict
    best_dir: str | None
    last_dir: str
    best_metric: float | None = None
    #: the trained model's cosine for each dev pair (from the evaluation at the last step); None without dev pairs
    final_scores: list[float] | None = None
    #: the trained objective around ``encoder`` (DiffCSE: with its discriminator, to probe it after training)
    objective: Objective | None = None


def build_objective(args: TrainingArguments, encoder: SentenceEncoder) -> Objective:
    """The method's objective (``cse_helpers.objectives.OBJECTIVES``) around ``encoder``."""
    return objective_class(args.method).from_args(args, encoder)


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
    batch's. Only rank 0 logs, evaluates and saves; the others wait for it. Several processes or
    ``mini_batch_size`` enter :meth:`step` through one seam, ``scaled`` (:mod:`cse_helpers.scale.step`).
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
        self.views = ViewBuilder(self.encoder, args.max_seq_len, objective.repeats_words, args.dup_rate,
                                 args.repeat_both_views, args.seed, args.repetition)
        self.shuffle = torch.Generator().manual_seed(args.seed)
        self.epoch_start_shuffle = self.shuffle.get_state()  # the order of the current epoch is drawn from it
        self.min_batch = max(2, self.ranks.world_size)  # each process needs a sentence of every batch
        steps_per_epoch = len(batch_indices(self.keys, args.batch_size, torch.Generator().manual_seed(args.seed),
                                            self.min_batch)[0])
        self.total_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs
        self._build_optimizer()
        # the one seam of cse_helpers.scale: gradient caching and/or several processes, only when the run asks
        # for them (else None: the plain step)
        self.scaled = scaled_step(objective, self.trainable, self.ranks, args.batch_size, args.mini_batch_size,
                                  self.precision, self.scaler.scale)
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
        rows = self.views.rows(bodies)  # 1. two views of each sentence: 2B rows a1 a2 b1 b2 ... (token ids)
        rows = self.scaled.share(rows) if self.scaled else rows  # (several processes: this process's share)
        batch = to_device(self.encoder.pad(rows, self.args.max_seq_len), self.device)  # (2B, L), padded to the longest
        try:
            if self.scaled is None:  # 2. one forward pass of the 2B rows (dropout on), the loss, its backward pass
                with autocast(self.device, self.precision):
                    out = self.objective(batch)  # {"loss", "contrastive", the objective's other parts}
                self.scaler.scale(out["loss"]).backward()  # (fp16: the loss scaled up, so small gradients survive)
            else:  # ... or the same loss and gradient M sentences at a time, and/or from several processes
                out = self.scaled.forward_backward(batch)
            self.scaler.unscale_(self.optimizer)  # 3. (fp16: the gradients scaled back down)
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
            self.ranks.main_then_wait(self.evaluate)  # the other processes wait for it (and its 'best' export)
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
        advice = out_of_memory_advice(self.objective, batch, self.precision, self.args.batch_size)
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
        rng = self.ranks.gather_random_states(self.rng_state())
        loop = {**self.state.as_dict(), "window": self.window.state()}
        trainer_state = {"loop": loop, "history": self.history.as_dict(), "args": dataclasses.asdict(args),
                         "data": self.data}
        self.ranks.main_then_wait(lambda: save_training_state(
            args.save_dir, self.state.step, self.objective, self.optimizer, self.scheduler, self.scaler, rng,
            trainer_state, keep=args.save_total_limit))

    def resume(self, paths: Sequence[str]) -> None:
        """Continue from the newest readable training state of ``paths`` (oldest first)."""
        path, trainer_state, rng = load_newest_training_state(list(paths), self.objective, self.optimizer,
                                                              self.scheduler, self.scaler)
        self.state = LoopState(**trainer_state["loop"])
        self.history = History(**trainer_state["history"])
        self.set_rng_state(self.ranks.own_random_states(rng))
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
        self.ranks.main_then_wait(self._clear_save_dir)

    def _clear_save_dir(self) -> None:
        """Delete the earlier run's exports (and, with ``overwrite_save_dir``, its training states)."""
        gone = clear_run(self.args.save_dir, exports_only=not self.args.overwrite_save_dir)
        if gone:
            logger.warning("Starting a new run in %s: deleted the earlier run's %s.", self.args.save_dir,
                           ", ".join(os.path.basename(p) for p in gone))

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
    args.validate()
    if train_texts is None and args.train_path is None:
        raise ValueError("No training data: pass --train_path (one sentence per line), e.g. data/train.txt, or "
                         "train_texts= in Python.")
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
    keys = check_token_rows(encoder, texts, bodies, texts_source(args, train_texts))  # identical rows share a key
    trainer = Trainer(args, objective, bodies, keys, dev_pairs=dev_pairs, data=data, truncated=truncated,
                      on_log=on_log, on_evaluate=on_evaluate, ranks=ranks)
    return trainer.fit(resume_from)


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
