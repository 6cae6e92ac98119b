"""The throughput benchmark runs end to end on a tiny model (structure only: no timing is asserted)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark():
    """benchmarks/ is not a package: load the script as the module ``throughput`` (once)."""
    if "throughput" not in sys.modules:
        spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks" / "throughput.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["throughput"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["throughput"]


@pytest.mark.slow  # the benchmark's every loop on a tiny model (about 4 s)
def test_benchmark_config_on_a_tiny_model(tmp_path):
    bench = _load_benchmark()
    has_st = importlib.util.find_spec("sentence_transformers") is not None
    texts, pairs, _, _ = bench.load_data(ROOT / "data" / "train.txt", ROOT / "data" / "dev.tsv")
    settings = bench.Settings(batch_size=8, max_seq_len=32, warmup=1, window=1, windows=2, rounds=1,
                              eval_pairs=16, eval_rounds=1, device="cpu")
    loops = ("tutorial", "st", "ours") if has_st else ("tutorial", "ours")
    eval_loops = tuple(k for k in bench.EVAL_LOOPS if has_st or k != "st")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = bench.benchmark_config({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
                                        texts, pairs, settings, methods=("simcse", "esimcse"), loops=loops,
                                        eval_loops=eval_loops, work_dir=str(tmp_path), log=lambda _: None)
    finally:
        torch.set_num_threads(threads)

    assert set(result["train"]) == {"simcse", "esimcse"}
    assert set(result["train"]["simcse"]) == set(loops)
    assert "st" not in result["train"]["esimcse"]  # sentence-transformers stands in for SimCSE only
    for figures in result["train"].values():
        for f in figures.values():
            assert f["windows"] == 2  # one per timed window, warm-up dropped
            assert f["sentences_per_s"] > 0 and f["steps_per_s"] > 0 and f["model_tflops"] > 0
            assert f["peak_mib"] > 0 and f["mfu"] is None  # no peak known on a CPU
    assert set(result["eval"]) == set(eval_loops)
    assert all(f["sentences_per_s"] > 0 and f["sentences"] == 32 for f in result["eval"].values())
    expected = {"train/simcse/ours_vs_tutorial", "train/esimcse/ours_vs_tutorial", "eval/ours_vs_tutorial",
                "eval/ours_vs_unsorted"} | ({"train/simcse/ours_vs_st", "eval/ours_vs_st"} if has_st else set())
    assert expected <= set(result["ratios"])
    assert all(v > 0 and math.isfinite(v) for v in result["ratios"].values())
    table = bench.format_table([result])
    assert "ours_vs_tutorial" in table and "| custom | simcse | ours |" in table


def test_flops_and_peak_helpers():
    bench = _load_benchmark()
    n, t = 1000, 10.0
    assert bench.flops_per_sentence("simcse", n, t, t) == 6 * n * 2 * t
    assert bench.flops_per_sentence("esimcse", n, t, 12.0) == 6 * n * 22.0 + 2 * n * t
    assert bench.flops_per_sentence("diffcse", n, t, t) == 6 * n * 2 * t + 8 * n * t
    assert bench.peak_tflops(torch.device("cpu"))[1] is None
    assert bench.peak_tflops(torch.device("cpu"), 100.0)[1] == 100.0


@pytest.mark.parametrize("steps,window,warmup,expected", [(6, 2, 1, 2), (4, 2, 0, 2), (3, 1, 1, 2)])
def test_windows_from_times(steps, window, warmup, expected):
    bench = _load_benchmark()
    windows = bench._windows_from_times([0.1 * i for i in range(steps + 1)], window, warmup, [8] * steps)
    assert len(windows) == expected
    assert all(w["steps_per_s"] == pytest.approx(10.0) and w["sentences_per_s"] == pytest.approx(80.0)
               for w in windows)
