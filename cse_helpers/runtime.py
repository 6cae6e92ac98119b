"""Where and how a run computes: seeding, device and numeric precision.

Precision policy (automatic, overridable with ``precision=``):

- CUDA GPU of compute capability 8.0 or more (A100, H100, L4, RTX 30xx+): bf16 autocast.
- Older CUDA GPU (Colab's T4 is 7.5): fp16 autocast with a GradScaler. ``torch.cuda.is_bf16_supported()``
  answers yes on a T4 through slow emulation, so the compute capability decides, not that call.
- CPU: fp32.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def pick_device(device: str | None = None) -> torch.device:
    """``None``/"auto" -> CUDA when present, else CPU. An explicit CUDA device that is absent is an error."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is visible. Use --device cpu (or omit --device); "
                         "on Colab: Runtime > Change runtime type > GPU.")
    return chosen


def pick_precision(device: torch.device, precision: str = "auto") -> str:
    """Return "bf16", "fp16" or "fp32" following the policy in the module docstring."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}.")
    if precision != "auto":
        if precision != "fp32" and device.type != "cuda":
            raise ValueError(f"precision={precision!r} needs a CUDA GPU; on {device.type} use fp32 (or auto).")
        return precision
    if device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast(device: torch.device, precision: str):
    """The autocast context for a precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Every tensor of a batch (``input_ids``, ``attention_mask``, ...) moved to ``device``.

    ``non_blocking``: from pinned memory the copy overlaps with the GPU's work; elsewhere it is a
    plain copy."""
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}
