import math

import numpy as np
import pytest
import torch

from cse_helpers.evaluate import (
    best_thresholds,
    beyond_noise,
    bootstrap_spearman,
    bootstrap_spearman_difference,
    character_jaccard,
    compare_text,
    evaluate_pairs,
    group_metrics,
    intervals_overlap,
    spearman_rows,
    spearman_text,
)


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


# ---- the noise of a score: a bootstrap interval, per-group scores ------------------------------------

def bootstrap_by_hand(scores, labels, n_resamples, seed):
    """The documented recipe, written out: resample pairs with replacement, Spearman each, 2.5/97.5 percentiles."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(scores), size=(n_resamples, len(scores)))
    values = []
    for rows in index:
        s, y = scores[rows], labels[rows]
        if len(set(s)) > 1 and len(set(y)) > 1:
            values.append(spearmanr(s, y)[0])
    return np.percentile(values, [2.5, 97.5])


def noisy_pairs(n, seed=0, signal=0.5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return signal * labels + rng.normal(size=n), labels


def test_spearman_ci_is_the_bootstrap_written_out_and_is_reproducible():
    scores, labels = noisy_pairs(60)
    low, high = bootstrap_spearman(scores, labels, n_resamples=300, seed=7)
    assert (low, high) == pytest.approx(tuple(bootstrap_by_hand(scores, labels, 300, seed=7)), abs=1e-12)
    assert bootstrap_spearman(scores, labels, n_resamples=300, seed=7) == (low, high)  # same seed, same interval
    assert bootstrap_spearman(scores, labels, n_resamples=300, seed=8) != (low, high)
    from scipy.stats import spearmanr
    assert low < spearmanr(scores, labels)[0] < high


def test_spearman_ci_narrows_with_more_pairs_and_evaluate_pairs_reports_it():
    small, large = noisy_pairs(100), noisy_pairs(2000)
    width = [np.diff(bootstrap_spearman(*data)).item() for data in (small, large)]
    assert width[1] < width[0] / 3  # about 1 / sqrt(n): 4.5x narrower for 20x the pairs
    result = evaluate_pairs(FixedEncoder(ANGLES), PAIRS, seed=3, n_resamples=200)
    assert result["spearman_ci"] == pytest.approx(bootstrap_spearman(np.array([0.9, 0.6, 0.4, 0.2, 0.1]),
                                                                    np.array([1, 1, 0, 1, 0]), 200, seed=3))
    jaccard = evaluate_pairs(character_jaccard, [("我喜欢你", "我不喜欢你", 0), ("怎么减肥", "怎样减肥", 1),
                                                 ("猫", "狗", 0), ("你好", "你好吗", 1)])
    assert len(jaccard["spearman_ci"]) == 2 and jaccard["spearman_ci"][0] <= jaccard["spearman_ci"][1]


def test_spearman_text_prints_the_score_with_its_interval():
    assert spearman_text({"spearman": 0.0341, "spearman_ci": (-0.0213, 0.0905)}) == "0.034 [-0.02, 0.09]"
    assert spearman_text({"spearman": 0.5}) == "0.500"
    assert spearman_text({"spearman": float("nan"), "spearman_ci": (float("nan"), float("nan"))}) == "nan"


def test_pairs_with_a_group_are_scored_per_group():
    pairs = [("a", "b", 1, "paraphrase"), ("a", "c", 1, "paraphrase"), ("a", "d", 0, "near miss"),
             ("a", "e", 1, "paraphrase"), ("a", "f", 0, "near miss")]
    result = evaluate_pairs(FixedEncoder(ANGLES), pairs)
    assert result["spearman"] == pytest.approx(evaluate_pairs(FixedEncoder(ANGLES), PAIRS)["spearman"])
    groups = result["groups"]
    assert list(groups) == ["paraphrase", "near miss"]
    assert groups["paraphrase"]["n"] == 3 and groups["near miss"]["n"] == 2
    assert groups["paraphrase"]["mean_cosine"] == pytest.approx((0.9 + 0.6 + 0.2) / 3)
    assert groups["near miss"]["mean_cosine"] == pytest.approx((0.4 + 0.1) / 2)
    assert math.isnan(groups["paraphrase"]["spearman"])  # one label in the group: no ranking to score
    assert "groups" not in evaluate_pairs(FixedEncoder(ANGLES), pairs, by_group=False)
    with pytest.raises(ValueError, match="no group"):
        evaluate_pairs(FixedEncoder(ANGLES), PAIRS, by_group=True)
    mixed = evaluate_pairs(FixedEncoder(ANGLES), [pairs[0], PAIRS[2]])  # a pair without a group is not dropped
    assert {name: g["n"] for name, g in mixed["groups"].items()} == {"paraphrase": 1, "(no group)": 1}
    separate = evaluate_pairs(FixedEncoder(ANGLES), PAIRS, groups=[p[3] for p in pairs])  # names given apart
    assert {name: (g["n"], g["mean_cosine"]) for name, g in separate["groups"].items()} == \
        {name: (g["n"], g["mean_cosine"]) for name, g in result["groups"].items()}
    with pytest.raises(ValueError, match="one per pair"):
        evaluate_pairs(FixedEncoder(ANGLES), PAIRS, groups=["x"])


def test_group_metrics_score_each_group_alone():
    scores, labels = noisy_pairs(200, signal=2.0)
    groups = ["easy" if k % 2 else "hard" for k in range(200)]
    scores = np.where(np.array(groups) == "hard", np.random.default_rng(1).normal(size=200), scores)  # hard: noise
    out = group_metrics(scores, labels, groups, n_resamples=200, seed=0)
    from scipy.stats import spearmanr
    easy = np.array(groups) == "easy"
    assert out["easy"]["spearman"] == pytest.approx(spearmanr(scores[easy], labels[easy])[0])
    assert out["easy"]["spearman"] > 0.5 and abs(out["hard"]["spearman"]) < 0.25
    assert out["easy"]["spearman_ci"][0] > out["hard"]["spearman_ci"][1]  # told apart beyond the noise


def test_compare_text_says_whether_the_intervals_overlap():
    a = {"spearman": 0.40, "spearman_ci": (0.35, 0.45)}
    b = {"spearman": 0.38, "spearman_ci": (0.33, 0.43)}
    c = {"spearman": 0.10, "spearman_ci": (0.05, 0.15)}
    assert intervals_overlap(a, b) and not intervals_overlap(a, c)
    assert compare_text("SimCSE", a, "ESimCSE", b) == ("SimCSE 0.400 [0.35, 0.45] vs ESimCSE 0.380 [0.33, 0.43]: "
                                                       "the intervals overlap, so this dev set does not clearly "
                                                       "tell them apart.")
    assert compare_text("untrained", c, "SimCSE", a).endswith(
        "SimCSE is higher than untrained beyond the noise of these dev pairs (the intervals do not overlap).")
    assert intervals_overlap(a, {"spearman": 0.0})  # without an interval nothing is claimed


def test_compare_text_uses_the_paired_difference_when_it_has_the_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    base = rng.normal(size=400)
    a = {"scores": base + 0.6 * labels}   # the same pairs, with a little more signal than b
    b = {"scores": base + 0.4 * labels}
    for r in (a, b):
        r.update(spearman=float(spearman_rows(np.array([r["scores"]]), labels[None])[0]),
                 spearman_ci=bootstrap_spearman(r["scores"], labels))
    assert intervals_overlap(a, b)  # separately, the two intervals overlap...
    text = compare_text("A", a, "B", b, labels=labels)
    assert "paired 95% interval of the difference (A - B)" in text
    assert text.endswith("A is higher than B beyond the noise of these dev pairs.")  # ...but paired, the gain is clear
    low, high = bootstrap_spearman_difference(b["scores"], a["scores"], labels)
    assert f"[{low:+.3f}, {high:+.3f}]" in text and low > 0
    assert beyond_noise(a, b, labels) == 1 and beyond_noise(b, a, labels) == -1 and beyond_noise(a, b) == 0
    same = compare_text("A", a, "A again", dict(a), labels=labels)
    assert same.endswith("which includes 0: this dev set does not tell them apart.")
