"""Training and evaluation throughput: the course's loop side by side with two others, in one run.

    python benchmarks/throughput.py                          # tiny and small configs, CPU or GPU
    python benchmarks/throughput.py --configs base --device cuda --markdown results.md

For each model config (built from a config with random weights: speed does not depend on the
weights) and each method (SimCSE, ESimCSE, DiffCSE), on LCQMC-length sentences, batch 64,
max_seq_len 64, it times three training loops on the same model and the same sentences:

- ``tutorial``: a loop faithful to the tutorial the course is based on (a BASELINE written here, not
  course code): each batch tokenized in the loop and padded to max_seq_len, fp32, one forward pass
  per view, ESimCSE's word repetition on the batch's tokens in Python, the momentum update one
  parameter at a time, ``loss.item()`` every step. The tutorial passed no attention mask with its
  padded inputs; this baseline passes one (a correct model; the speed is the same).
- ``st``: sentence-transformers, what a user would pick instead: ``SentenceTransformerTrainer`` with
  ``MultipleNegativesRankingLoss`` on (s, s) pairs (= SimCSE, so SimCSE only), CLS pooling.
- ``ours``: ``cse_helpers.train.train`` itself, timed through its ``on_log`` records.
- ``ours+compile`` (with ``--compile``): the same with ``torch_compile=True``.

Figures are medians over timed windows of ``--steps`` steps, after ``--warmup`` windows; each loop
runs ``--rounds`` times, interleaved with the others (tutorial, st, ours, ours, st, tutorial, ...)
so that a change in the machine's load hits all of them alike. Evaluation encoding is timed on the
LCQMC dev pairs: the tutorial's way (pairs in file order, every sentence, padded to max_seq_len,
batch 64), an unsorted loop with dynamic padding (batch 64, every sentence), sentence-transformers'
``encode`` (sorted by length, batch 64) and ours (``SentenceEncoder.encode``, as ``evaluate_pairs``
calls it: distinct sentences sorted by length, batch 256; ``ours_b64``: the same at batch 64).

Peak memory: the process's RSS on CPU (sampled every 20 ms; the loops share one process, so memory
that earlier loops freed is handed back to the OS first, and the increase over the RSS at the
loop's start is printed too), ``torch.cuda.max_memory_allocated`` on GPU.

Model FLOPs utilisation (GPU): 6 x non-embedding parameters x real (non-padding) tokens per second,
counting for each method the passes it makes (ESimCSE: + 2 N for the momentum encoder on the first
view; DiffCSE: + 6 N for the discriminator and 2 N for the generator on the first view), against
the card's dense bf16/fp16 peak (``--peak_tflops`` overrides the table). The same useful FLOPs are
credited to every loop, so padding counts as waste.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere without installing the package
    sys.path.insert(0, str(ROOT))

from cse_helpers import augment  # noqa: E402
from cse_helpers.arguments import TrainingArguments  # noqa: E402
from cse_helpers.constants import METHODS  # noqa: E402
from cse_helpers.data import read_pairs, read_train_texts  # noqa: E402
from cse_helpers.encoder import SentenceEncoder  # noqa: E402
from cse_helpers.losses import info_nce  # noqa: E402
from cse_helpers.runtime import pick_device, pick_precision  # noqa: E402
from cse_helpers.scale.memory import PeakMemory  # noqa: E402
from cse_helpers.train import build_objective, train  # noqa: E402

CONFIGS = {  # hidden size, layers, heads (intermediate = 4 x hidden)
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},  # BERT-base / ERNIE-3.0-base
}
SHARED_DATA = ROOT.parent / "shared" / "data" / "lcqmc"
TRAIN_FILES = (SHARED_DATA / "train.txt", ROOT / "data" / "train.txt")
DEV_FILES = (SHARED_DATA / "dev.tsv", ROOT / "data" / "dev.tsv")
TRAIN_LOOPS = ("tutorial", "st", "ours", "ours+compile")
EVAL_LOOPS = ("tutorial", "unsorted", "st", "ours", "ours_b64")
# Dense bf16/fp16 tensor-core peaks in TFLOP/s (data-center cards; others: --peak_tflops), matched
# in this order against torch.cuda.get_device_name().
PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("A100", 312.0),
               ("L40S", 362.0), ("L4", 121.0), ("T4", 65.0), ("V100", 125.0))


@dataclasses.dataclass
class Settings:
    """What every loop of one benchmark run shares."""

    batch_size: int = 64
    max_seq_len: int = 64
    warmup: int = 1  # windows dropped at the start of each run of a loop
    window: int = 5  # steps per timed window
    windows: int = 2  # timed windows per run of a loop
    rounds: int = 2  # runs of each loop, interleaved
    compile_warmup: int = 2  # warm-up windows for torch.compile (the first holds the compilation)
    eval_pairs: int = 1000  # dev pairs encoded per evaluation figure (0: all)
    eval_rounds: int = 3
    learning_rate: float = 3e-5
    seed: int = 42
    device: str = "cpu"

    @property
    def steps(self) -> int:
        return (self.warmup + self.windows) * self.window


# ------------------------------------------------------------------------------------------------
# Data, models, measurement
# ------------------------------------------------------------------------------------------------

def first_existing(paths) -> Path:
    for path in paths:
        if Path(path).is_file():
            return Path(path)
    raise FileNotFoundError(f"None of {', '.join(map(str, paths))} exists.")


def load_data(train_path=None, dev_path=None) -> tuple[list[str], list[tuple], str, str]:
    """LCQMC sentences and dev pairs when ../shared/data is there, else the project's sample."""
    train_file = Path(train_path) if train_path else first_existing(TRAIN_FILES)
    dev_file = Path(dev_path) if dev_path else first_existing(DEV_FILES)
    return list(read_train_texts(train_file)), read_pairs(dev_file), str(train_file), str(dev_file)


