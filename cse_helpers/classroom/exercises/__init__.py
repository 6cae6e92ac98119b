"""Checks for the exercises at the end of each notebook (worked answers: ``notebooks/05_solutions.ipynb``).

Each ``check_*`` takes your answer (a function, or numbers), tries it on inputs of its own and compares
it with the definition this package uses (``cse_helpers.losses``, ``augment``, ``objectives``, ``evaluate``).
It returns a :class:`Verdict`, which a notebook shows as one line: right, or what is wrong and a hint
(e.g. "did you count the row against itself?"). ``bool(verdict)`` is True for a right answer.

An exercise cell starts as a stub whose body is ``...``: a function that returns None, or the value
None. Checking a stub says "not attempted yet" and nothing about the answer.

One module per notebook; a notebook calls them all through this package
(``from cse_helpers.classroom import exercises; exercises.check_spearman(spearman)``):

- 0, ``text_matching``: :func:`check_character_jaccard`, :func:`check_spearman`, :func:`check_spearman_noise`
- 1, ``simcse``: :func:`check_tau1_loss_floor`, :func:`check_alignment`, :func:`check_uniformity`,
  :func:`check_dropout_ablation`
- 2, ``esimcse``: :func:`check_word_repetition`, :func:`check_momentum_update`, :func:`check_length_cue`
- 3, ``diffcse``: :func:`check_rtd_labels`, :func:`check_mask_fractions`, :func:`check_conditioning_losses`
- 4, ``compare``: :func:`check_mean_pooling`, :func:`check_top_k`

``verdict`` holds the :class:`Verdict` and the helpers every check shares.
"""

from .compare import check_mean_pooling, check_top_k, mean_pool_reference
from .diffcse import check_conditioning_losses, check_mask_fractions, check_rtd_labels, rtd_reference
from .esimcse import check_length_cue, check_momentum_update, check_word_repetition
from .simcse import (
    check_alignment,
    check_dropout_ablation,
    check_tau1_loss_floor,
    check_uniformity,
    simplex_views,
    tau1_lowest_loss,
)
from .text_matching import check_character_jaccard, check_spearman, check_spearman_noise
from .verdict import TOLERANCE, Verdict

__all__ = [
    "TOLERANCE", "Verdict",
    "check_character_jaccard", "check_spearman", "check_spearman_noise",
    "check_tau1_loss_floor", "check_alignment", "check_uniformity", "check_dropout_ablation",
    "tau1_lowest_loss", "simplex_views",
    "check_word_repetition", "check_momentum_update", "check_length_cue",
    "check_rtd_labels", "check_mask_fractions", "check_conditioning_losses", "rtd_reference",
    "check_mean_pooling", "check_top_k", "mean_pool_reference",
]
