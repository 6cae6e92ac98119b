"""Notebook 1's batch-size study: more negatives per batch at an equal number of sentences, and their memory.

For each batch size B, SimCSE is trained with gradient caching (``mini_batch_size`` M: the loss of
all B sentences, the activations of M at a time) from the same start and seed, on the same number of
sentences at every B (``sentences``: ``sentences // B`` steps each, so a larger batch takes fewer
steps); then the dev pairs are scored. Beside it, two steps of the same batch without caching
measure what B costs when the whole batch goes through the encoder at once, and two steps with
caching what it costs with it.

What to read in the result:

- ``first_loss`` next to ``log_b``: with more candidates the task is harder, so the loss is larger.
  log B is the loss of an encoder that cannot tell sentences apart (all embeddings identical); a
  pretrained encoder starts far below it. Loss values of different B are not comparable with each other;
- ``spearman`` with its bootstrap interval, and the paired difference to the smallest batch: every B
  saw the same sentences' worth of data, so the batches differ in how many negatives each step has
  and how many steps they took, at one learning rate (not tuned per B);
- ``peak_mib_plain`` against ``peak_mib_cached`` (``memory_measure`` says what was measured: the RSS
  increase on the CPU, the peak of allocated memory on a GPU): without caching, memory grows with B;
  with it, memory stays near that of M sentences.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence

from ..evaluate import bootstrap_spearman_difference, evaluate_pairs
from ..scale.memory import PeakMemory
from .results import run_key


def memory_measure(device) -> str:
    """What :func:`peak_memory_of_steps` measures on ``device``, in the words the tables and figures use."""
    return "peak of allocated GPU memory" if device.type == "cuda" else "increase of the process's RSS"


def peak_memory_of_steps(course, batch_size: int, mini_batch_size: int, steps: int = 2) -> float | None:
    """MiB that ``steps`` SimCSE steps of ``batch_size`` take (the RSS increase on the CPU, the peak of
    allocated memory on a GPU), or None when they do not fit in the GPU's memory; nothing is kept."""
    from ..train import OutOfMemoryError

    save_dir = os.path.join(course.runs_dir, "batch_size", "memory")
    try:
        with PeakMemory(course.device) as memory:
            course.train("simcse", batch_size=batch_size, mini_batch_size=mini_batch_size, max_steps=steps,
                         valid_steps=10**9, logging_steps=steps, save_dir=save_dir, overwrite_save_dir=True)
    except OutOfMemoryError:
        return None
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)
        if course.device.type == "cuda":
            import torch
            torch.cuda.empty_cache()
    return memory.used_mib


def batch_size_study(course, sizes: Sequence[int], mini_batch_size: int, sentences: int | None = None,
                     steps: int | None = None) -> list[dict]:
    """Train SimCSE at each batch size of ``sizes`` (gradient caching, ``mini_batch_size`` sentences at a time)
    on ``sentences`` sentences each (``sentences // B`` steps; or, with ``steps``, the same steps at every B);
    one record per size: losses, dev Spearman and its interval, the paired gain over the smallest size, the
    time, the memory of two steps with and without caching, and ``key``, the run's name in the recorded
    seeds (:func:`cse_helpers.classroom.results.run_key`)."""
    if (sentences is None) == (steps is None):
        raise ValueError(f"give either sentences (the same data at every B) or steps, not {sentences=} and {steps=}.")
    rows, labels = [], [label for _, _, label in course.dev_pairs]
    peak_memory_of_steps(course, sizes[0], 0)  # a first run allocates what every later run reuses
    for batch_size in sizes:
        max_steps = steps if steps is not None else sentences // batch_size
        if max_steps < 1:
            raise ValueError(f"sentences={sentences} is less than one batch of {batch_size}.")
        changes = {"batch_size": batch_size, "max_steps": max_steps, "mini_batch_size": mini_batch_size}
        save_dir = os.path.join(course.runs_dir, "batch_size", f"b{batch_size}")
        start = time.perf_counter()
        result = course.train("simcse", **changes, valid_steps=10**9, logging_steps=1, save_dir=save_dir,
                              overwrite_save_dir=True)
        seconds = time.perf_counter() - start
        log = result.history["log"]
        rows.append({"batch_size": batch_size, "steps": max_steps, "log_b": math.log(batch_size),
                     "first_loss": log[0]["loss"], "sentences_seen": batch_size * max_steps, "seconds": seconds,
                     "key": run_key("simcse", changes), "memory_measure": memory_measure(course.device),
                     "peak_mib_cached": peak_memory_of_steps(course, batch_size, mini_batch_size),
                     "peak_mib_plain": peak_memory_of_steps(course, batch_size, 0),
                     **evaluate_pairs(result.encoder, course.dev_pairs, batch_size=course.eval_batch_size,
                                      return_scores=True, by_group=False)})
    smallest = rows[0]
    for row in rows:  # the paired difference to the smallest batch: the same pairs, resampled together
        low, high = bootstrap_spearman_difference(smallest["scores"], row["scores"], labels)
        row["gain_vs_smallest"] = (row["spearman"] - smallest["spearman"], low, high)
    return rows
