"""More negatives than one forward pass holds: gradient caching and several processes give the run
that one process with the whole batch gives (with dropout 0, a deterministic forward pass)."""

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from cse_helpers import course
from cse_helpers.arguments import TrainingArguments
from cse_helpers.batches import ViewBuilder
from cse_helpers.checkpoint import CheckpointError
from cse_helpers.classroom import plots
from cse_helpers.classroom.batch_study import batch_size_study
from cse_helpers.constants import METHODS
from cse_helpers.encoder import SentenceEncoder
from cse_helpers.objectives import split_views
from cse_helpers.preflight import fingerprint, plan_save_dir
from cse_helpers.scale.distributed import Ranks
from cse_helpers.scale.grad_cache import forward_backward, pieces
from cse_helpers.scale.memory import PeakMemory
from cse_helpers.tools.tiny import build_tiny_model
from cse_helpers.train import build_objective, train

from .conftest import ROOT, SAMPLE_DEV, SAMPLE_TRAIN, _corpus
from .large_batch_worker import (
    DETERMINISTIC,
    FAIL_ON_RANK,
    gradients_rank,
    one_step_gradients,
    run_rank,
    use_fixed_masks,
)

# batch 9: two processes get 5 and 4 sentences; mini-batches of 2 cut those into 3 and 2 pieces
RUN = dict(batch_size=9, max_seq_len=32, max_steps=4, logging_steps=1, valid_steps=4, progress_bar=False,
           learning_rate=1e-3, dropout=0.0, eval_batch_size=64, queue_size=12, device="cpu", pooler="mean")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, sample_texts, sample_pairs):
    """A tiny BERT whose config has no dropout: DiffCSE's discriminator (loaded from the config, not
    set by --dropout) is then deterministic too."""
    return build_tiny_model(str(tmp_path_factory.mktemp("tiny-no-dropout")), _corpus(sample_texts, sample_pairs),
                            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exported(save_dir) -> dict[str, torch.Tensor]:
    """The weights of a run's 'last' export: the encoder (and its MLP head, if it has one)."""
    files = [os.path.join(str(save_dir), "last", name) for name in ("model.safetensors", "cse_head.safetensors")]
    return {name: tensor for file in files if os.path.exists(file) for name, tensor in load_file(file).items()}


def losses(history) -> list[float]:
    return [r["loss"] for r in history["log"]]


def assert_same_run(history, weights, reference_history, reference_weights):
    assert [r["step"] for r in history["log"]] == [1, 2, 3, 4]
    assert losses(history) == pytest.approx(losses(reference_history), rel=1e-3)
    assert weights.keys() == reference_weights.keys()
    for name, tensor in reference_weights.items():
        torch.testing.assert_close(weights[name], tensor, atol=1e-4, rtol=0, msg=name)
    changed = max(float((weights[k] - v).abs().max()) for k, v in START.items() if k in weights)
    assert changed > 1e-3  # the runs trained: equal weights are not two untouched copies


START: dict = {}  # the untrained encoder's weights, by the names of an export


@pytest.fixture
def start_weights(tiny_dir):
    START.clear()
    START.update(SentenceEncoder.from_pretrained(tiny_dir).backbone.state_dict())
    assert START
    return START


@pytest.fixture(scope="module")
def one_process(tiny_dir, tmp_path_factory):
    """The reference: one process, the whole batch in one forward pass (per method, trained once)."""
    runs = {}

    def run(method, deterministic=False):
        if (method, deterministic) not in runs:
            save_dir = tmp_path_factory.mktemp(f"one-{method}")
            with pytest.MonkeyPatch.context() as patch:
                if deterministic:
                    use_fixed_masks(patch)
                result = train(model=tiny_dir, method=method, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV,
                               save_dir=str(save_dir), **RUN)
            runs[method, deterministic] = result.history, exported(save_dir)
        return runs[method, deterministic]

    return run


# ---- gradient caching on one process ------------------------------------------------------------------

@pytest.mark.slow  # several one-process runs (about 4 s)
@pytest.mark.parametrize("method", METHODS)
def test_gradient_caching_follows_the_full_batch(tiny_dir, tmp_path, one_process, start_weights, method,
                                                 monkeypatch):
    deterministic = method == "diffcse"  # its random masks depend on how the batch is cut; fixed here
    if deterministic:
        use_fixed_masks(monkeypatch)
    result = train(model=tiny_dir, method=method, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV,
                   save_dir=str(tmp_path), mini_batch_size=2, **RUN)
    assert_same_run(result.history, exported(tmp_path), *one_process(method, deterministic))
    if method == "diffcse":
        reference = one_process(method, deterministic)[0]["log"]
        assert [r["rtd"] for r in result.history["log"]] == pytest.approx([r["rtd"] for r in reference], rel=1e-3)


def test_with_dropout_the_second_pass_redraws_the_first_pass_masks(tiny_dir, monkeypatch):
    """Dropout on: the cached gradient is the gradient of the loss of the embeddings that step 1 made,
    because each piece's random state is saved in step 1 and restored in step 3. Without that, step 3
    would draw other masks and the gradient would belong to no loss at all."""
    encoder = SentenceEncoder.from_pretrained(tiny_dir, dropout=0.3)
    objective = build_objective(TrainingArguments(model=tiny_dir, train_path="x"), encoder)
    objective.prepare(torch.device("cpu"), "fp32")
    texts = ["今天天气很好", "怎么减肥最快", "蛋黄可以多吃吗", "北京有什么好玩的", "手机充不进电怎么办",
             "哪里可以学英语"]
    batch = encoder.batch(texts, views=ViewBuilder(encoder, 32))

    def gradients():
        return [p.grad.clone() for p in objective.parameters() if p.grad is not None]

    objective.zero_grad()
    torch.manual_seed(0)  # the reference: the same pieces encoded with gradient, kept, one loss
    z = torch.cat([objective.embed(piece) for piece in pieces(batch, 4)])  # (12, H)
    reference_loss = objective.contrastive_loss(*split_views(z))
    reference_loss.backward()
    reference = gradients()

    def cached():
        objective.zero_grad()
        torch.manual_seed(0)
        out = forward_backward(objective, batch, mini_batch_size=2)
        return out["loss"], gradients()

    loss, grads = cached()
    assert float(loss) == pytest.approx(reference_loss.detach().item(), rel=1e-6)
    assert len(grads) == len(reference) > 0
    for a, b in zip(grads, reference):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)

    monkeypatch.setattr("cse_helpers.scale.grad_cache.set_random_state", lambda state, device: None)
    _, unrestored = cached()  # fresh masks in step 3: another gradient
    assert max(float((a - b).abs().max()) for a, b in zip(unrestored, reference)) > 1e-3


