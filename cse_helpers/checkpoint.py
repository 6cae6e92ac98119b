"""Checkpoints: the exported model (``best``/``last``) and the resumable training state.

Two kinds of directory, both written atomically (into ``NAME.tmp``, then renamed), so a run that
is killed half-way through a write (a Colab disconnect) never leaves a half checkpoint under the
real name:

- an **export** (``save_dir/best``, ``save_dir/last``): ``save_pretrained`` output (safetensors and
  tokenizer, loadable by ``AutoModel``), ``training_args.json``, ``history.json``, ``curves.png``.
- a **training state** (``save_dir/checkpoints/step-000200``): everything needed to continue as if
  nothing happened: the weights of every trained module (encoder, head, ESimCSE's momentum encoder,
  DiffCSE's discriminator), the ESimCSE queue, optimizer, scheduler, GradScaler, the random number
  generators, the step, the position in the epoch and the metric history. The newest K are kept.

Loading uses ``safetensors`` and ``torch.load(weights_only=True)`` only: no pickled code is ever
executed, and ``trust_remote_code`` is never turned on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil

import torch

logger = logging.getLogger(__name__)

STATE_DIR = "checkpoints"
STATE_FILES = ("trainer_state.json", "modules.safetensors", "optimizer.pt", "rng.pt")
_STEP_DIR = re.compile(r"^step-(\d+)$")


@contextlib.contextmanager
def atomic_directory(path: str):
    """Yield a temporary directory that replaces ``path`` only when the block finishes without error."""
    path = os.path.abspath(path)
    tmp, old = f"{path}.tmp", f"{path}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def save_export(encoder, save_dir: str, args, history: dict) -> str:
    """Write a model export (see the module docstring) to ``save_dir``; return it."""
    import matplotlib.pyplot as plt

    from .plots import plot_history

    with atomic_directory(save_dir) as tmp:
        encoder.save_pretrained(tmp)
        _write_json(os.path.join(tmp, "training_args.json"), dataclasses.asdict(args))
        _write_json(os.path.join(tmp, "history.json"), history)
        figure = plot_history(history)
        figure.savefig(os.path.join(tmp, "curves.png"), dpi=100)
        plt.close(figure)
    return save_dir


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------------------------
# Resumable training state
# ------------------------------------------------------------------------------------------------

def trained_state(objective: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The objective's weights and buffers, without the frozen DiffCSE generator (it never changes)."""
    return {k: v.detach().contiguous().cpu() for k, v in objective.state_dict().items()
            if not k.startswith("generator.")}


def save_training_state(save_dir: str, step: int, objective, optimizer, scheduler, scaler, rng: dict,
                        trainer_state: dict, keep: int = 2) -> str:
    """Write ``save_dir/checkpoints/step-NNNNNN`` atomically and keep only the newest ``keep``."""
    from safetensors.torch import save_file

    path = os.path.join(save_dir, STATE_DIR, f"step-{step:06d}")
    with atomic_directory(path) as tmp:
        tensors = trained_state(objective)
        queue = getattr(objective, "queue", None)
        if queue is not None and len(queue):
            tensors["queue.embeddings"] = queue.embeddings.detach().cpu().contiguous()
        save_file(tensors, os.path.join(tmp, "modules.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict()}, os.path.join(tmp, "optimizer.pt"))
        torch.save(rng, os.path.join(tmp, "rng.pt"))
        _write_json(os.path.join(tmp, "trainer_state.json"), {"step": step, **trainer_state})
    for old in list_training_states(save_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return path


def list_training_states(save_dir: str) -> list[str]:
    """Complete training-state directories in ``save_dir``, oldest first.

    A directory still named ``*.tmp`` (a write that never finished) or missing one of its files is
    skipped, with a log message saying so.
    """
    root = os.path.join(save_dir, STATE_DIR)
    if not os.path.isdir(root):
        return []
    found = []
    for name in sorted(os.listdir(root)):
        full = os.path.join(root, name)
        match = _STEP_DIR.match(name)
        if not match:
            if name.endswith(".tmp"):
                logger.warning("Skipping %s: a checkpoint whose writing never finished.", full)
            continue
        missing = [f for f in STATE_FILES if not os.path.isfile(os.path.join(full, f))]
        if missing:
            logger.warning("Skipping %s: incomplete checkpoint (missing %s).", full, ", ".join(missing))
            continue
        found.append((int(match.group(1)), full))
    return [path for _, path in sorted(found)]


def load_training_state(path: str, objective, optimizer, scheduler, scaler) -> tuple[dict, dict]:
    """Restore everything :func:`save_training_state` wrote; return ``(trainer_state, rng)``."""
    from safetensors.torch import load_file

    tensors = load_file(os.path.join(path, "modules.safetensors"))
    queue = tensors.pop("queue.embeddings", None)
    missing, unexpected = objective.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.startswith("generator.")]
    if missing or unexpected:
        raise ValueError(f"{path} does not match this run's model (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}): resume with the same --model and --method, or use a new --save_dir.")
    if queue is not None:
        objective.queue.embeddings = queue.to(next(objective.parameters()).device)
    states = torch.load(os.path.join(path, "optimizer.pt"), weights_only=True, map_location="cpu")
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    scaler.load_state_dict(states["scaler"])
    rng = torch.load(os.path.join(path, "rng.pt"), weights_only=True, map_location="cpu")
    with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as f:
        return json.load(f), rng
