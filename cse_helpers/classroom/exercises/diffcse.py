"""Notebook 3's exercises: DiffCSE's replaced-token-detection labels, the masking fractions and the conditioning
controls."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ... import losses
from ...defaults import paper
from ...objectives import mask_tokens
from .verdict import (
    Verdict,
    _call,
    _checked,
    _close,
    _not_attempted,
    _number,
    _right,
    _tensor,
    _wrong,
)

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
def check_mask_fractions(fractions: Sequence[float] | None, mask_ratio: float = paper("mask_ratio")) -> Verdict:
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
