"""cse_helpers.course: the notebooks' setup (mode, model, data, install on Colab) and its small analyses."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cse_helpers import course
from cse_helpers.classroom import analysis, colab
from cse_helpers.constants import REPO_ROOT
from cse_helpers.tools.tiny import build_tiny_model

ROOT = REPO_ROOT


@pytest.fixture
def no_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    for name in ("CSE_MODEL", "CSE_SETTINGS"):  # a learner's own overrides must not leak into the tests
        monkeypatch.delenv(name, raising=False)


# ---- mode ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, cuda, quick", [("", False, True), ("", True, False), ("1", True, True),
                                                 ("yes", True, True), ("0", False, False), ("off", False, False)])
def test_quick_mode_follows_the_gpu_unless_cse_quick_says_otherwise(value, cuda, quick):
    env = {"CSE_QUICK": value} if value else {}
    assert course.quick_mode_requested(cuda, env) is quick


def test_a_misspelt_cse_quick_is_an_error():
    with pytest.raises(ValueError, match="CSE_QUICK='maybe'"):
        course.quick_mode_requested(True, {"CSE_QUICK": "maybe"})


def test_setup_quick_mode(no_colab, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CSE_RUNS_DIR", raising=False)
    monkeypatch.setattr(course, "CACHE_DIR", str(tmp_path / "cache"))  # a tiny model, if needed, is built here
    c = course.setup(seed=7, quick=True, runs_dir=str(tmp_path))
    assert (c.mode, c.quick, c.device.type, c.precision, c.seed) == ("quick", True, "cpu", "fp32", 7)
    assert c.batch_size == course.MODE_SETTINGS["quick"]["batch_size"] and c.runs_dir == str(tmp_path)
    assert os.path.isfile(os.path.join(c.model, "config.json"))
    assert c.data_dir == os.path.join(ROOT, "data")
    printed = capsys.readouterr().out
    assert "torch " + torch.__version__ in printed and "mode: quick" in printed
    first = torch.rand(3)
    course.setup(seed=7, quick=True, verbose=False)
    assert torch.equal(first, torch.rand(3))  # seeded


def test_setup_full_mode_is_the_tutorials_recipe(no_colab, monkeypatch):
    monkeypatch.setenv("CSE_QUICK", "0")
    monkeypatch.delenv("CSE_RUNS_DIR", raising=False)
    c = course.setup(verbose=False)  # nothing is downloaded by setup itself
    assert c.mode == "full" and c.model == "nghuyong/ernie-3.0-base-zh"
    args = c.training_args("simcse")
    assert (args.batch_size, args.max_seq_len, args.dropout, args.model) == (64, 64, 0.3, c.model)
    assert args.max_steps == course.MODE_SETTINGS["full"]["max_steps"] and c.runs_dir == os.path.join("runs", "full")


def test_cse_model_and_cse_settings_change_full_mode_without_editing_a_cell(no_colab, monkeypatch, tmp_path):
    monkeypatch.setenv("CSE_QUICK", "0")
    monkeypatch.setenv("CSE_MODEL", str(tmp_path / "my-ernie"))
    monkeypatch.setenv("CSE_SETTINGS", " max_steps=300, valid_steps=100,dropout=0.1 ")
    c = course.setup(verbose=False)
    assert c.mode == "full" and c.model == str(tmp_path / "my-ernie") and c.model_description == "set by CSE_MODEL"
    args = c.training_args("esimcse")
    assert (args.max_steps, args.valid_steps, args.dropout, args.batch_size) == (300, 100, 0.1, 64)
    assert course.MODE_SETTINGS["full"]["max_steps"] == 2000  # the table itself is untouched


def test_settings_from_env_reads_types_and_rejects_what_it_cannot_use():
    assert course.settings_from_env("quick", {}) == course.MODE_SETTINGS["quick"]
    assert course.settings_from_env("quick", {"CSE_SETTINGS": "learning_rate=2e-5"})["learning_rate"] == 2e-5
    with pytest.raises(ValueError, match=r"'max_step=5' is not NAME=VALUE with one of the settings batch_size, "):
        course.settings_from_env("full", {"CSE_SETTINGS": "max_step=5"})
    with pytest.raises(ValueError, match="'500' is not NAME=VALUE"):
        course.settings_from_env("full", {"CSE_SETTINGS": "500"})
    with pytest.raises(ValueError, match="max_steps takes an integer, not '1e3'"):
        course.settings_from_env("full", {"CSE_SETTINGS": "max_steps=1e3"})
    with pytest.raises(ValueError, match="dropout takes a number, not 'high'"):
        course.settings_from_env("full", {"CSE_SETTINGS": "dropout=high"})


def test_training_args_per_method(tmp_path):
    c = course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=3, model="m",
                      model_description="", settings=dict(course.MODE_SETTINGS["quick"]), runs_dir=str(tmp_path))
    simcse = c.training_args("simcse", temperature=0.1)
    assert (simcse.method, simcse.seed, simcse.temperature, simcse.projector) == ("simcse", 3, 0.1, "mlp")
    assert simcse.save_dir == os.path.join(str(tmp_path), "simcse")
    assert c.training_args("diffcse").projector == "bn"
    assert c.training_args("diffcse", projector="mlp").projector == "mlp"
    with pytest.raises(ValueError, match="method='bert'"):
        c.training_args("bert")
    with pytest.raises(AttributeError):
        c.no_such_setting  # noqa: B018


def test_an_unknown_setting_is_an_error_naming_it_and_course_settings_are_declared(tmp_path):
    settings = dict(course.MODE_SETTINGS["quick"])
    c = course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=3, model="m",
                      model_description="", settings={**settings, "temprature": 0.1}, runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match="temprature: no training setting of that name"):
        c.training_args("simcse")  # a misspelt mode setting is not dropped in silence
    c.settings = settings
    with pytest.raises(ValueError, match="^lambda: no training setting"):
        c.training_args("diffcse", **{"lambda": 0.1})  # nor a misspelt override
    # every mode setting is a training setting or one of the course's own, declared as such
    from dataclasses import fields

    from cse_helpers.arguments import TrainingArguments

    training = {f.name for f in fields(TrainingArguments)}
    for mode_settings in course.MODE_SETTINGS.values():
        assert set(mode_settings) - training == set(course.COURSE_SETTINGS)
    args = c.training_args("simcse")
    assert (args.batch_size, args.max_steps) == (settings["batch_size"], settings["max_steps"])


# ---- the model of quick mode -----------------------------------------------------------------------

def test_quick_model_prefers_the_embedded_default_model(tmp_path):
    default = tmp_path / "default_model"
    default.mkdir()
    (default / "config.json").write_text("{}")
    path, description = course.quick_model(default_model_dir=str(default), cache_dir=str(tmp_path / "cache"))
    assert path == str(default) and "default_model" in description
    assert not (tmp_path / "cache").exists()


def test_quick_model_builds_a_tiny_model_once_when_the_default_is_absent(tmp_path):
    kwargs = dict(data_dir=os.path.join(ROOT, "data"), default_model_dir=str(tmp_path / "absent"),
                  cache_dir=str(tmp_path / "cache"))
    path, description = course.quick_model(**kwargs)
    assert path.startswith(str(tmp_path / "cache")) and "tiny" in description
    config = json.loads(open(os.path.join(path, "config.json"), encoding="utf-8").read())
    assert config["hidden_size"] == 64 and config["num_hidden_layers"] == 2
    stamp = os.path.getmtime(os.path.join(path, "config.json"))
    assert course.quick_model(**kwargs)[0] == path and os.path.getmtime(os.path.join(path, "config.json")) == stamp
    vocab = open(os.path.join(path, "vocab.txt"), encoding="utf-8").read().split("\n")
    assert "蛋" in vocab and "?" in vocab  # the tutorial's sentences are covered


# ---- installing on Colab -----------------------------------------------------------------------------

def test_requirements_to_install_never_includes_torch_or_the_jupyter_front_end():
    lines = ["# comment", "torch>=2.4,<3", "Torch", "torchvision==0.19", "transformers>=4.46,<6  # note", "",
             "torchmetrics>=1.0", "numpy>=1.24", "JupyterLab>=4.0", "ipywidgets>=8.0", "jupyterlab_widgets>=3"]
    assert colab.requirements_to_install(lines) == ["transformers>=4.46,<6", "torchmetrics>=1.0", "numpy>=1.24",
                                                     "jupyterlab_widgets>=3"]


def test_install_commands_install_the_project_without_deps_then_the_rest_minus_torch():
    commands = colab.install_commands(ROOT)
    first = commands[0]
    assert first[:3] == [sys.executable, "-m", "pip"] and "--no-deps" in first and first[-1] == ROOT
    requirements = commands[1][5:]
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        expected = colab.requirements_to_install(f.read().splitlines())
    assert requirements == expected and expected and not any(r.lower().startswith("torch") for r in requirements)
    assert "jupyterlab>=4.0" not in requirements and "ipywidgets>=8.0" not in requirements
    assert commands[-1][:2] == ["bash", "-c"] and "apt-get install -y -qq fonts-noto-cjk" in commands[-1][2]
    assert len(colab.install_commands(ROOT, font=False)) == len(commands) - 1
    pinned = colab.install_commands(ROOT, font=False, constraints="keep.txt")
    assert all(command[5:7] == ["-c", "keep.txt"] for command in pinned)


def test_install_commands_from_a_wheel_skip_the_checkout_install(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy>=1.24\ntorch>=2.4\n")  # no pyproject.toml: not a checkout
    commands = colab.install_commands(str(tmp_path), font=False)
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", "numpy>=1.24"]]


def test_install_on_colab_runs_the_commands_and_tolerates_a_missing_font(monkeypatch, capsys, tmp_path):
    from cse_helpers.classroom import plots

    ran = []

    def fake_run(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 1 if command[0] == "bash" else 0, "", "no network")

    monkeypatch.setattr(plots, "find_cjk_font", lambda refresh=False: None)  # as on a fresh Colab VM
    keep = str(tmp_path / "keep.txt")
    colab.install_on_colab(ROOT, run=fake_run, constraints=keep)
    assert ran == colab.install_commands(ROOT, constraints=keep) and ran[-1][0] == "bash"
    # what the runtime has of torch (and the Jupyter front end) is pinned for pip
    assert f"torch=={torch.__version__}\n" in open(keep, encoding="utf-8").read()
    printed = capsys.readouterr().out
    assert "Could not install fonts-noto-cjk" in printed and "Installed the course: cse-helpers" in printed
    assert f"Kept as the runtime has them: torch {torch.__version__}" in printed

    ran.clear()
    monkeypatch.setattr(plots, "find_cjk_font", lambda refresh=False: "Noto Sans CJK SC")
    colab.install_on_colab(ROOT, run=fake_run, constraints=keep)
    assert ran == colab.install_commands(ROOT, font=False, constraints=keep)  # a font is there: no apt-get

    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: no matching distribution")

    with pytest.raises(RuntimeError, match="no matching distribution"):
        colab.install_on_colab(ROOT, run=failing_pip)


def test_in_colab(monkeypatch, no_colab):
    assert not colab.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101")
    assert colab.in_colab()


def test_repo_url_is_a_github_address_or_the_placeholder():
    assert course.REPO_URL.startswith("https://github.com/") and course.REPO_URL.count("/") == 4
    assert course.PLACEHOLDER_URL == "https://github.com/OWNER/REPOSITORY"  # the setup cell tests for its end


def test_install_report_names_what_changed_and_what_was_kept():
    before = {"torch": "2.8.0+cu126", "numpy": "1.26.4", "cse-helpers": "0.1.0"}
    after = {**before, "numpy": "2.1.0", "seaborn": "0.13.2"}
    report = colab.install_report(before, after, {"torch": "2.8.0+cu126"}, ROOT)
    assert report.splitlines() == [f"Installed the course: cse-helpers 0.1.0 from {ROOT} (editable).",
                                   "Installed: numpy 2.1.0 (was 1.26.4), seaborn 0.13.2.",
                                   "Kept as the runtime has them: torch 2.8.0+cu126."]
    assert "Nothing else installed" in colab.install_report(before, before, {}, ROOT)


# ---- data, runs and analyses ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from cse_helpers.data import read_pairs, read_train_texts

    texts = list(read_train_texts(os.path.join(ROOT, "data", "train.txt")))
    texts += [s for a, b, _ in read_pairs(os.path.join(ROOT, "data", "dev.tsv")) for s in (a, b)]
    return build_tiny_model(str(tmp_path_factory.mktemp("course-tiny")), texts, hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=64)


@pytest.fixture
def quick_course(tiny_dir, tmp_path):
    settings = {**course.MODE_SETTINGS["quick"], "max_steps": 2, "batch_size": 8, "valid_steps": 2,
                "logging_steps": 1}
    return course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=0, model=tiny_dir,
                         model_description="tiny", settings=settings, data_dir=os.path.join(ROOT, "data"),
                         runs_dir=str(tmp_path / "runs"))


def test_load_data_reads_the_sample(quick_course, sample_texts, sample_pairs):
    data = quick_course.load_data()
    assert list(data["train"]) == list(sample_texts) and data["dev"] == sample_pairs  # data/train.txt, data/dev.tsv
    assert quick_course.train_texts is data["train"]


def test_train_then_load_run_then_run_or_load(quick_course):
    data = quick_course.load_data()
    quick_course._data = {**data, "train": data["train"][:64], "dev": data["dev"][:40]}  # small: fast
    assert quick_course.load_run("simcse") is None
    result = quick_course.train("simcse")
    assert [r["step"] for r in result.history["log"]] == [1, 2]
    encoder, history = quick_course.load_run("simcse")
    assert history["log"] == json.loads(json.dumps(result.history["log"]))
    assert not encoder.training
    z_saved, z_trained = encoder.encode(["今天天气很好"]), result.encoder.encode(["今天天气很好"])
    assert torch.allclose(z_saved, z_trained, atol=1e-5)
    assert quick_course.run_or_load("simcse")[1]["log"] == history["log"]  # loaded, not trained again
    other = course.Course(**{**quick_course.__dict__, "model": "another/model", "_data": {}})
    assert other.load_run("simcse") is None  # a run of another model is not mixed up with this one


def test_random_pairs_are_distinct_and_ordered():
    pairs = analysis.random_pairs(10, 30, seed=1)
    assert len(pairs) == len(set(pairs)) == 30 and all(i < j < 10 for i, j in pairs)
    assert analysis.random_pairs(10, 30, seed=1) == pairs
    assert len(analysis.random_pairs(4, 100)) == 6  # all there are
    with pytest.raises(ValueError):
        analysis.random_pairs(1, 3)


def test_random_pair_cosines_and_repetition_cosines(quick_course):
    encoder = quick_course.load_encoder().eval()
    texts = quick_course.train_texts[:60]
    out = analysis.random_pair_cosines(encoder, texts, n_pairs=100, seed=0)
    z = encoder.encode(texts)
    i, j = analysis.random_pairs(60, 100, seed=0)[0]
    assert out["cosines"][0] == pytest.approx(float(z[i] @ z[j]), abs=1e-5)
    assert out["length_diffs"][0] == abs(len(texts[i]) - len(texts[j]))
    assert -1 <= out["spearman_length"] <= 1
    low, high = out["spearman_length_ci"]
    assert low < out["spearman_length"] < high
    rep = analysis.repetition_cosines(encoder, texts, dup_rate=0.5, n=30, seed=0)
    # copies that repeated nothing (cosine exactly 1, no length change) are left out, and counted
    assert len(rep["added"]) + rep["n_unchanged"] == 30 and (rep["added"] > 0).all()
    assert rep["n_unchanged"] > 0  # with dup_rate 0.5 on short questions some draws repeat nothing
    tokens = lambda text: len(encoder.body_ids([text])[0])  # noqa: E731
    assert all(tokens(copy) == tokens(text) + k for copy, text, k in zip(rep["copies"], rep["texts"], rep["added"]))
    assert np.all(rep["cosines"] <= 1 + 1e-5)


def test_playground_texts_are_look_alike_questions(quick_course):
    """The playgrounds' batch: both sides of the near-miss pairs, so the loss does not start at 0."""
    from cse_helpers.evaluate import character_jaccard

    texts = quick_course.playground_texts
    near = [(a, b) for (a, b, _), g in zip(quick_course.dev_pairs, quick_course.dev_groups) if g == "near_miss"]
    assert texts[:4] == [near[0][0], near[0][1], near[1][0], near[1][1]]
    assert len(texts) == len(set(texts)) >= 16
    # without groups (LCQMC): the negative pairs that share the most characters come first
    quick_course._data = {**quick_course.load_data(), "dev_groups": None}
    texts = quick_course.playground_texts
    first = next(p for p in quick_course.dev_pairs if p[2] == 0 and {p[0], p[1]} == {texts[0], texts[1]})
    assert character_jaccard([first])[0] == max(character_jaccard([p for p in quick_course.dev_pairs if p[2] == 0]))
