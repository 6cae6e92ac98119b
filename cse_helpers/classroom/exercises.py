"""Checks for the exercises at the end of each notebook (worked answers: ``notebooks/05_solutions.ipynb``).

Each ``check_*`` takes your answer (a function, or numbers), tries it on inputs of its own and compares
it with the definition this package uses (``cse_helpers.losses``, ``augment``, ``models``, ``evaluate``).
It returns a :class:`Verdict`, which a notebook shows as one line: right, or what is wrong and a hint
(e.g. "did you count the row against itself?"). ``bool(verdict)`` is True for a right answer.

An exercise cell starts as a stub whose body is ``...``: a function that returns None, or the value
None. Checking a stub says "not attempted yet" and nothing about the answer.

Exercises, by notebook:

- 0: :func:`check_character_jaccard`, :func:`check_spearman`, :func:`check_spearman_noise`
- 1: :func:`check_tau1_loss_floor`, :func:`check_alignment`, :func:`check_uniformity`,
  :func:`check_dropout_ablation`
- 2: :func:`check_word_repetition`, :func:`check_momentum_update`, :func:`check_length_cue`
- 3: :func:`check_rtd_labels`, :func:`check_mask_fractions`, :func:`check_conditioning_losses`
- 4: :func:`check_mean_pooling`, :func:`check_top_k`
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import augment, evaluate, losses
from ..objectives import MomentumEncoder, mask_tokens

TOLERANCE = 1e-4  # relative tolerance for answers that are exact numbers


@dataclass(frozen=True)
class Verdict:
    """The result of a check: ``passed``, and a ``message`` that says why."""

    passed: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:  # what a notebook shows under the check cell
        return self.message

    __str__ = __repr__

    def or_raise(self) -> Verdict:
        """Raise AssertionError with the message unless the answer is right (the solutions notebook uses it)."""
        if not self.passed:
            raise AssertionError(self.message)
        return self


def _right(exercise: str, detail: str = "") -> Verdict:
    return Verdict(True, f"✔ {exercise}: right." + (f" {detail}" if detail else ""))


def _wrong(exercise: str, what: str) -> Verdict:
    return Verdict(False, f"✘ {exercise}: not yet. {what}")


def _not_attempted(exercise: str, what: str) -> Verdict:
    return Verdict(False, f"… {exercise}: not attempted yet. {what}, then run this cell again.", attempted=False)


class _Raised(Exception):
    """Your code raised an exception; carries the verdict that says so."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.message)
        self.verdict = verdict


