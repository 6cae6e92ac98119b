"""Notebook 2's exercises: ESimCSE's word repetition, the momentum update and the length cue."""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ... import augment
from ...defaults import paper
from ...objectives import MomentumEncoder
from .verdict import (
    Verdict,
    _call,
    _checked,
    _close,
    _not_attempted,
    _number,
    _right,
    _wrong,
)


def _runs(tokens: Sequence) -> list[tuple[object, int]]:
    """Consecutive runs of equal tokens: [(token, length), ...]."""
    out: list[tuple[object, int]] = []
    for token in tokens:
        if out and out[-1][0] == token:
            out[-1] = (token, out[-1][1] + 1)
        else:
            out.append((token, 1))
    return out


DUP_RATE = paper("dup_rate")  # ESimCSE's
REPETITION_SETTINGS = ((10, DUP_RATE), (25, DUP_RATE), (3, 0.1), (40, 0.6), (1, DUP_RATE))  # (N tokens, dup_rate)


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

    Compared with :meth:`cse_helpers.objectives.MomentumEncoder.update` for momentum 0.9 and ESimCSE's 0.995: the
    momentum copy must move, in place, and the encoder must not change.
    """
    exercise = "momentum update"
    if update is None:
        return _not_attempted(exercise, "Write update(momentum_encoder, encoder, momentum)")
    for momentum in (0.9, paper("momentum")):
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
