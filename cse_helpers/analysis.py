"""Small analyses the notebooks share: how an encoder's cosines depend on sentence length.

- :func:`random_pair_cosines`: cosines of random (mostly unrelated) pairs against their length
  difference, the narrow cone of an untrained encoder and the length bias ESimCSE starts from;
- :func:`repetition_cosines`: a sentence against its word-repeated copy (Wu et al., 2022), against the
  number of repeated tokens.

Each returns its numbers with the rank correlation and its bootstrap interval, so a notebook can say
whether a difference is beyond the noise.
"""

from __future__ import annotations

import random

import numpy as np
from scipy.stats import spearmanr

from .augment import word_repetition
from .evaluate import bootstrap_spearman


def random_pairs(n_items: int, n_pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n_pairs`` distinct random pairs (i, j), i != j, of indices below ``n_items`` (seeded)."""
    if n_items < 2:
        raise ValueError(f"n_items={n_items}: need at least 2 items to make a pair.")
    n_pairs = min(n_pairs, n_items * (n_items - 1) // 2)
    rng, seen = random.Random(seed), set()
    while len(seen) < n_pairs:
        i, j = rng.sample(range(n_items), 2)
        seen.add((min(i, j), max(i, j)))
    return sorted(seen)


def random_pair_cosines(encoder, texts, n_pairs: int = 2000, seed: int = 0) -> dict:
    """Cosines of random pairs of distinct ``texts`` and their length differences (in characters).

    Random pairs of questions are almost all unrelated, so a good embedding gives them low,
    spread-out cosines; and their cosine should not depend on how different their lengths are.
    Returns ``{"cosines", "length_diffs", "spearman_length", "spearman_length_ci"}``: the rank
    correlation of cosine with |len(a) - len(b)| (near 0: no length bias; negative: similar lengths
    look similar) and its 95% bootstrap interval (:func:`cse_helpers.evaluate.bootstrap_spearman`).
    """
    texts = list(dict.fromkeys(texts))
    pairs = random_pairs(len(texts), n_pairs, seed)
    used = sorted({k for pair in pairs for k in pair})  # encode only the sentences drawn (LCQMC is large)
    row = {k: r for r, k in enumerate(used)}
    z = encoder.encode([texts[k] for k in used])  # (N, H), unit rows
    i, j = ([row[k] for k in x] for x in zip(*pairs))
    cosines = (z[i] * z[j]).sum(dim=1).numpy()
    diffs = np.array([abs(len(texts[a]) - len(texts[b])) for a, b in pairs])
    return {"cosines": cosines, "length_diffs": diffs, "spearman_length": float(spearmanr(diffs, cosines)[0]),
            "spearman_length_ci": bootstrap_spearman(cosines, diffs, seed=seed)}


def repetition_cosines(encoder, texts, dup_rate: float = 0.32, n: int = 500, seed: int = 0) -> dict:
    """Cosine between a sentence and its word-repeated copy, against the number of repeated tokens.

    The copy means the same thing, so an encoder without a length bias gives it a cosine near 1
    however many tokens were repeated. Word repetition may repeat nothing (it draws 0 to
    max(2, dup_rate * N) repeats); such a copy is the sentence itself, whose cosine in eval mode is
    exactly 1 and says nothing about length, so it is left out (counted in ``n_unchanged``).

    Returns ``{"texts", "copies", "added", "cosines", "n_unchanged", "spearman_length",
    "spearman_length_ci"}`` for the copies of the first ``n`` distinct ``texts`` that gained at least
    one token (tokens repeated with :func:`cse_helpers.augment.word_repetition`); the last two are
    the rank correlation of the cosine with the number of added tokens and its bootstrap interval.
    """
    rng = random.Random(seed)
    texts = list(dict.fromkeys(texts))[:n]
    bodies = encoder.body_ids(texts)
    repeated = [word_repetition(body, dup_rate, rng) for body in bodies]
    changed = [k for k, (r, b) in enumerate(zip(repeated, bodies)) if len(r) > len(b)]
    texts = [texts[k] for k in changed]
    copies = [encoder.tokenizer.decode(repeated[k]).replace(" ", "") for k in changed]
    added = np.array([len(repeated[k]) - len(bodies[k]) for k in changed], dtype=int)
    if not changed:
        raise ValueError(f"No copy gained a token (dup_rate={dup_rate}, {len(bodies)} sentences): nothing to measure.")
    za, zb = encoder.encode(texts), encoder.encode(copies)
    cosines = (za * zb).sum(dim=1).numpy()
    varied = np.unique(added).size > 1
    return {"texts": texts, "copies": copies, "added": added, "cosines": cosines,
            "n_unchanged": len(bodies) - len(changed),
            "spearman_length": float(spearmanr(added, cosines)[0]) if varied else float("nan"),
            "spearman_length_ci": bootstrap_spearman(cosines, added, seed=seed) if varied
            else (float("nan"), float("nan"))}
