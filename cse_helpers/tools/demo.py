"""``python -m cse_helpers.tools.demo``: the course's main job in two minutes, offline, on a CPU.

Trains SimCSE briefly on the sample in ``data/`` starting from the shipped default encoder (or,
where the package has none, a tiny model built from a config), evaluates on ``data/dev.tsv``
before and after, and scores the tutorial's two example pairs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import default_model_available
from ..constants import DATA_DIR, DEFAULT_MODEL, METHODS, TUTORIAL_PAIRS
from ..encoder import SentenceEncoder
from ..evaluate import evaluate_pairs
from ..inference import similarity
from ..train import train


def demo_model(work_dir: str) -> str:
    """The shipped default model, or a tiny one built from the sample data into ``work_dir``."""
    if default_model_available():
        return DEFAULT_MODEL
    from .tiny import main as build_tiny

    path = os.path.join(work_dir, "tiny-bert")
    if not os.path.isfile(os.path.join(path, "config.json")):
        build_tiny(["--out", path, "--train_path", os.path.join(DATA_DIR, "train.txt"),
                    "--dev_path", os.path.join(DATA_DIR, "dev.tsv")])
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="simcse", choices=METHODS)
    parser.add_argument("--max_steps", type=int, default=60)
    parser.add_argument("--save_dir", default=os.path.join("runs", "demo"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    model = demo_model(os.path.join("runs"))
    dev = os.path.join(DATA_DIR, "dev.tsv")
    before = evaluate_pairs(SentenceEncoder.from_pretrained(model), dev)
    result = train(model=model, method=args.method, train_path=os.path.join(DATA_DIR, "train.txt"),
                   dev_path=dev, save_dir=os.path.join(args.save_dir, args.method), batch_size=32, max_seq_len=64,
                   max_steps=args.max_steps, valid_steps=max(1, args.max_steps // 3), logging_steps=10,
                   learning_rate=5e-5, dropout=0.1, progress_bar=sys.stderr.isatty())
    after = result.history["eval"][-1]
    print(f"\nmodel: {model}\nmethod: {args.method}, {args.max_steps} steps, batch 32")
    print(f"{'':22}{'before':>10}{'after':>10}")
    for key in ("spearman", "best_accuracy", "best_f1", "alignment", "uniformity"):
        print(f"{key:22}{before[key]:10.4f}{after[key]:10.4f}")
    best = SentenceEncoder.from_pretrained(result.best_dir or result.last_dir)
    for (a, b), score in zip(TUTORIAL_PAIRS, similarity(best, TUTORIAL_PAIRS)):
        print(f"{score:.4f}  {a} / {b}")
    print(f"checkpoint: {result.best_dir or result.last_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
