"""Notebook 0's exercises: character overlap (Jaccard), Spearman's rank correlation and its noise (a bootstrap)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from ... import evaluate
from .verdict import (
    Verdict,
    _call,
    _checked,
    _close,
    _mistake,
    _not_attempted,
    _number,
    _right,
    _wrong,
)

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