def test_pieces_keep_view_pairs_and_drop_padding():
    ids = torch.tensor([[1, 5, 2, 0], [1, 5, 2, 0], [1, 6, 7, 2], [1, 6, 7, 2], [1, 2, 0, 0], [1, 2, 0, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids > 0).long()}
    parts = pieces(batch, 2)
    assert [p["input_ids"].tolist() for p in parts] == [[[1, 5, 2]] * 2, [[1, 6, 7, 2]] * 2, [[1, 2]] * 2]


# ---- several processes ----------------------------------------------------------------------------------

def spawn(world_size, kwargs, **options):
    mp.spawn(run_rank, args=(world_size, free_port(), kwargs, options), nprocs=world_size, join=True)


@pytest.mark.slow  # two gloo processes spawned
@pytest.mark.parametrize("method,mini_batch_size", [(method, 0) for method in METHODS] + [("esimcse", 2)])
def test_two_processes_follow_one_process(tiny_dir, tmp_path, one_process, start_weights, method,
                                          mini_batch_size):
    deterministic = method == "diffcse"
    spawn(2, dict(model=tiny_dir, method=method, train_path=SAMPLE_TRAIN, dev_path=SAMPLE_DEV,
                  save_dir=str(tmp_path), mini_batch_size=mini_batch_size, save_steps=2, **RUN),
          **{DETERMINISTIC: deterministic})
    history = json.loads((tmp_path / "last" / "history.json").read_text())
    assert_same_run(history, exported(tmp_path), *one_process(method, deterministic))
    # rank 0 alone saved: one set of exports and training states, nothing per rank
    assert sorted(os.listdir(tmp_path)) == ["best", "checkpoints", "curves.png", "last"]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step-000002", "step-000004"]


@pytest.mark.slow  # two gloo processes spawned
@pytest.mark.parametrize("method", METHODS)
def test_two_processes_sum_to_the_one_process_gradient(tiny_dir, tmp_path, method, monkeypatch):
    """Not only Adam's direction: the gradient itself (Adam would hide a factor of 2, e.g. averaging the
    processes' shares instead of adding them up). 7 sentences: shares of 4 and 3, pieces of 2."""
    use_fixed_masks(monkeypatch)
    reference = one_step_gradients(tiny_dir, method)
    out = tmp_path / "grads.pt"
    mp.spawn(gradients_rank, args=(2, free_port(), tiny_dir, method, [0, 2], str(out)), nprocs=2)
    by_size = torch.load(out)
    assert sorted(by_size) == [0, 2]  # the whole share in one pass, and in pieces of 2
    for gathered in by_size.values():
        assert gathered.keys() == reference.keys()
        for name, grad in reference.items():
            torch.testing.assert_close(gathered[name], grad, atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.slow  # gloo processes spawned three times
def test_resumed_two_process_run_equals_the_uninterrupted_one(tiny_dir, tmp_path):
    """Each process's dropout masks are saved (rank 0 writes every process's random state)."""
    kwargs = dict(model=tiny_dir, method="esimcse", train_path=SAMPLE_TRAIN, save_dir=str(tmp_path),
                  save_steps=2, **{**RUN, "dropout": 0.2})
    spawn(2, kwargs)
    uninterrupted = exported(tmp_path)
    shutil.rmtree(tmp_path / "checkpoints" / "step-000004")  # as if it had died after step 2's checkpoint
    spawn(2, {**kwargs, "resume": True})  # steps 3 and 4 again, from step 2's state
    resumed = exported(tmp_path)
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0, msg=name)


@pytest.mark.slow  # two gloo processes spawned
def test_a_failing_process_stops_the_others_with_its_error(tiny_dir, tmp_path):
    with pytest.raises(Exception, match="rank 1 broke at step 2"):
        spawn(2, dict(model=tiny_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), **RUN),
              **{FAIL_ON_RANK: 1})


