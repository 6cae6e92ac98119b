"""Scoring an encoder on labelled sentence pairs.

For each pair (a, b, label) the score is cos(embedding(a), embedding(b)). Reported:

- ``spearman`` / ``pearson``: rank / linear correlation of the scores with the labels (the usual STS
  metric; for 0/1 labels Spearman measures how well the scores rank positives above negatives).
- ``spearman_ci``: a 95% bootstrap interval (low, high) of the Spearman: the pairs are resampled with
  replacement ``n_resamples`` times from a seeded generator, so the same call gives the same interval.
  On a few hundred pairs it is about 0.2 wide: two models whose intervals overlap widely are not
  told apart by this dev set.
- ``accuracy``, ``precision``, ``recall``, ``f1`` with a fixed threshold (the tutorial used 0.5).
- ``best_threshold``, ``best_accuracy`` and ``best_f1``: the thresholds that maximise accuracy and F1,
  **chosen on this same set** (an optimistic figure; choose on dev and report on test for a fair one).
- ``alignment`` and ``uniformity`` (Wang and Isola, 2020): alignment = E ||f(a) - f(b)||^2 over
  positive pairs (lower: positives closer); uniformity = log E exp(-2 ||f(x) - f(y)||^2) over distinct
  sentences (lower: embeddings spread over the sphere).
- ``groups`` (when the pairs carry a 4th element, a group name such as "paraphrase" or "near miss"):
  ``{group: {"n", "spearman", "spearman_ci", "mean_cosine"}}``, the scores of each group alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import read_pairs

ALIGN_ALPHA, UNIFORM_T = 2, 2
STS_POSITIVE = 4.0  # for float scores (STS, 0..5) pairs scored >= 4 count as positives, as in SimCSE


def _binary(labels: np.ndarray) -> bool:
    return bool(np.isin(labels, (0, 1)).all())


def classification_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of ``score > threshold`` against 0/1 labels."""
    predicted = scores > threshold
    positive = labels == 1
    tp = float(np.sum(predicted & positive))
    fp = float(np.sum(predicted & ~positive))
    fn = float(np.sum(~predicted & positive))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(predicted == positive)), "precision": precision, "recall": recall, "f1": f1}


def best_thresholds(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Sweep every threshold between sorted scores; return the best accuracy and F1 and where they are.

    A pair is predicted positive when its score is strictly above the threshold. Candidates are the
    midpoints between consecutive distinct scores, plus one below the lowest score.
    """
    distinct = np.unique(scores)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[1:] + distinct[:-1]) / 2, [distinct[-1] + 1e-6]])
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_pos = scores[order], (labels[order] == 1)
    n, n_pos = len(scores), int(sorted_pos.sum())
    # number of predicted positives (score > c) for each candidate c, then true positives among them
    n_pred = np.searchsorted(-sorted_scores, -candidates, side="left")
    tp = np.concatenate([[0], np.cumsum(sorted_pos)])[n_pred]
    fp, fn = n_pred - tp, n_pos - tp
    accuracy = (tp + (n - n_pred - fn)) / n
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    i, j = int(np.argmax(accuracy)), int(np.argmax(f1))
    return {"best_threshold": float(candidates[i]), "best_accuracy": float(accuracy[i]),
            "best_f1_threshold": float(candidates[j]), "best_f1": float(f1[j])}


def alignment(za: torch.Tensor, zb: torch.Tensor, alpha: int = ALIGN_ALPHA) -> float:
    """E ||za_i - zb_i||^alpha over rows (positive pairs), on L2-normalised embeddings."""
    return float((za - zb).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = UNIFORM_T, max_points: int = 5000) -> float:
    """log E exp(-t ||z_i - z_j||^2) over pairs i < j of distinct rows (subsampled past max_points)."""
    if z.size(0) > max_points:
        z = z[torch.randperm(z.size(0), generator=torch.Generator().manual_seed(0))[:max_points]]
    if z.size(0) < 2:
        return float("nan")
    return float(torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log())


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties averaged (as Spearman uses them)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def spearman_rows(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Spearman of each row of ``scores`` (R, N) with the same row of ``labels`` (R, N); NaN for a constant row."""
    rs, rl = _rank_rows(scores), _rank_rows(labels)
    rs = rs - rs.mean(axis=-1, keepdims=True)
    rl = rl - rl.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rs * rs).sum(axis=-1) * (rl * rl).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rs * rl).sum(axis=-1) / np.where(denominator > 0, denominator, 1), np.nan)


