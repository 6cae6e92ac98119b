import math

import numpy as np
import pytest
import torch

from cse_helpers.evaluate import best_thresholds, character_jaccard, evaluate_pairs


class FixedEncoder:
    """Embeds each sentence as a given 2-d unit vector at a given angle; records what it was asked."""

    def __init__(self, angles):
        self.angles, self.calls = angles, []

    def encode(self, texts, batch_size=128, normalize=True):
        self.calls.append(list(texts))
        return torch.tensor([[math.cos(self.angles[t]), math.sin(self.angles[t])] for t in texts])


# cos(a, b) = cos(angle difference): pairs score 0.9, 0.6, 0.4, 0.2, -> labels 1, 1, 0, 1 (and 0 at 0.1)
ANGLES = {"a": 0.0, "b": math.acos(0.9), "c": math.acos(0.6), "d": math.acos(0.4), "e": math.acos(0.2),
          "f": math.acos(0.1)}
PAIRS = [("a", "b", 1), ("a", "c", 1), ("a", "d", 0), ("a", "e", 1), ("a", "f", 0)]


def test_metrics_against_hand_computed_values():
    encoder = FixedEncoder(ANGLES)
    result = evaluate_pairs(encoder, PAIRS, threshold=0.5, return_scores=True)
    assert result["scores"] == pytest.approx([0.9, 0.6, 0.4, 0.2, 0.1])
    assert encoder.calls == [["a", "b", "c", "d", "e", "f"]]  # each distinct sentence encoded once
    # at 0.5: predicted positive a-b, a-c; TP=2 FP=0 FN=1 TN=2
    assert result["accuracy"] == pytest.approx(4 / 5)
    assert result["precision"] == pytest.approx(1.0)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(0.8)
    # ranks of scores 5 4 3 2 1 vs labels 1 1 0 1 0: Spearman by hand
    ranks_s, ranks_l = np.array([5, 4, 3, 2, 1]), np.array([4, 4, 1.5, 4, 1.5])
    expected = np.corrcoef(ranks_s, ranks_l)[0, 1]
    assert result["spearman"] == pytest.approx(expected)
    # best accuracy 4/5 (e.g. above 0.5); best F1: threshold between 0.1 and 0.2 -> TP 3 FP 1 -> 6/7
    assert result["best_accuracy"] == pytest.approx(0.8)
    assert result["best_f1"] == pytest.approx(6 / 7)
    assert 0.1 < result["best_f1_threshold"] < 0.2
    assert "same set" in result["best_threshold_note"]
    # alignment: mean squared distance of unit vectors over positives = 2 - 2 cos
    assert result["alignment"] == pytest.approx(np.mean([2 - 2 * 0.9, 2 - 2 * 0.6, 2 - 2 * 0.2]))
    z = torch.tensor([[math.cos(ANGLES[t]), math.sin(ANGLES[t])] for t in "abcdef"])
    d2 = torch.cdist(z, z).pow(2)[torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)]
    assert result["uniformity"] == pytest.approx(float(d2.mul(-2).exp().mean().log()), rel=1e-5)


def test_best_thresholds_sweep_all_cut_points():
    scores = np.array([0.9, 0.8, 0.7, 0.3])
    labels = np.array([1, 0, 1, 0])
    best = best_thresholds(scores, labels)
    assert best["best_accuracy"] == pytest.approx(0.75)
    assert best["best_f1"] == pytest.approx(0.8)  # threshold below 0.7: TP 2, FP 1
    assert 0.3 < best["best_f1_threshold"] < 0.7


def test_one_class_gives_nan_with_a_warning():
    with pytest.warns(UserWarning, match="undefined"):
        result = evaluate_pairs(FixedEncoder(ANGLES), [("a", "b", 1), ("a", "c", 1)])
    assert math.isnan(result["spearman"]) and math.isnan(result["pearson"])
    assert result["accuracy"] == 1.0


def test_float_scores_give_correlations_but_no_classification():
    pairs = [("a", "b", 4.5), ("a", "c", 3.0), ("a", "d", 1.0)]
    result = evaluate_pairs(FixedEncoder(ANGLES), pairs)
    assert result["spearman"] == pytest.approx(1.0)
    assert "accuracy" not in result
    assert result["alignment"] == pytest.approx(2 - 2 * 0.9)  # only 4.5 >= 4 counts as a positive


def test_evaluate_reads_a_file(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("a\tb\t1\na\tf\t0\n", encoding="utf-8")
    assert evaluate_pairs(FixedEncoder(ANGLES), str(path))["accuracy"] == 1.0


def test_character_jaccard_is_a_baseline_for_evaluate_pairs():
    assert character_jaccard([("我喜欢你", "我不喜欢你", 0), ("猫", "狗", 0)]) == pytest.approx([0.8, 0.0])
    pairs = [("我喜欢你", "我不喜欢你", 0), ("怎么减肥", "怎样减肥", 1), ("猫", "狗", 0), ("你好", "你好吗", 1)]
    result = evaluate_pairs(character_jaccard, pairs, threshold=0.5, return_scores=True)
    assert result["scores"] == pytest.approx([0.8, 0.6, 0.0, 2 / 3])
    assert result["accuracy"] == pytest.approx(0.75)  # the near miss 我喜欢你/我不喜欢你 fools it
    assert result["best_accuracy"] == pytest.approx(0.75)
    assert math.isnan(result["alignment"]) and math.isnan(result["uniformity"])