def test_resume_with_another_number_of_processes_is_refused(tiny_dir, tmp_path):
    train(model=tiny_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), save_steps=2, **RUN)
    args = TrainingArguments(model=tiny_dir, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path), resume=True,
                             save_steps=2, **RUN)
    from cse_helpers.data import read_train_texts

    data = {"train": fingerprint(read_train_texts(SAMPLE_TRAIN)), "dev": None, "processes": 2}
    with pytest.raises(CheckpointError, match=r"number of processes \(1 there, 2 here: resume with torchrun "
                                              r"--nproc_per_node 1"):
        plan_save_dir(args, data)


@pytest.mark.parametrize("n,world_size", [(9, 2), (8, 2), (5, 4), (3, 3), (64, 8)])
def test_shards_cover_the_batch_in_order_without_overlap(n, world_size):
    shards = [Ranks(rank, world_size).shard(n) for rank in range(world_size)]
    assert [i for s in shards for i in range(n)[s]] == list(range(n))
    sizes = [s.stop - s.start for s in shards]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.slow  # torchrun as a subprocess
def test_torchrun_trains_once_and_matches_one_process(tiny_dir, tmp_path, one_process, start_weights):
    """The command of the README: two gloo processes on the CPU, one 'saved:' line, one run's files."""
    flags = ["--model", tiny_dir, "--train_path", SAMPLE_TRAIN, "--dev_path", SAMPLE_DEV, "--save_dir",
             str(tmp_path), "--batch_size", "9", "--max_seq_len", "32", "--max_steps", "4", "--logging_steps", "1",
             "--valid_steps", "4", "--learning_rate", "1e-3", "--dropout", "0", "--eval_batch_size", "64",
             "--queue_size", "12", "--device", "cpu", "--pooler", "mean", "--no-progress_bar"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(free_port()), "-m", "cse_helpers.train", *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved:") == 1, done.stdout
    assert "processes=2" in done.stderr
    history = json.loads((tmp_path / "last" / "history.json").read_text())
    assert_same_run(history, exported(tmp_path), *one_process("simcse"))


# ---- what the course and the benchmark show --------------------------------------------------------------

def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(64 * 2**20)  # 256 MiB, touched
        time.sleep(0.1)  # sampled every 20 ms
        del block
    assert memory.peak_mib - memory.start_mib > 200


@pytest.mark.slow  # a run per batch size (about 12 s)
def test_batch_size_study_trains_each_size_and_measures_both_ways(tiny_dir, tmp_path):
    c = course.Course(mode="quick", device=torch.device("cpu"), precision="fp32", seed=0, model=tiny_dir,
                      model_description="", data_dir=os.path.join(ROOT, "data"), runs_dir=str(tmp_path),
                      settings={**course.MODE_SETTINGS["quick"], "max_seq_len": 32, "eval_batch_size": 64})
    rows = batch_size_study(c, [4, 16], mini_batch_size=4, steps=2)
    assert [r["batch_size"] for r in rows] == [4, 16] and [r["sentences_seen"] for r in rows] == [8, 32]
    assert rows[0]["gain_vs_smallest"] == (0.0, 0.0, 0.0)
    gain, low, high = rows[1]["gain_vs_smallest"]
    assert gain == pytest.approx(rows[1]["spearman"] - rows[0]["spearman"]) and low <= gain <= high
    for r in rows:
        assert r["peak_mib_plain"] > 0 and r["peak_mib_cached"] > 0 and r["seconds"] > 0
        assert r["spearman_ci"][0] <= r["spearman"] <= r["spearman_ci"][1]
        assert r["log_b"] == pytest.approx(math.log(r["batch_size"])) and r["first_loss"] > 0
        history = json.loads((tmp_path / "batch_size" / f"b{r['batch_size']}" / "last" / "history.json").read_text())
        assert len(history["log"]) == 2
    assert not (tmp_path / "batch_size" / "memory").exists()  # the memory probes leave nothing behind
    figure = plots.plot_batch_study(rows, mini_batch_size=4)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["4", "16"]
    assert len(figure.axes[1].patches) == 4  # a bar per size, with and without caching


def test_the_memory_figure_says_which_batch_did_not_fit():
    rows = [{"batch_size": b, "sentences_seen": 10 * b, "spearman": 0.4, "spearman_ci": (0.35, 0.45),
             "peak_mib_plain": plain, "peak_mib_cached": 900.0} for b, plain in ((64, 5000.0), (1024, None))]
    figure = plots.plot_batch_study(rows, mini_batch_size=64)
    assert [t.get_text() for t in figure.axes[1].texts] == ["does not fit"]


@pytest.mark.slow  # the benchmark's runs (about 4 s)
def test_large_batch_benchmark_prints_each_run(capsys, tiny_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("large_batch", os.path.join(ROOT, "benchmarks", "large_batch.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "figures.json"
    assert bench.main(["--model", tiny_dir, "--train_path", os.path.join(ROOT, "data", "train.txt"),
                       "--batch_sizes", "4", "16", "--mini_batch_size", "4", "--plain_max", "4", "--steps", "1",
                       "--max_seq_len", "32", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cached M=4" in printed and "plain" in printed
    runs = json.loads(out.read_text())["runs"]
    assert [(r["batch_size"], r["mini_batch_size"]) for r in runs] == [(4, 0), (4, 4), (16, 4)]
    assert all(r["steps_per_s"] > 0 and r["peak_mib"] >= 0 for r in runs)
