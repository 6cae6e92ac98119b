"""Scoring an encoder on labelled sentence pairs.

For each pair (a, b, label) the score is cos(embedding(a), embedding(b)). Reported:

- ``spearman`` / ``pearson``: rank / linear correlation of the scores with the labels (the usual STS
  metric; for 0/1 labels Spearman measures how well the scores rank positives above negatives).
- ``accuracy``, ``precision``, ``recall``, ``f1`` with a fixed threshold (the tutorial used 0.5).
- ``best_threshold``, ``best_accuracy`` and ``best_f1``: the thresholds that maximise accuracy and F1,
  **chosen on this same set** (an optimistic figure; choose on dev and report on test for a fair one).
- ``alignment`` and ``uniformity`` (Wang and Isola, 2020): alignment = E ||f(a) - f(b)||^2 over
  positive pairs (lower: positives closer); uniformity = log E exp(-2 ||f(x) - f(y)||^2) over distinct
  sentences (lower: embeddings spread over the sphere).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

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


def score_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Correlations and (for 0/1 labels) classification metrics of pair scores against labels."""
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
    if _binary(labels):
        result.update(classification_metrics(scores, labels, threshold), threshold=threshold)
        result.update(best_thresholds(scores, labels))
        result["best_threshold_note"] = "best_* thresholds are chosen on this same set"
    return result


def evaluate_pairs(encoder, pairs_or_path, threshold: float = 0.5, batch_size: int = 256,
                   return_scores: bool = False) -> dict:
    """Score ``encoder`` on labelled pairs (a list of (a, b, label) or a path to ``a<TAB>b<TAB>label``).

    ``encoder`` is a :class:`~cse_helpers.models.SentenceEncoder` (anything with ``encode``), scored by
    the cosine of the two embeddings; or a plain function ``pairs -> scores`` such as
    :func:`character_jaccard`, for baselines (then alignment and uniformity are NaN).

    Each distinct sentence is encoded once, in length-sorted batches, in eval mode, without
    gradients. A set with a single class gives NaN for the correlations, with a warning. With
    ``return_scores=True`` the scores are included under ``"scores"``.
    """
    is_path = isinstance(pairs_or_path, (str, bytes)) or hasattr(pairs_or_path, "__fspath__")
    pairs = read_pairs(pairs_or_path) if is_path else list(pairs_or_path)
    if not pairs:
        raise ValueError("evaluate_pairs got no pairs.")
    labels = np.array([float(p[2]) for p in pairs])
    if not hasattr(encoder, "encode"):
        scores = np.asarray(encoder(pairs), dtype=np.float64)
        result = {**score_metrics(scores, labels, threshold), "alignment": float("nan"), "uniformity": float("nan")}
        return {**result, "scores": scores.tolist()} if return_scores else result

    texts_a, texts_b = [p[0] for p in pairs], [p[1] for p in pairs]
    distinct = list(dict.fromkeys(texts_a + texts_b))
    embeddings = encoder.encode(distinct, batch_size=batch_size, normalize=True)  # (S, H), unit rows
    position = {t: i for i, t in enumerate(distinct)}
    za = embeddings[[position[t] for t in texts_a]]  # (N, H)
    zb = embeddings[[position[t] for t in texts_b]]
    scores = (za * zb).sum(dim=1).numpy().astype(np.float64)  # cosine of unit vectors

    result = score_metrics(scores, labels, threshold)
    positive = labels == 1 if _binary(labels) else labels >= STS_POSITIVE
    result["alignment"] = alignment(za[torch.from_numpy(positive)], zb[torch.from_numpy(positive)]) \
        if positive.any() else float("nan")
    result["uniformity"] = uniformity(embeddings)
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