def build_model(config: str | dict, texts, out_dir: str, seed: int = 0) -> str:
    """A BERT-style model of the named config with random weights and a character vocabulary."""
    from cse_helpers.tools.tiny import build_tiny_model

    sizes = CONFIGS[config] if isinstance(config, str) else config
    return build_tiny_model(out_dir, texts, seed=seed, max_position_embeddings=512, **sizes)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _windows_from_times(times: list[float], window: int, warmup: int, batch_rows: list[int]) -> list[dict]:
    """Per-window steps/s and sentences/s from the time after each step (times[0]: the start)."""
    out = []
    for k in range(warmup, (len(times) - 1) // window):
        a, b = k * window, (k + 1) * window
        elapsed = times[b] - times[a]
        out.append({"steps_per_s": window / elapsed, "sentences_per_s": sum(batch_rows[a:b]) / elapsed})
    return out


def non_embedding_parameters(backbone: torch.nn.Module) -> int:
    """Parameters of the transformer layers (embeddings and the unused pooler left out)."""
    return sum(p.numel() for name, p in backbone.named_parameters()
               if not name.startswith(("embeddings.", "pooler.")))


def flops_per_sentence(method: str, n_params: int, tokens: float, repeated_tokens: float) -> float:
    """Model FLOPs of one training sentence (both views), real tokens only; see the module docstring."""
    flops = 6 * n_params * (tokens + (repeated_tokens if method == "esimcse" else tokens))
    if method == "esimcse":
        flops += 2 * n_params * tokens  # momentum encoder, forward only
    if method == "diffcse":
        flops += 6 * n_params * tokens + 2 * n_params * tokens  # discriminator (trained) + generator (frozen)
    return flops


def peak_tflops(device: torch.device, override: float | None = None) -> tuple[str, float | None]:
    if device.type != "cuda":
        return platform.processor() or platform.machine(), override
    name = torch.cuda.get_device_name(device)
    if override:
        return name, override
    return name, next((peak for key, peak in PEAK_TFLOPS if key in name), None)


def _summary(windows: list[dict], memory: list[tuple[float, float]]) -> dict:
    return {"sentences_per_s": statistics.median(w["sentences_per_s"] for w in windows),
            "steps_per_s": statistics.median(w["steps_per_s"] for w in windows),
            "windows": len(windows),
            "peak_mib": max(m[0] for m in memory), "delta_mib": max(m[0] - m[1] for m in memory)}


# ------------------------------------------------------------------------------------------------
# The training loops
# ------------------------------------------------------------------------------------------------

def run_ours(model_dir: str, method: str, texts, settings: Settings, torch_compile: bool = False) -> tuple:
    """The course's own loop: ``train()`` with ``max_steps``, timed by its logging windows."""
    warmup = settings.compile_warmup if torch_compile else settings.warmup
    steps = (warmup + settings.windows) * settings.window
    records = []
    encoder = SentenceEncoder.from_pretrained(model_dir, max_seq_len=settings.max_seq_len)
    extra = {"torch_compile": True} if torch_compile else {}
    device = pick_device(settings.device)
    with tempfile.TemporaryDirectory() as tmp, PeakMemory(device) as memory:
        train(TrainingArguments(model=model_dir, method=method, batch_size=settings.batch_size,
                                max_seq_len=settings.max_seq_len, learning_rate=settings.learning_rate,
                                seed=settings.seed, device=settings.device, save_dir=tmp, **extra),
              train_texts=texts, encoder=encoder, max_steps=steps, logging_steps=settings.window,
              valid_steps=10**9, progress_bar=False, on_log=records.append)
    windows = [{"steps_per_s": r["steps_per_s"], "sentences_per_s": r["sentences_per_s"]} for r in records[warmup:]]
    return windows, (memory.peak_mib, memory.start_mib)


def run_tutorial(model_dir: str, method: str, texts, settings: Settings, dup_rate: float = 0.32) -> tuple:
    """BASELINE, not course code: the tutorial's loop (see the module docstring for what it does)."""
    from transformers import get_linear_schedule_with_warmup

    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    encoder = SentenceEncoder.from_pretrained(model_dir, max_seq_len=settings.max_seq_len)
    args = TrainingArguments(model=model_dir, method=method, seed=settings.seed)
    objective = build_objective(args, encoder).to(device)  # the same modules (losses, queue, RTD)
    objective.train()
    tokenizer, max_len = encoder.tokenizer, settings.max_seq_len
    trainable = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)  # fp32, not fused
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * settings.steps), settings.steps)
    rng = random.Random(settings.seed)
    order = list(range(len(texts)))
    rng.shuffle(order)

    def pad_to_max(rows: list[list[int]]) -> dict[str, torch.Tensor]:  # every row to max_seq_len
        ids = [r[:max_len - 1] + [tokenizer.sep_token_id] if len(r) > max_len else r for r in rows]
        mask = [[1] * len(r) + [0] * (max_len - len(r)) for r in ids]
        ids = [r + [tokenizer.pad_token_id] * (max_len - len(r)) for r in ids]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}

    def collate(batch: list[str]) -> tuple[dict, dict]:
        first = tokenizer(batch, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        first = {"input_ids": first["input_ids"], "attention_mask": first["attention_mask"]}
        if method != "esimcse":
            return first, first
        rows = []
        for text in batch:  # word repetition on the tokens, in Python, every batch
            tokens = augment.word_repetition(tokenizer.tokenize(text), dup_rate, rng)
            rows.append(tokenizer.convert_tokens_to_ids([tokenizer.cls_token] + tokens + [tokenizer.sep_token]))
        return first, pad_to_max(rows)

    times, rows = [], []
    with PeakMemory(device) as memory:
        _sync(device)
        times.append(time.perf_counter())
        for step in range(settings.steps):
            start = (step * settings.batch_size) % len(order)
            batch = [texts[i] for i in order[start:start + settings.batch_size]]
            first, second = collate(batch)
            first = {k: v.to(device) for k, v in first.items()}
            second = {k: v.to(device) for k, v in second.items()}
            z1 = encoder(first["input_ids"], first["attention_mask"])  # (B, H): one pass per view
            z2 = encoder(second["input_ids"], second["attention_mask"])
            if method == "esimcse":
                queue = objective.queue.embeddings if len(objective.queue) else None
                loss = info_nce(z1, z2, objective.temperature, objective.margin, queue=queue)
                with torch.no_grad():
                    objective.queue.enqueue(objective.momentum_encoder(
                        first["input_ids"], first["attention_mask"], apply_head=True))
            else:
                loss = info_nce(z1, z2, objective.temperature, objective.margin)
            if method == "diffcse":
                loss = loss + objective.lambda_rtd * objective.rtd_loss(z1, first["input_ids"],
                                                                        first["attention_mask"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if method == "esimcse":
                with torch.no_grad():  # one parameter at a time
                    m = objective.momentum_encoder.momentum
                    for ema, online in zip(objective.momentum_encoder.encoder.parameters(), encoder.parameters()):
                        ema.data = m * ema.data + (1 - m) * online.data
            loss.item()  # the tutorial logs every step
            times.append(time.perf_counter())
            rows.append(len(batch))
    return _windows_from_times(times, settings.window, settings.warmup, rows), (memory.peak_mib, memory.start_mib)


def build_sentence_transformer(model_dir: str, max_seq_len: int, device: str = "cpu"):
    """The same backbone as a SentenceTransformer with CLS pooling (its dropout stays on in training)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(model_dir, max_seq_length=max_seq_len)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
    return SentenceTransformer(modules=[transformer, pooling], device=device)


def run_st(model_dir: str, texts, settings: Settings) -> tuple:
    """sentence-transformers: MultipleNegativesRankingLoss on (s, s) = SimCSE, its own Trainer."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    device = pick_device(settings.device)
    precision = pick_precision(device, "auto")
    torch.manual_seed(settings.seed)
    model = build_sentence_transformer(model_dir, settings.max_seq_len, str(device))
    rows = settings.steps * settings.batch_size
    dataset = Dataset.from_dict({"anchor": texts[:rows], "positive": texts[:rows]})
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            _sync(device)
            times.append(time.perf_counter())

        def on_step_end(self, state_args, state, control, **kwargs):
            if state.global_step % settings.window == 0:  # synchronise at window edges only
                _sync(device)
            times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, per_device_train_batch_size=settings.batch_size, max_steps=settings.steps,
            learning_rate=settings.learning_rate, warmup_steps=0.1, max_grad_norm=1.0, seed=settings.seed,
            save_strategy="no", report_to="none", logging_steps=10**9, disable_tqdm=True,
            dataloader_num_workers=0, use_cpu=device.type == "cpu",
            bf16=precision == "bf16", fp16=precision == "fp16")
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model, scale=20.0),
                                             callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)  # no log lines in the middle of the table
        with PeakMemory(device) as memory:
            trainer.train()
    steps = len(times) - 1
    windows = _windows_from_times(times, settings.window, settings.warmup, [settings.batch_size] * steps)
    return windows, (memory.peak_mib, memory.start_mib)


