"""Quick-mode recipe sweep: which settings make the lesson visible on the sample, on a CPU.

For every combination of the ``--grid`` values (on top of the course's quick-mode settings), train
each ``--methods`` for each ``--seeds`` from ``--model`` on ``data/train.txt`` and score it on
``data/dev.tsv``. Beside the Spearman it prints what the notebooks rely on:

* the gain over the untrained encoder with a paired bootstrap 95% interval (the same dev pairs
  resampled for both models, so the interval is the noise of the *difference*);
* the Spearman per ``group`` of the dev pairs;
* the tutorial's pair (蛋黄吃多了有什么坏处: paraphrase 蛋黄可以多吃吗 against near miss
  吃鸡蛋白过多有什么坏处) and how many of semantic search's top 3 for the tutorial's question are
  about eggs;
* the wall time per run (the notebooks must stay under 3 minutes each on 2 cores).

    python benchmarks/sweep_quick.py --grid learning_rate=1e-4,3e-4 dropout=0.1,0.3 --seeds 0 1

Each run is trained exactly as the notebooks train it (``Course.train`` in quick mode, with the settings
a grid entry changes on top). ``--record`` adds every run's final Spearman per seed to
``cse_helpers/recorded/quick_seeds.json`` (:mod:`cse_helpers.classroom.results`), under the key of its method and
changed settings (``"esimcse queue_size=0"``): the notebooks read the seeds' spread from there as the seed
noise of their verdicts, and the seed ranges they print.

A script that prints figures (and writes ``--out`` JSON), not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cse_helpers import course  # noqa: E402
from cse_helpers.arguments import TrainingArguments  # noqa: E402
from cse_helpers.classroom.results import QUICK_SEEDS, RECORDED_MODEL, run_key  # noqa: E402
from cse_helpers.constants import DATA_DIR, DEFAULT_MODEL  # noqa: E402
from cse_helpers.course import MATCHING_EXAMPLES, MODE_SETTINGS  # noqa: E402
from cse_helpers.data import read_pairs, read_train_texts  # noqa: E402
from cse_helpers.encoder import SentenceEncoder  # noqa: E402
from cse_helpers.evaluate import bootstrap_spearman_difference, character_jaccard, evaluate_pairs  # noqa: E402
from cse_helpers.inference import semantic_search, similarity  # noqa: E402

TRAIN_KEYS = ("batch_size", "max_seq_len", "dropout", "learning_rate", "max_steps")
QUESTION = MATCHING_EXAMPLES[0][0]  # 蛋黄吃多了有什么坏处
ON_TOPIC = ("蛋", "鸡")  # a search hit about eggs


def probes(encoder, train_texts) -> dict:
    """The tutorial's pair and semantic search's top 3 for the tutorial's question."""
    near, para = similarity(encoder, MATCHING_EXAMPLES)
    corpus = [t for t in dict.fromkeys(train_texts) if t != QUESTION]
    hits = [text for _, text in semantic_search(encoder, QUESTION, corpus, k=3)]
    return {"paraphrase_cos": float(para), "near_miss_cos": float(near), "paraphrase_wins": bool(para > near),
            "top3": hits, "top3_on_topic": sum(any(c in h for c in ON_TOPIC) for h in hits)}


