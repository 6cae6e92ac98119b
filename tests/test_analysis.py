"""Notebook 2's length measurements, its ablations' views and the queue-off switch.

The measurements are checked with encoders whose answer is known whatever sentences, partners and repeats are
drawn: one that sees only the length, one that sees only which characters occur.
"""

import itertools
import math
import random

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cse_helpers import augment
from cse_helpers.classroom import analysis, results
from cse_helpers.encoder import SentenceEncoder
from cse_helpers.objectives import ESimCSE
from cse_helpers.train import TrainingArguments, ViewBuilder

matplotlib.use("Agg")

TEXTS = sorted({"".join(random.Random(n).sample([chr(0x4E00 + i) for i in range(300)], length))
                for length in range(4, 13) for n in range(8 * length, 8 * length + 6)})


def length_only(texts):
    """cos(x, y) = cos(0.2 * (len x - len y))."""
    angle = torch.tensor([0.2 * len(t) for t in texts], dtype=torch.float64)
    return torch.stack([angle.cos(), angle.sin()], dim=1)


def characters_only(texts):
    """The set of characters: repeating one changes nothing."""
    z = torch.zeros(len(texts), 300, dtype=torch.float64)
    for row, text in enumerate(texts):
        z[row, [ord(c) - 0x4E00 for c in set(text)]] = 1.0
    return F.normalize(z, dim=1)


def test_repeat_exactly_repeats_k_distinct_characters_in_place():
    text = "今天气很好吗"  # distinct characters, so each doubled one is a run of 2
    for seed in range(20):
        out = analysis.repeat_exactly(text, 3, random.Random(seed))
        runs = [len(list(group)) for _, group in itertools.groupby(out)]
        assert len(out) == 9 and "".join(c for c, _ in itertools.groupby(out)) == text and sorted(runs)[-3:] == [2] * 3
    assert analysis.repeat_exactly("今天", 0, random.Random(0)) == "今天"
    with pytest.raises(ValueError, match="0 to 2"):
        analysis.repeat_exactly("今天", 3, random.Random(0))


def test_copy_curve_follows_the_length_only_encoder_and_stays_at_1_without_length():
    curve = analysis.copy_curve(length_only, TEXTS, added=(1, 2, 4), n=20, seed=1)
    assert curve["n"] == 20 and curve["cosines"].shape == (20, 3)
    assert np.allclose(curve["mean"], [math.cos(0.2 * k) for k in (1, 2, 4)])
    assert np.allclose(curve["ci"][:, 0], curve["mean"]) and np.allclose(curve["ci"][:, 1], curve["mean"])
    assert np.allclose(analysis.copy_curve(characters_only, TEXTS, n=20)["mean"], 1.0)
    text = analysis.copy_curve_text("m", curve)
    assert "0.980" in text and "0.697" in text and "it falls" in text
    flat = analysis.copy_curve_text("flat", analysis.copy_curve(characters_only, TEXTS, n=20))
    assert "no change with the length is measured" in flat


@pytest.mark.parametrize("k", [2, 3])
def test_length_cue_measures_the_reward_for_equal_length_alone(k):
    cue = analysis.length_cue(length_only, TEXTS, k=k, n=30, seed=0)
    step = 1 - math.cos(0.2 * k)
    assert cue["n"] == 30 and cue["k"] == k
    assert cue["match"] == pytest.approx(step) and cue["mismatch"] == pytest.approx(-step)
    assert cue["effect"] == pytest.approx(2 * step)
    assert "a length cue" in analysis.length_cue_text("m", cue)
    none = analysis.length_cue(characters_only, TEXTS, k=k, n=30, seed=0)
    assert none["match"] == none["mismatch"] == none["effect"] == 0
    assert "includes 0" in analysis.length_cue_text("m", none)


def test_length_cues_of_two_encoders_are_compared_on_the_same_pairs():
    a = analysis.length_cue(length_only, TEXTS, k=3, n=30, seed=0)
    b = analysis.length_cue(characters_only, TEXTS, k=3, n=30, seed=0)
    text = analysis.length_cue_difference_text("A", a, "B", b)
    assert f"{a['effect']:+.4f}" in text and "A rewards equal length more than B" in text
    assert "includes 0" in analysis.length_cue_difference_text("A", a, "A again", a)
    with pytest.raises(ValueError, match="different pairs"):
        analysis.length_cue_difference_text("A", a, "C", analysis.length_cue(length_only, TEXTS, k=2, n=30))


