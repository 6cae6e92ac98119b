"""cse_helpers: the code behind the course on unsupervised contrastive sentence embeddings.

Modules, one concept each: ``data`` (files and LCQMC), ``augment`` (word repetition and friends),
``losses`` (InfoNCE and the SimCSE label matrix), ``models`` (the encoder, SimCSE, ESimCSE, DiffCSE),
``train`` (the loop and its CLI), ``evaluate`` (metrics on labelled pairs), ``inference``
(similarity), ``plots`` (figures), ``runtime`` (device, precision, seeds), ``checkpoint`` (exports
and resumable training state), ``tiny`` (small models built offline from a config), ``pretrain``
(how the shipped default model was made), ``course`` (the notebooks' setup cell) and ``widgets``
(the interactive pieces of the notebooks).
"""

import os

__version__ = "0.1.0"

#: The small Chinese encoder shipped inside the package (a directory in the Hugging Face layout).
DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_model")


def default_model_available() -> bool:
    """True when the shipped default model is present (it is package data)."""
    return os.path.isfile(os.path.join(DEFAULT_MODEL, "config.json"))
