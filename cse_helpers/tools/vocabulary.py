"""The shipped encoder's vocabulary: one token per character of the corpus, the most frequent characters of jieba's
dictionary, and ASCII letters and digits (with their full-width twins); or, when pretraining continues from a
model (``--init-from``), that model's vocabulary unchanged."""

from __future__ import annotations

import json
import os
from collections import Counter

from .corpus import ASCII_ALNUM, FULLWIDTH_OF, Corpus, is_bad_char, is_cjk, log, package_info
from .tiny import SPECIAL_TOKENS, build_char_vocab, save_char_tokenizer


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
        if ch not in seen and not is_bad_char(ch):
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


#: How the vocabulary of the first shipped model (``model_card.FIRST_MODEL_COMMIT``, made without --init-from) was
#: built; a model made by ``cse_helpers.tools.pretrain`` records its own in ``pretraining.json``.
FIRST_MODEL_VOCAB = {"corpus_and_sample_chars": 4446, "jieba_chars": 941, "ascii_and_fullwidth_extras": 108,
                     "vocab_size": 5500}


def initial_vocab_stats(model_dir: str, vocab_size: int) -> dict:
    """The vocabulary statistics of the model in ``model_dir`` (its ``pretraining.json``, or the first model's)."""
    path = os.path.join(model_dir, "pretraining.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)["vocab"]
    if vocab_size != FIRST_MODEL_VOCAB["vocab_size"]:
        raise ValueError(f"{model_dir} has no pretraining.json and a vocabulary of {vocab_size}: not a model "
                         f"made by cse_helpers.tools.pretrain")
    return dict(FIRST_MODEL_VOCAB)


def build_tokenizer(args, corpus: Corpus):
    """The character tokenizer (saved to ``args.out``), or the initial model's with --init-from; and
    the vocabulary's statistics."""
    from transformers import AutoTokenizer

    if args.init_from:  # the initial model's vocabulary, unchanged
        tokenizer = AutoTokenizer.from_pretrained(args.init_from)
        tokenizer.save_pretrained(args.out)
        vocab_stats = initial_vocab_stats(args.init_from, len(tokenizer))
    else:
        vocab, vocab_stats = build_vocab(corpus.corpus_train, corpus.sample, args.vocab_size)
        tokenizer = save_char_tokenizer(vocab, args.out)
        tokenizer.model_max_length = args.max_position
        tokenizer.save_pretrained(args.out)
    log(f"vocabulary: {vocab_stats}")
    return tokenizer, vocab_stats
