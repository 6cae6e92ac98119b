"""A learner's mistakes and a flaky machine: each ends in a correct run or in one message (no traceback).

Each test is one row of the fault table in the README ("When something goes wrong"). The command
line is driven through ``main`` (exit code 2 and ``error: ...`` on stderr); settings that must fail
before anything is loaded get a model path that does not exist, or a loader that fails the test.
"""

import errno
import json
import logging
import math
import os
import shutil
from types import SimpleNamespace

import pytest
import torch

from cse_helpers import checkpoint as checkpoint_module
from cse_helpers.batches import tokenize_for_training
from cse_helpers.checkpoint import STATE_DIR, CheckpointError, list_training_states
from cse_helpers.data import DataFormatError, read_train_texts
from cse_helpers.encoder import ModelLoadError, SentenceEncoder
from cse_helpers.objectives import DiffCSE
from cse_helpers.tools.tiny import build_tiny_model
from cse_helpers.train import main, train

from .conftest import SAMPLE_DEV, SAMPLE_TRAIN
from .test_resume import Disconnect, stop_after

RUN = dict(batch_size=8, max_seq_len=32, max_steps=4, logging_steps=2, valid_steps=2, progress_bar=False,
           learning_rate=1e-3, eval_batch_size=64)
CLI = ["--batch_size", "8", "--max_seq_len", "32", "--max_steps", "2", "--no-progress_bar", "--device", "cpu"]


