"""The papers' values, each written once, with the paper it comes from.

:class:`~cse_helpers.arguments.TrainingArguments` (the command line's defaults), the objectives' constructors
(``cse_helpers.objectives``) and the notebooks' widgets (``cse_helpers.classroom.widgets``) all read
their defaults here, so a value the course quotes ("SimCSE uses a temperature of 0.05") has one home.

Importing this module loads nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperValue:
    """A setting's value in a paper: ``value``, the ``paper`` (short name) and ``where`` in it."""

    value: float | int | str
    paper: str
    where: str

    def __str__(self) -> str:
        """``"SimCSE uses 0.05"``: the phrase error messages quote."""
        value = format(self.value, "g").replace("e-0", "e-") if isinstance(self.value, float) else self.value
        return f"{self.paper} uses {value}"


#: Setting name (a field of ``TrainingArguments``, or an objective's argument) -> its value in the papers,
#: for BERT-base on unsupervised English Wikipedia sentences.
PAPERS: dict[str, PaperValue] = {
    "temperature": PaperValue(0.05, "SimCSE", "Gao et al., 2021: the InfoNCE temperature of unsupervised SimCSE"),
    "margin": PaperValue(0.0, "SimCSE", "Gao et al., 2021: plain InfoNCE, no additive margin"),
    "learning_rate": PaperValue(3e-5, "SimCSE", "Gao et al., 2021, appendix A: unsupervised BERT-base"),
    "batch_size": PaperValue(64, "SimCSE", "Gao et al., 2021, appendix A: unsupervised BERT-base"),
    "weight_decay": PaperValue(0.0, "SimCSE", "Gao et al., 2021: AdamW without weight decay"),
    "dropout": PaperValue(0.1, "SimCSE", "Gao et al., 2021: BERT's own dropout, p = 0.1, is the augmentation"),
    "dup_rate": PaperValue(0.32, "ESimCSE", "Wu et al., 2022: the share of a sentence's tokens that may be "
                                            "repeated in its positive view"),
    "queue_size": PaperValue(160, "ESimCSE", "Wu et al., 2022: 2.5 batches of 64 momentum-encoder embeddings"),
    "momentum": PaperValue(0.995, "ESimCSE", "Wu et al., 2022: the momentum encoder's moving average"),
    "mask_ratio": PaperValue(0.3, "DiffCSE", "Chuang et al., 2022: the share of tokens masked for replaced-token "
                                             "detection"),
    "lambda_rtd": PaperValue(0.005, "DiffCSE", "Chuang et al., 2022: the weight of the replaced-token-detection "
                                               "loss for BERT-base"),
    "diffcse_projector": PaperValue("bn", "DiffCSE", "Chuang et al., 2022: a projector with BatchNorm on the "
                                                     "pooler (here ``projector='bn'``)"),
}


def paper(name: str):
    """The papers' value of setting ``name`` (a key of :data:`PAPERS`)."""
    return PAPERS[name].value


#: The settings that are numbers in an interval: name -> (lowest, highest, lowest allowed, highest allowed).
#: A value outside is refused with what the papers use (:data:`PAPERS`) or ``USUAL``.
RANGES = {"learning_rate": (0, math.inf, False, False), "temperature": (0, math.inf, False, False),
          "warmup_ratio": (0, 1, True, False), "weight_decay": (0, math.inf, True, False),
          "max_grad_norm": (0, math.inf, False, False), "margin": (0, 1, True, True), "dup_rate": (0, 1, True, True),
          "momentum": (0, 1, True, True), "mask_ratio": (0, 1, False, False), "lambda_rtd": (0, math.inf, True, False),
          "dropout": (0, 1, True, False), "threshold": (-1, 1, True, True)}
#: What is usual for the settings of :data:`RANGES` that no paper fixes (or that the tutorial changed).
USUAL = {"warmup_ratio": "0.1 is usual", "max_grad_norm": "1.0 is usual", "margin": "0 is SimCSE's",
         "weight_decay": "0 is SimCSE's", "dropout": "SimCSE uses 0.1, the tutorial 0.3",
         "threshold": "a cosine similarity; the tutorial uses 0.5"}


def check_in_range(name: str, value: float) -> None:
    """A ValueError unless ``value`` lies in the interval :data:`RANGES` gives ``name``; it says what is usual."""
    low, high, low_ok, high_ok = RANGES[name]
    inside = (low < value or (low_ok and value == low)) and (value < high or (high_ok and value == high))
    if not (math.isfinite(value) and inside):
        interval = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
        raise ValueError(f"{name}={value}: it must be a number in {interval}; {USUAL.get(name) or PAPERS[name]}.")
