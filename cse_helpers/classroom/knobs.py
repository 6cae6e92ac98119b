"""What the notebooks' widgets compute, as plain functions (ipywidgets would swallow their errors; these are
tested directly), for given knobs:

- :func:`batch_loss`: the loss of one real batch under the current model, computed by the method's objective
  (temperature, margin, batch size, dropout; and the method's own knobs: dup_rate for ESimCSE, lambda for DiffCSE);
- :func:`short_training`: a short training run; returns its history.

The UIs around them are in :mod:`cse_helpers.classroom.widgets`. The knobs' defaults are the papers' values
(:mod:`cse_helpers.defaults`).
"""

from __future__ import annotations

import contextlib
import math
import random
import tempfile
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from ..defaults import paper
from ..encoder import check_dropout, dropout_settings
from ..losses import cosine_matrix, info_nce_logits
from ..objectives import Objective, objective_class, split_views


@contextlib.contextmanager
def dropout_set_to(module: nn.Module, p: float):
    """Temporarily set every dropout of ``module`` to ``p`` (restored on exit); see ``encoder.dropout_settings``."""
    check_dropout(p)
    saved = [(m, name, getattr(m, name)) for m, name in dropout_settings(module)]
    try:
        for m, name, _ in saved:
            setattr(m, name, p)
        yield
    finally:
        for m, name, old in saved:
            setattr(m, name, old)


@contextlib.contextmanager
def _mode(module: nn.Module, training: bool):
    was = module.training
    module.train(training)
    try:
        yield
    finally:
        module.train(was)


@contextlib.contextmanager
def repeatable_masking(objective, device, seed: int):
    """DiffCSE's masking draws restarted from ``seed`` inside the block, its generator restored after.

    With a seeded :class:`~cse_helpers.objectives.DiffCSE` the draws come from its own generator (from
    ``objective.mask_generator(device)``); without a seed they come from torch's global generator,
    which the caller seeds.
    """
    get = getattr(objective, "mask_generator", None)
    generator = get(device) if callable(get) else get
    if generator is None:
        yield
        return
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


def first_batch(texts: Sequence[str], batch_size: int) -> list[str]:
    """The first ``batch_size`` distinct texts (identical sentences would be false negatives)."""
    if batch_size < 2:
        raise ValueError(f"batch_size={batch_size}: a contrastive batch needs at least 2 sentences.")
    batch = list(dict.fromkeys(texts))[:batch_size]
    if len(batch) < 2:
        raise ValueError("Fewer than 2 distinct sentences: nothing to contrast.")
    return batch



@contextlib.contextmanager
def knobs_set_to(objective: Objective, **knobs):
    """Temporarily give ``objective`` the knobs it has (``temperature``, ``margin``, DiffCSE's ``lambda_rtd``, ...);
    a knob the objective has no attribute for is left out. Restored on exit."""
    saved = {name: getattr(objective, name) for name in knobs if hasattr(objective, name)}
    try:
        for name in saved:
            setattr(objective, name, knobs[name])
        yield
    finally:
        for name, value in saved.items():
            setattr(objective, name, value)


def playground_objective(encoder, method: str) -> Objective:
    """The objective of ``method`` around ``encoder``, for :func:`batch_loss`: built with the defaults and
    without a momentum queue (``queue_size=0``: no state carried from one call to the next). A method whose
    objective needs more models (DiffCSE's generator and discriminator) cannot be built here: pass one."""
    from ..arguments import TrainingArguments

    cls = objective_class(method)
    if cls.needs_models:
        raise ValueError(f"method={method!r} needs objective= (a {cls.__name__} module around this encoder, e.g. "
                         f"C.build_objective({method!r}, encoder)): it uses models besides the encoder.")
    return cls.from_args(TrainingArguments(method=method, queue_size=0), encoder)