def test_length_cue_refuses_texts_without_partners():
    with pytest.raises(ValueError, match="partner"):
        analysis.length_cue(length_only, ["一二三", "四五六七八九"], k=3)


class Encoder:
    """What measure_length needs of a SentenceEncoder: encode (and body_ids for one_token_per_character)."""

    def __init__(self, encode):
        self.encode = encode

    def body_ids(self, texts):
        return [[ord(c) for c in t.replace("AB", "X")] for t in texts]  # "AB" is one token


def test_measure_length_plots_and_says_what_it_found():
    texts = analysis.one_token_per_character(Encoder(length_only), TEXTS + ["ABCD", TEXTS[0]])
    assert texts == TEXTS  # "ABCD" has 3 tokens for 4 characters; duplicates removed
    results = {name: analysis.measure_length(Encoder(f), texts, n_copies=20, n_pairs=30)
               for name, f in (("length", length_only), ("characters", characters_only))}
    fig = analysis.plot_length(results)
    left, right = fig.axes[:2]
    assert [line.get_label() for line in left.get_lines()] == ["length", "characters"]
    assert np.allclose(left.get_lines()[1].get_ydata(), 1.0)
    heights = [p.get_height() for p in right.patches]
    assert heights[2 * 2:] == pytest.approx([results["length"]["cue"]["effect"], 0.0])  # the hatched bars
    text = analysis.length_text(results, against=[("length", "characters")])
    assert text.count("\n- ") == 4 and "length rewards equal length more than characters" in text


def test_reduplications_find_a_doubled_character_that_is_a_word():
    texts = ["有人知道吗"] * 1 + [f"问题{i}" for i in range(5)]
    found = analysis.reduplications(texts * 1, seed=0, limit=5)
    for original, copy, word in found:
        assert word in analysis.REDUPLICATIONS.values() and word[:2] in copy and word[:2] not in original
    many = analysis.reduplications([f"有人{i}知道吗看" for i in range(50)], seed=0, limit=2)
    assert len(many) == 2 and {w[:2] for _, _, w in many} == {"人人", "看看"}  # one example per word


def test_seconds_per_step_leaves_the_warm_up_window_out():
    history = {"log": [{"steps_per_s": 1.0}, {"steps_per_s": 4.0}, {"steps_per_s": 5.0}, {"steps_per_s": 3.0}]}
    assert analysis.seconds_per_step(history) == pytest.approx(0.25)
    assert analysis.seconds_per_step({"log": [{"steps_per_s": 2.0}]}) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        analysis.seconds_per_step({"log": []})



# ---- notebook 2's readings ------------------------------------------------------------------------------

def test_repeat_marks_marks_the_added_copies_of_a_word_repetition():
    assert analysis.repeat_marks(list("abc"), list("abbc")) == [False, False, True, False]
    assert analysis.repeat_marks(list("abc"), list("aabcc")) == [False, True, False, False, True]
    assert analysis.repeat_marks(list("abc"), list("abc")) == [False, False, False]
    tokens = list(enumerate("一二三四五六七八"))  # (position, character): every token distinct
    copy = augment.word_repetition(tokens, dup_rate=0.5, rng=random.Random(3))
    marks = analysis.repeat_marks(tokens, copy)
    assert sum(marks) == len(copy) - len(tokens) > 0  # one mark per added token
    assert marks == [k > 0 and copy[k - 1] == t for k, t in enumerate(copy)]  # each marked token repeats its left


def test_queue_fill_text_says_whether_the_loss_rose_while_the_queue_filled():
    log = [{"step": 2, "loss": 1.5}, {"step": 4, "loss": 2.25}, {"step": 6, "loss": 1.75}, {"step": 8, "loss": 3.0}]
    # Q = 6, B = 2: full after step 3; windows up to step 3 + 2 * 2 = 7 count, so step 8's 3.0 does not
    assert analysis.queue_fill_text(log, queue_size=6, batch_size=2, logging_steps=2) == (
        "ESimCSE's loss rose from 1.500 (step 2) to 2.250 (step 4) while its queue filled (Q = 6, B = 2: full "
        "after step 3); then it fell.")
    falling = [{"step": 2, "loss": 2.0}, {"step": 4, "loss": 1.0}]
    assert analysis.queue_fill_text(falling, queue_size=5, batch_size=2, logging_steps=2) == (
        "ESimCSE's loss did not rise while its queue filled (full after step 3): 2.000 at step 2, at most 2.000 "
        "until then.")


