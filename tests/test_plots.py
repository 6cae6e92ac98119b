"""The figures of cse_helpers.classroom.plots: each is checked on the data it draws."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

from cse_helpers.classroom import plots, tables  # noqa: E402
from cse_helpers.losses import simcse_label_matrix  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


HISTORY = {"log": [{"step": 2, "loss": 3.0, "contrastive": 2.9, "rtd": 0.7},
                   {"step": 4, "loss": 2.0, "contrastive": 1.5, "rtd": 0.6}],
           "eval": [{"step": 4, "spearman": 0.41, "best_f1": 0.7}]}


def test_plot_history_keeps_its_signature_and_draws_both_axes():
    fig = plots.plot_history(HISTORY, metric="spearman")
    loss_ax, metric_ax = fig.axes
    assert loss_ax.lines[0].get_ydata().tolist() == [3.0, 2.0]
    assert metric_ax.lines[0].get_xdata().tolist() == [4] and metric_ax.lines[0].get_ydata().tolist() == [0.41]


def test_a_given_ax_is_drawn_into():
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.plot_curves({"run": HISTORY}, "loss", ax=right) is fig
    assert not left.lines and len(right.lines) == 1


def test_curves_draw_the_interval_as_a_band_the_baseline_as_a_line_and_do_not_magnify_noise():
    history = {"eval": [{"step": s, "spearman": v, "spearman_ci": (v - 0.06, v + 0.06)}
                        for s, v in ((10, 0.022), (20, 0.030), (30, 0.034))]}
    untrained = {"spearman": -0.019, "spearman_ci": (-0.08, 0.04)}
    fig = plots.plot_curves({"SimCSE": history}, "spearman", baseline=untrained)
    ax = fig.axes[0]
    band = [c for c in ax.collections if isinstance(c, PolyCollection) and len(c.get_paths()[0].vertices) > 4]
    assert len(band) == 1
    vertices = band[0].get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(0.022 - 0.06) and vertices[:, 1].max() == pytest.approx(0.034 + 0.06)
    baseline = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(baseline) == 1 and baseline[0].get_ydata()[0] == pytest.approx(-0.019)
    assert "untrained -0.019" in [t.get_text() for t in ax.get_legend().get_texts()]
    low, high = ax.get_ylim()
    assert high - low >= plots.MIN_SPAN  # +0.012 does not fill the axis
    narrow = plots.plot_curves({"run": {"eval": [{"step": 1, "spearman": 0.30}, {"step": 2, "spearman": 0.31}]}},
                               "spearman").axes[0]
    assert narrow.get_ylim()[1] - narrow.get_ylim()[0] == pytest.approx(plots.MIN_SPAN)
    wide = plots.plot_curves({"run": {"eval": [{"step": 1, "spearman": 0.0}, {"step": 2, "spearman": 0.6}]}},
                             "spearman").axes[0]
    assert wide.get_ylim()[0] < 0.0 and wide.get_ylim()[1] > 0.6  # a real climb keeps its own range


def test_curves_put_the_legend_outside_the_data_and_colour_runs_as_asked():
    runs = {"#1 seed=1": HISTORY, "#2 seed=2": HISTORY}
    ax = plots.plot_curves(runs, "loss", colors={"#1 seed=1": "C3", "#2 seed=2": "C3"}).axes[0]
    assert [line.get_color() for line in ax.lines] == ["C3", "C3"]
    fig = ax.figure
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # right of the axes, not over the lines
    assert plots.plot_curves(runs, "loss", legend=False).axes[0].get_legend() is None


def test_history_plot_draws_the_band_and_the_untrained_line():
    history = {"log": HISTORY["log"], "eval": [{"step": 2, "spearman": 0.1, "spearman_ci": (0.0, 0.2)},
                                                {"step": 4, "spearman": 0.12, "spearman_ci": (0.02, 0.22)}]}
    fig = plots.plot_history(history, baseline={"spearman": 0.05, "spearman_ci": (-0.05, 0.15)})
    right = fig.axes[1]
    assert [line.get_ydata()[0] for line in right.lines if line.get_linestyle() == "--"] == [pytest.approx(0.05)]
    assert any(isinstance(c, PolyCollection) for c in right.collections)
    assert right.get_ylim()[1] - right.get_ylim()[0] >= plots.MIN_SPAN


def test_plot_curves_takes_loss_from_log_and_metrics_from_eval():
    other = {"log": [{"step": 1, "loss": 5.0}], "eval": [{"step": 1, "spearman": 0.1}, {"step": 3, "spearman": 0.3}]}
    loss = plots.plot_curves({"a": HISTORY, "b": other}, "loss").axes[0]
    assert [line.get_label() for line in loss.lines] == ["a", "b"]
    assert loss.lines[0].get_ydata().tolist() == [3.0, 2.0]
    metric = plots.plot_curves({"a": HISTORY, "b": other}, "spearman").axes[0]
    assert metric.lines[1].get_xdata().tolist() == [1, 3] and metric.lines[1].get_ydata().tolist() == [0.1, 0.3]


def test_plot_loss_parts_draws_lambda_times_rtd():
    ax = plots.plot_loss_parts(HISTORY, lambda_rtd=0.005).axes[0]
    contrastive, rtd, weighted = (line.get_ydata().tolist() for line in ax.lines)
    assert contrastive == [2.9, 1.5] and rtd == [0.7, 0.6]
    assert weighted == pytest.approx([0.0035, 0.003])
    assert ax.get_yscale() == "log"


def test_plot_loss_parts_draws_rtds_base_rate_where_the_log_has_the_replaced_share():
    history = {"log": [{**r, "replaced": p} for r, p in zip(HISTORY["log"], (0.15, 0.5))]}
    base = plots.plot_loss_parts(history, lambda_rtd=0.005).axes[0].lines[3]
    h15 = -(0.15 * math.log(0.15) + 0.85 * math.log(0.85))  # 0.4227 nats
    assert base.get_ydata().tolist() == pytest.approx([h15, math.log(2)])
    assert "base rate" in base.get_label()


def test_length_histogram_counts_every_sentence_and_marks_the_median():
    texts = ["一二三", "一二三四五", "一二", "一二三四五六七"]
    ax = plots.plot_length_histogram(texts).axes[0]
    assert sum(p.get_height() for p in ax.patches) == 4
    assert ax.lines[0].get_xdata()[0] == pytest.approx(4.0)  # median of 3, 5, 2, 7


def test_cosine_distribution_one_histogram_per_group_with_its_mean():
    groups = {"pos": [0.9, 0.8, 0.7], "neg": np.array([0.1, -0.1])}
    ax = plots.plot_cosine_distribution(groups, bins=10).axes[0]
    assert len(ax.patches) == 20  # 10 bars per group
    assert [line.get_xdata()[0] for line in ax.lines] == pytest.approx([0.8, 0.0])
    assert "mean 0.80" in ax.get_legend().get_texts()[0].get_text()


def test_length_bias_draws_the_mean_cosine_per_length_difference():
    diffs = [0, 0, 1, 1, 3, 20]
    cosines = [0.9, 0.7, 0.6, 0.4, 0.2, 0.1]
    ax = plots.plot_length_bias(diffs, cosines, label="m", max_diff=5).axes[0]
    line = ax.lines[0]
    assert line.get_xdata().tolist() == [0, 1, 3, 5]  # 20 is grouped with max_diff
    assert line.get_ydata().tolist() == pytest.approx([0.8, 0.5, 0.2, 0.1])


def test_added_length_bars_are_fractions():
    ax = plots.plot_added_length([0, 1, 1, 2, 2, 2]).axes[0]
    assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == pytest.approx([0, 1, 2])
    assert [p.get_height() for p in ax.patches] == pytest.approx([1 / 6, 2 / 6, 3 / 6])


def test_queue_fill_and_capacity_line():
    ax = plots.plot_queue_fill([4, 8, 8], capacity=8).axes[0]
    assert ax.lines[0].get_ydata().tolist() == [4, 8, 8]
    assert list(ax.lines[1].get_ydata()) == [8, 8]


def test_alignment_uniformity_points_and_arrows():
    points = {"before": {"alignment": 0.1, "uniformity": -0.5}, "after": {"alignment": 0.3, "uniformity": -2.0}}
    ax = plots.plot_alignment_uniformity(points, arrows=[("before", "after")]).axes[0]
    offsets = [c.get_offsets()[0].tolist() for c in ax.collections if isinstance(c, PathCollection)]
    assert offsets == [[0.1, -0.5], [0.3, -2.0]]
    legend = ax.get_legend()  # names in a legend, not next to the points, where close points overlap
    assert [t.get_text() for t in legend.get_texts()] == ["before (0.100, -0.50)", "after (0.300, -2.00)"]
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside the data, on the right
    assert len([t for t in ax.texts if t.arrow_patch is not None]) == 1


def test_label_matrix_writes_every_value_with_sentence_ticks():
    labels = simcse_label_matrix(2)
    ticks = ["a1 蛋黄", "a2 蛋黄", "b1 蛋白", "b2 蛋白"]
    ax = plots.plot_label_matrix(labels, ticks).axes[0]
    written = [int(t.get_text()) for t in ax.texts]
    assert written == labels.flatten().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == ticks
    image = ax.images[0].get_array()
    assert image[0, 0].tolist() == pytest.approx([0.75] * 3)  # -100 on the diagonal: grey
    assert image[0, 1].tolist() == pytest.approx([0.55, 0.85, 0.55])  # the twin: green
    assert image[0, 2].tolist() == pytest.approx([1.0] * 3)  # a negative: white


def test_similarity_matrix_shows_the_values_the_queue_line_and_the_diagonal():
    matrix = torch.tensor([[0.9, 0.1, 0.2, 0.3, 0.4], [0.0, 0.8, 0.5, 0.6, 0.7]])
    fig = plots.plot_similarity_matrix(matrix, ["a", "b"], list("abcde"), separator=2, vmin=None, vmax=None)
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), matrix.numpy())
    assert [t.get_text() for t in ax.texts][:2] == ["0.90", "0.10"]
    assert [t.get_color() for t in ax.texts][:2] == ["black", "white"]  # readable on light and dark cells
    assert ax.lines[0].get_xdata()[0] == pytest.approx(1.5)  # between the batch and the queue
    assert len(ax.patches) == 2  # the two positives outlined
    assert len(fig.axes) == 2  # the colour bar


def playground_result(n, method="simcse"):
    texts = [f"第{k}个问题怎么办" for k in range(n)]
    views = [t[:2] + t[1] + t[2:] for t in texts] if method == "esimcse" else texts  # one repeated character
    return {"probs": torch.full((n, n), 1.0 / n), "texts": texts, "views": views, "loss": 1.0, "contrastive": 1.0,
            "rtd": None, "lambda_rtd": 0.005, "method": method}


def test_playground_figure_has_one_size_for_every_batch_size():
    sizes = {n: tuple(plots.plot_playground(playground_result(n)).get_size_inches()) for n in (4, 8, 16, 32)}
    assert len(set(sizes.values())) == 1 and sizes[4] == plots.PLAYGROUND_FIGSIZE
    small = plots.plot_playground(playground_result(4)).axes[0]
    large = plots.plot_playground(playground_result(32)).axes[0]
    assert len(small.texts) == 16 and not large.texts  # values written only while they fit
    assert large.get_yticklabels()[0].get_fontsize() < small.get_yticklabels()[0].get_fontsize()


def test_esimcse_playground_labels_columns_with_the_repeated_sentences():
    result = playground_result(3, method="esimcse")
    ax = plots.plot_playground(result).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [plots.short(v, 12) for v in result["views"]]
    assert [t.get_text() for t in ax.get_yticklabels()] == [plots.short(t, 8) for t in result["texts"]]
    assert ax.get_xticklabels()[0].get_text() != ax.get_yticklabels()[0].get_text()
    assert "repeated" in ax.get_xlabel()


def test_cosine_distribution_takes_another_score_range():
    ax = plots.plot_cosine_distribution({"label 1": [0.5, 0.7]}, xlim=(0, 1), xlabel="character overlap").axes[0]
    assert ax.get_xlim() == (0, 1) and ax.get_xlabel() == "character overlap"


def test_playground_figure_title_carries_the_loss_split():
    result = {"probs": torch.tensor([[0.7, 0.3], [0.4, 0.6]]), "texts": ["今天天气", "明天下雨"], "loss": 0.5,
              "contrastive": 0.45, "rtd": 10.0, "lambda_rtd": 0.005}
    ax = plots.plot_playground(result).axes[0]
    assert ax.get_title() == "loss 0.5000 = 0.4500 + 0.005·10.0000 (RTD)"
    assert np.allclose(ax.images[0].get_array(), [[0.7, 0.3], [0.4, 0.6]])


def test_html_tokens_highlights_and_escapes():
    out = tables.html_tokens(["今", "今", "<b>"], [False, True, False])
    assert out.count("<span") == 1 and "&lt;b&gt;" in out and out.startswith("今<span")
    with pytest.raises(ValueError, match="3 tokens but 2 marks"):
        tables.html_tokens(["a", "b", "c"], [True, False])


def test_html_table_and_token_grid():
    table = tables.html_table(["model", "score"], [("a&b", 0.123456)])
    assert "a&amp;b" in table and "0.1235" in table and table.count("<tr>") == 2
    grid = tables.html_token_grid(["original", "generated"], [["我", "喜", "欢"], ["我", "讨", "欢"]],
                                 [[False] * 3, [False, True, False]])
    assert grid.count("background-color") == 1 and grid.count("<tr>") == 2
    with pytest.raises(ValueError):
        tables.html_token_grid(["one"], [["a"], ["b"]])


def test_short_cuts_long_text():
    assert plots.short("蛋黄吃多了有什么坏处", 5) == "蛋黄吃多…"
    assert plots.short("短句", 5) == "短句"
    assert math.isclose(len(plots.short("x" * 20, 8)), 8)


def test_scores_table_prints_the_spearman_with_its_interval():
    results = {"untrained": {"spearman": -0.0187, "spearman_ci": (-0.071, 0.035), "best_f1": 0.6667,
                             "alignment": float("nan")}}
    table = tables.scores_table(results, ("spearman", "best_f1", "alignment"))
    assert "Spearman [95% CI]" in table and "-0.019 [-0.07, 0.04]" in table and "0.6667" in table
    assert "<td style='text-align:left'>-</td>" in table  # NaN (a baseline's alignment) as "-"


def test_groups_table_one_row_per_group_each_model_side_by_side():
    group = {"n": 2, "spearman": float("nan"), "spearman_ci": (float("nan"),) * 2, "mean_cosine": 0.8123}
    results = {"a": {"groups": {"near_miss": group}},
               "b": {"groups": {"near_miss": {**group, "mean_cosine": 0.5}, "paraphrase": {
                   "n": 5, "spearman": 0.3, "spearman_ci": (0.1, 0.5), "mean_cosine": 0.7}}},
               "c": {}}
    table = tables.groups_table(results)
    assert table.count("<tr>") == 3 and "a: mean score" in table and "c: mean score" not in table
    assert "0.812" in table and "0.300 [0.10, 0.50]" in table and "a: Spearman" in table
    single = tables.groups_table({"a": results["a"]})  # no group with both labels: no Spearman columns
    assert "Spearman" not in single and "0.812" in single
    assert tables.groups_table({"c": {}}) == ""


def test_curves_can_band_only_the_last_run():
    run = {"eval": [{"step": s, "spearman": 0.3, "spearman_ci": (0.2, 0.4)} for s in (1, 2, 3)]}
    runs = {"#1": run, "#2": run, "#3": run}
    every = plots.plot_curves(runs, "spearman").axes[0]
    last = plots.plot_curves(runs, "spearman", bands="last").axes[0]
    assert len([c for c in every.collections if isinstance(c, PolyCollection)]) == 3
    assert len([c for c in last.collections if isinstance(c, PolyCollection)]) == 1
    assert "last run" in last.get_title()
    with pytest.raises(ValueError, match="bands"):
        plots.plot_curves(runs, "spearman", bands="some")


def test_pca_2d_finds_the_two_directions_of_a_flat_cloud_and_their_shares():
    rng = np.random.default_rng(0)
    base = np.zeros((200, 5))
    base[:, 0] = 10.0  # a shared direction: the cloud sits far from the origin (anisotropy)
    base[:, 1] = rng.normal(0, 2.0, 200)  # the spread lies in two directions, the first larger
    base[:, 2] = rng.normal(0, 1.0, 200)
    coords, share = plots.pca_2d(base)
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    assert coords.shape == (200, 2) and share[0] > share[1] > 0 and share.sum() <= 1 + 1e-9
    assert math.isclose(share.sum(), 1.0, abs_tol=0.02)  # almost all variance in the 2 directions drawn
    centred = unit - unit.mean(axis=0)
    assert math.isclose(np.var(coords[:, 0]) * 200, share[0] * np.sum(centred ** 2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        plots.pca_2d(np.ones(5))


def test_singular_spectrum_is_steep_for_a_shared_direction_and_flat_for_orthogonal_rows():
    flat = plots.singular_spectrum(np.eye(4) * 3.0)  # orthogonal rows: every direction the same
    assert np.allclose(flat, 1.0)
    rng = np.random.default_rng(1)
    cone = np.ones((50, 8)) + rng.normal(0, 0.05, (50, 8))  # every row near one direction
    steep = plots.singular_spectrum(cone)
    assert steep[0] == 1.0 and steep[1] < 0.1 and np.all(np.diff(steep) <= 1e-12)


def test_embedding_projection_one_scatter_per_group_in_the_given_order():
    rng = np.random.default_rng(2)
    embeddings = rng.normal(0, 1, (30, 6))
    groups = ["near_miss"] * 10 + ["paraphrase"] * 20
    ax = plots.plot_embedding_projection(embeddings, groups, order=["paraphrase", "near_miss"]).axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(c.get_offsets()) for c in scatters] == [20, 10]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["paraphrase (20)", "near_miss (10)"]
    assert "of the variance" in ax.get_xlabel()
    with pytest.raises(ValueError, match="one per row"):
        plots.plot_embedding_projection(embeddings, groups[:5])


def test_singular_spectrum_plot_one_line_per_model_on_a_log_axis():
    rng = np.random.default_rng(3)
    models = {"untrained": np.ones((20, 4)) + rng.normal(0, 0.01, (20, 4)), "trained": rng.normal(0, 1, (20, 4))}
    ax = plots.plot_singular_spectrum(models).axes[0]
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    assert np.allclose(ax.get_lines()[1].get_ydata(), plots.singular_spectrum(models["trained"]))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "untrained (top direction 100%)" and legend[1].startswith("trained (top direction")