def _call(exercise: str, fn: Callable, *args, described: str = ""):
    """``fn(*args)``, turning an exception raised by the learner's code into a verdict."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 -- any error in the learner's code is reported, not raised
        where = f" on {described}" if described else ""
        raise _Raised(_wrong(exercise, f"your function raised {type(e).__name__}: {e}{where}.")) from e


def _checked(exercise: str):
    """Decorator: a check whose body may raise :class:`_Raised` returns that verdict instead."""

    def wrap(check):
        def run(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except _Raised as raised:
                return raised.verdict

        run.__name__, run.__doc__, run.__wrapped__ = check.__name__, check.__doc__, check
        return run

    return wrap


def _close(a: float, b: float, rel: float = TOLERANCE, abs_: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)


def _number(value) -> float | None:
    """A float from a Python number, a NumPy scalar or a one-element tensor; None otherwise."""
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _mistake(value: float, candidates: Sequence[tuple[float, str]], rel: float = 1e-3) -> str | None:
    """The hint of the first known mistake whose value ``value`` matches."""
    for candidate, hint in candidates:
        if _close(value, candidate, rel=rel, abs_=1e-6):
            return hint
    return None


def _tensor(value, exercise: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise _Raised(_wrong(exercise, f"return a tensor of shape {shape}; got {type(value).__name__}.")) from e
    if tuple(value.shape) != shape:
        raise _Raised(_wrong(exercise, f"return a tensor of shape {shape}; got {tuple(value.shape)}."))
    return value


# ------------------------------------------------------------------------------------------------
# Notebook 0: character overlap, Spearman and its noise
# ------------------------------------------------------------------------------------------------

JACCARD_CASES = (("蛋黄吃多了有什么坏处", "吃鸡蛋白过多有什么坏处"), ("蛋黄吃多了有什么坏处", "蛋黄可以多吃吗"),
                 ("多多益善", "多少钱"), ("好好学习天天向上", "天天学习"), ("手机没电了怎么办", "手机没电了怎么办"))


@_checked("character Jaccard")
def check_character_jaccard(jaccard: Callable[[str, str], float] | None) -> Verdict:
    """Check ``jaccard(a, b)``: the character-overlap score of two sentences (notebook 0's baseline 1).

    Compared with :func:`cse_helpers.evaluate.character_jaccard` on pairs with shared and repeated characters.
    """
    exercise = "character Jaccard"
    if jaccard is None:
        return _not_attempted(exercise, "Write jaccard(a, b)")
    for a, b in JACCARD_CASES:
        got = _call(exercise, jaccard, a, b, described=f"({a!r}, {b!r})")
        if got is None:
            return _not_attempted(exercise, "Make jaccard(a, b) return a number")
        value = _number(got)
        if value is None:
            return _wrong(exercise, f"jaccard({a!r}, {b!r}) returned {type(got).__name__}; return a number.")
        expected = evaluate.character_jaccard([(a, b)])[0]
        if _close(value, expected):
            continue
        sa, sb, ca, cb = set(a), set(b), Counter(a), Counter(b)
        shared = len(sa & sb)
        hint = _mistake(value, [
            (sum((ca & cb).values()) / sum((ca | cb).values()),
             "You counted repeated characters more than once: Jaccard compares the *sets* of characters."),
            (shared / (len(sa) + len(sb)), "The denominator |A| + |B| counts the shared characters twice: "
                                           "divide by the size of the union."),
            (2 * shared / (len(sa) + len(sb)), "That is the Dice coefficient (2|A∩B| / (|A|+|B|)); Jaccard "
                                               "divides the intersection by the union."),
            (shared / min(len(sa), len(sb)), "You divided by the smaller set; Jaccard divides by the union."),
            (shared, "That is the number of shared characters; divide it by the size of the union."),
        ]) or "Jaccard is |chars(a) ∩ chars(b)| / |chars(a) ∪ chars(b)|."
        return _wrong(exercise, f"jaccard({a!r}, {b!r}) = {value:.4f}, expected {expected:.4f}. {hint}")
    return _right(exercise, f"It agrees with cse_helpers.evaluate.character_jaccard on {len(JACCARD_CASES)} pairs.")


def _ordinal_ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)


def _spearman_cases() -> list[tuple[np.ndarray, np.ndarray, str]]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60).astype(float)
    scores = np.round(0.3 * labels + rng.normal(0, 0.3, 60), 1)  # rounded: ties in the scores too
    graded = rng.integers(0, 6, 40).astype(float)  # STS-style labels 0..5
    return [(scores, labels, "60 pairs with 0/1 labels"),
            (np.round(graded + rng.normal(0, 2, 40), 2), graded, "40 pairs with labels 0..5"),
            (np.linspace(1, 0, 10) ** 3, np.arange(10.0), "10 pairs in reverse order")]


@_checked("Spearman")
def check_spearman(spearman: Callable[[np.ndarray, np.ndarray], float] | None) -> Verdict:
    """Check ``spearman(scores, labels)``: Spearman's rank correlation, ties included (0/1 labels are all ties).

    Compared with ``scipy.stats.spearmanr``, which ``cse_helpers.evaluate`` uses.
    """
    from scipy.stats import pearsonr, spearmanr

    exercise = "Spearman"
    if spearman is None:
        return _not_attempted(exercise, "Write spearman(scores, labels)")
    for scores, labels, described in _spearman_cases():
        got = _call(exercise, spearman, scores.copy(), labels.copy(), described=described)
        if got is None:
            return _not_attempted(exercise, "Make spearman(scores, labels) return a number")
        value = _number(got)
        if value is None:
            return _wrong(exercise, f"spearman returned {type(got).__name__} on {described}; return a number.")
        expected = float(spearmanr(scores, labels)[0])
        if _close(value, expected):
            continue
        hint = _mistake(value, [
            (float(pearsonr(scores, labels)[0]), "That is Pearson's r of the raw values; Spearman correlates "
                                                 "their *ranks*."),
            (-expected, "The sign is flipped."),
            (float(np.corrcoef(_ordinal_ranks(scores), _ordinal_ranks(labels))[0, 1]),
             "Ties: equal values must share the average of their ranks (with 0/1 labels every label is tied), "
             "e.g. scipy.stats.rankdata."),
        ]) or "Spearman is Pearson's correlation of the ranks, tied values sharing their average rank."
        return _wrong(exercise, f"got {value:.4f} on {described}, expected {expected:.4f}. {hint}")
    return _right(exercise, "It matches scipy.stats.spearmanr, ties included.")


NOISE_PAIRS, NOISE_RESAMPLES = 339, 1000  # a dev set of a few hundred pairs


def _noise_case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, NOISE_PAIRS)
    labels = (scores + rng.normal(0, 2.5, NOISE_PAIRS) > 0).astype(float)  # weakly related: Spearman ~0.3
    return scores, labels


def _reference_bootstrap(scores: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Spearman of :data:`NOISE_RESAMPLES` resamples of the pairs (with replacement), drawn as ``evaluate`` does."""
    index = np.random.default_rng(seed).integers(0, len(scores), size=(NOISE_RESAMPLES, len(scores)))  # (R, N)
    return evaluate.spearman_rows(scores[index], labels[index])  # (R,)


@_checked("Spearman's noise")
def check_spearman_noise(bootstrap: Callable | None) -> Verdict:
    """Check ``bootstrap(scores, labels, n_resamples, seed)``: the Spearman of each bootstrap resample of the pairs.

    Tried on 339 weakly related pairs: the values must be reproducible with the same seed, vary, centre
    on the Spearman of the data and spread as much as a reference bootstrap's (within 25%).
    """
    from scipy.stats import spearmanr

    exercise = "Spearman's noise"
    if bootstrap is None:
        return _not_attempted(exercise, "Write bootstrap(scores, labels, n_resamples, seed)")
    scores, labels = _noise_case()
    got = _call(exercise, bootstrap, scores.copy(), labels.copy(), NOISE_RESAMPLES, 7,
                described=f"{NOISE_PAIRS} pairs")
    if got is None:
        return _not_attempted(exercise, "Make bootstrap(...) return the list of resampled Spearman values")
    values = np.asarray(got, dtype=float).ravel()
    if values.size != NOISE_RESAMPLES:
        return _wrong(exercise, f"asked for {NOISE_RESAMPLES} resamples, got {values.size} values: return one "
                                "Spearman per resample.")
    again = np.asarray(_call(exercise, bootstrap, scores.copy(), labels.copy(), NOISE_RESAMPLES, 7), dtype=float)
    if not np.array_equal(values, again.ravel()):
        return _wrong(exercise, "two calls with the same seed gave different values: draw from "
                                "np.random.default_rng(seed), so a result can be reproduced.")
    observed = float(spearmanr(scores, labels)[0])
    reference = _reference_bootstrap(scores, labels)
    spread, expected_spread = float(np.std(values)), float(np.std(reference))
    if spread < 1e-9:
        return _wrong(exercise, "every resample gave the same Spearman: draw the pairs *with* replacement "
                                "(a permutation of the same pairs has the same Spearman).")
    if abs(np.mean(values) - observed) > 0.3 * abs(observed):
        return _wrong(exercise, f"your values centre on {np.mean(values):.3f} while the Spearman of the data is "
                                f"{observed:.3f}: did you resample the scores and the labels separately? "
                                "Resample *pairs*: the same index for both.")
    if not 0.75 < spread / expected_spread < 1.33:
        return _wrong(exercise, f"the spread (standard deviation) of your values is {spread:.3f}, a bootstrap "
                                f"of {NOISE_PAIRS} pairs gives about {expected_spread:.3f}: each resample must "
                                f"hold as many pairs as the data ({NOISE_PAIRS}).")
    low, high = np.percentile(values, [2.5, 97.5])
    return _right(exercise, f"On the check's {NOISE_PAIRS} made-up pairs: Spearman {observed:.3f}, bootstrap "
                            f"standard error {spread:.3f}, 95% interval [{low:.3f}, {high:.3f}]. That is the noise "
                            "of one model's Spearman; two models scored on the same pairs are compared with a paired "
                            "bootstrap of their difference, and their training seeds' spread "
                            "(cse_helpers.evaluate.noise_verdict).")


# ------------------------------------------------------------------------------------------------
# Notebook 1: the loss at temperature 1, alignment and uniformity
# ------------------------------------------------------------------------------------------------

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
                            "SimCSE divides the cosines by 0.05.")


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

    from ..constants import DEFAULT_MODEL
    from .results import COMPARED_SETTINGS, quick_seeds, recorded_spread

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
    from ..train import RUN_DEFINING

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