# ------------------------------------------------------------------------------------------------
# Evaluation encoding
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_tutorial(encoder: SentenceEncoder, pairs, batch_size: int = 64, max_seq_len: int = 64,
                    dynamic: bool = False) -> None:
    """BASELINE: pairs in file order, a and b encoded separately, every batch padded to max_seq_len
    (``dynamic=True``: padded to the batch's longest row, still unsorted and with repeats)."""
    encoder.eval()
    tokenizer, device = encoder.tokenizer, encoder.device
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        for column in (0, 1):
            batch = tokenizer([p[column] for p in chunk], padding="longest" if dynamic else "max_length",
                              truncation=True, max_length=max_seq_len, return_tensors="pt")
            z = encoder(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            torch.nn.functional.normalize(z.float(), dim=-1).cpu()


def time_eval(kind: str, pairs, settings: Settings, encoder=None, st_model=None) -> float:
    """Seconds to embed every sentence of ``pairs`` the way ``kind`` does it."""
    device = pick_device(settings.device)
    texts = [p[0] for p in pairs] + [p[1] for p in pairs]
    _sync(device)
    start = time.perf_counter()
    if kind == "tutorial":
        encode_tutorial(encoder, pairs, 64, settings.max_seq_len)
    elif kind == "unsorted":
        encode_tutorial(encoder, pairs, 64, settings.max_seq_len, dynamic=True)
    elif kind == "st":
        st_model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_tensor=True)
    elif kind == "ours":  # what train() and evaluate_pairs do, at their default batch of 256
        encoder.encode(texts, batch_size=TrainingArguments.eval_batch_size, max_seq_len=settings.max_seq_len)
    elif kind == "ours_b64":  # the same at batch 64 (on a CPU, smaller batches stay in cache)
        encoder.encode(texts, batch_size=64, max_seq_len=settings.max_seq_len)
    else:
        raise ValueError(f"eval loop {kind!r} is not one of {', '.join(EVAL_LOOPS)}.")
    _sync(device)
    return time.perf_counter() - start


