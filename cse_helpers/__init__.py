"""cse_helpers: the code behind the course on unsupervised contrastive sentence embeddings.

The map, one concept per module. Read the teaching core beside the notebooks; the folders hold what the core
does not need.

The teaching core (``cse_helpers/``):
    ``data``        files and LCQMC: training sentences, labelled pairs, their errors
    ``augment``     word repetition (ESimCSE) and the other text-level views
    ``losses``      InfoNCE, the SimCSE 2B x 2B label matrix, cosine matrices
    ``encoder``     ``SentenceEncoder``: a Hugging Face encoder + pooler (+ head) -> one vector per sentence
    ``objectives/`` one file per method, each readable alone: ``base`` (what the loop asks of an objective),
                    ``simcse``, ``esimcse`` (momentum encoder, queue), ``diffcse`` (generator, replaced-token
                    detection); ``OBJECTIVES`` maps ``--method`` to its class
    ``defaults``    the papers' values (temperature, dup_rate, queue, ...), one table, each with its paper
    ``arguments``   every training setting (``TrainingArguments``) and the command line's flags
    ``batches``     tokenizing once, an epoch's batches, the two views of each sentence
    ``preflight``   the checks before anything is loaded: data, model paths, the save folder
    ``train``       the training loop (``Trainer``: fit -> epoch -> step) and ``python -m cse_helpers.train``
    ``loop_state``  what the loop counts: step and epoch, the logging window, the history
    ``evaluate``    metrics on labelled pairs, bootstrap intervals, the one rule for "beyond the noise"
    ``inference``   similarity and semantic search with a trained encoder
    ``checkpoint``  exports (``best``, ``last``) and resumable training states
    ``runtime``     device, precision, seeds
    ``constants``   names and paths several modules use
    ``course``      the notebooks' setup cell: quick or full mode, settings, data, model

``scale/`` (training past one forward pass): ``step`` (the one seam through which the two below enter
``Trainer.step``), ``grad_cache`` (gradient caching), ``distributed`` (torchrun processes), ``memory`` (peak
memory, the largest batch that fits).

``classroom/`` (what the notebooks show and ask): ``plots/`` (``base``, ``curves``, ``scores``, ``matrices``,
``geometry``), ``fonts``, ``tables``, ``widgets`` (the interactive pieces) and ``knobs`` (what they compute),
``exercises/`` (the checkers, one module per notebook: ``text_matching``, ``simcse``, ``esimcse``, ``diffcse``,
``compare``, sharing ``verdict``), ``analysis`` (length-bias measurements), ``batch_study``, ``results``
(measured results the notebooks quote), ``colab``.

``tools/`` (maintainer tools, ``python -m cse_helpers.tools.NAME``; no notebook imports them): ``pretrain``,
``corpus`` and ``vocabulary`` (how the shipped model was made) and ``model_card`` (its README), ``tiny`` (small
offline models for tests), ``demo``, ``run_course``, ``site``, ``publish``.
"""

import os

from .constants import DEFAULT_MODEL

__version__ = "0.1.0"
__all__ = ["DEFAULT_MODEL", "default_model_available"]


def default_model_available() -> bool:
    """True when the shipped default model is present (it is package data)."""
    return os.path.isfile(os.path.join(DEFAULT_MODEL, "config.json"))
