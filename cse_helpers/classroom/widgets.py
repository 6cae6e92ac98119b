"""The course's interactive pieces: thin ipywidgets UIs around plain functions that compute.

ipywidgets swallows exceptions raised inside callbacks (a notebook run would not notice them), so
everything that computes is a plain function of :mod:`cse_helpers.classroom.knobs`, tested directly:
:func:`batch_loss` (the loss of one real batch for given knobs, computed by the method's objective) and
:func:`short_training` (a short training run with given knobs; returns its history).

The UIs (:class:`LossPlayground`, :class:`TrainingComparer`, :class:`SearchBox`, :class:`LivePlot`)
only wire core ipywidgets (sliders, a button, an ``Output``) to those functions and draw with
inline matplotlib; a UI shows a callback's error in its output and keeps it in ``.error``. Tests
build them, set ``slider.value`` and read ``.result`` / ``.runs``. Which knobs a method has, the
objective says (:attr:`~cse_helpers.objectives.Objective.method_settings`); their defaults are the
papers' values (:mod:`cse_helpers.defaults`).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence

from ..defaults import paper
from ..inference import semantic_search
from ..objectives import objective_class
from . import plots, tables
from .knobs import (
    QUICK_COMPARE_PAIRS,
    batch_loss,
    compare_dev_pairs,
    comparison_summary,
    final_score,
    knob_text,
    playground_objective,
    short_training,
)

# ------------------------------------------------------------------------------------------------
# The UIs
# ------------------------------------------------------------------------------------------------

#: The metadata key that marks a widget's static picture among a cell's outputs (``{STATIC_COPY: "LossPlayground"}``):
#: what a copy read without a kernel (the site, GitHub) shows, since a widget lives only in a running kernel.
STATIC_COPY = "cse_static_copy"
#: What the static picture turns into once the reader moves a slider in a running notebook (the live figure is above).
STATIC_COPY_HIDDEN = ("(The static picture of the figure at the default knobs, kept for copies of this notebook read "
                      "without a kernel, is hidden while the sliders are live: the figure above follows them.)")


def figure_png(figure) -> bytes:
    """``figure`` as PNG bytes, drawn as the notebook's inline backend draws it (``bbox_inches="tight"``)."""
    from IPython.core.pylabtools import print_figure

    return print_figure(figure, "png", bbox_inches="tight")


def static_picture_bundle(png: bytes, name: str) -> dict:
    """The display data of a widget's static picture: the PNG (base64) and a text fallback."""
    import base64

    return {"image/png": base64.b64encode(png).decode("ascii"),
            "text/plain": f"<the {name}'s figure at its default knobs, as a static picture>"}


