import copy
import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from scipy.stats import spearmanr

from cse_helpers import DEFAULT_MODEL, default_model_available
from cse_helpers.arguments import TrainingArguments, build_parser
from cse_helpers.batches import ViewBuilder, batch_indices
from cse_helpers.constants import ERNIE_MODEL, METHODS, TUTORIAL_PAIRS
from cse_helpers.data import DataFormatError
from cse_helpers.encoder import SentenceEncoder, resolve_model
from cse_helpers.inference import similarity
from cse_helpers.losses import info_nce
from cse_helpers.objectives import SimCSE
from cse_helpers.runtime import pick_precision
from cse_helpers.train import Trainer, main, train

from .conftest import ROOT, SAMPLE_DEV, SAMPLE_TRAIN

QUICK = dict(batch_size=16, max_seq_len=32, max_steps=4, logging_steps=2, valid_steps=2, progress_bar=False,
             learning_rate=1e-4, eval_batch_size=64)


def checkpoint_files(path):
    return set(os.listdir(path))


@pytest.mark.parametrize("method", METHODS)
def test_cli_run_writes_checkpoints_that_load_back(tiny_bert_dir, tmp_path, method):
    save_dir = tmp_path / method
    argv = ["--model", tiny_bert_dir, "--method", method, "--train_path", SAMPLE_TRAIN, "--dev_path", SAMPLE_DEV,
            "--save_dir", str(save_dir), "--batch_size", "16", "--max_seq_len", "32", "--max_steps", "4",
            "--valid_steps", "2", "--logging_steps", "2", "--no-progress_bar", "--dropout", "0.3"]
    assert main(argv) == 0
    for name in ("best", "last"):
        files = checkpoint_files(save_dir / name)
        assert {"model.safetensors", "config.json", "tokenizer_config.json", "training_args.json", "history.json",
                "curves.png", "cse_helpers.json"} <= files
        assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)  # no pickles
    args = json.loads((save_dir / "last" / "training_args.json").read_text())
    assert args["method"] == method and args["dropout"] == 0.3
    history = json.loads((save_dir / "last" / "history.json").read_text())
    assert [r["step"] for r in history["log"]] == [2, 4] and [r["step"] for r in history["eval"]] == [2, 4]
    assert (save_dir / "curves.png").exists()  # --img_log_dir defaults to save_dir


@pytest.mark.parametrize("method", METHODS)
def test_trained_encoder_and_reloaded_checkpoint_agree(tiny_bert_dir, tmp_path, method):
    result = train(model=tiny_bert_dir, method=method, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **QUICK)
    assert result.best_dir is None and result.final_scores is None  # no dev set: only the last checkpoint
    expected = similarity(result.encoder, TUTORIAL_PAIRS)
    reloaded = SentenceEncoder.from_pretrained(result.last_dir)
    assert similarity(reloaded, TUTORIAL_PAIRS) == pytest.approx(expected, abs=1e-5)
    texts = [s for pair in TUTORIAL_PAIRS for s in pair]
    before = SentenceEncoder.from_pretrained(tiny_bert_dir).encode(texts, normalize=False)
    assert (result.encoder.encode(texts, normalize=False) - before).abs().max() > 1e-3  # training changed them


def test_logged_loss_is_the_mean_of_its_window(tiny_bert_dir, tmp_path, monkeypatch):
    seen = []
    original = SimCSE.contrastive_loss

    def recording_loss(self, z1, z2):
        loss = original(self, z1, z2)
        seen.append(loss.item())
        return loss

    monkeypatch.setattr(SimCSE, "contrastive_loss", recording_loss)
    records = []
    train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), on_log=records.append,
          **{**QUICK, "max_steps": 6, "logging_steps": 3})
    assert [r["step"] for r in records] == [3, 6]
    assert records[0]["loss"] == pytest.approx(sum(seen[:3]) / 3, rel=1e-5)
    assert records[1]["loss"] == pytest.approx(sum(seen[3:6]) / 3, rel=1e-5)  # not a running mean since step 1
    assert records[0]["steps_per_s"] > 0 and records[0]["sentences_per_s"] > records[0]["steps_per_s"]
    assert records[1]["learning_rate"] < records[0]["learning_rate"]  # linear decay


def test_final_scores_are_the_last_step_evaluations_cosines(tiny_bert_dir, tmp_path):
    from cse_helpers.data import read_pairs

    pairs = read_pairs(SAMPLE_DEV)
    result = train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV, save_dir=str(tmp_path), **QUICK)
    assert len(result.final_scores) == len(pairs)
    assert "scores" not in result.history["eval"][-1]  # one number per pair stays out of the history
    assert spearmanr(result.final_scores, [p[2] for p in pairs])[0] == pytest.approx(
        result.history["eval"][-1]["spearman"], abs=1e-6)
    assert result.history["eval"][-1]["step"] == 4  # the final model's: the last step is always evaluated


