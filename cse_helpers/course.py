"""Setup for the course notebooks: seeds, device and precision, quick or full mode, the data and the model.

Every notebook starts with the same cell (``tests/test_notebooks.py`` checks that it is identical)::

    from cse_helpers import course
    C = course.setup()

``setup`` returns a :class:`Course`: the mode, the model to load, the data and the training settings
every notebook uses, so no notebook hard-codes a number that depends on the hardware. On Colab it
first installs the course (:mod:`cse_helpers.classroom.colab`).

Two modes:

- **full** (a CUDA GPU is present): the tutorial's recipe. ERNIE 3.0 base
  (``nghuyong/ernie-3.0-base-zh``), LCQMC (downloaded by :func:`cse_helpers.data.load_lcqmc`), batch
  64, ``max_seq_len`` 64, dropout 0.3, and a step budget sized for a free Colab T4 session.
- **quick** (no GPU, or ``CSE_QUICK=1``): the sample in ``data/`` (7,165 training sentences, 1,279
  labelled dev pairs), the project's small pretrained Chinese encoder (``cse_helpers/default_model``)
  or, when that is absent, a tiny randomly initialised model built offline, and a few dozen steps.
  Each notebook runs in a few minutes on a laptop CPU.

``CSE_QUICK=0`` forces full mode (e.g. on a CPU machine with a lot of patience). Two more environment
variables change a mode without editing a cell (on Colab: ``%env NAME=value`` before the setup cell):

- ``CSE_MODEL``: another model, a hub name or a local directory (e.g. ``hfl/chinese-roberta-wwm-ext``,
  or a copy of ERNIE on a machine without the hub);
- ``CSE_SETTINGS``: comma-separated overrides of :data:`MODE_SETTINGS`, e.g.
  ``max_steps=500,valid_steps=100`` for a shorter session.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass, field
from typing import Any

from .classroom.colab import in_colab, install_on_colab
from .constants import DATA_DIR, DEFAULT_MODEL, ERNIE_MODEL, TUTORIAL_PAIRS
from .defaults import paper

# OpenMP threads that spin while they wait made PyTorch 10-20x slower on a busy 2-core machine (measured:
# 0.3 vs 6 SimCSE steps/s with the default model); waiting passively costs little on an idle one. It only
# takes effect when set before torch is first imported, as the notebooks' setup cell does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ------------------------------------------------------------------------------------------------
# The public Git repository of the course, which the Colab setup cell clones. Do not edit it by hand:
# `python -m cse_helpers.tools.publish --repo-url https://github.com/OWNER/NAME` writes it here, into every
# notebook's setup cell and "Open in Colab" badge and into pyproject.toml; tests/test_colab.py checks
# that they agree. Until the course is published it is the placeholder, and on Colab the setup cell
# asks for CSE_REPO_URL (any Git URL) instead of failing at `git clone`.
PLACEHOLDER_URL = "https://github.com/OWNER/REPOSITORY"
REPO_URL = "https://github.com/OWNER/REPOSITORY"
# ------------------------------------------------------------------------------------------------

CACHE_DIR = os.environ.get("CSE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "cse_helpers"))

# The tutorial's example of the task: one question, a similar one and a look-alike that is not.
MATCHING_EXAMPLES = [("蛋黄吃多了有什么坏处", "吃鸡蛋白过多有什么坏处", 0),
                     ("蛋黄吃多了有什么坏处", "蛋黄可以多吃吗", 1)]

#: Settings per mode. Full mode: the tutorial's recipe; the step budget is an estimate for a free
#: Colab T4 (about 5 min for SimCSE, 15 min for DiffCSE per 2,000 steps with fp16; not measured
#: here). Quick mode: sized so that each notebook runs in under 3 minutes on 2 CPU cores.
MODE_SETTINGS = {
    "full": dict(batch_size=64, max_seq_len=64, dropout=0.3, learning_rate=paper("learning_rate"), max_steps=2000,
                 valid_steps=250, logging_steps=25, eval_batch_size=256, playground_batch=16,
                 compare_steps=200, compare_batch=64, search_corpus=20000, study_batch=64),
    # Quick mode: chosen by benchmarks/sweep_quick.py on the sample (RESULTS.md, "Quick mode"): learning rate
    # 3e-4 and 80 steps of batch 32 took SimCSE from 0.335 to 0.45-0.46 Spearman on data/dev.tsv (3 seeds);
    # 1e-4 and 40 steps, the previous setting, gained only +0.03; dropout 0.3 (the tutorial's) gained less than 0.1.
    "quick": dict(batch_size=32, max_seq_len=48, dropout=0.1, learning_rate=3e-4, max_steps=80,
                  valid_steps=20, logging_steps=4, eval_batch_size=128, playground_batch=8,
                  compare_steps=20, compare_batch=32, search_corpus=2000, study_batch=8),
}
#: The settings of :data:`MODE_SETTINGS` that are the course's own, not training settings (the notebooks read
#: them as ``C.NAME``: the playgrounds' and the comparer's batches, ...). Every other setting must be a field of
#: :class:`~cse_helpers.arguments.TrainingArguments`: :meth:`Course.training_args` refuses one that is neither.
COURSE_SETTINGS = ("playground_batch", "compare_steps", "compare_batch", "search_corpus", "study_batch")


def settings_from_env(mode: str, env: dict | None = None) -> dict:
    """The settings of ``mode`` with the overrides of ``CSE_SETTINGS`` (``"max_steps=500,dropout=0.1"``).

    Each value is read as the type of the setting it replaces; an unknown name or a value of the
    wrong type is an error that names the variable, the entry and the settings there are.
    """
    settings = dict(MODE_SETTINGS[mode])
    text = (os.environ if env is None else env).get("CSE_SETTINGS", "").strip()
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (x.strip() for x in entry.partition("="))
        if not sep or name not in settings:
            raise ValueError(f"CSE_SETTINGS={text!r}: {entry!r} is not NAME=VALUE with one of the settings "
                             f"{', '.join(settings)}.")
        kind = type(settings[name])
        try:
            settings[name] = kind(value)
        except ValueError:
            raise ValueError(f"CSE_SETTINGS={text!r}: {name} takes {'an integer' if kind is int else 'a number'}, "
                             f"not {value!r}.") from None
    return settings


def quick_mode_requested(cuda_available: bool, env: dict | None = None) -> bool:
    """Quick mode without a GPU; ``CSE_QUICK=1`` forces it, ``CSE_QUICK=0`` forces full mode."""
    value = (os.environ if env is None else env).get("CSE_QUICK", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise ValueError(f"CSE_QUICK={value!r}: use 1 (quick mode), 0 (full mode) or leave it unset (automatic).")
    return not cuda_available


# ------------------------------------------------------------------------------------------------
# The model and the data of each mode
# ------------------------------------------------------------------------------------------------

def sample_data_dir() -> str | None:
    """``data/`` of the checkout this package runs from (None when the package was installed alone)."""
    for candidate in (DATA_DIR, os.path.join(os.getcwd(), "data"),
                      os.path.join(os.getcwd(), "..", "data")):
        if os.path.isfile(os.path.join(candidate, "train.txt")) and os.path.isfile(os.path.join(candidate, "dev.tsv")):
            return os.path.abspath(candidate)
    return None


def has_default_model(path: str = DEFAULT_MODEL) -> bool:
    return os.path.isfile(os.path.join(path, "config.json"))


def tiny_model_dir(texts: list[str], cache_dir: str | None = None) -> str:
    """Build (once) a tiny randomly initialised BERT whose vocabulary is the characters of ``texts``.

    The directory name carries a hash of the texts, so a changed corpus gets a new vocabulary.
    """
    from .tools.tiny import build_tiny_model

    cache_dir = cache_dir or CACHE_DIR
    corpus = list(dict.fromkeys(texts))
    digest = hashlib.sha1("\n".join(corpus).encode("utf-8")).hexdigest()[:10]
    out = os.path.join(cache_dir, f"tiny-bert-{digest}")
    if not os.path.isfile(os.path.join(out, "config.json")):
        tmp = f"{out}.tmp{os.getpid()}"
        build_tiny_model(tmp, corpus, model_type="bert", hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=128)
        os.makedirs(cache_dir, exist_ok=True)
        try:
            os.replace(tmp, out)
        except OSError:  # another process built it first
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def quick_model(data_dir: str | None = None, default_model_dir: str | None = None,
                cache_dir: str | None = None) -> tuple[str, str]:
    """Quick mode's model: (path, description). The embedded default model when it is there."""
    if default_model_dir is None:
        import cse_helpers
        default_model_dir = getattr(cse_helpers, "DEFAULT_MODEL", None) or DEFAULT_MODEL
    if has_default_model(default_model_dir):
        return default_model_dir, "the project's small pretrained Chinese encoder (cse_helpers/default_model)"
    from .data import read_pairs, read_train_texts

    data_dir = data_dir or sample_data_dir()
    if data_dir is None:
        raise FileNotFoundError("Quick mode needs the sample data (data/train.txt, data/dev.tsv) to build its tiny "
                                "model; run the notebooks from a checkout of the course repository.")
    texts = list(read_train_texts(os.path.join(data_dir, "train.txt")))
    texts += [s for a, b, _ in read_pairs(os.path.join(data_dir, "dev.tsv")) for s in (a, b)]
    texts += [s for pair in TUTORIAL_PAIRS + MATCHING_EXAMPLES for s in pair[:2]]
    return tiny_model_dir(texts, cache_dir), ("a tiny randomly initialised BERT built from the sample's characters "
                                              "(cse_helpers/default_model is not there yet)")