def evaluate(encoder, pairs) -> tuple[dict, np.ndarray]:
    """Spearman and, per group of the dev pairs, the mean cosine (a group's labels are constant)."""
    result = evaluate_pairs(encoder, pairs, return_scores=True)
    out = {"spearman": result["spearman"]}
    out.update({f"cos_{g}": r["mean_cosine"] for g, r in sorted(result.get("groups", {}).items())})
    return out, np.asarray(result["scores"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--train_path", default=os.path.join(DATA_DIR, "train.txt"))
    parser.add_argument("--dev_path", default=os.path.join(DATA_DIR, "dev.tsv"))
    parser.add_argument("--methods", nargs="+", default=["simcse"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--grid", nargs="*", default=[],
                        help="NAME=V1,V2 entries (any train() argument: learning_rate, dropout, batch_size, "
                             "max_steps, pooler, temperature, ...), on top of the quick-mode settings")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=os.path.join("runs", "sweep_quick.json"))
    parser.add_argument("--record", nargs="?", const=QUICK_SEEDS, default=None,
                        help=f"add each run's Spearman per seed to this file (default {QUICK_SEEDS}), which the "
                             "notebooks read for the seeds' spread")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    base = {k: MODE_SETTINGS["quick"][k] for k in TRAIN_KEYS}
    grid = {}
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    for entry in args.grid:
        name, sep, values = entry.partition("=")
        if not sep or name not in known:  # Course.training_args would drop an unknown name without a word
            parser.error(f"--grid {entry!r}: give NAME=V1,V2 with NAME a train() setting, e.g. learning_rate, "
                         f"queue_size, repetition, projector (python -m cse_helpers.train --help lists them).")
        grid[name] = [_parse(v) for v in values.split(",")]
    texts = list(read_train_texts(args.train_path))
    pairs = read_pairs(args.dev_path, with_groups=True)
    labels = np.array([p[2] for p in pairs], dtype=float)
    jaccard = float(spearmanr(character_jaccard(pairs), labels)[0])
    print(f"model {args.model}; {len(texts)} training sentences; {len(pairs)} dev pairs; "
          f"character-Jaccard Spearman {jaccard:.3f}; base settings {base}", flush=True)

    untrained = SentenceEncoder.from_pretrained(args.model).eval()
    u_metrics, u_scores = evaluate(untrained, pairs)
    u_probes = probes(untrained, texts)
    print(f"untrained: {u_metrics} {u_probes}", flush=True)
    runs = []
    for combo in itertools.product(*grid.values()) if grid else [()]:
        settings = {**base, **dict(zip(grid, combo))}
        for method in args.methods:
            for seed in args.seeds:
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as save_dir:
                    C = course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=seed,
                                      model=args.model, model_description=args.model,
                                      settings={**MODE_SETTINGS["quick"], **settings}, runs_dir=save_dir,
                                      _data={"train": texts, "dev": [p[:3] for p in pairs], "source": args.dev_path})
                    result = C.train(method, save_dir=save_dir)  # grid entries outside MODE_SETTINGS too
                seconds = time.perf_counter() - t0
                encoder = result.encoder.eval()
                metrics, scores = evaluate(encoder, pairs)
                low, high = bootstrap_spearman_difference(u_scores, scores, labels)
                run = {"method": method, "seed": seed, "settings": settings, "seconds": seconds,
                       "key": run_key(method, dict(zip(grid, combo))), **metrics,
                       "gain": metrics["spearman"] - u_metrics["spearman"], "gain_ci": [low, high],
                       **probes(encoder, texts), "final_loss": result.history["log"][-1]["loss"]}
                runs.append(run)
                print(f"{method} seed {seed} {dict(zip(grid, combo))}: spearman {run['spearman']:.3f} "
                      f"(gain {run['gain']:+.3f} [{low:+.3f}, {high:+.3f}]), loss {run['final_loss']:.3f}, "
                      f"paraphrase {run['paraphrase_cos']:.3f} vs near miss {run['near_miss_cos']:.3f}, "
                      f"top3 on topic {run['top3_on_topic']}/3, {seconds:.0f} s", flush=True)
    print()
    print("| settings | method | Spearman (mean over seeds) | gain [paired 95% CI, worst seed] | paraphrase wins | "
          "top-3 on topic | s/run |")
    print("|---|---|---|---|---|---|---|")
    for key, group in itertools.groupby(runs, key=lambda r: (json.dumps(r["settings"], sort_keys=True), r["method"])):
        group = list(group)
        changed = {k: v for k, v in json.loads(key[0]).items() if k in grid}
        worst = min(group, key=lambda r: r["gain_ci"][0])
        print(f"| {changed or 'quick defaults'} | {key[1]} | {statistics.fmean(r['spearman'] for r in group):.3f} | "
              f"{statistics.fmean(r['gain'] for r in group):+.3f} [{worst['gain_ci'][0]:+.3f}, "
              f"{worst['gain_ci'][1]:+.3f}] | {sum(r['paraphrase_wins'] for r in group)}/{len(group)} | "
              f"{statistics.fmean(r['top3_on_topic'] for r in group):.1f}/3 | "
              f"{statistics.fmean(r['seconds'] for r in group):.0f} |")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "untrained": {**u_metrics, **u_probes}, "jaccard_spearman": jaccard,
                   "runs": runs}, f, indent=1, ensure_ascii=False)
    if args.record:
        record(args.record, runs, base, args, u_metrics["spearman"])
    return 0


def record(path: str, runs: list[dict], base: dict, args, untrained: float) -> None:
    """Merge ``runs`` into the recorded seeds file (one entry per run key, seeds sorted), under a file lock
    so that sweeps running side by side do not lose each other's runs."""
    import fcntl

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = {"what": "final dev Spearman of quick-mode runs per seed (benchmarks/sweep_quick.py --record)",
                    "settings": base, "model": RECORDED_MODEL if os.path.abspath(args.model) == os.path.abspath(
                        DEFAULT_MODEL) else args.model, "dev": os.path.relpath(
                        args.dev_path, ROOT), "untrained_spearman": round(untrained, 4), "runs": {}}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            if old["settings"] != base or old["model"] != recorded["model"] or old["dev"] != recorded["dev"]:
                raise SystemExit(f"{path} was recorded with other settings, model or dev file ({old['settings']}, "
                                 f"{old['model']}, {old['dev']}): remove it to record these from scratch.")
            recorded["runs"] = old["runs"]
        for run in runs:
            entry = recorded["runs"].setdefault(run["key"], {"seeds": [], "spearman": []})
            by_seed = dict(zip(entry["seeds"], entry["spearman"]))
            by_seed[run["seed"]] = round(run["spearman"], 4)
            entry["seeds"], entry["spearman"] = map(list, zip(*sorted(by_seed.items())))
            entry["recorded"] = time.strftime("%Y-%m-%d")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(recorded, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(f"recorded {len(runs)} runs in {path}")


def _parse(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


if __name__ == "__main__":
    sys.exit(main())
