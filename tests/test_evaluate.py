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
    noise_verdict,
    seed_spread,
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


# ---- the one rule for "beyond the noise" ------------------------------------------------------------

# 400 pairs scored by two models that share their noise (like two runs scored on the same dev pairs)
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 2, 400)
BASE = RNG.normal(size=400)
SIMCSE_SEEDS = [0.460, 0.457, 0.450]  # three seeds of one quick-mode setting: they spread over 0.010


def scored(signal: float) -> dict:
    """A model whose cosine is BASE + signal * label, scored like evaluate_pairs(..., return_scores=True)."""
    scores = BASE + signal * LABELS
    return {"scores": scores, "spearman": float(spearman_rows(scores[None], LABELS[None])[0]),
            "spearman_ci": bootstrap_spearman(scores, LABELS)}


def test_seed_spread_is_max_minus_min():
    assert seed_spread(SIMCSE_SEEDS) == pytest.approx(0.010)
    assert seed_spread([0.3]) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        seed_spread([])


def test_a_paired_gain_smaller_than_the_seeds_spread_is_within_the_noise():
    a, b = scored(0.42), scored(0.40)
    verdict = noise_verdict(a, b, LABELS, seed_spread=seed_spread(SIMCSE_SEEDS))
    low, high = bootstrap_spearman_difference(b["scores"], a["scores"], LABELS)
    assert verdict.interval == pytest.approx((low, high)) and low > 0  # the dev pairs alone would call it a gain
    assert verdict.difference == pytest.approx(a["spearman"] - b["spearman"]) and 0 < verdict.difference < 0.010
    assert verdict.sign == 0 and verdict.seed_spread == pytest.approx(0.010)  # ...but another seed moves more
    assert verdict.reason == f"paired 95% interval [{low:+.3f}, {high:+.3f}] on the dev pairs; seeds at these " \
                             "settings spread over 0.010"
    assert beyond_noise(a, b, LABELS, seed_spread=0.010) == 0 and beyond_noise(b, a, LABELS, seed_spread=0.010) == 0
    text = compare_text("A", a, "B", b, labels=LABELS, seed_spread=0.010)
    assert text == (f"A {spearman_text(a)} vs B {spearman_text(b)}: difference {verdict.difference:+.3f} "
                    f"({verdict.reason}): within the noise, not told apart.")
    # the same difference counts once the seeds are known to agree more closely than it
    assert beyond_noise(a, b, LABELS, seed_spread=0.005) == 1


def test_a_gain_beyond_both_noises_counts_in_both_directions():
    a, b = scored(0.60), scored(0.40)
    diff = a["spearman"] - b["spearman"]
    low, high = bootstrap_spearman_difference(b["scores"], a["scores"], LABELS)
    assert diff == pytest.approx(0.089, abs=1e-3) and low > 0
    assert intervals_overlap(a, b)  # separately, the two intervals overlap: paired, the gain is clear
    up, down = (noise_verdict(x, y, LABELS, seed_spread=0.023) for x, y in ((a, b), (b, a)))
    assert (up.sign, down.sign) == (1, -1)
    assert down.difference == pytest.approx(-diff) and down.interval == pytest.approx((-high, -low), abs=0.002)
    assert beyond_noise(a, b, LABELS, seed_spread=0.023) == 1 and beyond_noise(b, a, LABELS, seed_spread=0.023) == -1
    assert compare_text("SimCSE", a, "untrained", b, labels=LABELS, seed_spread=0.023) == (
        f"SimCSE {spearman_text(a)} vs untrained {spearman_text(b)}: difference {diff:+.3f} (paired 95% interval "
        f"[{low:+.3f}, {high:+.3f}] on the dev pairs; seeds at these settings spread over 0.023): SimCSE is higher "
        "than untrained beyond the noise.")
    assert compare_text("untrained", b, "SimCSE", a, labels=LABELS, seed_spread=0.023).endswith(
        ": SimCSE is higher than untrained beyond the noise.")
    # a seed spread equal to the difference does not count: it must be exceeded
    assert beyond_noise(a, b, LABELS, seed_spread=diff) == 0


