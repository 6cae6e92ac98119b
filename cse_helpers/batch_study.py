"""Notebook 1's batch-size study: more negatives per batch, and what they cost in memory.

For each batch size B, SimCSE is trained with gradient caching (``mini_batch_size`` M: the loss of
all B sentences, the activations of M at a time) for the same number of steps, from the same start
and seed; then the dev pairs are scored. Beside it, two steps of the same batch without caching
measure what B costs when the whole batch goes through the encoder at once, and two steps with
caching what it costs with it.

What to read in the result:

- ``first_loss`` next to ``log_b``: with more candidates the task is harder, so the loss is larger
  (log B is its value for an encoder that cannot tell sentences apart): loss values of different B
  are not comparable with each other;
- ``spearman`` with its bootstrap interval, and the paired difference to the smallest batch: a
  larger batch also sees more sentences in the same number of steps, so this is "more negatives and
  more data", the way a learner with a fixed time budget meets it;
- ``peak_mib_plain`` against ``peak_mib_cached``: without caching, memory grows with B; with it,
  memory stays near that of M sentences.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Sequence

from .evaluate import bootstrap_spearman_difference, evaluate_pairs
from .memory import PeakMemory


def peak_memory_of_steps(course, batch_size: int, mini_batch_size: int, steps: int = 2) -> float | None:
    """MiB that ``steps`` SimCSE steps of ``batch_size`` take (the RSS increase on the CPU, the peak of
    allocated memory on a GPU), or None when they do not fit in the GPU's memory; nothing is kept."""
    from .train import OutOfMemoryError

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


def batch_size_study(course, sizes: Sequence[int], mini_batch_size: int, steps: int) -> list[dict]:
    """Train SimCSE ``steps`` steps at each batch size of ``sizes`` (gradient caching, ``mini_batch_size``
    sentences at a time); one record per size: losses, dev Spearman and its interval, the paired gain
    over the smallest size, the time, and the memory of two steps with and without caching."""
    rows, labels = [], [label for _, _, label in course.dev_pairs]
    peak_memory_of_steps(course, sizes[0], 0)  # a first run allocates what every later run reuses
    for batch_size in sizes:
        save_dir = os.path.join(course.runs_dir, "batch_size", f"b{batch_size}")
        start = time.perf_counter()
        result = course.train("simcse", batch_size=batch_size, mini_batch_size=mini_batch_size, max_steps=steps,
                              valid_steps=10**9, logging_steps=1, save_dir=save_dir, overwrite_save_dir=True)
        seconds = time.perf_counter() - start
        log = result.history["log"]
        rows.append({"batch_size": batch_size, "log_b": math.log(batch_size), "first_loss": log[0]["loss"],
                     "sentences_seen": batch_size * steps, "seconds": seconds,
                     "peak_mib_cached": peak_memory_of_steps(course, batch_size, mini_batch_size),
                     "peak_mib_plain": peak_memory_of_steps(course, batch_size, 0),
                     **evaluate_pairs(result.encoder, course.dev_pairs, batch_size=course.eval_batch_size,
                                      return_scores=True, by_group=False)})
    smallest = rows[0]
    for row in rows:  # the paired difference to the smallest batch: the same pairs, resampled together
        low, high = bootstrap_spearman_difference(smallest["scores"], row["scores"], labels)
        row["gain_vs_smallest"] = (row["spearman"] - smallest["spearman"], low, high)
    return rows