def benchmark_eval(model_dir: str, pairs, settings: Settings, loops=EVAL_LOOPS) -> dict:
    """Median sentences/s of each evaluation loop over ``eval_rounds`` interleaved rounds."""
    device = pick_device(settings.device)
    encoder = SentenceEncoder.from_pretrained(model_dir, max_seq_len=settings.max_seq_len).to(device).eval()
    st_model = build_sentence_transformer(model_dir, settings.max_seq_len, str(device)).eval() \
        if "st" in loops else None
    pairs = pairs[: settings.eval_pairs] if settings.eval_pairs else pairs
    times: dict[str, list[float]] = {k: [] for k in loops}
    memory: dict[str, list] = {k: [] for k in loops}
    for k in loops:  # warm-up
        time_eval(k, pairs[:64], settings, encoder, st_model)
    for r in range(settings.eval_rounds):
        for k in (loops if r % 2 == 0 else loops[::-1]):
            with PeakMemory(device) as m:
                times[k].append(time_eval(k, pairs, settings, encoder, st_model))
            memory[k].append((m.peak_mib, m.start_mib))
    n = 2 * len(pairs)
    return {k: {"sentences_per_s": n / statistics.median(times[k]), "sentences": n,
                "distinct": len({t for p in pairs for t in p[:2]}),
                "peak_mib": max(m[0] for m in memory[k]), "delta_mib": max(m[0] - m[1] for m in memory[k])}
            for k in loops}