def cli(capsys, *argv) -> str:
    """Run the command line; it must fail with exit code 2 and one message (returned), without a traceback."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    messages = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(messages) == 1, err
    return messages[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if a model is loaded: the fault must be found before."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the fault was found")
    monkeypatch.setattr(SentenceEncoder, "from_pretrained", refuse)


# ---- 1. save periods --------------------------------------------------------------------------------

@pytest.mark.parametrize("save_steps, logging_steps, max_steps", [(5, 10, 20), (3, 2, 6)])
def test_any_save_period_checkpoints(tiny_bert_dir, tmp_path, save_steps, logging_steps, max_steps):
    train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path),
          **{**RUN, "save_steps": save_steps, "logging_steps": logging_steps, "max_steps": max_steps})
    names = [os.path.basename(p) for p in list_training_states(str(tmp_path))]
    assert names == [f"step-{max_steps - save_steps:06d}", f"step-{max_steps:06d}"]
    state = json.loads((tmp_path / STATE_DIR / names[0] / "trainer_state.json").read_text())
    window = state["loop"]["window"]  # mid-window: plain numbers, the steps since the last log
    assert window["steps"] == (max_steps - save_steps) % logging_steps and isinstance(window["loss"], float)


# ---- 2. a used save folder ---------------------------------------------------------------------------

def test_a_folder_holding_another_run_is_refused_then_replaced_on_request(tiny_bert_dir, tmp_path, capsys):
    common = ["--model", tiny_bert_dir, "--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path), *CLI]
    assert main([*common, "--save_steps", "1", "--max_steps", "3"]) == 0
    before = list_training_states(str(tmp_path))
    err = cli(capsys, *common, "--save_steps", "1")
    assert "already holds the training states of a run (step-000003 is the newest" in err
    assert "add --resume" in err and "another --save_dir" in err and "--overwrite_save_dir" in err
    assert list_training_states(str(tmp_path)) == before  # nothing deleted
    assert main([*common, "--save_steps", "1", "--overwrite_save_dir"]) == 0
    names = [os.path.basename(p) for p in list_training_states(str(tmp_path))]
    assert names == ["step-000001", "step-000002"]  # only this run's
    history = json.loads((tmp_path / "last" / "history.json").read_text())
    assert [r["step"] for r in history["log"]] == [2]


def test_a_new_run_replaces_earlier_exports_without_mixing(tiny_bert_dir, tmp_path, caplog):
    train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV, save_dir=str(tmp_path), **RUN)
    assert (tmp_path / "best").is_dir()
    with caplog.at_level(logging.WARNING, logger="cse_helpers.train"):
        result = train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **RUN)  # no dev set
    assert "deleted the earlier run's best, last" in caplog.text
    assert result.best_dir is None and not (tmp_path / "best").exists()  # no stale 'best' beside this 'last'


def test_resume_and_overwrite_together_are_refused(tmp_path, no_model_load):
    with pytest.raises(ValueError, match="contradict each other"):
        train(model=str(tmp_path), train_path=SAMPLE_TRAIN, resume=True, overwrite_save_dir=True)


# ---- 3. sentences that cannot be contrasted -------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("同一句话\n" * 50, "50 sentences, all the same ('同一句话')"),
    ("只有一句\n", "one sentence ('只有一句')"),
])
def test_too_few_different_sentences_are_refused_before_loading(tmp_path, capsys, content, words, no_model_load):
    path = tmp_path / "train.txt"
    path.write_text(content, encoding="utf-8")
    err = cli(capsys, "--model", str(tmp_path), "--train_path", str(path), "--save_dir", str(tmp_path / "run"), *CLI)
    assert words in err and "at least 2 different sentences" in err
    assert "--batch_size" not in err  # not the advice of a too-small file


def test_first_batches_of_one_sentence_still_train(tiny_bert_dir, tmp_path):
    texts = ["同一句话"] * 30 + ["另一句话", "第三句话"]  # most batches hold one distinct sentence
    result = train(model=tiny_bert_dir, train_texts=texts, save_dir=str(tmp_path),
                   **{**RUN, "max_steps": -1, "num_train_epochs": 2})
    steps = result.history["log"][-1]["step"]
    assert 2 <= steps <= 8  # ends: every epoch has at least one batch, none is empty
    assert sum(r["duplicates_removed"] for r in result.history["log"]) >= 2 * 20


# ---- 4. DiffCSE without a maskable token --------------------------------------------------------

def test_diffcse_batch_without_maskable_tokens_has_rtd_zero(tiny_bert_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="cse_helpers.batches"):
        result = train(model=tiny_bert_dir, method="diffcse", train_texts=["😀", "\u200b"], save_dir=str(tmp_path),
                       **{**RUN, "batch_size": 2, "logging_steps": 1, "max_steps": 2})
    assert [r["rtd"] for r in result.history["log"]] == [0.0, 0.0]
    assert all(math.isfinite(r["loss"]) for r in result.history["log"])
    assert "2 of 2 training sentences are empty or only [UNK]" in caplog.text


def test_rtd_loss_is_the_mean_over_real_tokens(tiny_bert_dir):
    from transformers import AutoModel, AutoModelForMaskedLM

    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    diffcse = DiffCSE(encoder, AutoModelForMaskedLM.from_pretrained(tiny_bert_dir),
                      AutoModel.from_pretrained(tiny_bert_dir), seed=0).train()
    batch = encoder.pad(encoder.body_ids(["今天天气很好", "怎么减肥"]))
    z1 = torch.zeros(2, encoder.hidden_size)
    with torch.no_grad():
        torch.manual_seed(0)
        rtd = diffcse.rtd_loss(z1, batch["input_ids"], batch["attention_mask"])
        diffcse._mask_generators.clear()  # the same masks again
        torch.manual_seed(0)  # the same dropout again
        edited, labels, _ = diffcse.replace_tokens(batch["input_ids"], batch["attention_mask"])
        embeds = torch.cat([z1.unsqueeze(1), diffcse.discriminator.get_input_embeddings()(edited)[:, 1:]], dim=1)
        logits = diffcse.rtd_head(diffcse.discriminator(inputs_embeds=embeds,
                                                        attention_mask=batch["attention_mask"]).last_hidden_state)
        expected = torch.nn.functional.cross_entropy(logits.view(-1, 2), labels.view(-1), ignore_index=-100)
    assert float(rtd) == pytest.approx(float(expected), rel=1e-5) and float(rtd) > 0


# ---- 5. messages instead of tracebacks ------------------------------------------------------------

def test_missing_model_or_generator_path(tmp_path, capsys, no_model_load):
    common = ["--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path / "run"), *CLI]
    err = cli(capsys, "--model", str(tmp_path / "nope"), *common)
    assert f"{tmp_path / 'nope'}: no such directory" in err
    err = cli(capsys, "--model", str(tmp_path), "--method", "diffcse", "--generator", "./no/such/mlm", *common)
    assert "--model" in err and "holds no config.json" in err  # the model is checked first
    run = tmp_path / "run2"
    (run / "last").mkdir(parents=True)
    (run / "last" / "config.json").write_text("{}")
    err = cli(capsys, "--model", str(run), *common)
    assert f"Did you mean {run / 'last'}" in err


def test_missing_generator_path(tiny_bert_dir, tmp_path, capsys, no_model_load):
    err = cli(capsys, "--model", tiny_bert_dir, "--method", "diffcse", "--generator", "./no/such/mlm",
              "--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path), *CLI)
    assert "--generator ./no/such/mlm: no such directory" in err


def test_truncated_safetensors_names_the_file(tiny_bert_dir, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, model)
    weights = model / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    err = cli(capsys, "--model", str(model), "--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path / "run"), *CLI)
    assert f"{weights} cannot be read" in err and "cut off" in err
    with pytest.raises(ModelLoadError, match="model.safetensors cannot be read"):
        SentenceEncoder.from_pretrained(str(model))


def test_resume_into_a_model_of_another_size(tiny_bert_dir, sample_texts, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, model)
    common = ["--model", str(model), "--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path / "run"), *CLI]
    assert main([*common, "--save_steps", "1"]) == 0
    shutil.rmtree(model)  # the same path now holds a model of another size
    build_tiny_model(str(model), list(sample_texts), model_type="bert", hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=64)
    err = cli(capsys, *common, "--save_steps", "1", "--max_steps", "2", "--resume")
    assert "modules.safetensors was saved from a model of another size: encoder.backbone." in err
    assert "is (32,) there and (16,) here" in err and f"Resume with the model of that run ({model})" in err


def test_save_folder_that_cannot_be_written(tmp_path, tiny_bert_dir, capsys, monkeypatch, no_model_load):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    common = ["--model", tiny_bert_dir, "--train_path", SAMPLE_TRAIN, *CLI]
    err = cli(capsys, *common, "--save_dir", str(blocker / "run"))
    assert f"Cannot write to the save folder {blocker / 'run'}" in err and "Choose another --save_dir" in err

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(checkpoint_module.tempfile, "NamedTemporaryFile", read_only)
    err = cli(capsys, *common, "--save_dir", str(tmp_path / "run"))
    assert "(Read-only file system)" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_save_folder(tmp_path, tiny_bert_dir, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        err = cli(capsys, "--model", tiny_bert_dir, "--train_path", SAMPLE_TRAIN, "--save_dir", str(folder), *CLI)
    finally:
        folder.chmod(0o700)
    assert "Cannot write to the save folder" in err


def test_full_save_folder_is_found_before_training(tiny_bert_dir, tmp_path, capsys, monkeypatch):
    steps = []
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=1 << 20))
    monkeypatch.setattr("cse_helpers.batches.ViewBuilder.__call__", lambda *a: steps.append(1))
    err = cli(capsys, "--model", tiny_bert_dir, "--train_path", SAMPLE_TRAIN, "--save_dir", str(tmp_path), *CLI)
    assert f"The save folder {tmp_path} has 1 MB free, but this run writes up to" in err
    assert steps == [] and not (tmp_path / "last").exists()


def test_disk_full_mid_checkpoint_keeps_the_older_one(tiny_bert_dir, tmp_path, monkeypatch):
    common = dict(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **{**RUN, "save_steps": 2})
    calls = {"n": 0}
    original = torch.save

    def full_disk(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the second checkpoint's optimizer.pt
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"step-000004 \(No space left on device\)\. The older checkpoint "
                       r".*step-000002 is kept; nothing was deleted\. .* --resume"):
        train(**common)
    monkeypatch.setattr(checkpoint_module.torch, "save", original)
    assert [os.path.basename(p) for p in list_training_states(str(tmp_path))] == ["step-000002"]
    assert not os.path.exists(tmp_path / STATE_DIR / "step-000004.tmp")
    assert train(resume=True, **common).history["log"][-1]["step"] == 4


@pytest.mark.parametrize("damaged", ["optimizer.pt", "modules.safetensors", "trainer_state.json"])
def test_damaged_newest_checkpoint_falls_back_to_the_older_one(tiny_bert_dir, tmp_path, caplog, damaged):
    common = dict(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, **{**RUN, "save_steps": 2, "max_steps": 6,
                                                                     "logging_steps": 1})
    full = train(save_dir=str(tmp_path / "full"), **common)
    cut = tmp_path / "cut"
    with pytest.raises(Disconnect):
        train(save_dir=str(cut), on_log=stop_after(5), **common)  # checkpoints at steps 2 and 4
    newest = cut / STATE_DIR / "step-000004" / damaged
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)  # cut off, as a disconnect during a copy would
    with caplog.at_level(logging.WARNING):
        resumed = train(save_dir=str(cut), resume=True, **common)
    assert f"{newest} cannot be read" in caplog.text and "step-000002" in caplog.text
    assert [r["step"] for r in resumed.history["log"]] == list(range(1, 7))
    assert [r["loss"] for r in resumed.history["log"]] == pytest.approx([r["loss"] for r in full.history["log"]],
                                                                          abs=1e-6)


# ---- 6. silent no-ops ----------------------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--metric", "spearmen"], "metric='spearmen' is not one of spearman, pearson"),
    (["--device", "gpu"], "device='gpu' is not a device name: use cpu, cuda"),
    (["--learning_rate", "inf"], "learning_rate=inf: it must be a number in (0, inf)"),
    (["--learning_rate", "nan"], "learning_rate=nan"),
    (["--temperature", "nan"], "temperature=nan"),
    (["--temperature", "0"], "temperature=0.0"),
    (["--dup_rate", "1.5"], "dup_rate=1.5: it must be a number in [0, 1]"),
    (["--mask_ratio", "1"], "mask_ratio=1.0"),
    (["--warmup_ratio", "nan"], "warmup_ratio=nan"),
    (["--save_steps", "-1"], "save_steps=-1"),
    (["--dropout", "1"], "dropout=1.0"),
    (["--mini_batch_size", "-4"], "mini_batch_size=-4: it must be >= 0"),
])
def test_bad_flags_are_refused_before_anything_loads(tmp_path, capsys, flags, words, no_model_load):
    err = cli(capsys, "--model", str(tmp_path / "never"), "--train_path", SAMPLE_TRAIN, "--save_dir",
              str(tmp_path / "run"), *CLI, *flags)
    assert words in err


def test_odd_label_among_0_1_labels_is_refused_with_its_line(tmp_path, capsys, no_model_load):
    dev = tmp_path / "dev.tsv"
    dev.write_text("a\tb\t1\nc\td\t0\ne\tf\t2\ng\th\t1\n", encoding="utf-8")
    err = cli(capsys, "--model", str(tmp_path), "--train_path", SAMPLE_TRAIN, "--dev_path", str(dev), *CLI)
    assert f"{dev}, line 3: the label 2 in a file of 0/1 labels" in err


def test_classification_metric_on_scores_is_refused(tmp_path, capsys, no_model_load):
    dev = tmp_path / "sts.tsv"
    dev.write_text("a\tb\t4.5\nc\td\t0.5\ne\tf\t2.5\n", encoding="utf-8")
    err = cli(capsys, "--model", str(tmp_path), "--train_path", SAMPLE_TRAIN, "--dev_path", str(dev),
              "--metric", "f1", *CLI)
    assert "similarity scores, not 0/1, so there is no f1" in err and "--metric spearman" in err


def test_unknown_words_only_are_reported_and_refused_when_nothing_is_left(tiny_bert_dir, tmp_path, caplog):
    train_file = tmp_path / "train.txt"
    sentences = list(read_train_texts(SAMPLE_TRAIN)[:30])
    train_file.write_text("\n".join(sentences[:10] + ["😀😀", "🙂"] + sentences[10:]) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="cse_helpers.batches"):
        train(model=tiny_bert_dir, train_path=str(train_file), save_dir=str(tmp_path / "a"), **RUN)
    assert "2 of 32 training sentences are empty or only [UNK]" in caplog.text and "line 11 '😀😀'" in caplog.text
    only = tmp_path / "emoji.txt"
    only.write_text("😀\n🙂\n🚀🚀\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"all 3 training sentences become the same tokens for this model "
                       r"\(\['\[UNK\]'\]\)"):
        train(model=tiny_bert_dir, train_path=str(only), save_dir=str(tmp_path / "b"), **{**RUN, "batch_size": 2})


# ---- 7. rough edges --------------------------------------------------------------------------------

def test_directory_or_utf16_file_on_the_command_line(tmp_path, capsys, no_model_load):
    err = cli(capsys, "--model", str(tmp_path), "--train_path", str(tmp_path), *CLI)
    assert f"{tmp_path}: is a directory, not a file" in err
    utf16 = tmp_path / "train.txt"
    utf16.write_bytes("今天天气很好\n".encode("utf-16"))
    err = cli(capsys, "--model", str(tmp_path), "--train_path", str(utf16), *CLI)
    assert "line 1: the file is UTF-16" in err and "iconv -f UTF-16 -t UTF-8" in err


def test_a_huge_line_is_cut_before_tokenizing(tiny_bert_dir, monkeypatch):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    long_text = "今天天气很好我们去公园吧" * 1000  # 12,000 characters
    texts = ["怎么减肥", long_text, "abc " * 3000]
    expected = [body[:30] for body in encoder.body_ids(texts)]  # the whole texts, tokenized, then cut
    lengths = []
    original = encoder.body_ids
    monkeypatch.setattr(encoder, "body_ids", lambda batch: lengths.extend(map(len, batch)) or original(batch))
    bodies, truncated = tokenize_for_training(encoder, texts, max_seq_len=32)
    assert bodies == expected and truncated == 2
    assert max(lengths) <= 32 * 31  # the tokenizer never saw the whole 12,000 characters
    huge = "你" * 5_000_000
    bodies, truncated = tokenize_for_training(encoder, [huge], max_seq_len=32)
    assert len(bodies[0]) == 30 and truncated == 1
