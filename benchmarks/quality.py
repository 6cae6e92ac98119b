"""Quality benchmark: what SimCSE, ESimCSE and DiffCSE do to an encoder, over several seeds.

For each method and seed: train from ``--model`` on the unlabelled ``--train_path`` for a fixed
budget, then score the result on the labelled ``--dev_path`` with ``evaluate_pairs``. Baselines in
the same table: character overlap (Jaccard) and the untrained encoder. Prints a Markdown table of
mean ± standard deviation (over seeds) and writes every run's figures to ``--out`` (JSON).

    python benchmarks/quality.py --model cse_helpers/default_model \\
        --train_path ../shared/data/lcqmc/train.txt --dev_path ../shared/data/lcqmc/dev.tsv

Works with any encoder and on a GPU (``--device cuda``, e.g. with ``--model
nghuyong/ernie-3.0-base-zh --batch_size 64 --max_steps 2000``). This is a script that prints
figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cse_helpers import DEFAULT_MODEL  # noqa: E402
from cse_helpers.data import read_pairs, read_train_texts  # noqa: E402
from cse_helpers.encoder import SentenceEncoder  # noqa: E402
from cse_helpers.evaluate import bootstrap_spearman_difference, character_jaccard, evaluate_pairs  # noqa: E402
from cse_helpers.train import train  # noqa: E402

COLUMNS = [("spearman", "Spearman"), ("best_accuracy", "best-thr. acc"), ("best_f1", "best-thr. F1"),
           ("f1", "F1 @ 0.5"), ("alignment", "alignment ↓"), ("uniformity", "uniformity ↓")]


def summarize(runs: list[dict]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation of each column over runs (std 0 for a single run)."""
    out = {}
    for key, _ in COLUMNS:
        values = [r[key] for r in runs if r.get(key) is not None and r[key] == r[key]]
        if values:
            out[key] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def markdown_table(rows: list[tuple[str, dict]]) -> str:
    header = "| method | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, stats in rows:
        cells = [f"{stats[k][0]:.4f} ± {stats[k][1]:.4f}" if k in stats else "–" for k, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--train_path", required=True)
    parser.add_argument("--dev_path", required=True)
    parser.add_argument("--methods", nargs="+", default=["simcse", "esimcse", "diffcse"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max_steps", type=int, default=250, help="0: one epoch of --train_path")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_seq_len", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--pooler", default=None, help="default: the model's own (cse_helpers.json), else cls")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=os.path.join("runs", "quality.json"))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    texts = read_train_texts(args.train_path)
    pairs = read_pairs(args.dev_path)
    budget = f"{args.max_steps} steps" if args.max_steps else "one epoch"
    print(f"model {args.model}; {len(texts)} training sentences; {len(pairs)} dev pairs; "
          f"{budget} x batch {args.batch_size}; seeds {args.seeds}", flush=True)

    labels = [p[2] for p in pairs]
    results: dict[str, list[dict]] = {"character Jaccard": [evaluate_pairs(character_jaccard, pairs)]}
    untrained = SentenceEncoder.from_pretrained(args.model, pooler=args.pooler)
    untrained_metrics = evaluate_pairs(untrained, pairs, return_scores=True)
    untrained_scores = untrained_metrics.pop("scores")
    results["untrained encoder"] = [untrained_metrics]
    print(f"  untrained: spearman {untrained_metrics['spearman']:.4f}", flush=True)
    del untrained
    timings = {}
    for method in args.methods:
        results[method] = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as save_dir:
                result = train(model=args.model, method=method, train_texts=texts, save_dir=save_dir, seed=seed,
                               max_steps=args.max_steps, num_train_epochs=1, batch_size=args.batch_size,
                               max_seq_len=args.max_seq_len, learning_rate=args.learning_rate, dropout=args.dropout,
                               pooler=args.pooler, logging_steps=max(1, (args.max_steps or 250) // 5),
                               device=args.device, progress_bar=False)
                metrics = evaluate_pairs(result.encoder, pairs, return_scores=True)
                scores = metrics.pop("scores")
                metrics["gain"] = metrics["spearman"] - untrained_metrics["spearman"]
                metrics["gain_ci"] = bootstrap_spearman_difference(untrained_scores, scores, labels)
            metrics["seconds"] = time.perf_counter() - t0
            metrics["final_loss"] = result.history["log"][-1]["loss"]
            results[method].append(metrics)
            low, high = metrics["gain_ci"]
            print(f"  {method} seed {seed}: spearman {metrics['spearman']:.4f} (gain {metrics['gain']:+.4f}, paired "
                  f"95% interval [{low:+.4f}, {high:+.4f}]), best F1 {metrics['best_f1']:.4f}, "
                  f"loss {metrics['final_loss']:.4f}, {metrics['seconds']:.0f} s", flush=True)
        timings[method] = statistics.fmean(r["seconds"] for r in results[method])

    table = markdown_table([(name, summarize(runs)) for name, runs in results.items()])
    wall = time.perf_counter() - started
    print()
    print(table)
    print(f"\nwall time {wall / 60:.1f} min on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; mean seconds per run: " + ", ".join(f"{m} {t:.0f}" for m, t in timings.items()))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "wall_seconds": wall, "results": results, "table": table}, f, indent=2,
                  ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
