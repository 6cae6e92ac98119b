"""Figures for the course. Each function returns a matplotlib ``Figure`` and takes an optional ``ax``,
so notebooks stay one line per figure and tests can check what was drawn.

Chinese text in figures needs a CJK font: importing this module calls
:func:`cse_helpers.classroom.fonts.use_cjk_font`, which registers the Noto Sans SC font that the course
installs from PyPI (or a CJK font of the system) and makes it matplotlib's first sans-serif font.
Without one, :func:`cse_helpers.course.setup` warns, and matplotlib's own missing-glyph warnings are
left on. Tables with Chinese text are HTML, in :mod:`cse_helpers.classroom.tables`.

Scores come with their noise: a dev metric drawn along training gets its bootstrap interval as a
band (``spearman_ci`` of :func:`cse_helpers.evaluate.evaluate_pairs`), the untrained model as a
reference line, and an axis of at least :data:`MIN_SPAN` so that a change smaller than the noise
does not look like a climb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() in ("", "agg") or not matplotlib.rcParams.get("backend"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .fonts import CJK_FONTS, find_cjk_font, use_cjk_font  # noqa: E402, F401 (re-exported: course.py uses them)

CJK_FONT = use_cjk_font(warn=False)  # course.setup() warns if there is none (after the Colab install)

#: The smallest y range of a correlation (Spearman, Pearson) plotted along training.
MIN_SPAN = 0.2


def _figure(ax=None, figsize=(6, 4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def short(text: str, width: int = 8) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (tick labels)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


# ------------------------------------------------------------------------------------------------
# Training curves
# ------------------------------------------------------------------------------------------------

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


def legend_outside(ax, fontsize: int = 8, **kwargs):
    """A legend to the right of the axes, off the data."""
    return ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     frameon=False, **kwargs)


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
    from ..objectives import binary_entropy

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


# ------------------------------------------------------------------------------------------------
# Data and scores
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# Matrices
# ------------------------------------------------------------------------------------------------

def plot_label_matrix(labels, tick_labels: Sequence[str] | None = None, ax=None,
                      title: str = "SimCSE label matrix (2B x 2B)"):
    """The (2B, 2B) label matrix of :func:`cse_helpers.losses.simcse_label_matrix` with each value written.

    -100 (the diagonal, a row against itself: the loss sets those logits to -inf, so a view is never its
    own candidate) is grey, 1 (the positive, the twin view) green, 0 (negatives) white.
    """
    values = _numpy(labels).astype(int)
    n = values.shape[0]
    fig, ax = _figure(ax, figsize=(0.6 * n + 2.5, 0.6 * n + 1.5))
    colours = np.ones((n, n, 3))
    colours[values == 1] = (0.55, 0.85, 0.55)
    colours[values == -100] = (0.75, 0.75, 0.75)
    ax.imshow(colours)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=8)
    ticks = list(tick_labels) if tick_labels is not None else [f"{chr(97 + k // 2)}{k % 2 + 1}" for k in range(n)]
    ax.set_xticks(range(n), ticks, rotation=90)
    ax.set_yticks(range(n), ticks)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_similarity_matrix(matrix, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                           ax=None, title: str = "cosine similarity", annotate: bool | None = None,
                           vmin: float | None = -1.0, vmax: float | None = 1.0, cmap: str = "viridis",
                           separator: int | None = None, colorbar: bool = True, mark_diagonal: bool = True):
    """A heatmap of a (N, M) matrix (cosines, logits or probabilities), values written when small.

    ``separator`` draws a vertical line before that column (ESimCSE: batch | queue); the
    diagonal (the positives) is outlined when ``mark_diagonal``.
    """
    values = _numpy(matrix)
    n, m = values.shape
    fig, ax = _figure(ax, figsize=(min(14, 0.55 * m + 3), min(10, 0.5 * n + 1.5)))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if annotate if annotate is not None else (n <= 12 and m <= 16):
        for i in range(n):
            for j in range(m):  # white on the dark end of the colour map, black on the light end
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if image.norm(values[i, j]) < 0.5 else "black")
    if mark_diagonal:
        for i in range(min(n, m)):
            ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    if separator is not None:
        ax.axvline(separator - 0.5, color="white", linewidth=2.5)
    if row_labels is not None:
        ax.set_yticks(range(n), list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(m), list(col_labels), rotation=90)
    ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


PLAYGROUND_FIGSIZE = (7.5, 5.5)  # inches: the same for every batch size, so sliders and matrix fit one screen


def plot_playground(result: Mapping, ax=None, figsize=PLAYGROUND_FIGSIZE):
    """The loss playground's picture: the softmax probabilities of the batch, the loss in the title.

    ``result`` is what :func:`cse_helpers.classroom.widgets.batch_loss` returns. Row i is the anchor
    (first view of sentence i); the red squares are its positive, whose probability the loss
    pushes to 1 (loss = mean of -log of the red cells). Columns are labelled with the second
    views (for ESimCSE: the sentences with their repeated words). The figure has the same size for
    every batch size: a larger batch gets smaller labels, and values are written up to 10 rows.
    """
    probs = _numpy(result["probs"])
    n, m = probs.shape
    views = result.get("views") or result["texts"]
    width = 12 if result.get("method") == "esimcse" else 8  # a repeated sentence is longer: show its repeats
    rows = [short(t, 8) for t in result["texts"]]
    cols = [short(v, width) for v in views] + [f"q{k}" for k in range(m - len(views))]
    title = f"loss {result['loss']:.4f}"
    if result.get("rtd") is not None:
        title += f" = {result['contrastive']:.4f} + {result['lambda_rtd']:g}·{result['rtd']:.4f} (RTD)"
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    fig = plot_similarity_matrix(probs, rows, cols, ax=ax, title=title, vmin=0.0, vmax=1.0, cmap="magma",
                                 annotate=n <= 10 and m <= 12)
    fontsize = max(5.0, min(9.0, 90.0 / max(n, m)))
    ax.tick_params(labelsize=fontsize)
    second = "second view (words repeated)" if result.get("method") == "esimcse" else "second view"
    ax.set_xlabel(f"candidates: {second} of each sentence")
    ax.set_ylabel("anchor: first view")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# The embedding space: a 2-D projection and the singular-value spectrum (anisotropy)
# ------------------------------------------------------------------------------------------------

def unit_rows(embeddings) -> np.ndarray:
    """The embeddings (N, H) as a float array with each row scaled to length 1 (the cosine's view of them)."""
    x = _numpy(embeddings)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected an (N, H) matrix of N >= 2 embeddings, got shape {x.shape}.")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _gram_eigen(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of ``x.T @ x``, (H, H): the squared singular values
    and right singular vectors of ``x``, much faster than a full SVD of a tall (N, H) matrix."""
    import torch  # its eigh is fast and steady on a busy CPU, where LAPACK's through NumPy can stall

    values, vectors = torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(x.T @ x, dtype=np.float64)))
    values, vectors = values.numpy()[::-1], vectors.numpy()[:, ::-1]  # descending
    return np.clip(values, 0.0, None), vectors


def pca_2d(embeddings) -> tuple[np.ndarray, np.ndarray]:
    """The unit-length embeddings projected on their first two principal components.

    Returns the (N, 2) coordinates (the rows centred on their mean, then projected) and the share of the
    variance that each of the two components holds (2,).
    """
    x = unit_rows(embeddings)
    centred = x - x.mean(axis=0)  # (N, H)
    values, vectors = _gram_eigen(centred)  # (H,), (H, H)
    return centred @ vectors[:, :2], values[:2] / np.sum(values)


def singular_spectrum(embeddings) -> np.ndarray:
    """The singular values of the unit-length embedding matrix (N, H), *not* centred, divided by the largest.

    Rows that share one direction (anisotropy) give one large singular value and a steep fall after it;
    embeddings spread over many directions give a flatter spectrum. ``s[0]² / sum(s²)`` is the share of the
    rows' squared length along the top direction.
    """
    x = unit_rows(embeddings)
    s = np.sqrt(_gram_eigen(x)[0][: min(x.shape)])  # the singular values of x, largest first
    return s / s[0]


def plot_embedding_projection(embeddings, groups: Sequence[str], ax=None, title: str = "PCA of the embeddings",
                              order: Sequence[str] | None = None):
    """The sentences' unit-length embeddings on their first two principal components, coloured by group.

    ``groups`` gives one name per row (e.g. the dev pair's group of each sentence); ``order`` fixes the
    groups' colours across panels. The axis labels give each component's share of the variance.
    """
    fig, ax = _figure(ax, figsize=(6, 5))
    coords, share = pca_2d(embeddings)
    groups = np.asarray(list(groups), dtype=object)
    if len(groups) != len(coords):
        raise ValueError(f"{len(coords)} embeddings but {len(groups)} group names; give one per row.")
    for i, group in enumerate(order if order is not None else dict.fromkeys(groups)):
        rows = groups == group
        ax.scatter(coords[rows, 0], coords[rows, 1], s=7, alpha=0.55, color=f"C{i}", linewidths=0,
                   label=f"{group} ({int(rows.sum())})")
    ax.set_xlabel(f"principal component 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({share[1]:.0%})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    return fig


def plot_singular_spectrum(embeddings: Mapping[str, object], ax=None, title: str = "singular values of the "
                           "embedding matrix"):
    """The normalised singular values (:func:`singular_spectrum`) of several models' embeddings of the same
    sentences, on a log scale; the legend gives each model's share of the top direction."""
    fig, ax = _figure(ax, figsize=(6, 4))
    for i, (name, matrix) in enumerate(embeddings.items()):
        s = singular_spectrum(matrix)
        top = s[0] ** 2 / np.sum(s ** 2)
        ax.plot(np.arange(1, len(s) + 1), s, color=f"C{i}", linestyle=("-", "--", "-.", ":")[i % 4],
                label=f"{name} (top direction {top:.0%})")  # line styles: curves that coincide stay visible
    ax.set_yscale("log")
    ax.set_xlabel("index k of the singular value")
    ax.set_ylabel(r"$\sigma_k / \sigma_1$ (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
