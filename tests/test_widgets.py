"""The widget callbacks, called directly, and the UIs driven by setting widget values."""

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cse_helpers import course  # noqa: E402
from cse_helpers.classroom import knobs, plots, widgets  # noqa: E402
from cse_helpers.constants import REPO_ROOT  # noqa: E402
from cse_helpers.data import read_pairs, read_train_texts  # noqa: E402
from cse_helpers.encoder import SentenceEncoder  # noqa: E402
from cse_helpers.evaluate import bootstrap_spearman_difference, spearman_rows  # noqa: E402
from cse_helpers.objectives import DiffCSE  # noqa: E402
from cse_helpers.tools.tiny import build_tiny_model  # noqa: E402

ROOT = REPO_ROOT
TEXTS = list(read_train_texts(os.path.join(ROOT, "data", "train.txt")))
PAIRS = read_pairs(os.path.join(ROOT, "data", "dev.tsv"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    corpus = TEXTS + [s for a, b, _ in PAIRS for s in (a, b)]
    return build_tiny_model(str(tmp_path_factory.mktemp("widgets-tiny")), corpus, hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64)


@pytest.fixture(scope="module")
def encoder(model_dir):
    torch.manual_seed(0)
    return SentenceEncoder.from_pretrained(model_dir, dropout=0.1, max_seq_len=48).eval()


@pytest.fixture(scope="module")
def diffcse(model_dir, encoder):
    from transformers import AutoModel, AutoModelForMaskedLM

    return DiffCSE(encoder, AutoModelForMaskedLM.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir),
                   seed=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def dropout_values(module):
    return [m.p for m in module.modules() if isinstance(m, nn.Dropout)]


# ---- batch_loss ---------------------------------------------------------------------------------

def test_batch_loss_is_the_cross_entropy_of_its_logits(encoder):
    result = widgets.batch_loss(encoder, TEXTS, temperature=0.05, margin=0.2, batch_size=6)
    logits, cosines = result["logits"], result["cosines"]
    assert logits.shape == (6, 6) and result["texts"] == TEXTS[:6]
    expected = (cosines - 0.2 * torch.eye(6)) / 0.05  # margin on the positives, then / temperature
    assert torch.allclose(logits, expected, atol=1e-4)
    assert result["loss"] == pytest.approx(float(F.cross_entropy(logits, torch.arange(6))), rel=1e-5)
    assert torch.allclose(result["probs"].sum(dim=1), torch.ones(6))


def test_batch_loss_is_repeatable_and_each_knob_changes_it(encoder):
    base = dict(batch_size=6, temperature=0.05, margin=0.0, dropout=0.1)
    loss = widgets.batch_loss(encoder, TEXTS, **base)["loss"]
    assert widgets.batch_loss(encoder, TEXTS, **base)["loss"] == loss  # seeded: same knobs, same loss
    for knob, value in (("temperature", 0.5), ("margin", 0.3), ("batch_size", 10), ("dropout", 0.3)):
        assert widgets.batch_loss(encoder, TEXTS, **{**base, knob: value})["loss"] != pytest.approx(loss), knob
    # one more negative per row: with near-uniform probabilities the loss grows like log B
    flat = widgets.batch_loss(encoder, TEXTS, **{**base, "temperature": 1.0, "batch_size": 10})
    assert flat["loss"] == pytest.approx(math.log(10), abs=0.1)


def test_dropout_zero_makes_the_two_views_identical(encoder):
    same = widgets.batch_loss(encoder, TEXTS, batch_size=5, dropout=0.0)
    assert torch.allclose(torch.diagonal(same["cosines"]), torch.ones(5), atol=1e-5)
    noisy = widgets.batch_loss(encoder, TEXTS, batch_size=5, dropout=0.3)
    assert float(torch.diagonal(noisy["cosines"]).max()) < 1 - 1e-5


def test_batch_loss_restores_the_encoders_dropout_and_mode(encoder):
    before = dropout_values(encoder)
    encoder.eval()
    widgets.batch_loss(encoder, TEXTS, batch_size=4, dropout=0.4)
    assert dropout_values(encoder) == before and not encoder.training


def test_esimcse_views_repeat_tokens_of_the_originals(encoder):
    result = widgets.batch_loss(encoder, TEXTS, method="esimcse", batch_size=8, dup_rate=0.5)
    lengths = [(len(v), len(t)) for v, t in zip(result["views"], result["texts"])]
    assert all(v >= t for v, t in lengths) and any(v > t for v, t in lengths)
    for view, text in zip(result["views"], result["texts"]):  # removing the repeats gives the sentence back
        it = iter(view)
        assert all(ch in it for ch in text.lower())
    simcse = widgets.batch_loss(encoder, TEXTS, method="simcse", batch_size=8)
    assert simcse["views"] == [t.lower() for t in simcse["texts"]]


def test_diffcse_total_is_contrastive_plus_lambda_rtd(encoder, diffcse):
    small = widgets.batch_loss(encoder, TEXTS, method="diffcse", objective=diffcse, batch_size=6, lambda_rtd=0.005)
    large = widgets.batch_loss(encoder, TEXTS, method="diffcse", objective=diffcse, batch_size=6, lambda_rtd=0.5)
    assert small["rtd"] == pytest.approx(large["rtd"]) and 0.05 < small["rtd"] < 5
    assert small["loss"] == pytest.approx(small["contrastive"] + 0.005 * small["rtd"])
    assert large["loss"] - small["loss"] == pytest.approx(0.495 * small["rtd"], rel=1e-4)
    with pytest.raises(ValueError, match="objective"):
        widgets.batch_loss(encoder, TEXTS, method="diffcse")


def test_repeatable_masking_restarts_the_draws_and_restores_the_generator(diffcse):
    generator = diffcse.mask_generator(torch.device("cpu"))
    state = generator.get_state()
    with knobs.repeatable_masking(diffcse, torch.device("cpu"), seed=5):
        first = torch.rand(4, generator=generator)
    with knobs.repeatable_masking(diffcse, torch.device("cpu"), seed=5):
        second = torch.rand(4, generator=generator)
    assert torch.equal(first, second)
    assert torch.equal(generator.get_state(), state)  # the training run's draws are not disturbed


def test_batch_loss_rejects_bad_input(encoder):
    with pytest.raises(ValueError, match="at least 2"):
        widgets.batch_loss(encoder, TEXTS, batch_size=1)
    with pytest.raises(ValueError, match="distinct"):
        widgets.batch_loss(encoder, ["同一句"] * 5, batch_size=4)
    with pytest.raises(ValueError, match="method"):
        widgets.batch_loss(encoder, TEXTS, method="bert")


# ---- the loss playground ---------------------------------------------------------------------------

def test_playground_recomputes_when_a_slider_moves(encoder):
    ui = widgets.LossPlayground(encoder, TEXTS, method="simcse", defaults={"batch_size": 6})
    first = ui.result["loss"]
    assert ui.error is None and ui.figure is not None and len(ui.results) == 1
    ui.sliders["temperature"].value = 1.0
    assert len(ui.results) == 2 and ui.results[-1]["temperature"] == pytest.approx(1.0)
    assert ui.result["loss"] != pytest.approx(first)
    assert ui.result["loss"] == pytest.approx(math.log(6), abs=0.1)  # near-uniform softmax at tau = 1
    ui.sliders["batch_size"].value = 9
    assert ui.result["probs"].shape == (9, 9)
    assert "loss" in ui.figure.axes[0].get_title() and f"{ui.result['loss']:.4f}" in ui.readout.value


def test_playground_figure_keeps_its_size_when_the_batch_grows(encoder):
    ui = widgets.LossPlayground(encoder, TEXTS, method="esimcse", defaults={"batch_size": 4, "dup_rate": 0.6})
    small = tuple(ui.figure.get_size_inches())
    columns = [t.get_text() for t in ui.figure.axes[0].get_xticklabels()]
    assert columns == [plots.short(v, 12) for v in ui.result["views"]]  # the repeated sentences
    ui.sliders["batch_size"].value = 16
    assert ui.result["probs"].shape == (16, 16)
    assert tuple(ui.figure.get_size_inches()) == small == plots.PLAYGROUND_FIGSIZE


def test_playground_has_the_methods_own_knobs(encoder, diffcse):
    esim = widgets.LossPlayground(encoder, TEXTS, method="esimcse", draw=False)
    assert "dup_rate" in esim.sliders and "lambda_rtd" not in esim.sliders
    diff = widgets.LossPlayground(encoder, TEXTS, method="diffcse", objective=diffcse, draw=False)
    before = diff.result
    diff.sliders["lambda_rtd"].value = 0.5
    assert diff.result["loss"] - before["loss"] == pytest.approx((0.5 - before["lambda_rtd"]) * before["rtd"],
                                                                 rel=1e-3)


def test_displaying_a_playground_leaves_a_static_picture_of_its_default_figure(encoder, monkeypatch):
    """A widget lives only in a running kernel: the playground's figure at the default knobs is also
    displayed as a plain image/png output, which every copy read without a kernel shows."""
    import base64

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() publishes through a shell; capture_output() records it
    ui = widgets.LossPlayground(encoder, TEXTS, method="simcse", defaults={"batch_size": 6})
    at_defaults = widgets.figure_png(plots.plot_playground(widgets.batch_loss(encoder, TEXTS, batch_size=6)))
    ui.sliders["temperature"].value = 0.5  # a cell moves a knob before the display: the picture keeps the defaults
    with capture_output() as shown:
        display(ui)
    widget, picture = shown.outputs
    assert "application/vnd.jupyter.widget-view+json" in widget.data and "image/png" not in widget.data
    assert set(picture.data) == {"image/png", "text/plain"}
    assert picture.metadata == {widgets.STATIC_COPY: "LossPlayground"} and picture.transient["display_id"]
    png = base64.b64decode(picture.data["image/png"])
    assert png == ui.default_png == at_defaults and png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the PNG header
    dpi = matplotlib.rcParams["figure.dpi"]
    assert 0.7 * plots.PLAYGROUND_FIGSIZE[0] * dpi < width <= 1.05 * plots.PLAYGROUND_FIGSIZE[0] * dpi
    assert 0.7 * plots.PLAYGROUND_FIGSIZE[1] * dpi < height <= 1.05 * plots.PLAYGROUND_FIGSIZE[1] * dpi
    # a cell that moves a slider leaves the picture; a reader moving one in a live notebook hides it (the live
    # figure above follows the sliders), once
    with capture_output() as moved:
        ui.sliders["margin"].value = 0.1
    assert not [o for o in moved.outputs if o.update] and ui.static_copy is not None
    assert widgets.moved_by_the_reader() is False  # no kernel here: a change comes from code
    monkeypatch.setattr(widgets, "moved_by_the_reader", lambda: True)
    with capture_output() as moved:
        ui.sliders["margin"].value = 0.2
    updates = [o for o in moved.outputs if o.update]
    assert len(updates) == 1 and updates[0].data == {"text/plain": widgets.STATIC_COPY_HIDDEN}
    assert updates[0].transient["display_id"] == picture.transient["display_id"] and ui.static_copy is None
    assert ui.result["loss"] == ui.results[-1]["loss"] and ui.results[-1]["margin"] == pytest.approx(0.2)


def test_a_slider_moved_by_the_reader_is_a_comm_message_from_the_front_end(monkeypatch):
    import IPython

    class Kernel:  # what ipykernel's get_parent() returns: the message being handled
        parent = {"header": {"msg_type": "comm_msg"}}

        def get_parent(self):
            return self.parent

    shell = type("Shell", (), {"kernel": Kernel()})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert widgets.moved_by_the_reader() is True  # a widget's message from JupyterLab
    shell.kernel.parent = {"header": {"msg_type": "execute_request"}}
    assert widgets.moved_by_the_reader() is False  # a cell sets slider.value
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert widgets.moved_by_the_reader() is False  # plain Python


def test_playground_shows_a_callback_error_instead_of_losing_it(encoder):
    ui = widgets.LossPlayground(encoder, ["只有一句"] * 3, draw=False)
    assert ui.result is None and "distinct" in ui.error


# ---- the training comparer ------------------------------------------------------------------------

def fake_course(**settings):
    return course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=0, model="none",
                         model_description="", settings={**course.MODE_SETTINGS["quick"], **settings})


def fake_train_fn(calls):
    def train_fn(**knobs):
        calls.append(knobs)
        k = len(calls)
        return {"log": [{"step": s, "loss": 3.0 / (s * k)} for s in (1, 2, 3)],
                "eval": [{"step": s, "spearman": 0.1 * k + 0.01 * s, "spearman_ci": (0.1 * k - 0.05, 0.1 * k + 0.08)}
                         for s in (1, 2, 3)]}
    return train_fn


def test_comparer_passes_the_slider_values_and_overlays_each_run():
    calls = []
    reference = {"log": [{"step": 1, "loss": 4.0}], "eval": [{"step": 1, "spearman": 0.0}]}
    ui = widgets.TrainingComparer(fake_course(), "esimcse", runs={"notebook run": reference},
                                  train_fn=fake_train_fn(calls))
    ui.sliders["dup_rate"].value = 0.6
    ui.sliders["steps"].value = 3
    ui.button.click()
    assert ui.error is None
    assert calls[0]["dup_rate"] == pytest.approx(0.6) and calls[0]["steps"] == 3 and calls[0]["seed"] == 0
    ui.sliders["temperature"].value = 0.5
    ui.run()
    assert calls[1]["temperature"] == pytest.approx(0.5, rel=0.01)
    names = list(ui.runs)
    assert len(ui.runs) == 3 and names[1] == "#2 dup_rate=0.6 steps=3 seed=0"  # what differs from the defaults
    assert names[2].startswith("#3 temperature=0.5") and names[2].endswith("seed=0")
    loss_ax, metric_ax = ui.figure.axes
    assert len(loss_ax.lines) == 3 and loss_ax.get_legend() is None  # one legend, beside the Spearman panel
    assert loss_ax.lines[2].get_ydata().tolist() == pytest.approx([1.5, 0.75, 0.5])
    run3 = [line for line in metric_ax.lines if line.get_label() == names[2]][0]
    assert run3.get_ydata().tolist() == pytest.approx([0.21, 0.22, 0.23])  # a curve, not a dot
    assert [t.get_text() for t in metric_ax.get_legend().get_texts()] == names


def test_comparer_status_and_run_table_follow_the_clicks():
    calls = []
    ui = widgets.TrainingComparer(fake_course(), "simcse", train_fn=fake_train_fn(calls), draw=False,
                                  baseline={"spearman": -0.02, "spearman_ci": (-0.1, 0.06)})
    assert ui.status.value.startswith("No run yet") and "done" not in ui.status.value and ui.table.value == ""
    ui.button.click()
    assert ui.error is None and ui.status.value.startswith("Run #1 trained in")
    assert "0.130 [0.05, 0.18]" in ui.status.value  # its final score, with the interval
    assert ui.table.value.count("<tr>") == 2 and "0.130 [0.05, 0.18]" in ui.table.value
    ui.sliders["seed"].value = 1
    ui.button.click()
    assert ui.status.value.startswith("Run #2 trained in") and ui.table.value.count("<tr>") == 3
    assert calls[1]["seed"] == 1 and ui.table.value.count("<td style='text-align:left'>1</td>") == 1
    # the same knobs with two seeds: one colour, so their spread reads as the noise
    metric_ax = ui.figure.axes[1]
    colours = {line.get_label(): line.get_color() for line in metric_ax.lines if line.get_label().startswith("#")}
    assert len(colours) == 2 and len(set(colours.values())) == 1
    baseline = [line for line in metric_ax.lines if line.get_linestyle() == "--"]
    assert baseline and baseline[0].get_ydata()[0] == pytest.approx(-0.02)
    ui.sliders["temperature"].value = 0.5
    ui.button.click()
    colours = {line.get_label(): line.get_color() for line in ui.figure.axes[1].lines
               if line.get_label().startswith("#")}
    assert len(set(colours.values())) == 2


def test_comparer_shows_a_training_error():
    def broken(**knobs):
        raise FloatingPointError("the loss became NaN")

    ui = widgets.TrainingComparer(fake_course(), "simcse", train_fn=broken, draw=False)
    ui.button.click()
    assert "NaN" in ui.error and not ui.runs


def test_short_training_really_trains(model_dir, tmp_path):
    c = fake_course(dropout=0.1, compare_steps=3, compare_batch=8, eval_batch_size=64)
    c.model, c.runs_dir = model_dir, str(tmp_path)
    c._data = {"train": TEXTS[:64], "dev": PAIRS[:40], "source": "a slice of the sample"}  # small: fast
    history = widgets.short_training(c, "simcse", temperature=0.1, learning_rate=1e-3)
    assert [r["step"] for r in history["eval"]] == [1, 2, 3]  # scored at least 3 times: a curve
    assert all(len(r["spearman_ci"]) == 2 for r in history["eval"])
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in history["log"])
    assert -1 <= history["eval"][0]["spearman"] <= 1


