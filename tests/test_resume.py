"""Training that survives a disconnect: periodic checkpoints, resume, half-written checkpoints, faults."""

import logging
import os
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cse_helpers.checkpoint import STATE_DIR, CheckpointError, list_training_states
from cse_helpers.constants import METHODS
from cse_helpers.objectives import SimCSE
from cse_helpers.train import OutOfMemoryError, train

from .conftest import SAMPLE_DEV, SAMPLE_TRAIN

SHORT_RUN = dict(batch_size=8, max_seq_len=32, max_steps=6, logging_steps=1, valid_steps=3, save_steps=2,
                 progress_bar=False, learning_rate=1e-3, dropout=0.2, eval_batch_size=64)
PROBE = ["今天天气很好", "怎么减肥最快", "蛋黄可以多吃吗"]


class Disconnect(Exception):
    """Stands for a Colab runtime that goes away."""


def stop_after(step):
    def on_log(record):
        if record["step"] == step:
            raise Disconnect()
    return on_log


@pytest.mark.slow  # three runs per method (about 4 s each)
@pytest.mark.parametrize("method", METHODS)
def test_stopped_and_resumed_run_matches_an_uninterrupted_one(tiny_bert_dir, tmp_path, method):
    common = dict(model=tiny_bert_dir, method=method, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV, **SHORT_RUN)
    if method == "esimcse":
        common["queue_size"] = 12  # fills within the run, so a lost queue would change the losses
    full = train(save_dir=str(tmp_path / "full"), **common)

    with pytest.raises(Disconnect):
        train(save_dir=str(tmp_path / "cut"), on_log=stop_after(5), **common)  # dies after step 5
    assert [os.path.basename(p) for p in list_training_states(str(tmp_path / "cut"))] == ["step-000002",
                                                                                          "step-000004"]
    resumed = train(save_dir=str(tmp_path / "cut"), resume=True, **common)  # continues from step 4

    losses = [r["loss"] for r in full.history["log"]]
    assert [r["step"] for r in resumed.history["log"]] == list(range(1, 7))
    assert [r["loss"] for r in resumed.history["log"]] == pytest.approx(losses, abs=1e-6)
    assert [r["spearman"] for r in resumed.history["eval"]] == pytest.approx(
        [r["spearman"] for r in full.history["eval"]], abs=1e-6)
    torch.testing.assert_close(resumed.encoder.encode(PROBE), full.encoder.encode(PROBE), atol=1e-6, rtol=0)


def test_resume_spans_an_epoch_boundary(tiny_bert_dir, tmp_path):
    texts = [f"第{i}个问题是什么" for i in range(20)]  # 3 batches of 8 an epoch (the last has 4)
    common = dict(model=tiny_bert_dir, train_texts=texts, **{**SHORT_RUN, "max_steps": 7, "save_steps": 2})
    full = train(save_dir=str(tmp_path / "full"), **common)
    with pytest.raises(Disconnect):
        train(save_dir=str(tmp_path / "cut"), on_log=stop_after(6), **common)
    resumed = train(save_dir=str(tmp_path / "cut"), resume=True, **common)
    assert [r["loss"] for r in resumed.history["log"]] == pytest.approx([r["loss"] for r in full.history["log"]],
                                                                          abs=1e-6)
    assert [r["epoch"] for r in resumed.history["log"]] == [1, 1, 1, 2, 2, 2, 3]


def test_only_the_newest_checkpoints_are_kept(tiny_bert_dir, tmp_path):
    train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), save_total_limit=2,
          **{**SHORT_RUN, "max_steps": 7})
    names = sorted(os.listdir(tmp_path / STATE_DIR))
    assert names == ["step-000006", "step-000007"]  # every 2 steps and at the end; the newest 2 kept
    files = set(os.listdir(tmp_path / STATE_DIR / "step-000007"))
    assert {"modules.safetensors", "optimizer.pt", "rng.pt", "trainer_state.json"} <= files


