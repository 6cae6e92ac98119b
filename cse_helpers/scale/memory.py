"""Peak memory of a block of code: what a larger batch costs (the benchmarks and notebook 1 use it).

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
