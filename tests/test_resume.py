"""Training that survives a disconnect: periodic checkpoints, resume, half-written checkpoints, faults."""

import logging
import os

import pytest
import torch

from cse_helpers.checkpoint import STATE_DIR, list_training_states
from cse_helpers.models import SimCSE
from cse_helpers.train import train

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


@pytest.mark.parametrize("method", ["simcse", "esimcse", "diffcse"])
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


def test_resume_with_another_method_is_refused(tiny_bert_dir, tmp_path):
    train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **{**SHORT_RUN, "max_steps": 2})
    with pytest.raises(ValueError, match="does not match this run's model"):
        train(model=tiny_bert_dir, method="esimcse", train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), resume=True,
              **{**SHORT_RUN, "max_steps": 4})


def test_dev_set_with_one_class_is_refused_before_training(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("a\tb\t1\nc\td\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="all 2 pairs have the label 1"):
        train(model=str(tmp_path / "never-loaded"), train_path=SAMPLE_TRAIN, dev_path=str(dev), batch_size=8)


def test_out_of_memory_says_which_batch_size_fits(tiny_bert_dir, tmp_path, monkeypatch):
    original = SimCSE.forward

    def small_gpu(self, batch):  # pretend that more than 3 sentences (6 rows) do not fit
        if batch["input_ids"].size(0) > 6:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch)

    monkeypatch.setattr(SimCSE, "forward", small_gpu)
    with pytest.raises(RuntimeError, match=r"out of memory at step 1 with batch_size=8.*--batch_size 2 fits"):
        train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **SHORT_RUN)
    assert list_training_states(str(tmp_path)) == []