def bootstrap_spearman(scores, labels, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       confidence: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval (low, high) of the Spearman of ``scores`` against ``labels``.

    Resample i takes the pairs ``rng.integers(0, N, size=(n_resamples, N))[i]`` (with replacement)
    from ``rng = numpy.random.default_rng(seed)``, so a seed gives one interval. Resamples whose
    labels or scores are all equal (no correlation defined) are left out; (NaN, NaN) if all are.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be two 1-d arrays of one length.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: give a fraction such as 0.95.")
    n = len(scores)
    if n < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_resamples, n))  # (R, N): row i = the pairs of resample i
    return percentile_interval(spearman_rows(scores[index], labels[index]), confidence)  # over (R,) values


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` interval (low, high) of the finite bootstrap ``values``; (NaN, NaN) if none."""
    values = values[np.isfinite(values)]
    if not len(values):
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


def bootstrap_spearman_difference(scores_a, scores_b, labels, n_resamples: int = BOOTSTRAP_RESAMPLES,
                                  seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> tuple[float, float]:
    """A paired bootstrap interval (low, high) of Spearman(scores_b) - Spearman(scores_a) on the same pairs.

    Each resample draws the same pairs for both models, so what the pairs have in common (some are
    hard for every model) cancels out: the interval of a *difference* is much narrower than the two
    separate intervals suggest. A gain whose interval lies above 0 is more than this dev set's noise.
    """
    scores_a, scores_b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if not scores_a.shape == scores_b.shape == labels.shape or labels.ndim != 1:
        raise ValueError(f"scores {scores_a.shape}, {scores_b.shape} and labels {labels.shape} must be 1-d arrays "
                         f"of one length (the same pairs).")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(labels), size=(n_resamples, len(labels)))  # (R, N)
    diffs = spearman_rows(scores_b[index], labels[index]) - spearman_rows(scores_a[index], labels[index])  # (R,)
    return percentile_interval(diffs, confidence)


def _spearman(scores: np.ndarray, labels: np.ndarray) -> float:
    """Spearman of two 1-d arrays; NaN when either is constant (no warning)."""
    if np.unique(labels).size < 2 or np.unique(scores).size < 2:
        return float("nan")
    return float(spearman_rows(scores[None], labels[None])[0])


def group_metrics(scores, labels, groups: Sequence, n_resamples: int = BOOTSTRAP_RESAMPLES,
                  seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
    """Scores of each group of pairs alone: ``{group: {"n", "spearman", "spearman_ci", "mean_cosine"}}``.

    Spearman is NaN in a group whose pairs all have one label (e.g. a group of negatives only); its
    ``mean_cosine`` still says how similar the model finds those pairs.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    groups = np.asarray([str(g) for g in groups])
    out = {}
    for name in dict.fromkeys(groups.tolist()):  # in order of first appearance
        keep = groups == name
        s, y = scores[keep], labels[keep]
        out[name] = {"n": int(keep.sum()), "spearman": _spearman(s, y),
                     "spearman_ci": bootstrap_spearman(s, y, n_resamples, seed), "mean_cosine": float(s.mean())}
    return out


def spearman_text(result: Mapping, digits: int = 3, key: str = "spearman") -> str:
    """``result``'s Spearman with its interval, as tables print it: ``"0.034 [-0.02, 0.09]"``."""
    value = result[key]
    interval = result.get(f"{key}_ci")
    text = f"{value:.{digits}f}"
    if interval is not None and all(np.isfinite(interval)):
        text += f" [{interval[0]:.{digits - 1}f}, {interval[1]:.{digits - 1}f}]"
    return text


def intervals_overlap(a: Mapping, b: Mapping, key: str = "spearman") -> bool:
    """Whether the 95% intervals ``key + "_ci"`` of two results overlap (True when one is missing)."""
    ia, ib = a.get(f"{key}_ci"), b.get(f"{key}_ci")
    if ia is None or ib is None or not np.all(np.isfinite([*ia, *ib])):
        return True
    return bool(ia[0] <= ib[1] and ib[0] <= ia[1])


def paired_interval(a: Mapping, b: Mapping, labels: Sequence | None) -> tuple[float, float] | None:
    """The paired 95% interval of Spearman(a) - Spearman(b), when both results carry their ``scores``
    on the same pairs and ``labels`` is given; else None."""
    if labels is None or "scores" not in a or "scores" not in b:
        return None
    return bootstrap_spearman_difference(b["scores"], a["scores"], labels)


@dataclass(frozen=True)
class Verdict:
    """What :func:`noise_verdict` decided about ``a`` against ``b`` (Spearman on the same dev pairs).

    ``sign``: +1 ``a`` is higher beyond the noise, -1 lower, 0 the noise does not tell them apart.
    ``difference``: Spearman(a) - Spearman(b). ``interval``: the paired 95% bootstrap interval of that
    difference on the dev pairs (None when the pair-by-pair scores were not kept). ``seed_spread``: how
    far apart runs with different seeds land at these settings (None: not measured). ``reason``: why, in words.
    """

    sign: int
    difference: float
    interval: tuple[float, float] | None
    seed_spread: float | None
    reason: str


def seed_spread(spearmans: Sequence[float]) -> float:
    """The spread of runs that differ only by their seed: max - min of their Spearmans (0 for one run)."""
    values = [float(v) for v in spearmans]
    if not values:
        raise ValueError("seed_spread needs at least one run's Spearman.")
    return max(values) - min(values)


def noise_verdict(a: Mapping, b: Mapping, labels: Sequence | None, *, seed_spread: float | None,
                  key: str = "spearman") -> Verdict:
    """The course's one rule for "beyond the noise": does ``a`` score higher (or lower) than ``b``?

    Two kinds of noise stand between a measured difference and a real one:

    1. **the dev pairs**: another sample of pairs would give other Spearmans. The paired bootstrap
       interval of the difference (:func:`paired_interval`, the same resampled pairs for both models)
       must exclude 0. Without pair-by-pair scores the two models' own intervals must not overlap
       (a stricter test);
    2. **the seed**: two runs that differ only by their seed (data order, dropout masks) land apart
       too. The difference must be larger than ``seed_spread``, the spread of seeds at these settings
       (:func:`seed_spread` of repeated runs, e.g. from ``cse_helpers.classroom.results``). ``None`` says that it
       was not measured: the verdict then rests on the dev pairs alone, and its reason says so. ``0``
       is for scores that no seed moves (a baseline such as character overlap, an untrained encoder).

    A difference counts only when it clears both.
    """
    difference = float(a[key]) - float(b[key])
    interval = paired_interval(a, b, labels) if key == "spearman" else None
    if interval is not None:
        pairs_clear = interval[0] > 0 or interval[1] < 0
        pairs_text = (f"paired 95% interval [{interval[0]:+.3f}, {interval[1]:+.3f}] on the dev pairs"
                      + ("" if pairs_clear else ", which includes 0"))
    else:
        pairs_clear = not intervals_overlap(a, b, key)
        pairs_text = "the two 95% intervals " + ("do not overlap" if pairs_clear else "overlap")
    if not np.isfinite(difference):
        return Verdict(0, difference, interval, seed_spread, "no difference can be computed (a score is NaN)")
    if seed_spread is None:
        seeds_clear, seeds_text = True, "the spread of seeds at these settings is not measured"
    elif seed_spread == 0:
        seeds_clear, seeds_text = True, "no seed noise: neither score depends on a training seed"
    else:
        seeds_clear = abs(difference) > seed_spread
        seeds_text = f"seeds at these settings spread over {seed_spread:.3f}"
    sign = (1 if difference > 0 else -1) if pairs_clear and seeds_clear and difference != 0 else 0
    return Verdict(sign, difference, interval, seed_spread, f"{pairs_text}; {seeds_text}")


def beyond_noise(a: Mapping, b: Mapping, labels: Sequence | None = None, *, seed_spread: float | None,
                 key: str = "spearman") -> int:
    """+1 if ``a`` scores higher than ``b`` beyond the noise, -1 if lower, 0 if the noise cannot tell
    (:func:`noise_verdict`, the course's one rule)."""
    return noise_verdict(a, b, labels, seed_spread=seed_spread, key=key).sign


def compare_text(name_a: str, a: Mapping, name_b: str, b: Mapping, key: str = "spearman",
                 labels: Sequence | None = None, *, seed_spread: float | None) -> str:
    """One sentence comparing two scores with their noise, for a notebook's "what you should see".

    The verdict is :func:`noise_verdict`'s: the paired interval on the dev pairs (with ``labels`` and
    both results' ``scores`` from ``evaluate_pairs(..., return_scores=True)``) and the seeds' spread.
    """
    verdict = noise_verdict(a, b, labels, seed_spread=seed_spread, key=key)
    text = (f"{name_a} {spearman_text(a, key=key)} vs {name_b} {spearman_text(b, key=key)}: difference "
            f"{verdict.difference:+.3f} ({verdict.reason})")
    if verdict.sign == 0:
        return f"{text}: within the noise, not told apart."
    higher, lower = (name_a, name_b) if verdict.sign > 0 else (name_b, name_a)
    return f"{text}: {higher} is higher than {lower} beyond the noise."


def score_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5,
                  n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Correlations (Spearman with its bootstrap interval) and, for 0/1 labels, classification metrics."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    result: dict = {"n_pairs": len(scores)}
    if np.unique(labels).size < 2:
        warnings.warn(f"All {len(labels)} pairs have the label {labels[0]:g}: Spearman and Pearson are undefined "
                      "(NaN). Evaluate on a set with both classes.", stacklevel=3)
        result.update(spearman=float("nan"), pearson=float("nan"))
    elif np.unique(scores).size < 2:
        result.update(spearman=float("nan"), pearson=float("nan"))  # constant scores rank nothing
    else:
        from scipy.stats import pearsonr, spearmanr
        result.update(spearman=float(spearmanr(scores, labels)[0]), pearson=float(pearsonr(scores, labels)[0]))
    result["spearman_ci"] = bootstrap_spearman(scores, labels, n_resamples, seed) if np.isfinite(result["spearman"]) \
        else (float("nan"), float("nan"))
    if _binary(labels):
        result.update(classification_metrics(scores, labels, threshold), threshold=threshold)
        result.update(best_thresholds(scores, labels))
        result["best_threshold_note"] = "best_* thresholds are chosen on this same set"
    return result


def _read_pairs_with_groups(path) -> list[tuple]:
    """``read_pairs`` with the optional 4th column (group) when the reader supports it."""
    import inspect

    if "with_groups" in inspect.signature(read_pairs).parameters:
        return list(read_pairs(path, with_groups=True))
    return list(read_pairs(path))


NO_GROUP = "(no group)"


def _groups_of(pairs: Sequence[tuple]) -> list | None:
    """The 4th element of every pair (its group), or None when no pair carries one.

    In a file that mixes 3 and 4 columns the pairs without a group are scored as :data:`NO_GROUP`.
    """
    groups = [p[3] if len(p) > 3 else None for p in pairs]
    if all(g is None or g == "" for g in groups):
        return None
    return [NO_GROUP if g is None or g == "" else g for g in groups]


def evaluate_pairs(encoder, pairs_or_path, threshold: float = 0.5, batch_size: int = 256,
                   return_scores: bool = False, by_group: bool | None = None, groups: Sequence | None = None,
                   n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Score ``encoder`` on labelled pairs: a list of (a, b, label) or (a, b, label, group), or a path
    to ``a<TAB>b<TAB>label[<TAB>group]``.

    ``encoder`` is a :class:`~cse_helpers.encoder.SentenceEncoder` (anything with ``encode``), scored by
    the cosine of the two embeddings; or a plain function ``pairs -> scores`` such as
    :func:`character_jaccard`, for baselines (then alignment and uniformity are NaN).

    Each distinct sentence is encoded once, in length-sorted batches, in eval mode, without
    gradients. A set with a single class gives NaN for the correlations, with a warning. The
    Spearman comes with ``spearman_ci``, a bootstrap interval of ``n_resamples`` resamples drawn
    with ``seed`` (:func:`bootstrap_spearman`). ``by_group`` adds ``groups`` (the scores of each
    group alone); None: when the pairs carry groups, as a 4th element or in ``groups`` (one name per
    pair, e.g. ``Course.dev_groups``). With ``return_scores=True`` the scores are included under ``"scores"``.
    """
    is_path = isinstance(pairs_or_path, (str, bytes)) or hasattr(pairs_or_path, "__fspath__")
    pairs = _read_pairs_with_groups(pairs_or_path) if is_path else list(pairs_or_path)
    if not pairs:
        raise ValueError("evaluate_pairs got no pairs.")
    short = [k for k, p in enumerate(pairs) if len(p) < 3]
    if short:
        raise ValueError(f"pair {short[0]} is {pairs[short[0]]!r}: each pair is (a, b, label) or (a, b, label, group).")
    labels = np.array([float(p[2]) for p in pairs])
    if groups is not None:
        if len(groups) != len(pairs):
            raise ValueError(f"groups has {len(groups)} names for {len(pairs)} pairs; give one per pair.")
        groups = _groups_of([(None, None, None, g) for g in groups])
    else:
        groups = _groups_of(pairs)
    if by_group and groups is None:
        raise ValueError("by_group=True, but the pairs carry no group (a 4th element, the dev file's 4th column).")
    if not hasattr(encoder, "encode"):
        scores = np.asarray(encoder(pairs), dtype=np.float64)
        result = {**score_metrics(scores, labels, threshold, n_resamples, seed), "alignment": float("nan"),
                  "uniformity": float("nan")}
    else:
        texts_a, texts_b = [p[0] for p in pairs], [p[1] for p in pairs]
        distinct = list(dict.fromkeys(texts_a + texts_b))
        embeddings = encoder.encode(distinct, batch_size=batch_size, normalize=True)  # (S, H), unit rows
        position = {t: i for i, t in enumerate(distinct)}
        za = embeddings[[position[t] for t in texts_a]]  # (N, H)
        zb = embeddings[[position[t] for t in texts_b]]
        scores = (za * zb).sum(dim=1).numpy().astype(np.float64)  # cosine of unit vectors

        result = score_metrics(scores, labels, threshold, n_resamples, seed)
        positive = labels == 1 if _binary(labels) else labels >= STS_POSITIVE
        result["alignment"] = alignment(za[torch.from_numpy(positive)], zb[torch.from_numpy(positive)]) \
            if positive.any() else float("nan")
        result["uniformity"] = uniformity(embeddings)
    if groups is not None and by_group is not False:
        result["groups"] = group_metrics(scores, labels, groups, n_resamples, seed)
    if return_scores:
        result["scores"] = scores.tolist()
    return result


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Higher is better, except for alignment and uniformity; NaN never wins."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if metric in ("alignment", "uniformity") else value > best


def character_jaccard(pairs: Sequence[tuple]) -> list[float]:
    """The character-overlap baseline: |chars(a) & chars(b)| / |chars(a) | chars(b)| for each pair."""
    scores = []
    for a, b, *_ in pairs:
        sa, sb = set(a), set(b)
        scores.append(len(sa & sb) / len(sa | sb) if sa | sb else 0.0)
    return scores
