"""The checks before anything is loaded: the data, the model's paths, the save folder.

A wrong file, a dev set that cannot pick a best checkpoint, a missing model or a save folder that
holds another run should not cost a model download: :func:`cse_helpers.train.train` runs these first.
Each mistake ends in a message that says what was wrong and what to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence

from .arguments import CLASSIFICATION_METRICS, RUN_DEFINING, TrainingArguments
from .checkpoint import (
    STATE_DIR,
    CheckpointError,
    DamagedCheckpointError,
    check_writable,
    list_training_states,
    read_trainer_state,
)
from .data import DataFormatError, read_pairs, read_train_texts
from .encoder import SentenceEncoder, check_model_path, resolve_model
from .objectives import objective_class

logger = logging.getLogger(__name__)


def read_data(args: TrainingArguments, train_texts: Sequence[str] | None, dev_pairs: Sequence[tuple] | None
              ) -> tuple[Sequence[str], Sequence[tuple] | None]:
    """The training sentences and dev pairs (given, or read from ``train_path`` / ``dev_path``), checked."""
    texts = train_texts if train_texts is not None else read_train_texts(args.train_path)
    check_train_texts(texts, args.batch_size, texts_source(args, train_texts))
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


def texts_source(args: TrainingArguments, train_texts: Sequence[str] | None) -> str:
    """Where the training sentences come from, for messages: ``"train_texts"`` when they were given in Python
    (they take the place of ``--train_path``), else the file."""
    return "train_texts" if train_texts is not None else args.train_path


def check_train_texts(texts: Sequence[str], batch_size: int, where: str) -> None:
    """At least 2 different sentences, and at least one batch of them (``where``: the file, or "train_texts")."""
    distinct = len(set(texts))
    if distinct < 2:
        problem = (f"one sentence ({texts[0][:40]!r})" if len(texts) == 1 else
                   f"{len(texts)} sentences, all the same ({texts[0][:40]!r})")
        raise DataFormatError(where, None, f"{problem}: contrastive learning needs at least 2 different "
                              "sentences (the other sentences of a batch are the negatives).",
                              "Give more sentences, one per line.")
    if len(texts) < batch_size:
        raise ValueError(f"{where}: {len(texts)} sentences, fewer than one batch of {batch_size}. "
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