# ------------------------------------------------------------------------------------------------
# Notebook 2: word repetition, the momentum update and the length cue
# ------------------------------------------------------------------------------------------------

def _runs(tokens: Sequence) -> list[tuple[object, int]]:
    """Consecutive runs of equal tokens: [(token, length), ...]."""
    out: list[tuple[object, int]] = []
    for token in tokens:
        if out and out[-1][0] == token:
            out[-1] = (token, out[-1][1] + 1)
        else:
            out.append((token, 1))
    return out


REPETITION_SETTINGS = ((10, 0.32), (25, 0.32), (3, 0.1), (40, 0.6), (1, 0.32))  # (N tokens, dup_rate)


@_checked("word repetition")
def check_word_repetition(repeat: Callable | None, draws: int = 400) -> Verdict:
    """Check ``repeat(tokens, dup_rate, rng)``: ESimCSE's word repetition (Wu et al., 2022).

    On sentences of distinct tokens (lengths 1 to 40) and ``draws`` seeded calls each: the input is not
    changed; only tokens of the sentence appear, in their order, each at most twice in a row; the number
    of repeats follows the paper's rule (its range, and a mean near the middle of it); and the same
    ``random.Random`` seed gives the same result. Matching :func:`cse_helpers.augment.word_repetition`
    draw for draw is not required (it is reported when it does).
    """
    exercise = "word repetition"
    if repeat is None:
        return _not_attempted(exercise, "Write repeat(tokens, dup_rate, rng)")
    same_as_package = True
    for n, rate in REPETITION_SETTINGS:
        tokens = [f"t{i}" for i in range(n)]  # distinct, so a repeat is visible
        upper = min(max(2, int(rate * n)), n)
        added = []
        for seed in range(draws):
            given = list(tokens)
            out = _call(exercise, repeat, given, rate, random.Random(seed), described=f"N={n}, dup_rate={rate}")
            if out is None:
                return _not_attempted(exercise, "Make repeat(tokens, dup_rate, rng) return the new token list")
            if given != tokens:
                return _wrong(exercise, "your function changed the list it was given; return a new list.")
            out = list(out)
            runs = _runs(out)
            if [t for t, _ in runs] != tokens:
                if sorted(set(out)) != sorted(tokens) or not set(out) <= set(tokens):
                    what = "new tokens appeared" if not set(out) <= set(tokens) else "tokens went missing"
                    return _wrong(exercise, f"{what} in {out}: repetition only copies tokens of the sentence.")
                return _wrong(exercise, f"the order changed: {tokens} became {out}. A repeated token goes right "
                                        "after the token it copies.")
            if any(k > 2 for _, k in runs):
                return _wrong(exercise, f"a token appears more than twice in a row in {out}: each chosen position "
                                        "is repeated once; choose distinct positions (e.g. rng.sample).")
            added.append(len(out) - n)
            if same_as_package and out != augment.word_repetition(tokens, rate, random.Random(seed)):
                same_as_package = False
        again = _call(exercise, repeat, list(tokens), rate, random.Random(0))
        if list(again) != list(_call(exercise, repeat, list(tokens), rate, random.Random(0))):
            return _wrong(exercise, "two calls with the same seed gave different results: draw every random "
                                    "number from the rng you are given.")
        counts = Counter(added)
        where = f"For N={n} tokens and dup_rate={rate}"
        if max(added) > upper:
            return _wrong(exercise, f"{where} you repeated up to {max(added)} tokens; the paper's rule allows "
                                    "fewer. How many tokens may be repeated under ESimCSE's rule (notebook 2)?")
        if counts[0] == 0 or counts[upper] == 0:
            seen = ", ".join(f"{k}: {counts[k]}" for k in sorted(counts))
            return _wrong(exercise, f"{where} the numbers of repeats you drew were {{{seen}}} over {draws} calls; "
                                    "the paper draws it uniformly from a range that includes 0 and the largest "
                                    "number its rule allows.")
        if abs(np.mean(added) - upper / 2) > 0.15 * upper + 0.1:
            return _wrong(exercise, f"{where} you repeated {np.mean(added):.2f} tokens on average over {draws} "
                                    "calls; a uniform draw over the paper's range gives about "
                                    f"{upper / 2:.2f}.")
    note = (" It even draws the same repeats as cse_helpers.augment.word_repetition." if same_as_package
            else " (It draws differently from cse_helpers.augment.word_repetition, which is fine.)")
    return _right(exercise, "Only repeats, in order, as many as ESimCSE's rule draws." + note)