def test_half_written_checkpoint_is_skipped_and_said(tiny_bert_dir, tmp_path, caplog):
    common = dict(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, **SHORT_RUN)
    with pytest.raises(Disconnect):
        train(save_dir=str(tmp_path), on_log=stop_after(3), **common)
    root = tmp_path / STATE_DIR
    (root / "step-000004.tmp").mkdir()  # a write that was cut off
    (root / "step-000004.tmp" / "modules.safetensors").write_bytes(b"\x00" * 10)
    broken = root / "step-000003"
    broken.mkdir()
    (broken / "trainer_state.json").write_text("{}")  # a directory missing its other files
    with caplog.at_level(logging.WARNING, logger="cse_helpers.checkpoint"):
        assert [os.path.basename(p) for p in list_training_states(str(tmp_path))] == ["step-000002"]
    assert "never finished" in caplog.text and "incomplete checkpoint (missing modules.safetensors" in caplog.text
    resumed = train(save_dir=str(tmp_path), resume=True, **common)
    assert resumed.history["log"][0]["step"] == 1 and len(resumed.history["log"]) == 6


def test_resume_without_a_checkpoint_starts_from_zero(tiny_bert_dir, tmp_path):
    result = train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), resume=True,
                   **{**SHORT_RUN, "max_steps": 2})
    assert [r["step"] for r in result.history["log"]] == [1, 2]


def test_nan_after_a_checkpoint_leaves_it_loadable(tiny_bert_dir, tmp_path, poison_loss):
    poison_loss(3, float("inf"), once=True)
    with pytest.raises(FloatingPointError, match="at step 3"):
        train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **SHORT_RUN)
    assert [os.path.basename(p) for p in list_training_states(str(tmp_path))] == ["step-000002"]
    resumed = train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), resume=True, **SHORT_RUN)
    assert len(resumed.history["log"]) == 6 and all(r["loss"] == r["loss"] for r in resumed.history["log"])


def test_resume_with_other_settings_is_refused_naming_them(tiny_bert_dir, tmp_path):
    common = dict(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), resume=True)
    with pytest.raises(Disconnect):
        train(**common, on_log=stop_after(5), **SHORT_RUN)  # checkpoints at steps 2 and 4
    before = list_training_states(str(tmp_path))
    with pytest.raises(CheckpointError, match=r"--method 'simcse' there, 'esimcse' here; --learning_rate 0\.001 there, "
                       r"0\.0003 here; --batch_size 8 there, 6 here\. Resume it with its own settings"):
        train(method="esimcse", **common, **{**SHORT_RUN, "learning_rate": 3e-4, "batch_size": 6})
    with pytest.raises(CheckpointError, match=r"the training data \(\d+:\w+ there, 40:\w+ here"):
        train(**{**common, "train_path": None}, train_texts=[f"第{i}句" for i in range(40)], **SHORT_RUN)
    assert list_training_states(str(tmp_path)) == before  # nothing was touched
    # what may change between the parts of a run: periods, evaluation batch, progress bar
    resumed = train(**common, **{**SHORT_RUN, "logging_steps": 2, "save_steps": 3, "eval_batch_size": 16})
    assert [r["step"] for r in resumed.history["log"]] == [1, 2, 3, 4, 6]


def test_dev_set_with_one_class_is_refused_before_training(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("a\tb\t1\nc\td\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="all 2 pairs have the label 1"):
        train(model=str(tmp_path / "never-loaded"), train_path=SAMPLE_TRAIN, dev_path=str(dev), batch_size=8)


def test_out_of_memory_says_which_batch_size_fits(tiny_bert_dir, tmp_path, monkeypatch):
    original = SimCSE.embed

    def small_gpu(self, batch):  # pretend that more than 3 sentences (6 rows) do not fit
        if batch["input_ids"].size(0) > 6:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch)

    monkeypatch.setattr(SimCSE, "embed", small_gpu)
    with pytest.raises(OutOfMemoryError, match=r"out of memory at step 1 with batch_size=8.*--batch_size 2 fits.*"
                                           r"--batch_size 8 --mini_batch_size 2"):
        train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **SHORT_RUN)
    assert list_training_states(str(tmp_path)) == []


# ---- property: any save/logging/evaluation period, killed anywhere, resumes to the same run ----------

PROPERTY_RUN = dict(batch_size=8, max_seq_len=32, max_steps=7, progress_bar=False, learning_rate=1e-3, dropout=0.2,
                    eval_batch_size=64, warmup_ratio=0.2)