def moved_by_the_reader() -> bool:
    """True while the kernel handles a message from the front end (a slider moved in JupyterLab or Colab),
    False while it runs a cell (a cell that sets ``slider.value``) or outside a kernel."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        return kernel is not None and kernel.get_parent()["header"]["msg_type"] == "comm_msg"
    except Exception:  # noqa: BLE001 -- no kernel, or an older ipykernel: treat as a cell's change
        return False


def _show(output, figure) -> None:
    """Replace what ``output`` shows with ``figure`` (then close it, so it is not shown twice)."""
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    with output:
        clear_output(wait=True)
        display(figure)
    plt.close(figure)


class _UI:
    """Shared plumbing: an error caught in a callback is shown and kept in ``.error``."""

    widget = None
    output = None
    error: str | None = None

    def _guard(self, function: Callable, *args):
        self.error = None
        try:
            return function(*args)
        except Exception:  # noqa: BLE001 -- ipywidgets would swallow it; show it instead
            self.error = traceback.format_exc()
            with self.output:
                print(self.error)
            return None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _slider(kind: str, description: str, value, **kwargs):
    import ipywidgets as W

    style = {"description_width": "110px"}
    layout = W.Layout(width="420px")
    classes = {"float": W.FloatSlider, "int": W.IntSlider, "log": W.FloatLogSlider}
    return classes[kind](value=value, description=description, style=style, layout=layout,
                         continuous_update=False, **kwargs)


def knob_sliders(method: str, max_batch: int = 32, defaults: dict | None = None) -> dict:
    """The sliders of a method's knobs: temperature, margin, batch size, dropout, and those of the method's own
    settings that are knobs (:attr:`~cse_helpers.objectives.Objective.method_settings`: ESimCSE's dup_rate,
    DiffCSE's lambda). Their starting values: ``defaults``, else the papers' (:mod:`cse_helpers.defaults`)."""
    d = {"temperature": paper("temperature"), "margin": paper("margin"), "batch_size": min(8, max_batch),
         "dropout": paper("dropout"), "dup_rate": paper("dup_rate"), "lambda_rtd": paper("lambda_rtd"),
         **(defaults or {})}
    sliders = {
        "temperature": _slider("log", "temperature τ", d["temperature"], base=10, min=-2.3, max=0.0, step=0.05,
                               readout_format=".3f"),
        "margin": _slider("float", "margin", d["margin"], min=0.0, max=0.5, step=0.05),
        "batch_size": _slider("int", "batch size B", d["batch_size"], min=2, max=max_batch, step=1),
        "dropout": _slider("float", "dropout", d["dropout"], min=0.0, max=0.5, step=0.05),
    }
    own = objective_class(method).method_settings
    if "dup_rate" in own:
        sliders["dup_rate"] = _slider("float", "dup_rate", d["dup_rate"], min=0.0, max=1.0, step=0.04)
    if "lambda_rtd" in own:
        sliders["lambda_rtd"] = _slider("log", "λ (RTD weight)", d["lambda_rtd"], base=10, min=-4, max=0.0, step=0.1,
                                        readout_format=".4f")
    return sliders


class LossPlayground(_UI):
    """Sliders for the knobs of a method; each move recomputes :func:`batch_loss` and redraws.

    ``.sliders`` (name -> slider), ``.result`` (the last :func:`batch_loss` dict), ``.results`` (all
    of them, with the knob values), ``.figure`` (the last figure), ``.widget`` (what is displayed).

    Displayed, it shows the widget and then its figure at the default knobs as a plain ``image/png``
    output (``.default_png``): a widget needs a running kernel, the picture does not, so the rendered
    site, GitHub and a notebook opened without a kernel show it too.
    """

    def __init__(self, encoder, texts: Sequence[str], method: str = "simcse", objective=None, max_batch: int = 16,
                 seed: int = 0, defaults: dict | None = None, draw: bool = True):
        import ipywidgets as W

        self.encoder, self.texts, self.method, self.objective, self.seed = encoder, list(texts), method, objective, seed
        self.draw = draw
        self.sliders = knob_sliders(method, max_batch=max_batch, defaults=defaults)
        self.output = W.Output()
        self.readout = W.HTML()
        for slider in self.sliders.values():
            slider.observe(lambda change: self._moved(), names="value")
        self.widget = W.VBox([W.HTML(f"<b>Loss playground ({method})</b>: move a slider, watch the loss"),
                              *self.sliders.values(), self.readout, self.output])
        self.result, self.results, self.figure = None, [], None
        self._guard(self.update)
        # the figure at the default knobs, as a PNG: displayed beside the widget (:meth:`_ipython_display_`) so
        # that copies read without a kernel (the site, GitHub) show it too; None without a figure
        self.default_png = figure_png(self.figure) if self.figure is not None else None
        self.static_copy = None  # the display handle of that picture, once displayed

    def _ipython_display_(self):
        """Display the widget, then its figure at the default knobs as a plain ``image/png`` output
        (marked with :data:`STATIC_COPY` in its metadata). A widget lives only in a running kernel; the
        picture stays in the notebook's outputs for every copy read without one."""
        from IPython.display import display

        display(self.widget)
        if self.default_png is not None:
            self.static_copy = display(static_picture_bundle(self.default_png, "loss playground"), raw=True,
                                       metadata={STATIC_COPY: type(self).__name__}, display_id=True)

    def _moved(self):
        """A slider moved: recompute and redraw; once the reader moves one in a running notebook, the static
        picture below the widget (a second, frozen figure) gives way to a line that says so."""
        self._guard(self.update)
        if self.static_copy is not None and moved_by_the_reader():
            self.static_copy.update({"text/plain": STATIC_COPY_HIDDEN}, raw=True)
            self.static_copy = None

    def values(self) -> dict:
        return {name: slider.value for name, slider in self.sliders.items()}

    def update(self) -> dict:
        values = self.values()
        if self.objective is None:  # built once, for every move of a slider (DiffCSE's must be given)
            self.objective = playground_objective(self.encoder, self.method)
        result = batch_loss(self.encoder, self.texts, method=self.method, objective=self.objective, seed=self.seed,
                            **values)
        self.result = result
        self.results.append({**values, "loss": result["loss"], "contrastive": result["contrastive"],
                             "rtd": result["rtd"]})
        self.readout.value = f"<b>loss = {result['loss']:.4f}</b> " + " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        if self.draw:
            self.figure = plots.plot_playground(result)
            _show(self.output, self.figure)
        return result


class TrainingComparer(_UI):
    """Knob sliders, a steps slider, a seed and a button: each click trains a short run and overlays its curves.

    Each run is scored at least :data:`COMPARE_EVALUATIONS` times on :func:`compare_dev_pairs`, so it
    is drawn as a curve with its bootstrap band; ``baseline`` is drawn as a dashed line: ``True`` scores
    the course's untrained model on the same pairs, or pass an ``evaluate_pairs`` result. Runs with
    the same knobs and different seeds share a colour: their spread is the noise that a difference
    between knobs has to beat.

    ``runs`` (name -> history) starts with earlier runs drawn for reference; ``.run()`` (what the
    button calls) appends the new one. ``.table`` lists every run (knobs, seed, final Spearman with
    its interval, seconds) and ``.status`` says what the last click did; both update with each run.
    ``train_fn`` defaults to :func:`short_training` with ``course``.
    """

    def __init__(self, course, method: str = "simcse", runs: dict | None = None, train_fn: Callable | None = None,
                 defaults: dict | None = None, draw: bool = True, baseline: dict | None = None):
        import ipywidgets as W

        self.course, self.method, self.draw = course, method, draw
        self._dev_pairs = None
        self.train_fn = train_fn or (lambda **knobs: short_training(course, method, dev_pairs=self.dev_pairs,
                                                                    **knobs))
        if baseline is True:  # the untrained model, scored on the same pairs as the runs
            from ..evaluate import evaluate_pairs

            baseline = evaluate_pairs(course.load_encoder().eval(), self.dev_pairs)
        self.baseline = baseline
        defaults = {"batch_size": course.compare_batch, "dropout": course.dropout, **(defaults or {})}
        self.sliders = knob_sliders(method, max_batch=max(64, course.compare_batch), defaults=defaults)
        self.sliders["steps"] = _slider("int", "steps", course.compare_steps, min=2,
                                        max=max(10 * course.compare_steps, 20), step=1)
        self.sliders["seed"] = W.BoundedIntText(value=course.seed, min=0, max=2**31 - 1, description="seed",
                                                style={"description_width": "110px"}, layout=W.Layout(width="220px"))
        self.defaults = self.values()
        self.button = W.Button(description="train and overlay", button_style="primary", icon="play")
        self.button.on_click(lambda _: self._guard(self.click))
        self.status = W.HTML("No run yet: set the knobs and click <b>train and overlay</b>.")
        self.table = W.HTML()
        self.output = W.Output()
        self.runs = dict(runs or {})
        self.info: list[dict] = [{"name": name, "knobs": None, "seconds": None} for name in self.runs]
        self.figure = None
        scored = f" Quick mode: runs are scored on a fixed sample of (up to) {QUICK_COMPARE_PAIRS} dev pairs." \
            if course.quick else ""
        self.widget = W.VBox([W.HTML(f"<b>Training comparer ({method})</b>: set the knobs, click, compare curves. "
                                     f"Same knobs, another seed: the spread is the noise.{scored}"),
                              *self.sliders.values(), W.HBox([self.button, self.status]), self.output, self.table])
        self.update_table()
        if self.runs:
            self._guard(self.redraw)

    @property
    def dev_pairs(self) -> list[tuple]:
        """The pairs every run is scored on (:func:`compare_dev_pairs`, drawn once)."""
        if self._dev_pairs is None:
            self._dev_pairs = compare_dev_pairs(self.course)
        return self._dev_pairs

    def values(self) -> dict:
        return {name: slider.value for name, slider in self.sliders.items()}

    def changed_knobs(self, knobs: dict) -> dict:
        """The knobs that differ from the comparer's starting values (what tells runs apart in a legend)."""
        return {k: v for k, v in knobs.items() if k not in ("seed",) and v != self.defaults.get(k)}

    def name_run(self, knobs: dict) -> str:
        """A short legend name: run number, the changed knobs (or "defaults") and the seed."""
        changed = " ".join(knob_text(k, v) for k, v in self.changed_knobs(knobs).items()) or "defaults"
        return f"#{len(self.runs) + 1} {changed} seed={knobs['seed']}"

    def click(self) -> dict:
        """What the button does: one run with the current knobs; the status names it."""
        self.status.value = f"Training run #{len(self.runs) + 1}..."
        history = self.run()
        last = self.info[-1]
        self.status.value = (f"Run {last['name'].split()[0]} trained in {last['seconds']:.0f} s: final dev Spearman "
                             f"{final_score(history)}. Change a knob or the seed and click again.")
        return history

    def run(self) -> dict:
        """Train one run with the current knobs, add it to ``runs`` and the table, redraw."""
        knobs = self.values()
        name = self.name_run(knobs)
        start = time.perf_counter()
        history = self.train_fn(**knobs)
        self.runs[name] = history
        self.info.append({"name": name, "knobs": knobs, "seconds": time.perf_counter() - start})
        self.status.value = (f"{len(self.runs)} run(s) so far (table below); set the knobs and click "
                             "<b>train and overlay</b> to add one.")
        self.update_table()
        self.redraw()
        return history

    def update_table(self) -> str:
        """The run list as an HTML table (number, method, knobs, seed, final Spearman [95% interval], seconds)."""
        rows = []
        for info in self.info:
            knobs = info["knobs"] or {}
            rows.append((info["name"].split()[0], self.method if knobs else "reference",
                         " ".join(knob_text(k, v) for k, v in knobs.items() if k != "seed") or info["name"],
                         knobs.get("seed", "-"), final_score(self.runs[info["name"]]),
                         "-" if info["seconds"] is None else f"{info['seconds']:.0f}"))
        self.table.value = tables.html_table(["run", "method", "knobs", "seed", "final dev Spearman [95% CI]", "s"],
                                            rows) if rows else ""
        return self.table.value

    def settings(self) -> list[dict]:
        """The runs grouped by setting (knobs without the seed), in order: ``[{"knobs", "all_knobs", "names",
        "finals", "half_widths", "scores", "evals"}]``: the knobs changed from the comparer's defaults and all
        of them, final Spearmans, half-widths of their intervals, ``{seed: cosine per dev pair}`` of the runs
        that recorded them, and ``{seed: last evaluation}``."""
        groups: dict = {}
        for info in self.info:
            if info["knobs"] is None:
                continue
            all_knobs = {k: v for k, v in info["knobs"].items() if k != "seed"}
            key = tuple(sorted(all_knobs.items()))
            evals = [r for r in self.runs[info["name"]].get("eval", []) if "spearman" in r]
            group = groups.setdefault(key, {"knobs": self.changed_knobs(info["knobs"]), "all_knobs": all_knobs,
                                            "names": [], "finals": [], "half_widths": [], "scores": {}, "evals": {}})
            group["names"].append(info["name"])
            seed = info["knobs"]["seed"]
            if self.runs[info["name"]].get("final_scores") is not None:
                group["scores"].setdefault(seed, self.runs[info["name"]]["final_scores"])
            if evals:
                group["finals"].append(evals[-1]["spearman"])
                group["evals"].setdefault(seed, evals[-1])
                ci = evals[-1].get("spearman_ci")
                if ci is not None and all(math.isfinite(x) for x in ci):
                    group["half_widths"].append((ci[1] - ci[0]) / 2)
        return list(groups.values())

    def seed_spread(self) -> float | None:
        """The seed noise of these runs: the largest spread (max - min final Spearman) of the seeds of one
        setting (:func:`~cse_helpers.evaluate.seed_spread`); None when no setting was run with two seeds."""
        from ..evaluate import seed_spread

        spreads = [seed_spread([e["spearman"] for e in g["evals"].values()]) for g in self.settings()
                   if len(g["evals"]) > 1]  # one run per seed: a repeated run is no second seed
        return max(spreads) if spreads else None

    def summary(self) -> str:
        """What the runs show, in words: each setting's final Spearman (mean over its seeds), then the best
        and the worst setting compared under the course's one rule (:func:`~cse_helpers.evaluate.noise_verdict`).

        The two settings' runs with the same seed are compared on the same dev pairs (the paired bootstrap
        interval of their difference; without their pair-by-pair cosines, whether their own intervals
        overlap), and the difference must also exceed the spread of the seeds of one setting among these
        runs (:meth:`seed_spread`; not measured when no setting has two seeds, and the sentence says so).
        """
        return comparison_summary(self.settings(), self.seed_spread(), lambda: [pair[2] for pair in self.dev_pairs])

    def colors(self) -> dict:
        """One colour per setting: runs whose knobs differ only by the seed share it."""
        colours, settings = {}, []
        for info in self.info:
            key = tuple(sorted((k, v) for k, v in (info["knobs"] or {"name": info["name"]}).items() if k != "seed"))
            if key not in settings:
                settings.append(key)
            colours[info["name"]] = f"C{settings.index(key) % 10}"
        return colours

    def redraw(self):
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4))
        colours = self.colors()
        plots.plot_curves(self.runs, "loss", ax=left, legend=False, colors=colours)
        plots.plot_curves(self.runs, "spearman", ax=right, baseline=self.baseline, colors=colours, bands="last")
        fig.tight_layout()
        self.figure = fig
        if self.draw:
            _show(self.output, fig)
        return fig