def _momentum_case(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small encoder and its momentum copy from a few steps ago (different weights)."""
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    old = copy.deepcopy(encoder).requires_grad_(False)
    with torch.no_grad():
        for p in encoder.parameters():  # as if the optimizer had moved the encoder since
            p.add_(torch.randn_like(p))
    return encoder, old


def _parameters(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@_checked("momentum update")
def check_momentum_update(update: Callable | None) -> Verdict:
    """Check ``update(momentum_encoder, encoder, momentum)``: ESimCSE's / MoCo's momentum (EMA) update, in place.

    Compared with :meth:`cse_helpers.objectives.MomentumEncoder.update` for momentum 0.9 and 0.995: the momentum
    copy must move, in place, and the encoder must not change.
    """
    exercise = "momentum update"
    if update is None:
        return _not_attempted(exercise, "Write update(momentum_encoder, encoder, momentum)")
    for momentum in (0.9, 0.995):
        encoder, old = _momentum_case(0)
        reference = MomentumEncoder(old, momentum)  # a copy of the old weights, as ESimCSE keeps it
        reference.update(encoder)
        expected = _parameters(reference.encoder)
        yours, online = copy.deepcopy(old), _parameters(encoder)
        got = _call(exercise, update, yours, encoder, momentum, described=f"momentum={momentum}")
        if got is None and torch.equal(_parameters(yours), _parameters(old)) and torch.equal(_parameters(encoder),
                                                                                          online):
            return _not_attempted(exercise, "Make update(...) change the momentum encoder's parameters in place")
        if not torch.equal(_parameters(encoder), online):
            return _wrong(exercise, "your function changed the encoder itself; only the momentum copy moves (the "
                                    "encoder is trained by the optimizer).")
        result = _parameters(yours)
        if torch.allclose(result, expected, atol=1e-6):
            continue
        old_flat = _parameters(old)
        if torch.equal(result, old_flat):
            return _wrong(exercise, "the momentum encoder did not change: update its parameters in place (under "
                                    "torch.no_grad(), e.g. with p.copy_ or p.mul_), not a copy of them.")
        hint = next((h for value, h in [
            (momentum * online + (1 - momentum) * old_flat, "momentum and 1 - momentum are swapped: the momentum "
                                                            "weighs the momentum encoder's own (old) weights."),
            (online, "you copied the encoder's weights: that is momentum 0, no moving average."),
            (momentum * old_flat, "the encoder's part (1 - momentum) * theta is missing."),
        ] if torch.allclose(result, value, atol=1e-6)), "theta_m should become a weighted average of theta_m and "
                                                        "the encoder's theta.")
        return _wrong(exercise, f"with momentum={momentum} the momentum encoder's weights differ from the "
                                f"expected ones by up to {float((result - expected).abs().max()):.4f}: {hint}")
    return _right(exercise, "The same moving average as cse_helpers.objectives.MomentumEncoder.update.")


def _cue_texts(seed: int = 0) -> list[str]:
    """Distinct made-up "sentences" of 4 to 14 characters, several of each length (for :func:`check_length_cue`)."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    texts: set[str] = set()
    for length in range(4, 15):
        while sum(len(t) == length for t in texts) < 6:
            texts.add("".join(rng.sample(alphabet, length)))
    return sorted(texts)


def _length_only(texts: Sequence[str]) -> torch.Tensor:
    """An encoder that sees only the length: cos(x, y) = cos(0.2 * (len x - len y))."""
    angle = torch.tensor([0.2 * len(t) for t in texts], dtype=torch.float64)
    return torch.stack([angle.cos(), angle.sin()], dim=1)


def _characters_only(texts: Sequence[str]) -> torch.Tensor:
    """An encoder that sees only which characters occur (not how often, not where): repeats change nothing."""
    z = torch.zeros(len(texts), 400, dtype=torch.float64)
    for row, text in enumerate(texts):
        for c in set(text):
            z[row, (ord(c) - 0x4E00) % 400] = 1.0
    return F.normalize(z, dim=1)


@_checked("the length cue")
def check_length_cue(length_cue: Callable | None) -> Verdict:
    """Check ``length_cue(encode, texts, k, rng)`` -> ``(rise when the lengths become equal, rise when they
    become unequal)``, the experiment of notebook 2 (:func:`cse_helpers.classroom.analysis.length_cue`).

    It is run with two encoders whose answer does not depend on which sentences, partners and repeats are drawn:
    one that sees only the length (equal lengths: cosine 1), where the answer is (1 - cos(0.2 k), cos(0.2 k) - 1),
    and one that sees only which characters occur, where repeating a character changes nothing: (0, 0).
    """
    exercise = "the length cue"
    if length_cue is None:
        return _not_attempted(exercise, "Write length_cue(encode, texts, k, rng)")
    texts = _cue_texts()
    for k in (3, 2):
        for encode, expected, what in (
                (_length_only, (1 - math.cos(0.2 * k), math.cos(0.2 * k) - 1), "sees only the length"),
                (_characters_only, (0.0, 0.0), "sees only which characters occur")):
            given = list(texts)
            out = _call(exercise, length_cue, encode, given, k, random.Random(0),
                        described=f"an encoder that {what}, k={k}")
            if out is None:
                return _not_attempted(exercise, "Make length_cue(...) return its two mean changes")
            if given != texts:
                return _wrong(exercise, "your function changed the list of texts it was given.")
            try:
                match, mismatch = (_number(v) for v in out)
            except (TypeError, ValueError):
                return _wrong(exercise, f"return two numbers (equal, unequal); got {out!r}.")
            if match is None or mismatch is None:
                return _wrong(exercise, f"return two numbers (equal, unequal); got {out!r}.")
            if _close(match, expected[0], abs_=1e-4) and _close(mismatch, expected[1], abs_=1e-4):
                continue
            where = f"With an encoder that {what} and k={k} you got ({match:+.4f}, {mismatch:+.4f})"
            if what.endswith("occur"):
                return _wrong(exercise, f"{where}; repeating characters of b changes nothing for this encoder, so "
                                        "both changes must be 0. Does b' hold only b's characters, b itself "
                                        "unchanged otherwise?")
            if _close(match, expected[1], abs_=1e-4) and _close(mismatch, expected[0], abs_=1e-4):
                return _wrong(exercise, f"{where}: the two numbers are swapped. The first is for the partner whose "
                                        "length b' matches (k characters longer than b).")
            return _wrong(exercise, f"{where}. For this encoder only lengths count: check that a1 has b's length, "
                                    "a2 is k characters longer, and b' repeats exactly k characters of b.")
    return _right(exercise, "The same experiment as cse_helpers.classroom.analysis.length_cue: the content of b "
                            "is held fixed, only which partner's length it matches changes.")


# ------------------------------------------------------------------------------------------------
# Notebook 3: replaced-token detection
# ------------------------------------------------------------------------------------------------

CLS, SEP, PAD = 101, 102, 0


def _rtd_case() -> dict[str, torch.Tensor]:
    """Three sentences (CLS ... SEP, padded): which positions were selected, what the generator put there."""
    input_ids = torch.tensor([[CLS, 11, 12, 13, 14, 15, SEP, PAD],
                              [CLS, 21, 22, 23, SEP, PAD, PAD, PAD],
                              [CLS, 31, 32, 33, 34, 35, 36, SEP]])
    attention_mask = (input_ids != PAD).long()
    maskable = attention_mask.bool() & (input_ids != CLS) & (input_ids != SEP)  # real tokens only
    selected = torch.zeros_like(maskable)
    selected[0, [2, 4]] = selected[1, [1, 3]] = selected[2, [1, 2, 6]] = True
    generated = input_ids.clone()
    generated[0, 2], generated[0, 4] = 77, 14  # row 0: one replaced, one guessed back
    generated[1, 1], generated[1, 3] = 21, 23  # row 1: both guessed back (nothing changed)
    generated[2, 1], generated[2, 2], generated[2, 6] = 88, 89, 36
    edited = torch.where(selected, generated, input_ids)
    return {"input_ids": input_ids, "edited_ids": edited, "selected": selected, "maskable": maskable}


def rtd_reference(input_ids: torch.Tensor, edited_ids: torch.Tensor, maskable: torch.Tensor) -> torch.Tensor:
    """DiffCSE's RTD labels as :meth:`cse_helpers.objectives.DiffCSE.replace_tokens` makes them (tested to agree)."""
    return (edited_ids != input_ids).long().masked_fill(~maskable, losses.IGNORE_INDEX)


@_checked("RTD labels")
def check_rtd_labels(rtd_labels: Callable | None) -> Verdict:
    """Check ``rtd_labels(input_ids, edited_ids, selected, maskable)`` -> (N, L) labels of replaced-token detection.

    Compared with DiffCSE's rule (:meth:`cse_helpers.objectives.DiffCSE.replace_tokens`) on three sentences where
    the generator replaced some selected tokens and put the original back at others.
    """
    exercise = "RTD labels"
    if rtd_labels is None:
        return _not_attempted(exercise, "Write rtd_labels(input_ids, edited_ids, selected, maskable)")
    case = _rtd_case()
    got = _call(exercise, rtd_labels, *(case[k].clone() for k in ("input_ids", "edited_ids", "selected", "maskable")),
                described="3 sentences")
    if got is None:
        return _not_attempted(exercise, "Make rtd_labels(...) return the (N, L) labels")
    labels = _tensor(got, exercise, tuple(case["input_ids"].shape)).long()
    expected = rtd_reference(case["input_ids"], case["edited_ids"], case["maskable"])
    if torch.equal(labels, expected):
        return _right(exercise, "1 where the token changed, 0 where it did not (also where the generator guessed "
                                "it back), -100 on special tokens and padding.")
    real = case["maskable"]
    if not torch.equal(labels[~real], expected[~real]):
        hint = ("the special tokens ([CLS], [SEP]) and the padding must be ignored by the loss: label them -100 "
                "(cse_helpers.losses.IGNORE_INDEX), not 0 or 1.")
    elif torch.equal(labels[real], case["selected"][real].long()):
        hint = ("you labelled every selected position 1; where the generator put the original token back, "
                "nothing was replaced: the label is 0 there.")
    elif torch.equal(labels[real], 1 - expected[real]):
        hint = "the labels are inverted: 1 means replaced."
    else:
        hint = "a real token's label says whether the edited sentence differs from the original there."
    wrong_at = [tuple(i) for i in (labels != expected).nonzero().tolist()][:4]
    return _wrong(exercise, f"wrong label at (row, position) {wrong_at}: {hint}")


def _measured_mask_fractions(mask_ratio: float) -> tuple[float, float, float]:
    """(masked, random, kept) shares of a million tokens masked by :func:`cse_helpers.objectives.mask_tokens`."""
    original, mask_id = 5, 1
    ids = torch.full((1000, 1000), original, dtype=torch.long)
    masked, selected = mask_tokens(ids, torch.ones_like(ids, dtype=torch.bool), mask_token_id=mask_id,
                                   vocab_size=10**6, mask_ratio=mask_ratio, generator=torch.Generator().manual_seed(0))
    became_mask = selected & (masked == mask_id)
    kept = selected & (masked == original)  # (a random draw of the same id, one in a million, counts as kept)
    random_token = selected & ~became_mask & ~kept
    return tuple(float(x.float().mean()) for x in (became_mask, random_token, kept))


@_checked("masking fractions")
def check_mask_fractions(fractions: Sequence[float] | None, mask_ratio: float = 0.3) -> Verdict:
    """Check ``fractions`` = (masked, random, kept): the expected share of a sentence's real tokens that
    :func:`cse_helpers.objectives.mask_tokens` turns into [MASK], into a random token, or selects but keeps.

    Compared, within 0.003, with the shares measured on a million tokens masked by the package.
    """
    exercise = "masking fractions"
    if fractions is None:
        return _not_attempted(exercise, "Set fractions = (masked, random, kept)")
    values = [_number(v) for v in fractions] if isinstance(fractions, (tuple, list)) else []
    if len(values) != 3 or None in values:
        return _wrong(exercise, f"got {fractions!r}; give three numbers: (masked, random, kept).")
    measured = _measured_mask_fractions(mask_ratio)
    if all(abs(v - m) < 0.003 for v, m in zip(values, measured)):
        return _right(exercise, f"With mask_ratio={mask_ratio}, about {values[0]:.0%} of the real tokens become "
                                f"[MASK], {values[1]:.0%} a random token and {values[2]:.0%} are selected but kept; "
                                "only the generator's changes count as replaced.")
    if all(abs(v * mask_ratio - m) < 0.003 for v, m in zip(values, measured)):
        hint = (f"those are shares of the *selected* tokens; only {mask_ratio:.0%} of the real tokens are "
                "selected.")
    elif abs(sum(values) - mask_ratio) > 0.003:
        hint = (f"the three shares add up to {sum(values):.3f}; together they are the selected tokens, "
                f"{mask_ratio:.0%} of all real tokens.")
    else:
        hint = "of the selected tokens, 80% become [MASK]; how is the rest split (BERT, Devlin et al., 2019)?"
    return _wrong(exercise, f"got {tuple(round(v, 4) for v in values)}: {hint}")


def _conditioning_case() -> tuple[torch.Tensor, ...]:
    """Six edited sentences of five tokens, their sentence embeddings h (6, 4) and RTD labels."""
    g = torch.Generator().manual_seed(3)
    h = torch.randn(6, 4, generator=g)
    edited = torch.randint(5, 50, (6, 5), generator=g)
    labels = (torch.rand(6, 5, generator=g) < 0.3).long()
    labels[:, 0] = losses.IGNORE_INDEX  # [CLS]
    return h, edited, labels, torch.ones(6, 5, dtype=torch.long)


@_checked("conditioning controls")
def check_conditioning_losses(conditioning_losses: Callable | None) -> Verdict:
    """Check ``conditioning_losses(detect, h, edited, labels, attention_mask)`` -> ``(own, shuffled, mean)``: an
    experiment with two controls on DiffCSE's discriminator ``detect`` (as
    :meth:`cse_helpers.objectives.DiffCSE.detection_loss`), all on the same edits: each sentence with its own
    embedding h, with h shuffled so that every sentence gets another sentence's h, and with every sentence given
    the batch's mean h (what the sentences share, nothing of their own).

    The check runs it with a planted discriminator that records what it is given.
    """
    exercise = "conditioning controls"
    if conditioning_losses is None:
        return _not_attempted(exercise, "Write conditioning_losses(detect, h, edited, labels, attention_mask)")
    h, edited, labels, mask = _conditioning_case()
    calls = []

    def detect(h_given, edited_given, labels_given, mask_given, terms=None):
        calls.append((torch.as_tensor(h_given).detach().clone(), edited_given, labels_given, mask_given))
        return ((torch.as_tensor(h_given) - h) ** 2).sum(-1).mean()  # 0 only for each sentence's own h

    got = _call(exercise, conditioning_losses, detect, h.clone(), edited.clone(), labels.clone(), mask.clone(),
                described="6 sentences")
    if got is None and not calls:
        return _not_attempted(exercise, "Make conditioning_losses(...) return (own, shuffled, mean)")
    values = [_number(v) for v in got] if isinstance(got, (tuple, list)) else []
    if len(values) != 3 or None in values:
        return _wrong(exercise, f"return three losses (own, shuffled, mean), each a number; got {got!r}.")
    if len(calls) != 3:
        return _wrong(exercise, f"detect was called {len(calls)} times; call it once per condition: own h, "
                                "shuffled h, mean h.")
    for h_given, *edits in calls:
        if tuple(h_given.shape) != tuple(h.shape):
            return _wrong(exercise, f"detect got h of shape {tuple(h_given.shape)}; every condition gives one h "
                                    f"per sentence, shape {tuple(h.shape)}.")
        if not all(torch.equal(torch.as_tensor(a), b) for a, b in zip(edits, (edited, labels, mask))):
            return _wrong(exercise, "the three conditions must see the same edited sentences, labels and mask: "
                                    "only h may change, or the difference mixes h with the edits.")
    given = [c[0] for c in calls]
    own = [i for i, g in enumerate(given) if torch.allclose(g, h)]
    if not own:
        return _wrong(exercise, "one condition gives each sentence its own h, unchanged.")
    same_rows = [i for i, g in enumerate(given) if i not in own[:1] and torch.allclose(g, g[:1].expand_as(g))]
    if not same_rows:
        return _wrong(exercise, "one condition gives every sentence the batch's mean h, "
                                "h.mean(dim=0, keepdim=True) repeated on every row.")
    order = [own[0], next(i for i in range(3) if i not in (own[0], same_rows[0])), same_rows[0]]
    own_h, shuffled_h, mean_h = (given[i] for i in order)
    # each row of the shuffled h must be some row of h, each used once, none in its own place
    match = torch.cdist(shuffled_h, h).argmin(dim=1)
    if not torch.allclose(shuffled_h, h[match]) or len(set(match.tolist())) != len(h):
        return _wrong(exercise, "the shuffled h must be the batch's own embeddings in another order, each used "
                                "once: noise or repeated rows would test something else.")
    kept = [i for i in range(len(h)) if int(match[i]) == i]
    if kept:
        return _wrong(exercise, f"sentence(s) {kept} kept their own h in the shuffled condition: give every "
                                "sentence another sentence's h (e.g. torch.roll(h, 1, dims=0)); a random "
                                "permutation leaves some in place.")
    if not torch.allclose(mean_h, h.mean(dim=0, keepdim=True).expand_as(h), atol=1e-6):
        return _wrong(exercise, "the mean condition gives every sentence the batch's mean h, "
                                "h.mean(dim=0, keepdim=True) repeated on every row.")
    expected = [float(((given[i] - h) ** 2).sum(-1).mean()) for i in order]
    if not all(_close(v, e) for v, e in zip(values, expected)):
        return _wrong(exercise, "return the three losses that detect gave, in this order: (own, shuffled, mean).")
    return _right(exercise, "One change at a time, on the same edits: a discriminator that reads what h says about "
                            "its own sentence does better with the own h than with either control.")


# ------------------------------------------------------------------------------------------------
# Notebook 4: pooling and search
# ------------------------------------------------------------------------------------------------

def mean_pool_reference(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The ``mean`` pooler of :class:`cse_helpers.encoder.SentenceEncoder` (tested to agree): (N, L, H) -> (N, H)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (N, L, 1)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)


@_checked("mean pooling")
def check_mean_pooling(mean_pool: Callable | None) -> Verdict:
    """Check ``mean_pool(last_hidden_state, attention_mask)`` -> (N, H): the average of the real tokens' vectors.

    Compared with the ``mean`` pooler of :class:`cse_helpers.encoder.SentenceEncoder` on a padded batch.
    """
    exercise = "mean pooling"
    if mean_pool is None:
        return _not_attempted(exercise, "Write mean_pool(last_hidden_state, attention_mask)")
    hidden = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(3))  # (N, L, H)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])  # rows 2 and 3 padded
    got = _call(exercise, mean_pool, hidden.clone(), mask.clone(), described="a padded batch (3, 6, 4)")
    if got is None:
        return _not_attempted(exercise, "Make mean_pool(...) return the (N, H) sentence embeddings")
    pooled = _tensor(got, exercise, (3, 4)).float()
    expected = mean_pool_reference(hidden, mask)
    if torch.allclose(pooled, expected, atol=1e-5):
        return _right(exercise, "Padding is left out of the average, as in SentenceEncoder(pooler='mean').")
    weights = mask.unsqueeze(-1).float()
    hint = next((h for value, h in [
        (hidden.mean(1), "you averaged the padding positions too: average the real tokens only (attention_mask)."),
        ((hidden * weights).sum(1), "you summed the real tokens' vectors; divide by how many there are."),
        ((hidden * weights).sum(1) / hidden.size(1), "you divided by the padded length; divide by the number of "
                                                     "real tokens of each sentence."),
        (hidden[:, 0], "that is the cls pooler (the vector at position 0)."),
    ] if torch.allclose(pooled, value, atol=1e-5)), "the mean pooler averages the last layer's vectors of the "
                                                    "real tokens.")
    rows = sorted(set((pooled - expected).abs().gt(1e-5).nonzero()[:, 0].tolist()))
    return _wrong(exercise, f"the embeddings of rows {rows} differ: {hint}")