# ------------------------------------------------------------------------------------------------
# One config
# ------------------------------------------------------------------------------------------------

def text_statistics(model_dir: str, texts, dup_rate: float = 0.32, sample: int = 2000) -> tuple[float, float]:
    """Mean real tokens per sentence (with [CLS]/[SEP]) and the same after word repetition."""
    encoder = SentenceEncoder.from_pretrained(model_dir)
    bodies = encoder.body_ids(texts[:sample])
    rng = random.Random(0)
    specials = len(encoder.prefix_ids) + len(encoder.suffix_ids)
    tokens = statistics.fmean(len(b) + specials for b in bodies)
    repeated = statistics.fmean(len(augment.word_repetition(b, dup_rate, rng)) + specials for b in bodies)
    return tokens, repeated


def benchmark_config(config: str | dict, texts, pairs, settings: Settings, methods=METHODS,
                     loops=("tutorial", "st", "ours"), eval_loops=EVAL_LOOPS, work_dir: str | None = None,
                     peak_override: float | None = None, log=print) -> dict:
    """Every figure for one model config: training loops per method, then evaluation encoding."""
    device = pick_device(settings.device)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        model_dir = build_model(config, list(texts) + [t for p in pairs for t in p[:2]], os.path.join(tmp, "model"))
        backbone = SentenceEncoder.from_pretrained(model_dir).backbone
        n_params = non_embedding_parameters(backbone)
        tokens, repeated = text_statistics(model_dir, texts)
        card, peak = peak_tflops(device, peak_override)
        result = {"config": config if isinstance(config, str) else "custom",
                  "sizes": CONFIGS[config] if isinstance(config, str) else config,
                  "vocab_size": backbone.config.vocab_size, "non_embedding_parameters": n_params,
                  "tokens_per_sentence": tokens, "device": card, "peak_tflops": peak,
                  "precision": pick_precision(device, "auto"), "train": {}, "eval": {}}
        del backbone
        rng = random.Random(settings.seed)
        budget = (max(settings.warmup, settings.compile_warmup) + settings.windows) * settings.window
        sample = rng.sample(list(texts), min(len(texts), budget * settings.batch_size + settings.batch_size))
        for method in methods:
            todo = [k for k in loops if not (k == "st" and method != "simcse")]
            collected: dict[str, tuple[list, list]] = {k: ([], []) for k in todo}
            for r in range(settings.rounds):
                for loop in (todo if r % 2 == 0 else todo[::-1]):
                    t0 = time.perf_counter()
                    if loop == "tutorial":
                        windows, mem = run_tutorial(model_dir, method, sample, settings)
                    elif loop == "st":
                        windows, mem = run_st(model_dir, sample, settings)
                    elif loop == "ours":
                        windows, mem = run_ours(model_dir, method, sample, settings)
                    elif loop == "ours+compile":
                        windows, mem = run_ours(model_dir, method, sample, settings, torch_compile=True)
                    else:
                        raise ValueError(f"loop {loop!r} is not one of {', '.join(TRAIN_LOOPS)}.")
                    collected[loop][0].extend(windows)
                    collected[loop][1].append(mem)
                    log(f"  {result['config']:5s} {method:7s} {loop:12s} round {r + 1}: "
                        + ", ".join(f"{w['sentences_per_s']:.0f}" for w in windows)
                        + f" sentences/s per window ({time.perf_counter() - t0:.0f} s)")
            figures = {}
            per_sentence = flops_per_sentence(method, n_params, tokens, repeated)
            for loop, (windows, mems) in collected.items():
                figures[loop] = _summary(windows, mems)
                achieved = figures[loop]["sentences_per_s"] * per_sentence
                figures[loop]["model_tflops"] = achieved / 1e12
                figures[loop]["mfu"] = achieved / (peak * 1e12) if peak else None
            result["train"][method] = figures
        if eval_loops:
            result["eval"] = benchmark_eval(model_dir, pairs, settings, eval_loops)
    result["ratios"] = ratios(result)
    return result


