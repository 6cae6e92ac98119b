"""cse_helpers: the code behind the course on unsupervised contrastive sentence embeddings.

Modules, one concept each: ``data`` (files and LCQMC), ``augment`` (word repetition and friends),
``losses`` (InfoNCE and the SimCSE label matrix), ``models`` (the encoder, SimCSE, ESimCSE, DiffCSE),
``train`` (the loop and its CLI), ``evaluate`` (metrics on labelled pairs), ``inference``
(similarity), ``plots`` (figures), ``runtime`` (device, precision, seeds), ``tiny`` (small models
built offline from a config).
"""

__version__ = "0.1.0"