class SearchBox(_UI):
    """A query box and a k slider over a corpus; shows :func:`~cse_helpers.inference.semantic_search`'s top k."""

    def __init__(self, encoder, corpus: Sequence[str], query: str = "", k: int = 5):
        import ipywidgets as W

        self.encoder, self.corpus = encoder, list(corpus)
        self.embeddings = encoder.encode(self.corpus)
        self.query = W.Text(value=query, description="query", continuous_update=False,
                            layout=W.Layout(width="420px"))
        self.k = _slider("int", "k", k, min=1, max=20, step=1)
        self.output = W.Output()
        self.hits: list[tuple[float, str]] = []
        for control in (self.query, self.k):
            control.observe(lambda change: self._guard(self.update), names="value")
        self.widget = W.VBox([self.query, self.k, self.output])
        self._guard(self.update)

    def update(self) -> list[tuple[float, str]]:
        from IPython.display import HTML, clear_output, display

        self.hits = semantic_search(self.encoder, self.query.value, self.corpus, self.k.value, self.embeddings)
        with self.output:
            clear_output(wait=True)
            display(HTML(tables.html_table(["rank", "cosine", "sentence"],
                                          [(i + 1, score, text) for i, (score, text) in enumerate(self.hits)])))
        return self.hits


class LivePlot:
    """Live training curves in a notebook: pass ``on_log`` / ``on_evaluate`` to :func:`~cse_helpers.train.train`.

    The figure (loss and dev metric against the step, the metric with its bootstrap band and, with
    ``baseline``, the untrained model's score as a dashed line) is redrawn in place at most every
    ``min_interval`` seconds, and always after an evaluation; ``.history`` collects the records.
    """

    def __init__(self, metric: str = "spearman", min_interval: float = 1.0, title: str = "", display: bool = True,
                 baseline: dict | None = None):
        self.metric, self.min_interval, self.title, self.baseline = metric, min_interval, title, baseline
        self.history = {"log": [], "eval": []}
        self.handle, self.last_draw, self.figure, self.display = None, -math.inf, None, display

    def on_log(self, record: dict) -> None:
        self.history["log"].append(record)
        if time.perf_counter() - self.last_draw >= self.min_interval:
            self.draw()

    def on_evaluate(self, record: dict) -> None:
        self.history["eval"].append(record)
        self.draw()

    def draw(self):
        import matplotlib.pyplot as plt

        figure = plots.plot_history(self.history, metric=self.metric, baseline=self.baseline)
        if self.title:
            figure.axes[0].set_title(self.title)
        if self.display:
            from IPython.display import display
            if self.handle is None:
                self.handle = display(figure, display_id=True)
            else:
                self.handle.update(figure)
        plt.close(figure)  # kept as data for .figure; closed so the notebook does not show it twice
        self.figure = figure
        self.last_draw = time.perf_counter()
        return figure