def ratios(result: dict) -> dict:
    """ours / tutorial, ours / st (training, per method; evaluation), ours+compile / ours."""
    out = {}
    for method, figures in result["train"].items():
        ours = figures.get("ours", {}).get("sentences_per_s")
        for other in ("tutorial", "st"):
            if ours and other in figures:
                out[f"train/{method}/ours_vs_{other}"] = ours / figures[other]["sentences_per_s"]
        if ours and "ours+compile" in figures:
            out[f"train/{method}/compile_vs_ours"] = figures["ours+compile"]["sentences_per_s"] / ours
    ours = result["eval"].get("ours", {}).get("sentences_per_s")
    for other in ("tutorial", "unsorted", "st"):
        if ours and other in result["eval"]:
            out[f"eval/ours_vs_{other}"] = ours / result["eval"][other]["sentences_per_s"]
    return out


# ------------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------------

def format_table(results: list[dict]) -> str:
    """One Markdown table of every figure, then the ratios."""
    gpu = any(r["peak_tflops"] for r in results)
    head = "| config | method | loop | sentences/s | steps/s | model TFLOP/s |" + (" MFU |" if gpu else "") \
        + " peak MiB (+ increase) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        for method, figures in r["train"].items():
            for loop, f in figures.items():
                mfu = (f" {f['mfu']:.1%} |" if f["mfu"] is not None else " n/a |") if gpu else ""
                lines.append(f"| {r['config']} | {method} | {loop} | {f['sentences_per_s']:.0f} | "
                             f"{f['steps_per_s']:.2f} | {f['model_tflops']:.3g} |{mfu} "
                             f"{f['peak_mib']:.0f} (+{f['delta_mib']:.0f}) |")
        for loop, f in r["eval"].items():
            lines.append(f"| {r['config']} | eval encode | {loop} | {f['sentences_per_s']:.0f} | | |"
                         + (" |" if gpu else "") + f" {f['peak_mib']:.0f} (+{f['delta_mib']:.0f}) |")
    lines += ["", "| config | ratio | value |", "|---|---|---|"]
    for r in results:
        lines += [f"| {r['config']} | {name} | {value:.2f}x |" for name, value in r["ratios"].items()]
    return "\n".join(lines)