def test_nan_loss_stops_with_the_step_and_keeps_the_best_checkpoint(tiny_bert_dir, tmp_path, poison_loss):
    poison_loss(3, float("nan"))
    with pytest.raises(FloatingPointError, match="NaN or infinite at step 3"):
        train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV, save_dir=str(tmp_path),
              **{**QUICK, "max_steps": 6})
    best = tmp_path / "best"
    assert json.loads((best / "history.json").read_text())["eval"][-1]["step"] == 2
    reloaded = SentenceEncoder.from_pretrained(str(best))
    assert all(math.isfinite(s) for s in similarity(reloaded, TUTORIAL_PAIRS))


def test_bad_settings_fail_before_the_model_is_loaded(tmp_path):
    missing_model = str(tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="batch_size=1"):
        train(model=missing_model, train_path=SAMPLE_TRAIN, batch_size=1)
    with pytest.raises(ValueError, match="method='moco' is not one of simcse, esimcse, diffcse"):
        train(model=missing_model, train_path=SAMPLE_TRAIN, method="moco")
    small = tmp_path / "small.txt"
    small.write_text("一\n二\n三\n", encoding="utf-8")
    with pytest.raises(ValueError, match="3 sentences, fewer than one batch of 64"):
        train(model=missing_model, train_path=str(small))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty"):
        train(model=missing_model, train_path=str(empty))
    with pytest.raises(ValueError, match="No training data"):
        train(model=missing_model)


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["--model", str(tmp_path), "--train_path", SAMPLE_TRAIN, "--batch_size", "1"]) == 2
    assert "batch_size=1" in capsys.readouterr().err


def test_max_seq_len_above_the_model_limit_is_refused(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="above this model's limit of 64"):
        train(model=tiny_bert_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **{**QUICK, "max_seq_len": 65})


def test_identical_sentences_are_removed_from_a_batch():
    texts = ["a", "b", "a", "c", "a", "d", "e", "f"]
    batches, removed = batch_indices(texts, batch_size=8, generator=torch.Generator().manual_seed(0))
    assert removed == 2 and len(batches) == 1
    assert sorted(texts[i] for i in batches[0]) == ["a", "b", "c", "d", "e", "f"]
    batches, removed = batch_indices(list("abcdefg"), batch_size=3, generator=torch.Generator().manual_seed(0))
    assert removed == 0 and sorted(len(b) for b in batches) == [3, 4]  # a lone last sentence joins a batch
    assert sorted(i for b in batches for i in b) == list(range(7))  # nothing dropped