# ---- the search box and live curves ----------------------------------------------------------------------------

def test_search_box_updates_when_the_query_changes(encoder):
    corpus = TEXTS[:40]
    ui = widgets.SearchBox(encoder, corpus, query=corpus[0], k=2)
    assert ui.hits[0][1] == corpus[0] and len(ui.hits) == 2
    ui.query.value = corpus[5]
    assert ui.hits[0][1] == corpus[5]
    ui.k.value = 4
    assert len(ui.hits) == 4 and ui.error is None


def test_live_plot_collects_records_and_redraws():
    live = widgets.LivePlot(min_interval=0.0, display=False)
    for step, loss in ((1, 3.0), (2, 2.5)):
        live.on_log({"step": step, "loss": loss})
    live.on_evaluate({"step": 2, "spearman": 0.3})
    assert [r["loss"] for r in live.history["log"]] == [3.0, 2.5]
    loss_ax, metric_ax = live.figure.axes
    assert loss_ax.lines[0].get_ydata().tolist() == [3.0, 2.5]
    assert metric_ax.lines[0].get_ydata().tolist() == [0.3]


def test_comparer_runs_are_scored_on_one_fixed_sample_in_quick_mode(model_dir, tmp_path, monkeypatch):
    c = fake_course(dropout=0.1, compare_steps=2, compare_batch=8, eval_batch_size=64)
    c.model, c.runs_dir = model_dir, str(tmp_path)
    c._data = {"train": TEXTS[:64], "dev": PAIRS[:60], "source": "a slice of the sample"}
    monkeypatch.setattr(knobs, "QUICK_COMPARE_PAIRS", 25)
    sample = widgets.compare_dev_pairs(c)
    assert len(sample) == 25 and sample == widgets.compare_dev_pairs(c)  # the same pairs every time
    assert set(sample) <= set(PAIRS[:60]) and sample != PAIRS[:25]  # a random sample, not the file's head
    assert widgets.compare_dev_pairs(c, n=100) == PAIRS[:60]
    c.mode = "full"
    assert widgets.compare_dev_pairs(c) == PAIRS[:60]  # full mode: every pair
    c.mode = "quick"
    ui = widgets.TrainingComparer(c, "simcse", baseline=True, draw=False)
    assert ui.dev_pairs == sample and ui.baseline["n_pairs"] == 25  # the untrained model, on the same pairs
    ui.run()
    history = ui.runs[list(ui.runs)[0]]
    assert ui.error is None and [r["n_pairs"] for r in history["eval"]] == [25, 25]
    # the cosines it keeps for paired comparisons are those of the final model on the same 25 pairs
    from scipy.stats import spearmanr

    assert len(history["final_scores"]) == 25
    assert spearmanr(history["final_scores"], [p[2] for p in sample])[0] == pytest.approx(
        history["eval"][-1]["spearman"], abs=1e-6)