def describe_machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    try:
        import transformers
        info["transformers"] = transformers.__version__
        import sentence_transformers
        info["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if hasattr(os, "getloadavg"):
        info["load_average"] = os.getloadavg()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "small"], choices=sorted(CONFIGS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--loops", nargs="+", default=["tutorial", "st", "ours"], choices=TRAIN_LOOPS)
    p.add_argument("--compile", action="store_true", help="also time ours with torch_compile=True")
    p.add_argument("--eval_loops", nargs="*", default=list(EVAL_LOOPS), choices=EVAL_LOOPS)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--max_seq_len", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="steps per timed window (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up windows per run")
    p.add_argument("--windows", type=int, default=2, help="timed windows per run")
    p.add_argument("--rounds", type=int, default=2, help="interleaved runs of each loop")
    p.add_argument("--eval_pairs", type=int, default=1000, help="dev pairs per evaluation figure (0: all)")
    p.add_argument("--eval_rounds", type=int, default=3)
    p.add_argument("--train_path", default=None, help="default: ../shared/data/lcqmc/train.txt, else data/train.txt")
    p.add_argument("--dev_path", default=None, help="default: ../shared/data/lcqmc/dev.tsv, else data/dev.tsv")
    p.add_argument("--peak_tflops", type=float, default=None, help="the accelerator's peak, for MFU")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--json", default=None, help="write every figure here")
    p.add_argument("--markdown", default=None, help="write the table here")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loops = list(dict.fromkeys(args.loops + (["ours+compile"] if args.compile else [])))
    if "st" in loops or "st" in args.eval_loops:
        try:
            import sentence_transformers  # noqa: F401
        except ImportError:
            print("sentence-transformers is not installed: `pip install sentence-transformers` (keeps your torch), "
                  "or leave it out with --loops tutorial ours --eval_loops tutorial unsorted ours.", file=sys.stderr)
            return 2
    settings = Settings(batch_size=args.batch_size, max_seq_len=args.max_seq_len, warmup=args.warmup,
                        window=args.steps or 5, windows=args.windows, rounds=args.rounds,
                        eval_pairs=args.eval_pairs, eval_rounds=args.eval_rounds, device=str(device))
    texts, pairs, train_file, dev_file = load_data(args.train_path, args.dev_path)
    machine = describe_machine(device)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"data: {train_file} ({len(texts)} sentences), {dev_file} ({len(pairs)} pairs)")
    print(f"machine: {json.dumps(machine)}")
    print(f"settings: {dataclasses.asdict(settings)}")
    results, start = [], time.perf_counter()
    for config in args.configs:
        results.append(benchmark_config(config, texts, pairs, settings, args.methods, loops, args.eval_loops,
                                        peak_override=args.peak_tflops))
    table = format_table(results)
    machine_end = describe_machine(device)
    print(f"\nload average at the end: {machine_end.get('load_average')}; total {time.perf_counter() - start:.0f} s\n")
    print(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": machine, "machine_end": machine_end, "settings": dataclasses.asdict(settings),
                       "train_file": train_file, "dev_file": dev_file, "results": results}, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
