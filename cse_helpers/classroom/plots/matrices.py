"""Matrices as heatmaps: SimCSE's label matrix, cosine and logit matrices, the loss playground's picture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .base import _figure, _numpy, short


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

    ``result`` is what :func:`cse_helpers.classroom.knobs.batch_loss` returns. Row i is the anchor
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