# ---- the comparer's summary: the course's one rule for "beyond the noise" -------------------------------

DEV = PAIRS[:200]
LABELS = np.array([float(p[2]) for p in DEV])
NOISE, OTHER = np.random.default_rng(0).normal(size=len(DEV)), np.random.default_rng(1).normal(size=len(DEV))
WEAK, STRONG = LABELS + 2.0 * NOISE, LABELS + 1.2 * NOISE  # Spearman 0.273 and 0.423 on these pairs


def summarised(runs, dev_pairs=DEV):
    """A comparer that ran ``runs``: (temperature, seed, result) each, a result being ``(spearman, half-width)``
    or the run's cosine for each of ``dev_pairs`` (then scored for real, like a trained run); its summary."""
    from cse_helpers.evaluate import bootstrap_spearman

    labels = np.array([float(p[2]) for p in dev_pairs])
    results = iter(result for _, _, result in runs)

    def train_fn(**knobs):
        result = next(results)
        if isinstance(result, tuple):
            value, half = result
            return {"log": [{"step": 1, "loss": 1.0}],
                    "eval": [{"step": 1, "spearman": value, "spearman_ci": (value - half, value + half)}]}
        value = float(spearman_rows(result[None], labels[None])[0])
        return {"log": [{"step": 1, "loss": 1.0}], "final_scores": result.tolist(),
                "eval": [{"step": 1, "spearman": value, "spearman_ci": bootstrap_spearman(result, labels)}]}

    ui = widgets.TrainingComparer(fake_course(), "simcse", train_fn=train_fn, draw=False)
    ui._dev_pairs = list(dev_pairs)
    for temperature, seed, _ in runs:
        ui.sliders["temperature"].value = temperature
        ui.sliders["seed"].value = seed
        ui.run()
    assert ui.error is None
    return ui, ui.summary()


