"""Checkpoints: the exported model (``best``/``last``) and the resumable training state.

Two kinds of directory, both written atomically (into ``NAME.tmp``, then renamed), so a run that
is killed half-way through a write (a Colab disconnect) never leaves a half checkpoint under the
real name:

- an **export** (``save_dir/best``, ``save_dir/last``): ``save_pretrained`` output (safetensors and
  tokenizer, loadable by ``AutoModel``), ``training_args.json``, ``history.json``, ``curves.png``.
- a **training state** (``save_dir/checkpoints/step-000200``): everything needed to continue as if
  nothing happened: the weights of every trained module of the objective (the encoder, its head and
  whatever else the method trains; frozen modules are left out), the objective's extra state
  (``Objective.extra_state``), optimizer, scheduler, GradScaler, the random number generators (the
  objective's own among them), the step, the position in the epoch and the metric history. The
  newest K are kept.

Loading uses ``safetensors`` and ``torch.load(weights_only=True)`` only: no pickled code is ever
executed, and ``trust_remote_code`` is never turned on.

What can go wrong with a save folder is checked before training starts (:func:`check_writable`,
:func:`check_free_space`); a write that fails later (a full disk) keeps the older checkpoint and
says so; a damaged newest training state is skipped for the older one (:func:`load_newest_training_state`).
Each of these ends in a :class:`CheckpointError` that names the folder or file and what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile

import torch

logger = logging.getLogger(__name__)

STATE_DIR = "checkpoints"
EXPORTS = ("best", "last")
STATE_FILES = ("trainer_state.json", "modules.safetensors", "optimizer.pt", "rng.pt")
_STEP_DIR = re.compile(r"^step-(\d+)$")
_MB = 2**20


class CheckpointError(RuntimeError):
    """A save folder that cannot be used, or a checkpoint that cannot be written or read.

    The message names the folder or file and says what to do; the command line prints it without
    a traceback."""


class DamagedCheckpointError(CheckpointError):
    """One file of a training state cannot be read (cut off by a disconnect or a full disk)."""

    def __init__(self, file: str, error: Exception):
        self.file = file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        super().__init__(f"{file} cannot be read ({type(error).__name__}: {first}).")


# ------------------------------------------------------------------------------------------------
# The save folder, checked before training
# ------------------------------------------------------------------------------------------------

def check_writable(save_dir: str) -> None:
    """Create ``save_dir`` if needed and write a small file in it; CheckpointError if that fails."""
    try:
        os.makedirs(save_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=save_dir, prefix=".write-test-") as f:
            f.write(b"x")
            f.flush()
    except OSError as e:
        raise CheckpointError(f"Cannot write to the save folder {save_dir} ({e.strerror or e}). Choose another "
                              "--save_dir (on Colab, a folder of the mounted Google Drive or /content).") from None


def tree_bytes(path: str) -> int:
    """The size of the files under ``path`` (0 when it does not exist)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def state_bytes(module: torch.nn.Module, skip_prefixes: tuple[str, ...] = ()) -> int:
    """Bytes of a module's weights and buffers as saved (``skip_prefixes``: leave out those names)."""
    return sum(v.numel() * v.element_size() for k, v in module.state_dict().items() if not k.startswith(skip_prefixes))


def space_needed(encoder, objective, trainable: list, save_states: bool, keep: int) -> int:
    """Bytes a run may hold in its save folder at the worst moment.

    Exports: ``best`` and ``last``, plus a third copy while one of them is rewritten (written beside
    the old one, then renamed); each the encoder's weights plus tokenizer files (16 MB allowed).
    Training states (``save_steps`` > 0): ``keep`` plus the one being written; each the trained
    weights (:func:`trained_state`) plus AdamW's two moments of every trainable parameter.
    """
    export = state_bytes(encoder) + 16 * _MB
    if not save_states:
        return 3 * export
    adam = 2 * sum(p.numel() * 4 for p in trainable)
    return 3 * export + (keep + 1) * (state_bytes(objective, objective.frozen_prefixes) + adam + _MB)


def check_free_space(save_dir: str, needed: int, what: str = "") -> None:
    """CheckpointError when the disk of ``save_dir`` has less room than ``needed`` bytes, counting the
    room that this folder's own checkpoints and exports take now (they are replaced as the run goes)."""
    reusable = sum(tree_bytes(os.path.join(save_dir, name)) for name in (STATE_DIR, *EXPORTS))
    free = shutil.disk_usage(save_dir).free
    if free + reusable < needed:
        raise CheckpointError(
            f"The save folder {save_dir} has {free / _MB:.0f} MB free, but this run writes up to {needed / _MB:.0f} "
            f"MB there{f' ({what})' if what else ''}. Free some space, choose another --save_dir, or lower "
            "--save_total_limit.")


def clear_run(save_dir: str, exports_only: bool = False) -> list[str]:
    """Delete the exports (and, unless ``exports_only``, the training states) of the run in ``save_dir``,
    with the leftovers of interrupted writes (``*.tmp``, ``*.old``); return what was deleted."""
    names = list(EXPORTS) + ([] if exports_only else [STATE_DIR])
    gone = []
    for name in names:
        for path in (os.path.join(save_dir, name + suffix) for suffix in ("", ".tmp", ".old")):
            if os.path.lexists(path):
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
                gone.append(path)
    return gone


