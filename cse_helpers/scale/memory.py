"""Memory: the peak of a block of code (what a larger batch costs; the benchmarks and notebook 1 use it), and
after an out-of-memory error, the largest batch that fits (:func:`largest_batch_that_fits`).

On a GPU it is ``torch.cuda.max_memory_allocated`` (the tensors' bytes: what decides an out-of-memory
error). On the CPU it is the process's resident memory (RSS), sampled every 20 ms by a thread, since
the CPU has no peak counter that can be reset; memory that earlier code freed is handed back to the
operating system first, so ``peak_mib - start_mib`` is the block's own increase.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading

import torch

from ..runtime import autocast


class PeakMemory:
    """Peak memory while the block runs: CUDA max_memory_allocated, or the process RSS (sampled)."""

    def __init__(self, device: torch.device, interval: float = 0.02):
        self.device, self.interval = device, interval
        self.peak_mib = self.start_mib = float("nan")

    @staticmethod
    def rss_mib() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):  # not Linux: the high-water mark since the process started
            import resource
            scale = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20

    @staticmethod
    def release_freed_memory() -> None:
        """Give memory that earlier loops freed back to the OS, so each loop's increase is its own."""
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages otherwise
        except (OSError, AttributeError):
            pass

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mib = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        self.release_freed_memory()
        self.start_mib = self.peak_mib = self.rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, self.rss_mib())

    @property
    def used_mib(self) -> float:
        """What a batch size costs, as the course reports it: on a GPU the peak of allocated memory (the
        model and its optimizer included: what must fit on the card); on the CPU the RSS increase over
        the block (the process's own baseline, imports and all, left out)."""
        return self.peak_mib if self.device.type == "cuda" else self.peak_mib - self.start_mib

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mib = max(self.peak_mib, self.rss_mib())
        return False


def largest_batch_that_fits(objective: torch.nn.Module, batch: dict, precision: str) -> int | None:
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


def out_of_memory_advice(objective: torch.nn.Module, batch: dict, precision: str, batch_size: int) -> str:
    """What to do after an out-of-memory error on ``batch``: the batch size that fits (:func:`largest_batch_that_fits`),
    or gradient caching to keep the batch."""
    fits = largest_batch_that_fits(objective, batch, precision)
    if not fits:
        return "even 2 sentences do not fit"
    return (f"--batch_size {fits} fits this batch's forward and backward pass (checked after the error); leave some "
            "room for the optimizer. To keep the batch (its negatives), use gradient caching instead: --batch_size "
            f"{batch_size} --mini_batch_size {fits}")