def test_effects_text_reads_the_sign_of_each_change():
    text = analysis.effects_text({"switching the queue off": -1, "switching repetition off": 0, "more steps": 1})
    assert text == ("switching the queue off lowered the score beyond the noise; switching repetition off did not "
                    "change the score beyond the noise; more steps raised the score beyond the noise")
    with pytest.raises(KeyError):
        analysis.effects_text({"a change": 2})


def test_first_method_text_says_whether_the_samples_order_carries_over():
    names = {"simcse": "SimCSE", "esimcse": "ESimCSE"}
    same = [{"method": "simcse", "sample_mean": 0.5, "lcqmc_mean": 0.6},
            {"method": "esimcse", "sample_mean": 0.4, "lcqmc_mean": 0.55}]
    assert analysis.first_method_text(same, names) == (
        "On the sample's recorded seeds SimCSE comes first; on LCQMC SimCSE does: the sample's order carries over "
        "to LCQMC here.")
    flipped = [dict(same[0]), dict(same[1], lcqmc_mean=0.7)]
    assert analysis.first_method_text(flipped, names).endswith(
        "on LCQMC ESimCSE does: the sample's order does not carry over to LCQMC, so no ranking of the methods can "
        "rest on this notebook.")
    recorded = results.method_ranking(methods=("simcse", "esimcse"))  # the recorded seeds the notebook reads
    assert analysis.first_method_text(recorded, names).startswith("On the sample's recorded seeds ")


# ---- the views and the queue of the ablations ---------------------------------------------------------

def test_same_length_repetition_repeats_as_many_tokens_in_both_views_at_other_positions():
    tokens = list(range(20))
    differ = 0
    for seed in range(200):
        first, second = augment.same_length_repetition(tokens, 0.32, random.Random(seed))
        assert len(first) == len(second) <= 26
        for view in (first, second):
            assert sorted(set(view)) == tokens and sorted(view) == view  # only repeats, in order
        differ += first != second
        assert first == augment.same_length_repetition(tokens, 0.32, random.Random(seed))[0]
    assert differ > 150  # positions drawn apart
    lengths = {len(augment.same_length_repetition(tokens, 0.32, random.Random(s))[0]) - 20 for s in range(200)}
    assert lengths == set(range(7))  # 0 .. max(2, int(0.32 * 20)) = 6, as word_repetition draws


def test_the_repetition_setting_switches_esimcses_views(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    body = encoder.body_ids(["今天天气很好，我们去公园吧"])[0]
    off = ViewBuilder(encoder, 64, repeats_words=True, seed=1, repetition="none")
    assert all(off.views(body) == (body, body) for _ in range(20))
    same = ViewBuilder(encoder, 64, repeats_words=True, seed=1, repetition="same_length")
    pairs = [same.views(body) for _ in range(50)]
    assert all(len(a) == len(b) for a, b in pairs) and any(len(a) > len(body) for a, _ in pairs)
    with pytest.raises(ValueError, match="repetition"):
        TrainingArguments(method="esimcse", repetition="both", save_dir="x", train_path="t").validate()
    with pytest.raises(ValueError, match="contradict"):
        TrainingArguments(method="esimcse", repetition="none", repeat_both_views=True, save_dir="x",
                          train_path="t").validate()


def test_without_a_queue_the_momentum_encoder_does_nothing(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    objective = ESimCSE(encoder, queue_size=0)
    before = [p.clone() for p in objective.momentum_encoder.parameters()]
    calls = []
    objective.momentum_encoder.register_forward_hook(lambda *args: calls.append(1))
    batch = encoder.batch(["今天天气很好", "明天会下雨吗"], ViewBuilder(encoder, 32, repeats_words=True))
    objective(batch)["loss"].backward()
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    objective.after_optimizer_step()
    assert not calls and len(objective.queue) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, objective.momentum_encoder.parameters()))
    with_queue = ESimCSE(encoder, queue_size=4)
    with_queue(batch)
    with_queue.after_optimizer_step()
    assert len(with_queue.queue) == 2