def batch_loss(encoder, texts: Sequence[str], method: str = "simcse", temperature: float = paper("temperature"),
               margin: float = paper("margin"), batch_size: int = 8, dropout: float = paper("dropout"),
               dup_rate: float = paper("dup_rate"), lambda_rtd: float = paper("lambda_rtd"),
               objective: Objective | None = None, seed: int = 0) -> dict:
    """The loss of one real batch under the current ``encoder``, for the given knobs; no gradient.

    The batch is the first ``batch_size`` distinct ``texts``. As in training, each sentence is
    encoded twice in train mode (dropout ``dropout``; the encoder's own setting is restored after),
    in one forward pass of 2B rows; when the method's objective repeats words (ESimCSE), the second
    view has words repeated (``dup_rate``). The loss is the objective's own, ``objective(batch)``, as
    in a training step, with the knobs set on it for the call. Random draws (dropout masks, repetitions,
    DiffCSE's masking) are seeded with ``seed``, so moving one knob changes only what that knob changes.

    ``objective``: the method's objective around ``encoder``; needed for DiffCSE (its generator and
    discriminator), built here for the others (:func:`playground_objective`: no momentum queue).

    Returns a dict: ``loss`` (total), ``contrastive``, ``rtd`` (None unless the objective has it),
    ``lambda_rtd``, ``texts`` (the B sentences), ``views`` (the second view as text), ``cosines`` (B, B),
    ``logits`` (B, B) and ``probs`` (B, B), the row-wise softmax of the logits.
    """
    from ..batches import ViewBuilder

    objective = objective if objective is not None else playground_objective(encoder, method)
    if objective.encoder is not encoder:
        raise ValueError("objective= is built around another encoder: pass the encoder it was built with.")
    batch_texts = first_batch(texts, batch_size)
    bodies = [b[: encoder.max_body_len()] for b in encoder.body_ids(batch_texts)]
    views = ViewBuilder(encoder, encoder.max_seq_len, objective.repeats_words, dup_rate=dup_rate, seed=seed)
    batch = {k: v.to(encoder.device) for k, v in views(bodies).items()}  # (2B, L) rows a1 a2 b1 b2 ...
    devices = [encoder.device] if encoder.device.type == "cuda" else []
    knobs = {"temperature": temperature, "margin": margin, "lambda_rtd": lambda_rtd}
    with torch.random.fork_rng(devices=devices), torch.no_grad(), dropout_set_to(encoder, dropout), \
            _mode(encoder, True), knobs_set_to(objective, **knobs):
        torch.manual_seed(seed)
        z1, z2 = split_views(objective.embed(batch))  # (B, H) each: the embeddings the figure shows
        torch.manual_seed(seed)  # the same dropout masks again: the loss of these same embeddings
        with repeatable_masking(objective, encoder.device, seed):
            out = objective(batch)  # {"loss", "contrastive", the objective's other parts}
    logits = info_nce_logits(z1, z2, temperature=temperature, margin=margin).float()  # (B, B), drawn
    tokenizer = encoder.tokenizer
    second = [tokenizer.decode(ids[mask.bool()], skip_special_tokens=True).replace(" ", "")
              for ids, mask in zip(batch["input_ids"][1::2].cpu(), batch["attention_mask"][1::2].cpu())]
    return {"loss": float(out["loss"]), "contrastive": float(out["contrastive"]),
            "rtd": float(out["rtd"]) if "rtd" in out else None, "lambda_rtd": lambda_rtd, "texts": batch_texts,
            "views": second, "cosines": cosine_matrix(z1, z2).float().cpu(), "logits": logits.cpu(),
            "probs": logits.softmax(dim=1).cpu(), "method": method}


#: A comparer run is scored this many times (at least), so that each run is a curve, not a dot.
COMPARE_EVALUATIONS = 3
#: In quick mode a comparer run is scored on this many dev pairs (a fixed sample, the same for every run):
#: on a CPU, scoring the whole dev set three times would take most of a short run's time.
QUICK_COMPARE_PAIRS = 400


def compare_dev_pairs(course, n: int | None = None) -> list[tuple]:
    """The dev pairs comparer runs are scored on: all of them in full mode; in quick mode a fixed random
    sample of :data:`QUICK_COMPARE_PAIRS` (or ``n``), the same for every run and every seed."""
    pairs = list(course.dev_pairs)
    n = n if n is not None else (QUICK_COMPARE_PAIRS if course.quick else len(pairs))
    if n >= len(pairs):
        return pairs
    keep = sorted(random.Random(0).sample(range(len(pairs)), n))
    return [pairs[k] for k in keep]