def rho(scores):
    return float(spearman_rows(scores[None], LABELS[None])[0])


def test_comparer_summary_says_each_settings_mean_over_its_seeds():
    ui, text = summarised([(0.05, 0, (0.10, 0.01)), (0.05, 1, (0.16, 0.01)), (0.5, 0, (0.14, 0.01)),
                           (0.5, 1, (0.15, 0.01))])
    assert ui.seed_spread() == pytest.approx(0.06)  # the larger of the two settings' spreads (0.06, 0.01)
    lines = text.split("\n")
    assert lines[0] == "the default knobs: final dev Spearman 0.130 (mean of 2 seeds, which differ by 0.060)"
    assert lines[1] == "temperature=0.5: final dev Spearman 0.145 (mean of 2 seeds, which differ by 0.010)"
    # best (0.145) vs worst (0.130), seed 0 of each: 0.14 vs 0.10, intervals apart, but seeds spread over 0.06
    assert lines[2] == ("Best vs worst: temperature=0.5 (2 seeds) vs temperature=0.05 (2 seeds), seed 0 of each: "
                        "difference +0.040, their 95% intervals do not overlap, seeds of one setting spread over "
                        "0.060: within the noise: these runs do not tell the two settings apart.")
    assert widgets.TrainingComparer(fake_course(), "simcse", draw=False).summary() == "No run has been scored yet."
    assert summarised([(0.05, 0, (0.3, 0.1))])[1] == "the default knobs: final dev Spearman 0.300 (one seed)"


