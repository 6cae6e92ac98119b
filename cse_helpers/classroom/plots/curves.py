"""Training curves: a metric along training with its bootstrap band, the untrained model as a reference line,
several runs on one axis, DiffCSE's two losses, and notebook 1's batch-size study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .base import _figure, legend_outside

#: The smallest y range of a correlation (Spearman, Pearson) plotted along training.
MIN_SPAN = 0.2

LOG_KEYS = ("loss", "contrastive", "rtd", "learning_rate")  # read from the logging records; others from evaluations
CORRELATIONS = ("spearman", "pearson")


def _metric_records(history: Mapping, key: str) -> list[dict]:
    records = history.get("log" if key in LOG_KEYS else "eval", [])
    return [r for r in records if key in r]


def _interval(record: Mapping, key: str):
    """``record[key + "_ci"]`` as (low, high), or None when it is absent or not finite."""
    ci = record.get(f"{key}_ci")
    if ci is None or len(ci) != 2 or not np.all(np.isfinite(ci)):
        return None
    return float(ci[0]), float(ci[1])


def draw_metric(ax, records: Sequence[Mapping], key: str = "spearman", color=None, label: str | None = None,
                band: bool = True, **line_kwargs):
    """One run's dev metric against the step, with its bootstrap interval as a band (when recorded)."""
    steps = [r["step"] for r in records]
    values = [r[key] for r in records]
    style = "o-" if len(records) < 15 else "-"
    (line,) = ax.plot(steps, values, style, markersize=4, color=color, label=label, **line_kwargs)
    intervals = [_interval(r, key) for r in records]
    if band and records and all(i is not None for i in intervals):
        low, high = zip(*intervals)
        if len(records) == 1:  # a single evaluation: an error bar instead of a band
            ax.errorbar(steps, values, yerr=[[values[0] - low[0]], [high[0] - values[0]]], color=line.get_color(),
                        capsize=3, alpha=0.6)
        else:  # a light fill, its edges drawn thin, so overlapping bands stay readable
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.12, linewidth=0)
            for edge in (low, high):
                ax.plot(steps, edge, color=line.get_color(), linewidth=0.7, alpha=0.6, linestyle=":")
    return line


def draw_baseline(ax, result: Mapping, key: str = "spearman", label: str = "untrained"):
    """A reference score (e.g. the untrained encoder's) as a dashed horizontal line, its interval as a band."""
    value = result[key]
    ax.axhline(value, color="gray", linestyle="--", linewidth=1.2, label=f"{label} {value:.3f}")
    ci = _interval(result, key)
    if ci is not None:
        ax.axhspan(ci[0], ci[1], color="gray", alpha=0.12, linewidth=0)


def keep_min_span(ax, min_span: float = MIN_SPAN) -> None:
    """Widen the y axis around its data to at least ``min_span``, so noise is not magnified."""
    low, high = ax.get_ylim()
    if high - low < min_span:
        middle = (low + high) / 2
        ax.set_ylim(middle - min_span / 2, middle + min_span / 2)


def plot_history(history: dict, metric: str = "spearman", ax=None, baseline: Mapping | None = None):
    """Training loss per logging window (left axis) and a dev metric per evaluation (right axis).

    The dev metric gets its bootstrap interval as a band and, with ``baseline`` (e.g. the untrained
    model's :func:`~cse_helpers.evaluate.evaluate_pairs` result), a dashed reference line; a
    correlation's axis spans at least :data:`MIN_SPAN`.
    """
    fig, ax = _figure(ax, figsize=(7, 4))
    log, evals = history.get("log", []), history.get("eval", [])
    if log:
        ax.plot([r["step"] for r in log], [r["loss"] for r in log], color="tab:blue", label="loss (window mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    evals = [r for r in evals if metric in r]
    if evals or baseline is not None:
        right = ax.twinx()
        if baseline is not None and metric in baseline:
            draw_baseline(right, baseline, metric)
        if evals:
            draw_metric(right, evals, metric, color="tab:orange", label=f"dev {metric}")
        right.set_ylabel(f"dev {metric} (band: 95% bootstrap interval)", color="tab:orange")
        if metric in CORRELATIONS:
            keep_min_span(right)
        handles = [h for a in (ax, right) for h in a.get_legend_handles_labels()[0]]
        labels = [lab for a in (ax, right) for lab in a.get_legend_handles_labels()[1]]
        right.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3,
                     frameon=False)  # under the axes, off the data
    ax.set_title("training curves")
    fig.tight_layout()
    return fig