# ------------------------------------------------------------------------------------------------
# The course object
# ------------------------------------------------------------------------------------------------

@dataclass
class Course:
    """What a notebook needs to know about the machine and the mode it runs in."""

    mode: str  # "quick" or "full"
    device: Any  # torch.device
    precision: str
    seed: int
    model: str  # a directory or a hub name
    model_description: str
    settings: dict
    data_dir: str | None = None
    runs_dir: str = "runs"
    colab: bool = False
    _data: dict = field(default_factory=dict, repr=False)

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def __getattr__(self, name):  # C.batch_size, C.max_steps, ...: the mode's settings
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(f"Course has no attribute {name!r}")

    # ---- data ---------------------------------------------------------------------------------
    def load_data(self) -> dict:
        """``{"train": [sentences], "dev": [(a, b, label)], "dev_groups": [group] or None, "source": str}``
        of this mode, cached. ``dev_groups`` is the 4th column of the sample's dev.tsv (the kind of
        each pair), None where the dev file has no groups (LCQMC)."""
        if not self._data:
            from .data import read_pairs, read_train_texts

            if self.quick:
                if self.data_dir is None:
                    raise FileNotFoundError("Quick mode reads data/train.txt and data/dev.tsv; run from a checkout.")
                rows = read_pairs(os.path.join(self.data_dir, "dev.tsv"), with_groups=True)
                groups = [row[3] for row in rows]
                self._data = {"train": list(read_train_texts(os.path.join(self.data_dir, "train.txt"))),
                              "dev": [row[:3] for row in rows],
                              "dev_groups": groups if any(g is not None for g in groups) else None,
                              "source": f"the sample in {self.data_dir}"}
            else:
                from .data import load_lcqmc

                cache = os.path.join(self.data_dir, "lcqmc") if self.data_dir else os.path.join(CACHE_DIR, "lcqmc")
                paths = load_lcqmc(cache_dir=cache)
                self._data = {"train": list(read_train_texts(paths["train"])), "dev": read_pairs(paths["dev"]),
                              "source": f"LCQMC ({cache})"}
                if "test" in paths:
                    self._data["test"] = read_pairs(paths["test"])
        return self._data

    @property
    def train_texts(self) -> list[str]:
        return self.load_data()["train"]

    @property
    def dev_pairs(self) -> list[tuple]:
        return self.load_data()["dev"]

    @property
    def dev_groups(self) -> list | None:
        """The group of each dev pair (e.g. ``near_miss``), for per-group scores; None without groups."""
        return self.load_data().get("dev_groups")

    @property
    def playground_texts(self) -> list[str]:
        """Look-alike questions for the loss playgrounds: both sentences of the near-miss dev pairs (or,
        without groups, of the negative pairs that share the most characters), a1 b1 a2 b2 ...

        In a batch of unrelated questions the two dropout views of a sentence are found at once, and at
        temperature 0.05 the loss is about 0.03 before any training: there is nothing to watch. Pairs
        such as 头疼怎么办 / 牙疼怎么办 are hard negatives, so the loss starts well above 0 and reacts
        to every knob.
        """
        from .evaluate import character_jaccard

        pairs, groups = self.dev_pairs, self.dev_groups
        if groups:
            chosen = [p for p, g in zip(pairs, groups) if g == "near_miss"]
        else:
            negatives = [p for p in pairs if p[2] == 0]
            overlap = character_jaccard(negatives)
            chosen = [p for _, p in sorted(zip(overlap, negatives), key=lambda x: -x[0])]
        return list(dict.fromkeys(s for a, b, *_ in chosen for s in (a, b)))

    # ---- models -------------------------------------------------------------------------------
    def load_encoder(self, path: str | None = None, **kwargs):
        """A :class:`~cse_helpers.encoder.SentenceEncoder` of this mode's model (or ``path``), on the device."""
        from .encoder import SentenceEncoder

        kwargs.setdefault("dropout", self.dropout)
        kwargs.setdefault("max_seq_len", self.max_seq_len)
        return SentenceEncoder.from_pretrained(path or self.model, **kwargs).to(self.device)

    def training_args(self, method: str = "simcse", **overrides):
        """The :class:`~cse_helpers.arguments.TrainingArguments` of this mode for ``method``: the mode's training
        settings (not :data:`COURSE_SETTINGS`), the method's paper's projector, then ``overrides``. A setting
        or override that is no training setting is an error that names it."""
        from .arguments import TrainingArguments
        from .objectives import objective_class

        objective = objective_class(method)  # an unknown method: the error names the methods there are
        names = {f.name for f in dataclasses.fields(TrainingArguments)}
        unknown = [k for k in self.settings if k not in names and k not in COURSE_SETTINGS]
        unknown += [k for k in overrides if k not in names]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no training setting of that name (see python -m "
                             "cse_helpers.train --help), nor one of the course's own settings "
                             f"({', '.join(COURSE_SETTINGS)}). Check the spelling.")
        base = {k: v for k, v in self.settings.items() if k not in COURSE_SETTINGS}
        base.update(model=self.model, method=method, seed=self.seed, device=str(self.device),
                    save_dir=os.path.join(self.runs_dir, method), progress_bar=not self.quick)
        base.setdefault("projector", objective.paper_projector)  # DiffCSE's BatchNorm projector, unless set
        base.update(overrides)
        return TrainingArguments(**base)

    def build_objective(self, method: str, encoder=None, **overrides):
        """The SimCSE/ESimCSE/DiffCSE module of this mode around ``encoder`` (loaded when None)."""
        from .train import build_objective

        encoder = encoder if encoder is not None else self.load_encoder()
        return build_objective(self.training_args(method, **overrides), encoder).to(self.device)

    def train(self, method: str = "simcse", on_log=None, on_evaluate=None, **overrides):
        """Train ``method`` with this mode's settings; the run is saved under ``runs_dir/method``."""
        from .train import train

        args = self.training_args(method, **overrides)
        return train(args, train_texts=self.train_texts, dev_pairs=self.dev_pairs, on_log=on_log,
                     on_evaluate=on_evaluate)

    def load_run(self, method: str, which: str = "last"):
        """``(encoder, history)`` of a run saved by :meth:`train` in this mode, or None if there is none."""
        path = os.path.join(self.runs_dir, method, which)
        if not os.path.isfile(os.path.join(path, "config.json")):
            return None
        history_file = os.path.join(path, "history_full.json")
        if not os.path.isfile(history_file):
            history_file = os.path.join(path, "history.json")
        args_file = os.path.join(path, "training_args.json")
        if os.path.isfile(args_file):
            with open(args_file, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.get("model") != self.model:  # a run of another mode or model: do not mix them up
                return None
        with open(history_file, encoding="utf-8") as f:
            history = json.load(f)
        return self.load_encoder(path).eval(), history

    def run_or_load(self, method: str, **overrides):
        """The saved run of ``method`` when one exists (from an earlier notebook), else train it now."""
        loaded = None if overrides else self.load_run(method)
        if loaded is not None:
            return loaded
        result = self.train(method, **overrides)
        return result.encoder, result.history

    # ---- the noise of a comparison ------------------------------------------------------------------
    def records_apply(self) -> bool:
        """Whether the recorded quick-mode seeds (``cse_helpers/recorded/quick_seeds.json``) were trained like
        this notebook's runs: quick mode, the shipped model, the same settings."""
        from .classroom.results import COMPARED_SETTINGS, RECORDED_MODEL, quick_seeds

        recorded = quick_seeds()
        return (self.quick and recorded["model"] == RECORDED_MODEL and os.path.abspath(self.model) == os.path.abspath(
            DEFAULT_MODEL) and all(self.settings.get(k) == recorded["settings"].get(k) for k in COMPARED_SETTINGS))

    def seed_spread(self, *keys: str) -> float | None:
        """The seed noise of a comparison between runs ``keys`` (``"simcse"``, ``"esimcse queue_size=0"``, ...):
        the largest spread of their recorded seeds; None where the records do not apply (:meth:`records_apply`),
        e.g. in full mode, and then every verdict says that the seed noise is not measured."""
        from .classroom.results import recorded_spread

        return recorded_spread(*keys) if self.records_apply() else None

    def ranking_text(self, this_run: dict | None = None) -> str:
        """The methods' order in this run (``{"simcse": spearman, ...}``), over the recorded seeds on the sample
        (where they apply) and on LCQMC's dev pairs, side by side
        (:func:`cse_helpers.classroom.results.ranking_text`)."""
        from .classroom.results import ranking_text

        return ranking_text(this_run, recorded=self.records_apply())

    def describe(self) -> str:
        why = " (no GPU, or CSE_QUICK=1)" if self.quick else (" (GPU)" if self.device.type == "cuda" else
                                                              " (CSE_QUICK=0 on a CPU: slow)")
        lines = [f"mode: {self.mode}{why}",
                 f"device: {self.device}, precision: {self.precision}, seed: {self.seed}",
                 f"model: {self.model} ({self.model_description})",
                 "settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items())]
        return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries the course uses (printed by :func:`setup`)."""
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "numpy", "scipy", "matplotlib", "ipywidgets"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    from . import __version__
    out["cse_helpers"] = __version__
    return out


def setup(seed: int = 42, quick: bool | None = None, install: bool | None = None, verbose: bool = True,
          runs_dir: str | None = None) -> Course:
    """The setup of every notebook: install on Colab, seed, device, precision, versions, mode.

    Args:
        seed: seeds Python, NumPy and torch.
        quick: force quick (True) or full (False) mode; None decides from ``CSE_QUICK`` and the GPU.
        install: install the requirements (never torch) and a CJK font; None means "on Colab only".
        runs_dir: where training runs are saved (default: ``$CSE_RUNS_DIR``, else ``runs/<mode>`` under
            the working directory).
    """
    import torch

    colab = in_colab()
    if install if install is not None else colab:
        install_on_colab()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from .classroom import plots
    from .runtime import pick_device, pick_precision, seed_everything

    plots.use_cjk_font()
    try:  # figures inline in Jupyter; a plain Python run keeps its backend
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None and "IPKernelApp" in shell.config:
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    seed_everything(seed)
    device = pick_device(None)
    if quick is None:
        quick = quick_mode_requested(torch.cuda.is_available())
    mode = "quick" if quick else "full"
    if quick:
        device = torch.device("cpu")  # quick mode is sized for a CPU; its numbers are the CPU's
    precision = pick_precision(device, "auto")
    data_dir = sample_data_dir()
    settings = settings_from_env(mode)
    if quick:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()  # small local models: no loading bars between the outputs
    chosen_model = os.environ.get("CSE_MODEL", "").strip()
    if chosen_model:
        model, description = chosen_model, "set by CSE_MODEL"
    elif quick:
        model, description = quick_model(data_dir)
    else:
        model, description = ERNIE_MODEL, "ERNIE 3.0 base, Chinese (Sun et al., 2021), from the Hugging Face hub"
    course = Course(mode=mode, device=device, precision=precision, seed=seed, model=model,
                    model_description=description, settings=settings, data_dir=data_dir,
                    runs_dir=runs_dir or os.environ.get("CSE_RUNS_DIR") or os.path.join("runs", mode), colab=colab)
    if verbose:
        print(" | ".join(f"{k} {v}" for k, v in versions().items()))
        if device.type == "cuda":
            print(f"GPU: {torch.cuda.get_device_name(device)}")
        print(course.describe())
    return course