def test_comparer_summary_without_pair_scores_the_intervals_and_the_seeds_decide():
    # seeds agree (0.001) and the intervals of +-0.01 are apart: a difference of 0.06 counts
    _, text = summarised([(0.05, 0, (0.30, 0.01)), (0.05, 1, (0.301, 0.01)), (0.5, 0, (0.36, 0.01))])
    assert text.endswith("Best vs worst: temperature=0.5 (1 seed) vs temperature=0.05 (2 seeds), seed 0 of each: "
                         "difference +0.060, their 95% intervals do not overlap, seeds of one setting spread over "
                         "0.001: temperature=0.5 (1 seed) higher beyond the noise.")
    # the same numbers with intervals of +-0.1: they overlap, so the dev pairs cannot tell
    _, text = summarised([(0.05, 0, (0.30, 0.1)), (0.05, 1, (0.301, 0.1)), (0.5, 0, (0.36, 0.1))])
    assert text.endswith("difference +0.060, their 95% intervals overlap, seeds of one setting spread over 0.001: "
                         "within the noise: these runs do not tell the two settings apart.")
    # the lower setting is the best one here: the sentence names the higher
    _, text = summarised([(0.05, 0, (0.36, 0.01)), (0.05, 1, (0.361, 0.01)), (0.5, 0, (0.30, 0.01))])
    assert text.endswith("Best vs worst: temperature=0.05 (2 seeds) vs temperature=0.5 (1 seed), seed 0 of each: "
                         "difference +0.060, their 95% intervals do not overlap, seeds of one setting spread over "
                         "0.001: temperature=0.05 (2 seeds) higher beyond the noise.")