def test_without_a_seed_spread_the_pairs_decide_and_the_text_says_so():
    a, b = scored(0.42), scored(0.40)  # a small gain, but a clear one on these pairs
    verdict = noise_verdict(a, b, LABELS, seed_spread=None)
    assert verdict.sign == 1 and verdict.seed_spread is None
    assert verdict.reason.endswith("; the spread of seeds at these settings is not measured")
    assert compare_text("A", a, "B", b, labels=LABELS, seed_spread=None).endswith(
        "the spread of seeds at these settings is not measured): A is higher than B beyond the noise.")
    same = noise_verdict(a, dict(a), LABELS, seed_spread=None)  # nothing between a model and itself
    assert same.sign == 0 and same.difference == 0 and "which includes 0" in same.reason
    with pytest.raises(TypeError, match="seed_spread"):  # the seed noise has to be given (None: not measured)
        beyond_noise(a, b, LABELS)


def test_without_pair_scores_the_overlap_of_the_two_intervals_decides():
    a = {"spearman": 0.40, "spearman_ci": (0.35, 0.45)}
    b = {"spearman": 0.38, "spearman_ci": (0.33, 0.43)}
    c = {"spearman": 0.10, "spearman_ci": (0.05, 0.15)}
    assert intervals_overlap(a, b) and not intervals_overlap(a, c)
    assert compare_text("SimCSE", a, "ESimCSE", b, seed_spread=0.0) == (
        "SimCSE 0.400 [0.35, 0.45] vs ESimCSE 0.380 [0.33, 0.43]: difference +0.020 (the two 95% intervals "
        "overlap; no seed noise: neither score depends on a training seed): within the noise, not told apart.")
    assert compare_text("untrained", c, "SimCSE", a, seed_spread=0.010) == (
        "untrained 0.100 [0.05, 0.15] vs SimCSE 0.400 [0.35, 0.45]: difference -0.300 (the two 95% intervals do "
        "not overlap; seeds at these settings spread over 0.010): SimCSE is higher than untrained beyond the noise.")
    assert noise_verdict(a, c, None, seed_spread=None).sign == 1
    assert noise_verdict(c, a, None, seed_spread=0.35).sign == 0  # apart on the pairs, but the seeds spread more
    # scores kept, but no labels given: the intervals decide too
    x, y = scored(0.42), scored(0.40)
    assert noise_verdict(x, y, None, seed_spread=None).interval is None
    assert beyond_noise(x, y, None, seed_spread=None) == 0  # their intervals overlap
    assert intervals_overlap(a, {"spearman": 0.0})  # without an interval nothing is claimed
    assert noise_verdict(a, {"spearman": 0.0}, None, seed_spread=None).sign == 0


def test_a_nan_score_is_never_a_difference():
    verdict = noise_verdict({"spearman": float("nan")}, {"spearman": 0.3}, None, seed_spread=0.01)
    assert verdict.sign == 0 and "NaN" in verdict.reason


# ---- the recorded results (cse_helpers.classroom.results) ------------------------------------------------------------

RECORD = {"settings": {"batch_size": 32, "max_seq_len": 48, "dropout": 0.1, "learning_rate": 3e-4, "max_steps": 80},
          "model": "cse_helpers/default_model",
          "runs": {"simcse": {"seeds": [0, 1, 2], "spearman": [0.460, 0.457, 0.450]},
                   "esimcse": {"seeds": [0, 1, 2], "spearman": [0.490, 0.478, 0.480]},
                   "diffcse": {"seeds": [0, 1, 2], "spearman": [0.438, 0.454, 0.446]},
                   "esimcse queue_size=0": {"seeds": [0, 1, 2], "spearman": [0.470, 0.471, 0.466]}}}
LCQMC = {"methods": {"simcse": {"seeds": 3, "spearman_mean": 0.4331, "spearman_sd": 0.0004},
                     "esimcse": {"seeds": 3, "spearman_mean": 0.4228, "spearman_sd": 0.0016},
                     "diffcse": {"seeds": 3, "spearman_mean": 0.4326, "spearman_sd": 0.0009}}}


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """The records in temporary files, read by every function of cse_helpers.classroom.results."""
    import json

    from cse_helpers.classroom import results

    seeds, lcqmc = tmp_path / "quick_seeds.json", tmp_path / "lcqmc_quality.json"
    seeds.write_text(json.dumps(RECORD), encoding="utf-8")
    lcqmc.write_text(json.dumps(LCQMC), encoding="utf-8")
    read_seeds, read_lcqmc = results.quick_seeds, results.lcqmc_quality
    # what has no path argument (the ranking) reads these files; the rest is given path=
    monkeypatch.setattr(results, "quick_seeds", lambda path=None: read_seeds(str(seeds)))
    monkeypatch.setattr(results, "lcqmc_quality", lambda path=None: read_lcqmc(str(lcqmc)))
    return str(seeds)