def plot_curves(histories: Mapping[str, dict], key: str = "loss", ax=None, title: str | None = None,
                baseline: Mapping | None = None, legend: bool = True, colors: Mapping[str, str] | None = None,
                min_span: float | None = None, bands: str = "all"):
    """One line per run: ``key`` against the step. ``loss`` (and ``contrastive``, ``rtd``) come from the
    logging records, any other key (``spearman``, ``best_f1``, ...) from the evaluations.

    A dev metric with a recorded interval (``spearman_ci``) gets it as a band; ``baseline`` (e.g. the
    untrained model's scores) is drawn as a dashed line with its interval; a correlation's axis spans
    at least ``min_span`` (default :data:`MIN_SPAN`). The legend sits outside the axes, on the right.
    ``colors`` maps a run's name to its colour (e.g. one colour for the seeds of one setting);
    ``bands``: "all" runs get their interval band, "last" only the last run (many overlapping runs), "none".
    """
    if bands not in ("all", "last", "none"):
        raise ValueError(f"bands={bands!r}: use 'all', 'last' or 'none'.")
    fig, ax = _figure(ax, figsize=(8, 4))
    if baseline is not None and key in baseline:
        draw_baseline(ax, baseline, key)
    last = list(histories)[-1] if histories else None
    for name, history in histories.items():
        records = _metric_records(history, key)
        if not records:
            continue
        color = (colors or {}).get(name)
        if key in LOG_KEYS:
            ax.plot([r["step"] for r in records], [r[key] for r in records], "o-" if len(records) < 15 else "-",
                    markersize=3, label=name, color=color)
        else:
            draw_metric(ax, records, key, color=color, label=name,
                        band=bands == "all" or (bands == "last" and name == last))
    ax.set_xlabel("step")
    ax.set_ylabel(key if key in LOG_KEYS else f"dev {key}")
    if title is None:
        what = {"all": " (bands: 95% bootstrap intervals)", "last": " (band: the last run's 95% interval)",
                "none": ""}[bands]
        title = "training loss" if key == "loss" else f"dev {key}{what if key not in LOG_KEYS else ''}"
    ax.set_title(title)
    if key in CORRELATIONS:
        keep_min_span(ax, MIN_SPAN if min_span is None else min_span)
    if legend and ax.get_legend_handles_labels()[0]:
        legend_outside(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_parts(history: dict, lambda_rtd: float, ax=None):
    """DiffCSE's two losses over training: contrastive, RTD and the weighted ``lambda * RTD`` (log scale), and,
    where the log has the share p of replaced tokens, RTD's base rate H(p) (a predictor that knows only p)."""
    from ...objectives import binary_entropy

    fig, ax = _figure(ax, figsize=(7, 4))
    log = [r for r in history.get("log", []) if "rtd" in r and "contrastive" in r]
    steps = [r["step"] for r in log]
    ax.plot(steps, [r["contrastive"] for r in log], label="contrastive (InfoNCE)")
    ax.plot(steps, [r["rtd"] for r in log], label="RTD (cross-entropy per token)")
    ax.plot(steps, [lambda_rtd * r["rtd"] for r in log], "--", label=f"λ·RTD, λ={lambda_rtd:g}")
    if log and all("replaced" in r for r in log):
        ax.plot(steps, [binary_entropy(r["replaced"]) for r in log], ":", color="C1",
                label="RTD base rate H(p), p = share replaced")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("DiffCSE: the two terms of the loss")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)  # off the data
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_batch_study(rows: Sequence[Mapping], baseline: Mapping | None = None, mini_batch_size: int | None = None):
    """The batch-size study (:func:`cse_helpers.classroom.batch_study.batch_size_study`): dev Spearman with its
    interval per batch size (left), and the memory of two steps with and without gradient caching (right),
    labelled with what was measured (``memory_measure`` of the rows: RSS increase or GPU peak)."""
    sizes = [r["batch_size"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    spearman = np.array([r["spearman"] for r in rows])
    low, high = np.array([r["spearman_ci"] for r in rows]).T
    left.errorbar(sizes, spearman, yerr=[spearman - low, high - spearman], marker="o", capsize=4,
                  label="trained, 95% bootstrap interval")
    if baseline is not None:
        draw_baseline(left, baseline)
    left.set_xscale("log", base=2)
    left.set_xticks(sizes, [str(b) for b in sizes])
    left.set_xlabel("batch size B (sentences per loss)")
    left.set_ylabel("dev Spearman")
    seen, steps = {r["sentences_seen"] for r in rows}, [r["sentences_seen"] // r["batch_size"] for r in rows]
    left.set_title(f"the same {seen.pop()} sentences at each B (steps: {', '.join(map(str, steps))})"
                   if len(seen) == 1 else f"the same {steps[0]} steps at each B")
    keep_min_span(left)
    left.legend(fontsize=8)
    plain = [r["peak_mib_plain"] for r in rows]
    cached = [r["peak_mib_cached"] for r in rows]
    x = np.arange(len(rows))
    right.bar(x - 0.2, [m if m is not None else 0 for m in plain], 0.4, label="whole batch at once")
    right.bar(x + 0.2, cached, 0.4, label=f"gradient caching, M={mini_batch_size}" if mini_batch_size else
              "gradient caching")
    for i, m in enumerate(plain):
        if m is None:
            right.text(i - 0.2, 0, "does not fit", rotation=90, ha="center", va="bottom", fontsize=8)
    right.set_xticks(x, [str(b) for b in sizes])
    right.set_xlabel("batch size B")
    right.set_ylabel(f"{rows[0].get('memory_measure', 'memory')},\n2 steps (MiB)")
    right.set_title("memory: the whole batch vs. M sentences at a time")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