def test_comparer_summary_pairs_the_same_seed_runs_on_the_same_dev_pairs():
    """Scored on the same pairs with the same seed, the paired interval decides on the dev pairs' side; the
    spread of the seeds of one setting decides on the seeds' side."""
    low, high = bootstrap_spearman_difference(WEAK, STRONG, LABELS)
    diff = rho(STRONG) - rho(WEAK)
    assert low > 0 and diff == pytest.approx(0.150, abs=1e-3)
    # the default knobs' second seed lands 0.0002 away: the 0.150 gain is beyond both noises
    weak_seed1 = WEAK + 0.01 * NOISE**2
    ui, text = summarised([(0.05, 0, WEAK), (0.05, 1, weak_seed1), (0.5, 0, STRONG)])
    spread = abs(rho(weak_seed1) - rho(WEAK))
    assert ui.seed_spread() == pytest.approx(spread) and spread < 0.001
    assert text.endswith(f"Best vs worst: temperature=0.5 (1 seed) vs temperature=0.05 (2 seeds), seed 0 of each: "
                         f"difference {diff:+.3f}, paired 95% interval [{low:+.3f}, {high:+.3f}] on the same dev "
                         f"pairs, seeds of one setting spread over {spread:.3f}: temperature=0.5 (1 seed) higher "
                         "beyond the noise.")
    # the same paired difference, but the second seed lands 0.188 away: larger than the gain, within the noise
    other_seed = LABELS + 1.0 * OTHER
    ui, text = summarised([(0.05, 0, WEAK), (0.05, 1, other_seed), (0.5, 0, STRONG)])
    assert ui.seed_spread() == pytest.approx(rho(other_seed) - rho(WEAK)) and ui.seed_spread() > diff
    assert f"paired 95% interval [{low:+.3f}, {high:+.3f}] on the same dev pairs" in text
    assert text.endswith(f"seeds of one setting spread over {ui.seed_spread():.3f}: within the noise: these runs "
                         "do not tell the two settings apart.")


def test_comparer_summary_says_when_the_seed_noise_is_not_measured():
    low, high = bootstrap_spearman_difference(WEAK, STRONG, LABELS)
    ui, text = summarised([(0.05, 0, WEAK), (0.5, 0, STRONG)])
    assert ui.seed_spread() is None
    assert text.endswith(f"paired 95% interval [{low:+.3f}, {high:+.3f}] on the same dev pairs, no setting has two "
                         "seeds, so the seed noise is not measured: temperature=0.5 (1 seed) higher beyond the noise.")
    # runs with no seed in common are compared on their own intervals
    _, text = summarised([(0.05, 0, (0.30, 0.1)), (0.5, 1, (0.36, 0.1))])
    assert ", runs with different seeds: difference +0.060, their 95% intervals overlap, no setting has two seeds" \
        in text and text.endswith("within the noise: these runs do not tell the two settings apart.")
