"""What a larger batch costs, with and without gradient caching: peak memory and speed per batch size.

    python benchmarks/large_batch.py                                  # the shipped encoder, CPU
    python benchmarks/large_batch.py --model /tmp/ernie-base --device cuda --largest --memory_gib 16

For each batch size B (default 64 to 1,024) it trains a few SimCSE steps with ``train()``:

- ``cached``: gradient caching, ``mini_batch_size`` M (default 32): the loss of the whole batch, the
  activations of M sentences at a time;
- ``plain``: the whole batch in one forward pass (up to ``--plain_max``; each B costs its own memory).

and prints, per run, the peak memory (the increase of the process's RSS on the CPU, after a warm-up
run that makes the one-time allocations; on a GPU
``torch.cuda.max_memory_allocated``), steps/s and sentences/s (medians over the timed steps, after
one warm-up step), and the first step's loss next to log(B) (the loss of an encoder that cannot tell
the B candidates apart; a pretrained one starts below it, and higher for a larger B).

``--largest`` (GPU): the largest batch (doubling from 64) whose training steps fit in
``--memory_gib`` GiB (``torch.cuda.set_per_process_memory_fraction``: a 16 GB card on a bigger
one), plain and cached. For ERNIE 3.0 base's size without the hub, build a stand-in with random
weights first: ``python -m cse_helpers.tools.tiny --ernie_base --out /tmp/ernie-base``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import load_data  # noqa: E402

from cse_helpers.arguments import TrainingArguments  # noqa: E402
from cse_helpers.constants import DEFAULT_MODEL  # noqa: E402
from cse_helpers.encoder import SentenceEncoder  # noqa: E402
from cse_helpers.runtime import pick_device  # noqa: E402
from cse_helpers.scale.memory import PeakMemory  # noqa: E402
from cse_helpers.train import OutOfMemoryError, train  # noqa: E402


def run(model: str, texts, batch_size: int, mini_batch_size: int, steps: int, device: str,
        max_seq_len: int) -> dict:
    """``steps`` + 1 SimCSE steps at ``batch_size`` (``mini_batch_size`` 0: no caching), timed and measured."""
    records = []
    encoder = SentenceEncoder.from_pretrained(model, max_seq_len=max_seq_len)
    with tempfile.TemporaryDirectory() as tmp, PeakMemory(pick_device(device)) as memory:
        train(TrainingArguments(model=model, batch_size=batch_size, mini_batch_size=mini_batch_size,
                                max_seq_len=max_seq_len, max_steps=steps + 1, logging_steps=1, valid_steps=10**9,
                                device=device, save_dir=tmp, progress_bar=False),
              train_texts=texts, encoder=encoder, on_log=records.append)
    timed = records[1:]  # the first step warms up
    return {"batch_size": batch_size, "mini_batch_size": mini_batch_size,
            "peak_mib": memory.used_mib,
            "steps_per_s": statistics.median(r["steps_per_s"] for r in timed),
            "sentences_per_s": statistics.median(r["sentences_per_s"] for r in timed),
            "first_loss": records[0]["loss"], "log_b": math.log(batch_size)}


def fits(model, texts, batch_size, mini_batch_size, device, max_seq_len) -> bool:
    try:
        run(model, texts, batch_size, mini_batch_size, 1, device, max_seq_len)
        return True
    except OutOfMemoryError:
        return False
    finally:
        torch.cuda.empty_cache()


def largest(model, texts, mini_batch_size, device, max_seq_len, limit: int = 1 << 16) -> int | None:
    """The largest power-of-two batch from 64 that fits (None if 64 does not)."""
    best, size = None, 64
    while size <= min(limit, len(texts)) and fits(model, texts, size, mini_batch_size, device, max_seq_len):
        best, size = size, size * 2
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--train_path", default=None, help="default: ../shared/data/lcqmc/train.txt, else data/train.txt")
    p.add_argument("--batch_sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--mini_batch_size", type=int, default=32)
    p.add_argument("--plain_max", type=int, default=1024, help="the largest batch also run without caching")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run (after one warm-up step)")
    p.add_argument("--max_seq_len", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--largest", action="store_true", help="GPU: the largest batch that fits --memory_gib")
    p.add_argument("--memory_gib", type=float, default=16.0)
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    texts, _, train_file, _ = load_data(args.train_path, None)
    device = pick_device(args.device)
    print(f"model {args.model}, data {train_file} ({len(texts)} sentences), max_seq_len {args.max_seq_len}, "
          f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    run(args.model, texts, args.batch_sizes[0], 0, 1, args.device, args.max_seq_len)  # warm-up: one-time allocations
    rows = []
    print(f"{'B':>6} {'mode':>12} {'peak MiB':>9} {'steps/s':>8} {'sent/s':>8} {'loss@1':>7} {'log B':>6}")
    for batch_size in args.batch_sizes:
        for mini in ([0] if batch_size <= args.plain_max else []) + [args.mini_batch_size]:
            r = run(args.model, texts, batch_size, mini, args.steps, args.device, args.max_seq_len)
            rows.append(r)
            mode = f"cached M={mini}" if mini else "plain"
            print(f"{batch_size:>6} {mode:>12} {r['peak_mib']:>9.0f} {r['steps_per_s']:>8.3f} "
                  f"{r['sentences_per_s']:>8.1f} {r['first_loss']:>7.3f} {r['log_b']:>6.3f}", flush=True)
    result = {"runs": rows}
    if args.largest:
        if device.type != "cuda":
            raise SystemExit("--largest needs a CUDA GPU (--device cuda).")
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gib * 2**30 / total), device)
        modes = (("plain", 0), (f"cached M={args.mini_batch_size}", args.mini_batch_size))
        result["largest"] = {mode: largest(args.model, texts, mini, args.device, args.max_seq_len)
                             for mode, mini in modes}
        for mode, size in result["largest"].items():
            print(f"largest batch in {args.memory_gib:g} GiB, {mode}: {size}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