def test_a_missing_record_file_says_how_to_rebuild_it(tmp_path):
    from cse_helpers.classroom.results import quick_seeds

    with pytest.raises(FileNotFoundError, match=r"missing\.json is missing: .*sweep_quick\.py --record"):
        quick_seeds(str(tmp_path / "missing.json"))


def test_run_key_names_the_method_and_its_changed_settings_sorted():
    from cse_helpers.classroom.results import run_key

    assert run_key("simcse") == "simcse" and run_key("simcse", {}) == "simcse"
    assert run_key("esimcse", {"queue_size": 0}) == "esimcse queue_size=0"
    assert run_key("esimcse", {"queue_size": 0, "dup_rate": 0.0}) == "esimcse dup_rate=0.0 queue_size=0"


def test_recorded_spread_is_the_largest_spread_of_the_runs_compared(recorded):
    from cse_helpers.classroom.results import recorded_spread, seed_range_text

    assert recorded_spread("simcse", path=recorded) == pytest.approx(0.010)
    assert recorded_spread("esimcse", path=recorded) == pytest.approx(0.012)
    assert recorded_spread("esimcse", "simcse", path=recorded) == pytest.approx(0.012)  # the larger of the two
    assert recorded_spread("esimcse queue_size=0", path=recorded) == pytest.approx(0.005)
    same = dict(RECORD["settings"], seed=3)  # the notebook's settings: the compared ones as recorded
    assert recorded_spread("diffcse", settings=same, path=recorded) == pytest.approx(0.016)
    assert seed_range_text("diffcse", path=recorded) == "0.438-0.454 over 3 seeds"


def test_recorded_spread_is_none_at_other_settings(recorded):
    from cse_helpers.classroom.results import recorded_spread, seed_range_text, seed_spearmans

    full = dict(RECORD["settings"], max_steps=2000, batch_size=64)  # full mode: not what was recorded
    assert recorded_spread("simcse", settings=full, path=recorded) is None
    assert recorded_spread("simcse", "esimcse", settings={"learning_rate": 3e-5}, path=recorded) is None
    assert seed_spearmans("simcse", settings={"max_steps": 2000}, path=recorded) is None
    assert seed_spearmans("simcse", settings={"max_steps": 80}, path=recorded) == [0.460, 0.457, 0.450]
    assert seed_range_text("simcse", settings=full, path=recorded) == "not recorded at these settings"


def test_an_unknown_run_is_a_key_error_naming_the_file(recorded):
    from cse_helpers.classroom.results import recorded_spread

    with pytest.raises(KeyError, match=r"quick_seeds\.json has no run 'esimcse dup_rate=0' .*sweep_quick\.py"):
        recorded_spread("simcse", "esimcse dup_rate=0", path=recorded)


def test_ranking_text_puts_the_three_orders_side_by_side(recorded):
    from cse_helpers.classroom.results import method_ranking, ranking_text

    text = ranking_text({"simcse": 0.452, "esimcse": 0.471, "diffcse": 0.449})
    assert text.split("\n") == [
        "this run (one seed):           ESimCSE 0.471 > SimCSE 0.452 > DiffCSE 0.449",
        "sample, recorded seeds:        ESimCSE 0.483 (0.478-0.490) > SimCSE 0.456 (0.450-0.460) > "
        "DiffCSE 0.446 (0.438-0.454)",
        "LCQMC dev, 3 seeds (mean ± sd): SimCSE 0.4331 ± 0.0004 > DiffCSE 0.4326 ± 0.0009 > ESimCSE 0.4228 ± 0.0016"]
    rows = {r["method"]: r for r in method_ranking()}
    assert (rows["esimcse"]["rank_sample_mean"], rows["esimcse"]["rank_lcqmc_mean"]) == (1, 3)  # the sample's
    assert rows["simcse"]["rank_this_run"] is None  # winner is LCQMC's last
    # without this run's scores, and where the records do not apply (other settings): LCQMC's order alone
    assert ranking_text(recorded=False).split("\n") == [
        "sample, recorded seeds:        not recorded",
        "LCQMC dev, 3 seeds (mean ± sd): SimCSE 0.4331 ± 0.0004 > DiffCSE 0.4326 ± 0.0009 > ESimCSE 0.4228 ± 0.0016"]