def short_training(course, method: str = "simcse", steps: int | None = None, batch_size: int | None = None,
                   temperature: float = paper("temperature"), dropout: float | None = None,
                   learning_rate: float | None = None, dup_rate: float = paper("dup_rate"),
                   lambda_rtd: float = paper("lambda_rtd"), margin: float = paper("margin"), seed: int | None = None,
                   evaluations: int = COMPARE_EVALUATIONS, dev_pairs: Sequence | None = None,
                   save_dir: str | None = None) -> dict:
    """A short training run of ``method`` from the course's model with the given knobs; returns its history,
    plus ``final_scores``: the trained model's cosine for each dev pair (for paired comparisons).

    Every run starts from the same pretrained weights; with the same ``seed`` (default: the course's)
    it also sees the same data order and dropout masks, so two runs differ only by their knobs, and
    two runs that differ only by ``seed`` show how much a result moves by chance. The dev pairs
    (default: :func:`compare_dev_pairs`) are scored every ``ceil(steps / evaluations)`` steps and at
    the end (``evaluations`` times, or once more when that does not divide ``steps``).
    ``None`` takes the course's setting (``compare_steps``, ``compare_batch``, ...).
    """
    from ..train import train

    steps = steps or course.compare_steps
    if evaluations < 1:
        raise ValueError(f"evaluations={evaluations}: score the run at least once.")
    overrides = dict(max_steps=steps, batch_size=batch_size or course.compare_batch, temperature=temperature,
                     dropout=course.dropout if dropout is None else dropout, margin=margin,
                     learning_rate=learning_rate or course.learning_rate, dup_rate=dup_rate, lambda_rtd=lambda_rtd,
                     valid_steps=max(1, math.ceil(steps / evaluations)), logging_steps=max(1, steps // 12),
                     progress_bar=False, warmup_ratio=0.0, seed=course.seed if seed is None else seed)
    dev_pairs = compare_dev_pairs(course) if dev_pairs is None else list(dev_pairs)
    with tempfile.TemporaryDirectory() as tmp:
        args = course.training_args(method, save_dir=save_dir or tmp, **overrides)
        result = train(args, train_texts=course.train_texts, dev_pairs=dev_pairs)
    # the trained model's cosine for each dev pair (from the run's last evaluation, at its last step):
    # two runs can then be compared on the same pairs
    return {**result.history, "final_scores": result.final_scores}


def final_score(history: dict, key: str = "spearman") -> str:
    """The last evaluation's ``key`` with its interval (``"0.034 [-0.02, 0.09]"``), or "-" without one."""
    from ..evaluate import spearman_text

    evals = [r for r in history.get("eval", []) if key in r]
    return spearman_text(evals[-1], key=key) if evals else "-"


def knob_text(name: str, value) -> str:
    """``"temperature=0.05"``: a knob and its value, as legends and tables name a run."""
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def setting_name(group: dict) -> str:
    """A setting of ``TrainingComparer.settings()`` in words: its changed knobs, or "the default knobs"."""
    return " ".join(knob_text(k, v) for k, v in group["knobs"].items()) or "the default knobs"


def comparison_summary(groups: list[dict], seed_spread: float | None, dev_labels: Callable[[], list]) -> str:
    """What comparer runs show, in words (``groups``: ``TrainingComparer.settings()``): each setting's final
    Spearman (mean over its seeds), then the best and the worst setting compared under the course's one rule
    (:func:`~cse_helpers.evaluate.noise_verdict`), with ``seed_spread`` the seed noise of these runs (None:
    not measured) and ``dev_labels()`` the labels of the dev pairs the runs were scored on.
    """
    from ..evaluate import intervals_overlap, noise_verdict

    groups = [g for g in groups if g["finals"]]
    if not groups:
        return "No run has been scored yet."
    lines = []
    for g in groups:
        finals = g["finals"]
        lines.append(f"{setting_name(g)}: final dev Spearman {sum(finals) / len(finals):.3f}"
                     + (f" (mean of {len(finals)} seeds, which differ by {max(finals) - min(finals):.3f})"
                        if len(finals) > 1 else " (one seed)"))
    if len(groups) < 2:
        return "\n".join(lines)
    means = [sum(g["finals"]) / len(g["finals"]) for g in groups]
    high, low = groups[means.index(max(means))], groups[means.index(min(means))]
    differing = [k for k in high["all_knobs"] if high["all_knobs"][k] != low["all_knobs"].get(k)]

    def name(group: dict) -> str:  # by the knobs in which the two settings differ
        seeds = len(group["evals"])
        return " ".join(knob_text(k, group["all_knobs"][k]) for k in differing) + \
            f" ({seeds} seed{'s' if seeds > 1 else ''})"

    paired = [seed for seed in high["scores"] if seed in low["scores"] and seed in high["evals"]
              and seed in low["evals"]]
    same_seed = paired or [seed for seed in high["evals"] if seed in low["evals"]]
    if same_seed:
        seed = same_seed[0]
        a, b, runs = dict(high["evals"][seed]), dict(low["evals"][seed]), f"seed {seed} of each"
    else:  # no seed in common: the first run of each
        a, b, runs = dict(next(iter(high["evals"].values()))), dict(next(iter(low["evals"].values()))), \
            "runs with different seeds"
    labels = None
    if paired:  # the same seed, scored on the same dev pairs: the paired interval
        a["scores"], b["scores"] = high["scores"][seed], low["scores"][seed]
        labels = dev_labels()
    verdict = noise_verdict(a, b, labels, seed_spread=seed_spread)
    if verdict.interval is not None:
        pairs_text = (f"paired 95% interval [{verdict.interval[0]:+.3f}, {verdict.interval[1]:+.3f}] on the "
                      "same dev pairs")
    else:
        known = a.get("spearman_ci") is not None and b.get("spearman_ci") is not None
        pairs_text = "their 95% intervals " + ("are not known" if not known else "overlap"
                                              if intervals_overlap(a, b) else "do not overlap")
    seeds_text = (f"seeds of one setting spread over {seed_spread:.3f}" if seed_spread is not None else
                  "no setting has two seeds, so the seed noise is not measured")
    if verdict.sign == 0:
        said = "within the noise: these runs do not tell the two settings apart."
    else:
        said = f"{name(high) if verdict.sign > 0 else name(low)} higher beyond the noise."
    lines.append(f"Best vs worst: {name(high)} vs {name(low)}, {runs}: difference {verdict.difference:+.3f}, "
                 f"{pairs_text}, {seeds_text}: {said}")
    return "\n".join(lines)