@pytest.fixture(scope="module")
def small_data(sample_texts, sample_pairs):
    """20 sentences (3 batches an epoch: the 7 steps cross two epoch ends) and 12 dev pairs of both labels."""
    pairs = [p for p in sample_pairs if p[2] == 1][:6] + [p for p in sample_pairs if p[2] == 0][:6]
    return list(sample_texts[:20]), pairs


@pytest.fixture(scope="module")
def reference_run(tiny_bert_dir, small_data, tmp_path_factory):
    """The uninterrupted run, logged and evaluated at every step (neither changes what is trained)."""
    texts, pairs = small_data
    return train(model=tiny_bert_dir, train_texts=texts, dev_pairs=pairs, logging_steps=1, valid_steps=1,
                 save_dir=str(tmp_path_factory.mktemp("reference")), **PROPERTY_RUN)


class Killer:
    """Raises Disconnect inside the forward pass of step ``step`` ("step"), or half-way through the
    first training-state write at or after it ("save": after its optimizer.pt, before rng.pt)."""

    def __init__(self, where: str, step: int):
        self.where, self.step, self.steps = where, step, 0

    def forward(self, original):
        def forward(objective, batch):
            self.steps += 1
            if self.where == "step" and self.steps == self.step:
                raise Disconnect()
            return original(objective, batch)
        return forward

    def save(self, original):
        def save(obj, path, *args, **kwargs):
            if self.where == "save" and self.steps >= self.step and path.endswith("rng.pt"):
                raise Disconnect()
            return original(obj, path, *args, **kwargs)
        return save


@pytest.mark.slow  # 14 killed and resumed runs (about 11 s)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(save_steps=st.integers(1, 4), logging_steps=st.integers(1, 4), valid_steps=st.integers(1, 4),
       kill_step=st.integers(1, 7), kill_where=st.sampled_from(["step", "save"]))
@example(save_steps=5, logging_steps=2, valid_steps=3, kill_step=6, kill_where="step")  # save_steps % logging_steps
@example(save_steps=3, logging_steps=2, valid_steps=7, kill_step=4, kill_where="save")
def test_killed_and_resumed_run_equals_the_uninterrupted_one(tiny_bert_dir, small_data, reference_run,
                                                             tmp_path_factory, save_steps, logging_steps,
                                                             valid_steps, kill_step, kill_where):
    texts, pairs = small_data
    save_dir = str(tmp_path_factory.mktemp("killed"))
    common = dict(model=tiny_bert_dir, train_texts=texts, dev_pairs=pairs, save_dir=save_dir, save_steps=save_steps,
                  logging_steps=logging_steps, valid_steps=valid_steps, **PROPERTY_RUN)
    killer = Killer(kill_where, kill_step)
    with mock.patch.object(SimCSE, "forward", killer.forward(SimCSE.forward)), \
            mock.patch("cse_helpers.checkpoint.torch.save", killer.save(torch.save)):
        try:
            train(**common)
        except Disconnect:
            pass
    resumed = train(resume=True, **common)

    losses = [r["loss"] for r in reference_run.history["log"]]  # one per step
    total = PROPERTY_RUN["max_steps"]
    ends = [s for s in range(1, total + 1) if s % logging_steps == 0 or s == total]
    starts = [1] + [end + 1 for end in ends[:-1]]
    assert [r["step"] for r in resumed.history["log"]] == ends
    assert [r["loss"] for r in resumed.history["log"]] == pytest.approx(
        [sum(losses[a - 1:b]) / (b - a + 1) for a, b in zip(starts, ends)], abs=1e-5)
    evaluated = [s for s in range(1, total + 1) if s % valid_steps == 0 or s == total]
    assert [r["step"] for r in resumed.history["eval"]] == evaluated
    assert [r["spearman"] for r in resumed.history["eval"]] == pytest.approx(
        [reference_run.history["eval"][s - 1]["spearman"] for s in evaluated], abs=1e-6)
    torch.testing.assert_close(resumed.encoder.encode(PROBE), reference_run.encoder.encode(PROBE), atol=1e-6, rtol=0)
