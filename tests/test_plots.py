"""The figures of cse_helpers.plots: each is checked on the data it draws."""

import io
import math
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from cse_helpers import plots  # noqa: E402
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
    assert {t.get_text() for t in ax.texts} >= {"before", "after"}


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


def test_playground_figure_title_carries_the_loss_split():
    result = {"probs": torch.tensor([[0.7, 0.3], [0.4, 0.6]]), "texts": ["今天天气", "明天下雨"], "loss": 0.5,
              "contrastive": 0.45, "rtd": 10.0, "lambda_rtd": 0.005}
    ax = plots.plot_playground(result).axes[0]
    assert ax.get_title() == "loss 0.5000 = 0.4500 + 0.005·10.0000 (RTD)"
    assert np.allclose(ax.images[0].get_array(), [[0.7, 0.3], [0.4, 0.6]])


def test_html_tokens_highlights_and_escapes():
    out = plots.html_tokens(["今", "今", "<b>"], [False, True, False])
    assert out.count("<span") == 1 and "&lt;b&gt;" in out and out.startswith("今<span")
    with pytest.raises(ValueError, match="3 tokens but 2 marks"):
        plots.html_tokens(["a", "b", "c"], [True, False])


def test_html_table_and_token_grid():
    table = plots.html_table(["model", "score"], [("a&b", 0.123456)])
    assert "a&amp;b" in table and "0.1235" in table and table.count("<tr>") == 2
    grid = plots.html_token_grid(["original", "generated"], [["我", "喜", "欢"], ["我", "讨", "欢"]],
                                 [[False] * 3, [False, True, False]])
    assert grid.count("background-color") == 1 and grid.count("<tr>") == 2
    with pytest.raises(ValueError):
        plots.html_token_grid(["one"], [["a"], ["b"]])


def test_chinese_labels_never_fail_and_missing_glyph_warnings_are_silenced():
    name = plots.use_cjk_font()
    assert name is None or name in plots.CJK_FONTS
    saved = dict(matplotlib.rcParams)
    try:
        matplotlib.rcParams["font.family"] = "DejaVu Sans"  # a font without Chinese glyphs
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every warning is recorded...
            plots.silence_missing_glyph_warnings()  # ...except the glyph ones
            fig = plots.plot_length_histogram(["蛋黄吃多了有什么坏处"], title="句子长度")
            fig.savefig(io.BytesIO(), format="png")
        assert not [w for w in caught if "missing from" in str(w.message)]
    finally:
        matplotlib.rcParams.update(saved)


def test_find_cjk_font_picks_the_first_known_family(monkeypatch):
    from matplotlib import font_manager

    class Entry:
        def __init__(self, name):
            self.name = name

    monkeypatch.setattr(font_manager.fontManager, "ttflist", [Entry("DejaVu Sans"), Entry("SimHei"),
                                                              Entry("WenQuanYi Micro Hei")])
    assert plots.find_cjk_font() == "WenQuanYi Micro Hei"  # earlier in CJK_FONTS than SimHei
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [Entry("DejaVu Sans")])
    assert plots.find_cjk_font() is None


def test_short_cuts_long_text():
    assert plots.short("蛋黄吃多了有什么坏处", 5) == "蛋黄吃多…"
    assert plots.short("短句", 5) == "短句"
    assert math.isclose(len(plots.short("x" * 20, 8)), 8)
