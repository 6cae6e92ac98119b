"""Text augmentations for contrastive learning.

ESimCSE (Wu et al., 2022, "ESimCSE: Enhanced Sample Building Method for Contrastive Learning of
Unsupervised Sentence Embedding") observes that SimCSE's positive pairs always have the same
length, so the model can learn "same length = similar". Its fix is *word repetition*: repeat a few
tokens of the positive view, which changes the length but not the meaning.

The three classic augmentations below (deletion, insertion, replacement) also change the length,
but they can change the meaning too (我喜欢你 -> 我[不]喜欢你), which is why ESimCSE prefers
repetition. They are here so a notebook can show that side by side.

All functions take the *real* tokens of one sentence (no [CLS]/[SEP]), as ids or strings, and a
``random.Random`` so results are reproducible. They return a new list; the input is not changed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .defaults import paper


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else random.Random()


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name}={rate} is outside [0, 1]; it is the fraction of tokens affected.")


def word_repetition(tokens: Sequence, dup_rate: float = paper("dup_rate"), rng: random.Random | None = None) -> list:
    """ESimCSE's word repetition: repeat ``dup_len`` randomly chosen tokens right after themselves.

    With N tokens, ``dup_len`` is drawn uniformly from ``0 .. max(2, int(dup_rate * N))`` (capped at
    N), then that many distinct positions are picked. Order is kept and nothing else changes, so
    removing the repeats gives back the original sentence.

    >>> word_repetition(list("今天天气很好"), rng=random.Random(3))  # doctest: +SKIP
    ['今', '今', '天', '天', '气', '很', '好', '好']
    """
    _check_rate("dup_rate", dup_rate)
    rng = _rng(rng)
    n = len(tokens)
    dup_len = min(rng.randint(0, max(2, int(dup_rate * n))), n)
    repeated = set(rng.sample(range(n), dup_len))
    out = []
    for i, token in enumerate(tokens):
        out.append(token)
        if i in repeated:
            out.append(token)
    return out


def same_length_repetition(tokens: Sequence, dup_rate: float = paper("dup_rate"),
                           rng: random.Random | None = None) -> tuple[list, list]:
    """Two views with the *same number* of repeated tokens, at positions drawn independently.

    A control for ESimCSE (notebook 2): ``dup_len`` is drawn once by :func:`word_repetition`'s rule, then
    each view repeats ``dup_len`` distinct positions of its own. Both views are perturbed by repetition
    like ESimCSE's positive, but their lengths are equal, as in SimCSE; so a difference between this and
    ESimCSE comes from the length difference, not from repetition as a perturbation.

    >>> first, second = same_length_repetition(list("今天天气很好"), rng=random.Random(0))
    >>> len(first) == len(second)
    True
    """
    _check_rate("dup_rate", dup_rate)
    rng = _rng(rng)
    n = len(tokens)
    dup_len = min(rng.randint(0, max(2, int(dup_rate * n))), n)
    views = []
    for _ in range(2):
        repeated = set(rng.sample(range(n), dup_len))
        views.append([t for i, token in enumerate(tokens) for t in (token, token)[:1 + (i in repeated)]])
    return views[0], views[1]


def random_deletion(tokens: Sequence, rate: float = 0.1, rng: random.Random | None = None) -> list:
    """Delete each token with probability ``rate`` (at least one token is kept).

    Can change the meaning: 我不喜欢你 -> 我喜欢你.
    """
    _check_rate("rate", rate)
    rng = _rng(rng)
    kept = [t for t in tokens if rng.random() >= rate]
    if not kept and len(tokens) > 0:
        kept = [tokens[rng.randrange(len(tokens))]]
    return kept


def random_insertion(tokens: Sequence, vocab: Sequence, rate: float = 0.1, rng: random.Random | None = None) -> list:
    """Insert ``max(1, int(rate * N))`` tokens drawn from ``vocab`` at random positions.

    Can change the meaning: 今天的饭好吃 -> 今天的饭[不]好吃.
    """
    _check_rate("rate", rate)
    if not vocab:
        raise ValueError("random_insertion needs a non-empty vocab to draw inserted tokens from.")
    rng = _rng(rng)
    out = list(tokens)
    for _ in range(max(1, int(rate * len(tokens)))):
        out.insert(rng.randint(0, len(out)), rng.choice(vocab))
    return out


def random_replacement(tokens: Sequence, vocab: Sequence, rate: float = 0.1,
                       rng: random.Random | None = None) -> list:
    """Replace ``max(1, int(rate * N))`` distinct positions by other tokens drawn from ``vocab``.

    Can change the meaning: 一只狼 -> 一只[狗].
    """
    _check_rate("rate", rate)
    rng = _rng(rng)
    out = list(tokens)
    if not out:
        return out
    for i in rng.sample(range(len(out)), min(len(out), max(1, int(rate * len(out))))):
        choices = [v for v in vocab if v != out[i]]
        if not choices:
            raise ValueError("random_replacement needs a vocab with a token different from the original.")
        out[i] = rng.choice(choices)
    return out