def _write_failed(path: str, error: OSError, kept: str) -> CheckpointError:
    return CheckpointError(f"Could not write {path} ({error.strerror or error}). {kept} Free some space (or choose "
                           "another --save_dir) and run the same command again with --resume.")


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
    """Write a model export (see the module docstring) to ``save_dir``; return it.

    A failed write (a full disk) leaves an older export of that name as it was and raises
    CheckpointError."""
    import matplotlib.pyplot as plt

    from .classroom.plots import plot_history

    try:
        with atomic_directory(save_dir) as tmp:
            encoder.save_pretrained(tmp)
            _write_json(os.path.join(tmp, "training_args.json"), dataclasses.asdict(args))
            _write_json(os.path.join(tmp, "history.json"), history)
            figure = plot_history(history)
            figure.savefig(os.path.join(tmp, "curves.png"), dpi=100)
            plt.close(figure)
    except OSError as e:
        kept = f"The previous {save_dir} is kept as it was." if os.path.isdir(save_dir) else ""
        raise _write_failed(save_dir, e, kept) from None
    return save_dir


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------------------------
# Resumable training state
# ------------------------------------------------------------------------------------------------

def trained_state(objective) -> dict[str, torch.Tensor]:
    """The objective's weights and buffers, without its frozen modules (``frozen_prefixes``: they never change)."""
    return {k: v.detach().contiguous().cpu() for k, v in objective.state_dict().items()
            if not k.startswith(objective.frozen_prefixes)}


def save_training_state(save_dir: str, step: int, objective, optimizer, scheduler, scaler, rng: dict,
                        trainer_state: dict, keep: int = 2) -> str:
    """Write ``save_dir/checkpoints/step-NNNNNN`` atomically and keep only the newest ``keep``."""
    from safetensors.torch import save_file

    path = os.path.join(save_dir, STATE_DIR, f"step-{step:06d}")
    try:
        with atomic_directory(path) as tmp:
            tensors = {**trained_state(objective), **objective.extra_state()}
            save_file(tensors, os.path.join(tmp, "modules.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict()}, os.path.join(tmp, "optimizer.pt"))
            torch.save(rng, os.path.join(tmp, "rng.pt"))
            _write_json(os.path.join(tmp, "trainer_state.json"), {"step": step, **trainer_state})
    except OSError as e:
        older = [p for p in list_training_states(save_dir) if p != path]
        kept = (f"The older checkpoint {older[-1]} is kept; nothing was deleted." if older else
                "No older checkpoint was there.")
        raise _write_failed(path, e, kept) from None
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


def read_trainer_state(path: str) -> dict:
    """The ``trainer_state.json`` of a training state (step, loop position, history, the run's args)."""
    file = os.path.join(path, "trainer_state.json")
    try:
        with open(file, encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or "loop" not in state:
            raise ValueError("no 'loop' entry")
        return state
    except (OSError, ValueError) as e:
        raise DamagedCheckpointError(file, e) from None


def read_training_state(path: str) -> dict:
    """Read every file of a training state into memory, without changing anything.

    Raises DamagedCheckpointError naming the first file that cannot be read."""
    from safetensors.torch import load_file

    def load_pt(file):
        return torch.load(file, weights_only=True, map_location="cpu")

    files = {"trainer_state.json": read_trainer_state(path)}
    for name, reader in (("modules.safetensors", load_file), ("optimizer.pt", load_pt), ("rng.pt", load_pt)):
        file = os.path.join(path, name)
        try:
            files[name] = reader(file)
        except Exception as e:  # safetensors, pickle and zip errors have no common base but Exception
            raise DamagedCheckpointError(file, e) from None
    return files


def apply_training_state(path: str, files: dict, objective, optimizer, scheduler, scaler) -> tuple[dict, dict]:
    """Put a training state read by :func:`read_training_state` into the run; return ``(trainer_state, rng)``.

    Refuses (CheckpointError) a state saved from a model of another size or another method."""
    tensors = dict(files["modules.safetensors"])
    objective.load_extra_state(tensors)  # takes its own entries out: the rest are weights and buffers
    own = objective.state_dict()
    resized = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in tensors.items()
               if k in own and v.shape != own[k].shape]
    saved_model = files["trainer_state.json"].get("args", {}).get("model")
    if resized:
        name, there, here = resized[0]
        raise CheckpointError(
            f"{os.path.join(path, 'modules.safetensors')} was saved from a model of another size: {name} is {there} "
            f"there and {here} here ({len(resized)} tensors differ). Resume with the model of that run "
            f"({saved_model}), or start this run in another --save_dir.")
    missing = [k for k in own if k not in tensors and not k.startswith(objective.frozen_prefixes)]
    unexpected = [k for k in tensors if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match this run's model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}): resume with the same --model and --method, or use another "
                              "--save_dir.")
    objective.load_state_dict(tensors, strict=False)
    states = files["optimizer.pt"]
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    scaler.load_state_dict(states["scaler"])
    return files["trainer_state.json"], files["rng.pt"]


def load_newest_training_state(paths: list[str], objective, optimizer, scheduler, scaler
                               ) -> tuple[str, dict, dict]:
    """Restore the newest of ``paths`` (oldest first) whose files can all be read; return
    ``(path, trainer_state, rng)``. A damaged one is skipped with a warning naming the file; when
    none can be read, CheckpointError lists them."""
    damaged = []
    for path in reversed(paths):
        try:
            files = read_training_state(path)
        except DamagedCheckpointError as e:
            damaged.append(str(e))
            older = paths[: paths.index(path)]
            logger.warning("%s %s", e, f"Falling back to the older checkpoint {older[-1]}." if older else "")
            continue
        return (path, *apply_training_state(path, files, objective, optimizer, scheduler, scaler))
    raise CheckpointError("No checkpoint could be read: " + " ".join(damaged) + " Start again without --resume "
                          "(add --overwrite_save_dir to replace them), or in another --save_dir.")
