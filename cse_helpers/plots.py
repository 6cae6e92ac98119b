"""Figures for the course. Each function returns a matplotlib ``Figure`` and takes an optional ``ax``,
so notebooks stay one line per figure and tests can check what was drawn."""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() in ("", "agg") or not matplotlib.rcParams.get("backend"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _figure(ax=None, figsize=(6, 4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def plot_history(history: dict, metric: str = "spearman", ax=None):
    """Training loss per logging window (left axis) and a dev metric per evaluation (right axis)."""
    fig, ax = _figure(ax, figsize=(7, 4))
    log, evals = history.get("log", []), history.get("eval", [])
    if log:
        ax.plot([r["step"] for r in log], [r["loss"] for r in log], color="tab:blue", label="loss (window mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if evals and metric in evals[0]:
        right = ax.twinx()
        right.plot([r["step"] for r in evals], [r[metric] for r in evals], "o-", color="tab:orange", label=metric)
        right.set_ylabel(f"dev {metric}", color="tab:orange")
    ax.set_title("training curves")
    fig.tight_layout()
    return fig
