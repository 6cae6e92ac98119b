"""Figures for the course. Each function returns a matplotlib ``Figure`` and takes an optional ``ax``,
so notebooks stay one line per figure and tests can check what was drawn.

One module per kind of figure, all reached through this package (``plots.plot_curves(...)``):

- ``curves``: training curves (a dev metric with its band, several runs, DiffCSE's two losses, the batch-size study)
- ``scores``: the data and the scores (lengths, cosine distributions, the length bias, the queue, alignment and
  uniformity)
- ``matrices``: heatmaps (SimCSE's label matrix, cosine and logit matrices, the loss playground)
- ``geometry``: the embedding space (unit rows, a 2-D PCA projection, the singular-value spectrum)
- ``base``: what they share (the Agg backend when there is no display, the CJK font, :func:`short` tick labels)

Chinese text in figures needs a CJK font: importing this package calls
:func:`cse_helpers.classroom.fonts.use_cjk_font`, which registers the Noto Sans SC font that the course
installs from PyPI (or a CJK font of the system) and makes it matplotlib's first sans-serif font.
Without one, :func:`cse_helpers.course.setup` warns, and matplotlib's own missing-glyph warnings are
left on. Tables with Chinese text are HTML, in :mod:`cse_helpers.classroom.tables`.

Scores come with their noise: a dev metric drawn along training gets its bootstrap interval as a
band (``spearman_ci`` of :func:`cse_helpers.evaluate.evaluate_pairs`), the untrained model as a
reference line, and an axis of at least :data:`MIN_SPAN` so that a change smaller than the noise
does not look like a climb.
"""

from ..fonts import CJK_FONTS, find_cjk_font, use_cjk_font  # re-exported: course.py and colab.py use them
from .base import CJK_FONT, legend_outside, short
from .curves import (
    MIN_SPAN,
    draw_baseline,
    draw_metric,
    keep_min_span,
    plot_batch_study,
    plot_curves,
    plot_history,
    plot_loss_parts,
)
from .geometry import pca_2d, plot_embedding_projection, plot_singular_spectrum, singular_spectrum, unit_rows
from .matrices import PLAYGROUND_FIGSIZE, plot_label_matrix, plot_playground, plot_similarity_matrix
from .scores import (
    plot_added_length,
    plot_alignment_uniformity,
    plot_cosine_distribution,
    plot_length_bias,
    plot_length_histogram,
    plot_queue_fill,
)

__all__ = [
    "CJK_FONT", "CJK_FONTS", "find_cjk_font", "use_cjk_font", "short", "legend_outside",
    "MIN_SPAN", "draw_metric", "draw_baseline", "keep_min_span", "plot_history", "plot_curves", "plot_loss_parts",
    "plot_batch_study",
    "plot_length_histogram", "plot_cosine_distribution", "plot_length_bias", "plot_added_length", "plot_queue_fill",
    "plot_alignment_uniformity",
    "PLAYGROUND_FIGSIZE", "plot_label_matrix", "plot_similarity_matrix", "plot_playground",
    "unit_rows", "pca_2d", "singular_spectrum", "plot_embedding_projection", "plot_singular_spectrum",
]
