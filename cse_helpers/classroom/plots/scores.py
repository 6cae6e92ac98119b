"""What the data and the scores look like: sentence lengths, cosine distributions, the length bias, the
tokens word repetition adds, the queue filling up, alignment against uniformity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from .base import _figure, _numpy, legend_outside


def plot_length_histogram(texts: Sequence[str], ax=None, title: str = "sentence length", bins: int | None = None):
    """Histogram of sentence lengths in characters, with the median marked."""
    fig, ax = _figure(ax)
    lengths = np.array([len(t) for t in texts])
    bins = bins or max(5, min(60, int(lengths.max() - lengths.min() + 1))) if len(lengths) else 10
    ax.hist(lengths, bins=bins, color="tab:blue", alpha=0.8)
    if len(lengths):
        median = float(np.median(lengths))
        ax.axvline(median, color="black", linestyle="--", label=f"median {median:g}")
        ax.legend()
    ax.set_xlabel("characters")
    ax.set_ylabel("sentences")
    ax.set_title(f"{title} (n={len(lengths)})")
    fig.tight_layout()
    return fig


def plot_cosine_distribution(groups: Mapping[str, Sequence[float]], ax=None, bins: int = 40,
                             title: str = "cosine similarity", xlim=(-1.0, 1.0), xlabel: str = "cosine similarity"):
    """Overlaid histograms (densities) of scores, one per group, with each mean marked.

    Cosines live in [-1, 1] (``xlim``); for another score (e.g. character overlap, in [0, 1]) pass
    its own ``xlim`` and ``xlabel``.
    """
    fig, ax = _figure(ax)
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    for i, (name, values) in enumerate(groups.items()):
        values = _numpy(values)
        color = f"C{i}"
        ax.hist(values, bins=edges, density=True, alpha=0.45, color=color,
                label=f"{name} (mean {values.mean():.2f})" if len(values) else name)
        if len(values):
            ax.axvline(values.mean(), color=color, linestyle="--")
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_length_bias(length_diffs: Sequence[int], cosines: Sequence[float], ax=None, label: str = "",
                     max_diff: int = 12, title: str = "cosine vs length difference"):
    """Mean cosine (and its standard error) of sentence pairs grouped by |len(a) - len(b)|.

    Call it several times with the same ``ax`` to compare models. Differences above ``max_diff``
    are grouped with ``max_diff``.
    """
    fig, ax = _figure(ax)
    diffs = np.minimum(np.abs(np.asarray(length_diffs)), max_diff)
    cosines = _numpy(cosines)
    xs, means, errors = [], [], []
    for d in np.unique(diffs):
        values = cosines[diffs == d]
        xs.append(int(d))
        means.append(float(values.mean()))
        errors.append(float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0)
    ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label or None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # differences are whole characters or tokens
    ax.set_xlabel(f"|length difference| in characters ({max_diff} = {max_diff} or more)")
    ax.set_ylabel("mean cosine of the pair (± standard error)")
    ax.set_title(title)
    if label:
        ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_added_length(added: Sequence[int], ax=None, title: str = "tokens added by word repetition"):
    """Bar chart of how many tokens word repetition added (one count per augmented sentence)."""
    fig, ax = _figure(ax)
    added = np.asarray(added, dtype=int)
    values, counts = np.unique(added, return_counts=True)
    ax.bar(values, counts / max(1, len(added)), color="tab:green")
    ax.set_xlabel("added tokens")
    ax.set_ylabel("fraction of sentences")
    ax.set_title(f"{title} (mean {added.mean():.2f})" if len(added) else title)
    fig.tight_layout()
    return fig


def plot_queue_fill(sizes: Sequence[int], capacity: int, ax=None):
    """The momentum queue's length after each batch, up to its capacity."""
    fig, ax = _figure(ax, figsize=(5, 3))
    ax.step(range(1, len(sizes) + 1), sizes, where="post", marker="o")
    ax.axhline(capacity, color="gray", linestyle="--", label=f"capacity Q={capacity}")
    ax.set_xlabel("batch")
    ax.set_ylabel("embeddings in the queue")
    ax.set_title("the queue fills up, then the oldest rows drop out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_alignment_uniformity(points: Mapping[str, Mapping[str, float]], ax=None,
                              arrows: Sequence[tuple[str, str]] = ()):
    """Alignment (x) against uniformity (y), one point per model (lower-left is better).

    ``points`` maps a name to a dict with ``alignment`` and ``uniformity`` (e.g. what
    :func:`cse_helpers.evaluate.evaluate_pairs` returns); ``arrows`` draws (from, to) moves. The
    models are named in a legend outside the axes, so points close together do not hide their names.
    """
    fig, ax = _figure(ax, figsize=(7, 4.5))
    markers = "osD^vP*X"
    for i, (name, metrics) in enumerate(points.items()):
        ax.scatter(metrics["alignment"], metrics["uniformity"], s=60, color=f"C{i}", marker=markers[i % len(markers)],
                   zorder=3, label=f"{name} ({metrics['alignment']:.3f}, {metrics['uniformity']:.2f})")
    for start, end in arrows:
        a, b = points[start], points[end]
        ax.annotate("", xy=(b["alignment"], b["uniformity"]), xytext=(a["alignment"], a["uniformity"]),
                    arrowprops={"arrowstyle": "->", "color": "gray", "shrinkA": 5, "shrinkB": 5})
    ax.set_xlabel(r"alignment $\ell_{align}$ (lower: positives closer)")
    ax.set_ylabel(r"uniformity $\ell_{uniform}$ (lower: more spread)")
    ax.set_title("alignment and uniformity (Wang & Isola, 2020)")
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    legend_outside(ax, title="model (alignment, uniformity)", title_fontsize=8)
    fig.tight_layout()
    return fig
