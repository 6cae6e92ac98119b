"""Notebook 1's exercises: the loss at temperature 1, Wang & Isola's alignment and uniformity, and the dropout
ablation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ... import evaluate, losses
from ...defaults import paper
from .verdict import (
    Verdict,
    _call,
    _checked,
    _close,
    _mistake,
    _not_attempted,
    _number,
    _Raised,
    _right,
    _wrong,
)


def tau1_lowest_loss(batch_size: int) -> float:
    """The lowest value of :func:`~cse_helpers.losses.simcse_matrix_loss` at temperature 1 (margin 0) for B sentences.

    Each row has its twin and 2B - 2 negatives. More than two unit vectors cannot all sit at cosine -1 from each
    other, so "twin at +1, every negative at -1" is out of reach for B > 2. By Jensen's inequality the loss is at
    least log(1 + (2B - 2) exp(m)), m the mean over rows of (mean negative cosine - twin cosine), and m >= -B/(B-1)
    because |sum of all 2B vectors|^2 >= 0. Twins identical and the B sentences on a regular simplex (every pair
    at cosine -1/(B-1)) reach it: log(1 + (2B - 2) e^{-B/(B-1)}) (needs B - 1 dimensions).
    """
    b = batch_size
    return math.log1p((2 * b - 2) * math.exp(-b / (b - 1)))


def simplex_views(batch_size: int, dim: int | None = None) -> torch.Tensor:
    """(2B, D) unit rows a1 a2 b1 b2 ...: twins identical, the B sentences on a regular simplex (cosine -1/(B-1))."""
    dim = dim or batch_size
    corners = torch.eye(batch_size, dim, dtype=torch.float64) - torch.ones(batch_size, dim,
                                                                          dtype=torch.float64) / batch_size
    corners[:, batch_size:] = 0.0
    return F.normalize(corners, dim=1).repeat_interleave(2, dim=0)


def _matrix_loss_levels(batch_size: int) -> tuple[float, float]:
    """(lowest, chance) of :func:`~cse_helpers.losses.simcse_matrix_loss` at temperature 1.

    The lowest is :func:`tau1_lowest_loss`; the chance level is the loss of identical embeddings (every
    logit equal), computed by the package on its own label matrix.
    """
    chance = float(losses.simcse_matrix_loss(torch.ones(2 * batch_size, 3), temperature=1.0))
    return tau1_lowest_loss(batch_size), chance


@_checked("the loss at temperature 1")
def check_tau1_loss_floor(levels: Callable[[int], tuple[float, float]] | None) -> Verdict:
    """Check ``levels(B)`` -> (lowest, chance): the lowest value and the chance level of the 2B x 2B loss.

    The loss is :func:`cse_helpers.losses.simcse_matrix_loss` at temperature 1, margin 0, for a batch of B
    sentences (2B rows of unit vectors): the lowest value any embeddings can reach, and the loss when every
    embedding is the same. Tried for B = 4, 2, 8 and 64 (B = 2 last among the small ones would hide the
    antipodal answer, which is right only there).
    """
    exercise = "the loss at temperature 1"
    if levels is None:
        return _not_attempted(exercise, "Write levels(B) returning (lowest, chance)")
    names = ("lowest", "chance")
    for b in (4, 2, 8, 64):
        got = _call(exercise, levels, b, described=f"B={b}")
        if got is None:
            return _not_attempted(exercise, "Make levels(B) return (lowest, chance)")
        values = [_number(v) for v in got] if isinstance(got, (tuple, list)) else []
        if len(values) != 2 or None in values:
            return _wrong(exercise, f"levels({b}) returned {got!r}; return two numbers: (lowest, chance).")
        simplex = math.exp(-b / (b - 1))
        mistakes = {
            "lowest": [(math.log1p((2 * b - 2) * math.exp(-2.0)),
                        "that puts each twin at +1 and every negative at -1, which more than two unit vectors "
                        "cannot do: the mean cosine over all pairs of N unit vectors is at least -1/(N-1) "
                        "(expand |z_1 + ... + z_N|^2 >= 0). Which arrangement puts every negative equally far?"),
                       (math.log1p((2 * b - 1) * simplex), "did you count the row against itself? "
                                                           "simcse_matrix_loss masks the diagonal: it is not a "
                                                           "negative."),
                       (math.log1p((b - 1) * simplex), "that is info_nce's B x B form; count the negatives of a "
                                                       "row of the 2B x 2B matrix."),
                       (math.log1p((2 * b - 2) * math.exp(-(2 * b) / (2 * b - 1))),
                        "that spreads all 2B rows on a simplex of 2B points; with the twins identical there are "
                        "only B distinct points, so the simplex has B corners (cosine -1/(B-1))."),
                       (math.log1p((2 * b - 1) * math.exp(-2.0)), "each twin at +1 and every negative at -1 "
                                                                  "cannot happen for B > 2, and the diagonal is "
                                                                  "masked (not a negative)."),
                       (0.0, "at temperature 1 the logits stay in [-1, 1]: the softmax cannot put all its "
                             "probability on the positive, so the loss cannot reach 0.")],
            "chance": [(math.log(2 * b), "did you count the row against itself? Its logit is masked (-inf), so "
                                         "it is not one of the candidates."),
                       (math.log(b), "that is info_nce's B x B form; a row of the 2B x 2B matrix has more "
                                     "candidates."),
                       (math.log(2 * b - 2), "the positive is one of the candidates of the softmax too.")],
        }
        for name, value, expected in zip(names, values, _matrix_loss_levels(b)):
            if not _close(value, expected):
                hint = _mistake(value, mistakes[name]) or (
                    "at temperature 1 the logits are the cosines themselves; count the candidates of one row "
                    "(its twin, and the negatives) in simcse_label_matrix(B), and ask which cosines unit "
                    "vectors can have all at once.")
                return _wrong(exercise, f"got {name} = {value:.4f} for B={b}, expected {expected:.4f}: {hint}")
    lowest, chance = _matrix_loss_levels(4)
    return _right(exercise, f"For B=4 the loss is at least {lowest:.3f} (twins identical, the 4 sentences on a "
                            f"regular simplex, cosine -1/3), and {chance:.3f} when every embedding is the same. At "
                            "temperature 1 even the best arrangement keeps a large loss: that is one reason "
                            f"SimCSE divides the cosines by {paper('temperature')}.")


def _unit_rows(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@_checked("alignment")
def check_alignment(alignment: Callable[[torch.Tensor, torch.Tensor], float] | None) -> Verdict:
    """Check ``alignment(za, zb)``: Wang & Isola's alignment of positive pairs (rows of za and zb, unit length).

    Compared with :func:`cse_helpers.evaluate.alignment` (alpha = 2).
    """
    exercise = "alignment"
    if alignment is None:
        return _not_attempted(exercise, "Write alignment(za, zb)")
    za = _unit_rows(50, 16, 0)
    zb = F.normalize(za + 0.5 * _unit_rows(50, 16, 1), dim=1)  # positives: close, not equal
    got = _call(exercise, alignment, za.clone(), zb.clone(), described="50 pairs of unit vectors")
    if got is None:
        return _not_attempted(exercise, "Make alignment(za, zb) return a number")
    value = _number(got)
    if value is None:
        return _wrong(exercise, f"alignment returned {type(got).__name__}; return a number (float or 0-d tensor).")
    expected = evaluate.alignment(za, zb)
    if not _close(value, expected):
        distance = (za - zb).norm(dim=1)
        hint = _mistake(value, [
            (float(distance.mean()), "you averaged the distance ||za_i - zb_i||; alignment averages its square "
                                     "(alpha = 2)."),
            (float(distance.pow(2).sum()), "you summed over the pairs; take the mean (an expectation)."),
            (float((1 - (za * zb).sum(1)).mean()), "that is the mean of 1 - cos; on unit vectors "
                                                   "||a - b||^2 = 2 - 2 cos(a, b)."),
            (float(torch.cdist(za, zb).pow(2).mean()), "you compared every za_i with every zb_j; alignment "
                                                       "compares each positive pair only (row i with row i)."),
        ]) or "alignment = E ||f(x) - f(x+)||^2 over the positive pairs."
        return _wrong(exercise, f"got {value:.4f}, expected {expected:.4f} on 50 pairs: {hint}")
    return _right(exercise, "It matches cse_helpers.evaluate.alignment.")


@_checked("uniformity")
def check_uniformity(uniformity: Callable[[torch.Tensor], float] | None) -> Verdict:
    """Check ``uniformity(z)``: Wang & Isola's uniformity of unit-length embeddings z (N, D), t = 2.

    Compared with :func:`cse_helpers.evaluate.uniformity`.
    """
    exercise = "uniformity"
    if uniformity is None:
        return _not_attempted(exercise, "Write uniformity(z)")
    z = _unit_rows(40, 8, 2)
    got = _call(exercise, uniformity, z.clone(), described="40 unit vectors")
    if got is None:
        return _not_attempted(exercise, "Make uniformity(z) return a number")
    value = _number(got)
    if value is None:
        return _wrong(exercise, f"uniformity returned {type(got).__name__}; return a number (float or 0-d tensor).")
    expected = evaluate.uniformity(z)
    if not _close(value, expected):
        squared = torch.cdist(z, z).pow(2)  # (N, N), zeros on the diagonal
        pairs = torch.pdist(z).pow(2)  # i < j
        hint = _mistake(value, [
            (float(squared.mul(-2).exp().mean().log()), "you included each point paired with itself (distance "
                                                        "0, so exp(0) = 1 terms); use the pairs i != j."),
            (float(pairs.mul(-1).exp().mean().log()), "Wang & Isola's t is 2: exp(-2 ||z_i - z_j||^2)."),
            (float(pairs.mul(-2).exp().mean()), "the log is missing: uniformity = log E exp(-2 ||z_i - z_j||^2)."),
            (float(pairs.sqrt().mul(-2).exp().mean().log()), "use the *squared* distance."),
        ]) or "uniformity = log of the mean of exp(-2 ||z_i - z_j||^2) over pairs of distinct points."
        return _wrong(exercise, f"got {value:.4f}, expected {expected:.4f} on 40 points: {hint}")
    return _right(exercise, "It matches cse_helpers.evaluate.uniformity.")


def _run_settings(run, exercise: str, which: str) -> dict:
    """The arguments a :class:`~cse_helpers.train.TrainResult` was trained with (its ``training_args.json``)."""
    import json
    import os

    path = os.path.join(str(getattr(run, "last_dir", "")), "training_args.json")
    if not hasattr(run, "history") or not os.path.isfile(path):
        raise _Raised(_wrong(exercise, f"{which} is {type(run).__name__}; give what C.train(...) returns (a "
                                       "TrainResult, whose run folder holds training_args.json)."))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _ablation_seed_spread(settings_with: Mapping, settings_without: Mapping) -> float | None:
    """The recorded seed spread of "simcse" against "simcse dropout=0.0" when the runs were trained at the
    recorded quick-mode settings (``cse_helpers/recorded/quick_seeds.json``); None otherwise (not measured)."""
    import os

    from ...constants import DEFAULT_MODEL
    from ..results import COMPARED_SETTINGS, quick_seeds, recorded_spread

    recorded = quick_seeds()
    same_model = os.path.abspath(str(settings_with.get("model"))) == os.path.abspath(DEFAULT_MODEL)
    at_records = all(settings_with.get(k) == recorded["settings"].get(k) for k in COMPARED_SETTINGS)
    if not (same_model and at_records and "simcse dropout=0.0" in recorded["runs"]):
        return None
    return recorded_spread("simcse", "simcse dropout=0.0")


@_checked("dropout off")
def check_dropout_ablation(runs: Sequence | None) -> Verdict:
    """Check an ablation: ``runs = (without, with_dropout)``, two SimCSE runs of ``C.train`` (TrainResults) that
    differ only in their dropout (0 in the first, > 0 in the second).

    It checks the set-up (one change only), then reports what the runs show: the first and last training loss of
    each and their dev Spearman compared under the course's one rule (:func:`cse_helpers.evaluate.compare_text`;
    the seed spread is the recorded one when the runs used the recorded quick-mode settings, else not measured).
    """
    exercise = "dropout off"
    if runs is None:
        return _not_attempted(exercise, "Train the two runs and set dropout_runs = (without, with_dropout)")
    if not isinstance(runs, (tuple, list)) or len(runs) != 2:
        return _wrong(exercise, f"got {type(runs).__name__}; make it a pair (without, with_dropout) of what "
                                "C.train returns.")
    without, with_dropout = runs
    settings = [_run_settings(run, exercise, which) for run, which in ((without, "the first run"),
                                                                        (with_dropout, "the second run"))]
    if settings[0].get("method") != "simcse" or settings[1].get("method") != "simcse":
        return _wrong(exercise, "train both runs with the method \"simcse\".")
    if settings[0].get("dropout") != 0.0:
        return _wrong(exercise, f"the first run was trained with dropout {settings[0].get('dropout')}; train it with "
                                "dropout=0.0 (C.train(\"simcse\", dropout=0.0, ...)).")
    if not settings[1].get("dropout"):
        return _wrong(exercise, "the second run has dropout 0 too; train it with this mode's dropout (leave "
                                "dropout out).")
    from ...arguments import RUN_DEFINING

    differ = [k for k in RUN_DEFINING if k != "dropout" and settings[0].get(k) != settings[1].get(k)]
    if differ:
        return _wrong(exercise, f"the runs differ in {', '.join(differ)} too: change only the dropout, or the "
                                "comparison cannot say what the dropout did.")
    evals = [run.history.get("eval") or [] for run in (without, with_dropout)]
    if not all(evals):
        return _wrong(exercise, "a run has no dev evaluation; train with the default valid_steps (or one that "
                                "evaluates at the last step).")
    scored = []
    for run, history in zip((without, with_dropout), evals):
        final = dict(history[-1])
        if getattr(run, "final_scores", None) is not None:
            final["scores"] = run.final_scores
        scored.append(final)
    logs = [run.history["log"] for run in (without, with_dropout)]
    p = settings[1]["dropout"]
    lines = [f"training loss, first -> last logged: dropout 0: {logs[0][0]['loss']:.3f} -> {logs[0][-1]['loss']:.3f}; "
             f"dropout {p}: {logs[1][0]['loss']:.3f} -> {logs[1][-1]['loss']:.3f}."]
    lines.append("Without dropout the two views of a sentence are the same vector (its positive has cosine 1), "
                 "so the loss is " + ("lower from the first step: the positive is found trivially, and only the "
                                      "negatives are left to push apart."
                                      if logs[0][0]["loss"] < logs[1][0]["loss"] else
                                      "not lower at the first step here, which is unexpected: check that the first "
                                      "run really used dropout 0."))
    spread = _ablation_seed_spread(settings[1], settings[0])
    lines.append("Dev Spearman: " + evaluate.compare_text("dropout 0", scored[0], f"dropout {p}", scored[1],
                                                          seed_spread=spread))
    lines.append("Gao et al. (2021) report that removing dropout leads to a representation collapse at their scale "
                 "(abstract; Table 3 for the dropout rates they tried); whether a short run shows it is what the "
                 "verdict above says.")
    return _right(exercise, "\n".join(lines))
