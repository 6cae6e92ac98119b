"""Measured results that the notebooks read instead of typing numbers into their text.

Two files in ``cse_helpers/recorded/``:

- ``quick_seeds.json``, written by ``benchmarks/sweep_quick.py --record``: the final dev Spearman of each
  method (and each ablation) trained in quick mode with several seeds, on the sample's dev pairs. The
  spread of those seeds is the seed noise of :func:`cse_helpers.evaluate.noise_verdict`.
- ``lcqmc_quality.json``: the methods on LCQMC's dev pairs, 3 seeds each (``benchmarks/RESULTS.md``,
  *Quality*), to set the sample's ranking beside the real data set's.

A run is named by its method and the settings it changes against quick mode, e.g. ``"esimcse"`` or
``"esimcse queue_size=0"`` (:func:`run_key`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from ..constants import PACKAGE_DIR

RECORDED_DIR = os.path.join(PACKAGE_DIR, "recorded")
QUICK_SEEDS = os.path.join(RECORDED_DIR, "quick_seeds.json")
LCQMC_QUALITY = os.path.join(RECORDED_DIR, "lcqmc_quality.json")

#: How the records name the shipped encoder (``cse_helpers/default_model``), the model of quick mode.
RECORDED_MODEL = "cse_helpers/default_model"

#: The quick-mode settings a recorded run must share with the notebook for its seeds to be its noise.
COMPARED_SETTINGS = ("batch_size", "max_seq_len", "dropout", "learning_rate", "max_steps")


def run_key(method: str, changes: Mapping | None = None) -> str:
    """``"esimcse queue_size=0"``: the method and the settings it changes, sorted by name."""
    return " ".join([method, *(f"{k}={v}" for k, v in sorted((changes or {}).items()))])


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: it ships with cse_helpers (rebuild it with "
                                "benchmarks/sweep_quick.py --record, see benchmarks/README.md).")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def quick_seeds(path: str = QUICK_SEEDS) -> dict:
    """The recorded quick-mode runs: ``{"settings": {...}, "model": ..., "runs": {key: {"seeds": [...],
    "spearman": [...]}}}``."""
    return _read(path)


def lcqmc_quality(path: str = LCQMC_QUALITY) -> dict:
    """The methods' Spearman on LCQMC's dev pairs (mean and standard deviation over 3 seeds)."""
    return _read(path)


def seed_spearmans(key: str, settings: Mapping | None = None, path: str = QUICK_SEEDS) -> list[float] | None:
    """The recorded Spearman of each seed of run ``key``; None when ``settings`` (the notebook's) differ
    from the recorded ones in any of :data:`COMPARED_SETTINGS` (then those seeds are not its noise)."""
    recorded = quick_seeds(path)
    if key not in recorded["runs"]:
        raise KeyError(f"{path} has no run {key!r} (it has {', '.join(recorded['runs'])}): record it with "
                       f"benchmarks/sweep_quick.py --record (see benchmarks/README.md).")
    if settings is not None and any(settings.get(k) != recorded["settings"].get(k) for k in COMPARED_SETTINGS
                                    if k in settings):
        return None
    return list(recorded["runs"][key]["spearman"])


def recorded_spread(*keys: str, settings: Mapping | None = None, path: str = QUICK_SEEDS) -> float | None:
    """The seed noise for comparing runs ``keys``: the largest spread (max - min) of their recorded seeds.

    None when the settings differ from the recorded ones (e.g. full mode, or ``CSE_SETTINGS``): the seed
    noise at those settings is not measured, and :func:`~cse_helpers.evaluate.noise_verdict` says so.
    """
    from ..evaluate import seed_spread

    spreads = []
    for key in keys:
        values = seed_spearmans(key, settings, path)
        if values is None:
            return None
        spreads.append(seed_spread(values))
    return max(spreads)


def seed_range_text(key: str, settings: Mapping | None = None, path: str = QUICK_SEEDS) -> str:
    """``"0.450-0.460 over 3 seeds"`` for a recorded run, or that it was not recorded at these settings."""
    values = seed_spearmans(key, settings, path)
    if values is None:
        return "not recorded at these settings"
    return f"{min(values):.3f}-{max(values):.3f} over {len(values)} seeds"


def method_ranking(this_run: Mapping[str, float] | None = None, methods: Sequence[str] = ("simcse", "esimcse",
                   "diffcse"), recorded: bool = True) -> list[dict]:
    """The methods ranked three ways, side by side: this notebook's run (``this_run``: method -> Spearman),
    the recorded quick-mode seeds on the sample, and LCQMC's dev pairs (3 seeds each).

    Each row: ``{"method", "this_run", "sample_mean", "sample_range", "lcqmc_mean", "lcqmc_sd"}`` plus the
    rank under each (1 = highest). ``recorded=False`` leaves the sample's recorded seeds out (they were
    trained at other settings than this run's).
    """
    lcqmc = lcqmc_quality()["methods"]
    rows = []
    for method in methods:
        values = seed_spearmans(method) if recorded else None
        rows.append({"method": method, "this_run": None if this_run is None else this_run.get(method),
                     "sample_mean": None if values is None else sum(values) / len(values),
                     "sample_range": None if values is None else (min(values), max(values)),
                     "lcqmc_mean": lcqmc[method]["spearman_mean"], "lcqmc_sd": lcqmc[method]["spearman_sd"]})
    for column in ("this_run", "sample_mean", "lcqmc_mean"):
        known = sorted((r[column] for r in rows if r[column] is not None), reverse=True)
        for r in rows:
            r[f"rank_{column}"] = None if r[column] is None else known.index(r[column]) + 1
    return rows


def ranking_text(this_run: Mapping[str, float] | None = None, names: Mapping[str, str] | None = None,
                 recorded: bool = True) -> str:
    """:func:`method_ranking` as printed lines: the order of the methods here, on the sample over seeds,
    and on LCQMC, so a reader sees whether the sample's order carries over."""
    names = names or {"simcse": "SimCSE", "esimcse": "ESimCSE", "diffcse": "DiffCSE"}
    rows = method_ranking(this_run, recorded=recorded)

    def order(column: str, fmt) -> str:
        known = sorted((r for r in rows if r[column] is not None), key=lambda r: -r[column])
        return " > ".join(f"{names[r['method']]} {fmt(r)}" for r in known) if known else "not recorded"

    lines = []
    if this_run:
        lines.append("this run (one seed):           " + order("this_run", lambda r: f"{r['this_run']:.3f}"))
    lines.append("sample, recorded seeds:        " + order(
        "sample_mean", lambda r: f"{r['sample_mean']:.3f} ({r['sample_range'][0]:.3f}-{r['sample_range'][1]:.3f})"))
    lines.append("LCQMC dev, 3 seeds (mean ± sd): " + order(
        "lcqmc_mean", lambda r: f"{r['lcqmc_mean']:.4f} ± {r['lcqmc_sd']:.4f}"))
    return "\n".join(lines)
