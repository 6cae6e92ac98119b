"""The training objectives, one per file, each readable alone beside its notebook.

- :mod:`.base`: :class:`Objective`, what the training loop asks of every objective (the loss in parts, hooks);
- :mod:`.simcse`: :class:`SimCSE` (Gao et al., 2021), dropout as augmentation, InfoNCE;
- :mod:`.esimcse`: :class:`ESimCSE` (Wu et al., 2022), word repetition and the momentum queue;
- :mod:`.diffcse`: :class:`DiffCSE` (Chuang et al., 2022), SimCSE + conditional replaced-token detection.

:data:`OBJECTIVES` is the one place that maps a method's name (``--method``) to its objective.
"""

from __future__ import annotations

from ..constants import METHODS
from .base import Objective, split_views
from .diffcse import DiffCSE, binary_entropy, load_generator, mask_tokens
from .esimcse import EmbeddingQueue, ESimCSE, MomentumEncoder
from .simcse import SimCSE

__all__ = ["OBJECTIVES", "DiffCSE", "ESimCSE", "EmbeddingQueue", "MomentumEncoder", "Objective", "SimCSE",
           "binary_entropy", "load_generator", "mask_tokens", "objective_class", "split_views"]

#: In the order of :data:`METHODS` (tests/test_models.py checks that both name the same methods).
OBJECTIVES: dict[str, type[Objective]] = {"simcse": SimCSE, "esimcse": ESimCSE, "diffcse": DiffCSE}


def objective_class(method: str) -> type[Objective]:
    """The objective class of a method name (one of :data:`cse_helpers.constants.METHODS`)."""
    if method not in OBJECTIVES:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}.")
    return OBJECTIVES[method]
