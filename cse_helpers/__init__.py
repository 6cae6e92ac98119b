"""cse_helpers: the code behind the course on unsupervised contrastive sentence embeddings.

Modules, one concept each: ``data`` (files and LCQMC), ``augment`` (word repetition and friends),
``losses`` (InfoNCE and the SimCSE label matrix), ``models`` (the encoder, SimCSE, ESimCSE, DiffCSE),
``train`` (the loop and its CLI), ``evaluate`` (metrics on labelled pairs and the one rule for "beyond the
noise"), ``results`` (measured results the notebooks read: the seeds' spread, LCQMC's ranking), ``inference``
(similarity and semantic search), ``plots`` (figures), ``tables`` (HTML tables), ``runtime`` (device,
precision, seeds), ``checkpoint`` (exports and resumable training state), ``constants`` (the names
and paths several modules use), ``tiny`` (small models built offline from a config), ``pretrain``
(how the shipped default model was made), ``course`` (the notebooks' setup cell: modes, settings,
data and model), ``colab`` (installing on Colab), ``analysis`` (the notebooks' length-bias
measurements) and ``widgets`` (the interactive pieces of the notebooks).
"""

import os

from .constants import DEFAULT_MODEL

__version__ = "0.1.0"
__all__ = ["DEFAULT_MODEL", "default_model_available"]


def default_model_available() -> bool:
    """True when the shipped default model is present (it is package data)."""
    return os.path.isfile(os.path.join(DEFAULT_MODEL, "config.json"))