@_checked("top-k search")
def check_top_k(top_k: Callable | None) -> Verdict:
    """Check ``top_k(query, corpus, k)`` -> the indices of the k corpus rows most similar (cosine) to the query.

    ``query`` is (H,), ``corpus`` (N, H), neither normalised; best first, like
    :func:`cse_helpers.inference.semantic_search`.
    """
    exercise = "top-k search"
    if top_k is None:
        return _not_attempted(exercise, "Write top_k(query, corpus, k)")
    generator = torch.Generator().manual_seed(4)
    corpus = torch.randn(30, 8, generator=generator) * torch.linspace(0.2, 5, 30).unsqueeze(1)  # (N, H), lengths vary
    query = torch.randn(8, generator=generator)
    k = 5
    got = _call(exercise, top_k, query.clone(), corpus.clone(), k, described="30 sentences, k=5")
    if got is None:
        return _not_attempted(exercise, "Make top_k(...) return a list of k indices, best first")
    indices = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
    cosines = F.cosine_similarity(corpus, query.unsqueeze(0), dim=1)  # (N,)
    expected = torch.topk(cosines, k).indices.tolist()
    if indices == expected:
        return _right(exercise, "The k highest cosines, best first.")
    if len(indices) != k:
        return _wrong(exercise, f"got {len(indices)} indices for k={k}.")
    hint = {tuple(torch.topk(corpus @ query, k).indices.tolist()):
            "you ranked by the dot product of unnormalised vectors, so long vectors win; normalise first (cosine).",
            tuple(torch.topk(cosines, k, largest=False).indices.tolist()):
            "those are the *least* similar: sort by decreasing cosine.",
            tuple(reversed(expected)): "the right sentences, in reverse order: best first."}.get(tuple(indices))
    if hint is None and sorted(indices) == sorted(expected):
        hint = "the right sentences in the wrong order: best first."
    return _wrong(exercise, f"got {indices}: {hint or 'return the indices of the k highest cosines, best first.'}")