def test_views_repeat_words_in_the_positive_only_unless_asked(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    body = encoder.body_ids(["今天天气很好，我们去公园吧"])[0]
    paper = ViewBuilder(encoder, 64, repeats_words=True, dup_rate=0.32, seed=1)
    firsts, seconds = zip(*(paper.views(body) for _ in range(50)))
    assert all(first == body for first in firsts)
    assert any(len(second) > len(body) for second in seconds)
    both = ViewBuilder(encoder, 64, repeats_words=True, repeat_both_views=True, seed=1)
    assert any(len(both.views(body)[0]) > len(body) for _ in range(50))
    batch = paper([body, body[:3]])
    assert batch["input_ids"].shape[0] == 4  # 2B rows
    assert ViewBuilder(encoder, 64).views(body) == (body, body)


def test_truncated_sentences_are_counted(tiny_bert_dir, tmp_path):
    records = []
    texts = ["很" * 40] * 3 + [f"第{i}句话" for i in range(13)]
    train(model=tiny_bert_dir, train_texts=texts, save_dir=str(tmp_path), on_log=records.append,
          **{**QUICK, "max_seq_len": 16, "max_steps": 2})
    assert records[-1]["truncated"] == 3


def test_precision_policy(monkeypatch):
    cpu = torch.device("cpu")
    assert pick_precision(cpu) == "fp32"
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        pick_precision(cpu, "bf16")
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # Colab's T4
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 claims
    assert pick_precision(cuda) == "fp16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # H100
    assert pick_precision(cuda) == "bf16"
    assert pick_precision(cuda, "fp32") == "fp32"


def test_training_arguments_cli_flags_cover_the_tutorial():
    flags = {a.dest for a in build_parser()._actions}
    tutorial = {"model", "train_path", "dev_path", "save_dir", "img_log_dir", "img_log_name", "learning_rate",
                "dropout", "batch_size", "max_seq_len", "valid_steps", "logging_steps", "num_train_epochs", "device"}
    ours = {"method", "pooler", "temperature", "margin", "dup_rate", "queue_size", "momentum", "generator",
            "mask_ratio", "lambda_rtd", "max_steps", "seed", "precision", "save_steps", "resume"}
    assert tutorial | ours <= flags
    parsed = build_parser().parse_args(["--dropout", "0.3", "--max_steps", "5", "--no-mlp_only_train",
                                                     "--save_steps", "50", "--resume"])
    args = TrainingArguments(**vars(parsed))
    assert (args.dropout, args.max_steps, args.mlp_only_train) == (0.3, 5, False)
    assert (args.save_steps, args.resume) == (50, True)


def test_help_explains_every_flag_with_its_field(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps the lines (also after a hyphen)
    for f in dataclasses.fields(TrainingArguments):
        explanation = f.metadata["help"]
        assert len(explanation) > 10 and f"--{f.name}" in text
        assert "".join(explanation.split()) in text  # the field's own text: one source


def test_trainer_step_is_the_step_written_out(tiny_bert_dir):
    """Trainer.step = two views, one forward pass, InfoNCE, backward, clipping, AdamW: the same loss and the
    same updated weights as those lines written out (the same batch, the same dropout draws)."""
    args = TrainingArguments(model=tiny_bert_dir, batch_size=4, max_seq_len=32, learning_rate=1e-2,
                             warmup_ratio=0.0, max_steps=10, max_grad_norm=1.0)
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, dropout=0.1)
    objective = SimCSE(encoder).prepare(torch.device("cpu"), "fp32")
    written_out = copy.deepcopy(objective)
    bodies = encoder.body_ids(["今天天气很好", "怎么减肥最快", "蛋黄可以多吃吗", "这种图片是用什么软件制作的"])
    trainer = Trainer(args, objective, bodies)
    torch.manual_seed(0)
    loss = trainer.step(bodies)["loss"]

    optimizer = torch.optim.AdamW(written_out.parameters(), lr=1e-2, weight_decay=0.0)
    batch = written_out.encoder.pad([row for body in bodies for row in (body, body)], 32)  # a1 a2 b1 b2 ...: 2B rows
    torch.manual_seed(0)
    z = written_out.encoder(batch["input_ids"], batch["attention_mask"]).view(4, 2, -1)  # (B, 2, H)
    expected = info_nce(z[:, 0], z[:, 1], temperature=0.05)
    expected.backward()
    torch.nn.utils.clip_grad_norm_(written_out.parameters(), 1.0)
    optimizer.step()

    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    for (name, ours), theirs in zip(objective.named_parameters(), written_out.parameters()):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5, msg=name)
    before = SentenceEncoder.from_pretrained(tiny_bert_dir).backbone.embeddings.word_embeddings.weight
    assert not torch.equal(encoder.backbone.embeddings.word_embeddings.weight, before)  # the step changed them


@pytest.mark.slow  # two command lines run as subprocesses (about 10 s)
def test_python_dash_m_train_and_inference(tiny_bert_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "cse_helpers.train", "--model", tiny_bert_dir, "--train_path",
                          SAMPLE_TRAIN, "--save_dir", str(tmp_path), "--batch_size", "8", "--max_steps", "2",
                          "--no-progress_bar"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "saved:" in run.stdout
    pair = TUTORIAL_PAIRS[1]
    out = subprocess.run([sys.executable, "-m", "cse_helpers.inference", "--model", str(tmp_path / "last"), *pair],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    score, a, b = out.stdout.strip().split("\t")
    assert (a, b) == pair and -1.0 <= float(score) <= 1.0
    expected = similarity(SentenceEncoder.from_pretrained(str(tmp_path / "last")), [pair])[0]
    assert float(score) == pytest.approx(expected, abs=1e-4)


needs_default_model = pytest.mark.skipif(not default_model_available(), reason="cse_helpers/default_model not built")


@needs_default_model
def test_one_training_step_changes_the_shipped_model(tmp_path):
    before = SentenceEncoder.from_pretrained(DEFAULT_MODEL).encode(list(TUTORIAL_PAIRS[0]), normalize=False)
    result = train(model=DEFAULT_MODEL, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path),
                   **{**QUICK, "max_steps": 1, "warmup_ratio": 0.0})
    after = result.encoder.encode(list(TUTORIAL_PAIRS[0]), normalize=False)
    assert (after - before).abs().max() > 1e-4


@needs_default_model
def test_without_model_and_without_hub_the_shipped_model_is_used(monkeypatch):
    import transformers

    def unreachable(name, *args, **kwargs):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {name}")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", unreachable)
    assert resolve_model(None) == DEFAULT_MODEL
    assert resolve_model("some/model") == "some/model"  # an explicit --model is never replaced
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda name, *a, **k: object())
    assert resolve_model(None) == ERNIE_MODEL
