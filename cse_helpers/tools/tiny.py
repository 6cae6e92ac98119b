"""Tiny encoders built from a config, offline.

No pretrained model can be downloaded on a machine without the Hugging Face hub, so the tests, the
README quickstart and the quick mode of the course build small BERT-style models here: a
character-level vocabulary from the sentences at hand, a config, and random weights. They are
saved in the ordinary Hugging Face layout, so ``AutoModel``, ``AutoModelForMaskedLM``,
``AutoTokenizer`` and ``SentenceEncoder.from_pretrained`` all load them from the directory.

A randomly initialised network is enough to test the mechanics (shapes, masks, dropout, losses,
checkpoints); it is not enough to show what contrastive learning does to a *pretrained* encoder.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import torch

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_char_vocab(texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> list[str]:
    """Special tokens, then every character seen at least ``min_count`` times (most frequent first).

    Characters are lower-cased and white space is skipped, as BERT's Chinese tokenizer does.
    """
    counts = Counter(ch for text in texts for ch in text.lower() if not ch.isspace())
    chars = [ch for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
    chars = [ch for ch in chars if ch not in SPECIAL_TOKENS]
    if max_size is not None:
        chars = chars[: max(0, max_size - len(SPECIAL_TOKENS))]
    return list(SPECIAL_TOKENS) + chars


def save_char_tokenizer(vocab: list[str], out_dir: str):
    """Write ``vocab.txt`` and a BERT tokenizer for it into ``out_dir``; return the tokenizer."""
    from transformers import BertTokenizerFast

    os.makedirs(out_dir, exist_ok=True)
    vocab_file = os.path.join(out_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    # Positional: the argument is ``vocab_file`` in transformers 4.x and ``vocab`` in 5.x.
    tokenizer = BertTokenizerFast(vocab_file, do_lower_case=True, tokenize_chinese_chars=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def tiny_config(model_type: str = "bert", vocab_size: int = 100, hidden_size: int = 64,
                num_hidden_layers: int = 2, num_attention_heads: int = 2,
                intermediate_size: int | None = None, max_position_embeddings: int = 128, **other):
    """A small BERT or ERNIE config (the architecture of ``nghuyong/ernie-3.0-base-zh`` is ERNIE);
    ``other``: any other field of the config (``hidden_dropout_prob=0.0``, ...)."""
    from transformers import BertConfig, ErnieConfig

    config_class = {"bert": BertConfig, "ernie": ErnieConfig}.get(model_type)
    if config_class is None:
        raise ValueError(f"model_type={model_type!r} is not supported here; use 'bert' or 'ernie'.")
    return config_class(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        **other,
    )


#: The architecture of ``nghuyong/ernie-3.0-base-zh`` (its config.json): for a stand-in with random
#: weights where the hub cannot be reached, e.g. to time full mode on a GPU. Speed does not depend on
#: the weights; the vocabulary is padded to ERNIE's 40,000 entries so the masked-LM head costs the same.
ERNIE_BASE = dict(model_type="ernie", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  max_position_embeddings=2048, vocab_size=40000)


def build_tiny_model(out_dir: str, texts: Iterable[str], model_type: str = "bert", seed: int = 0,
                     vocab_size: int | None = None, **config_kwargs) -> str:
    """Build a randomly initialised tiny model with a character vocabulary and save it to ``out_dir``.

    The model is saved with its pre-training heads (pooler and masked-LM head), so the same directory
    serves as a sentence encoder (``AutoModel``) and as a DiffCSE generator (``AutoModelForMaskedLM``).
    ``vocab_size`` pads the vocabulary with ``[unused0]``, ``[unused1]``, ... up to that size.
    Returns ``out_dir``.
    """
    from transformers import BertForPreTraining, ErnieForPreTraining

    vocab = build_char_vocab(texts)
    if vocab_size is not None:
        if vocab_size < len(vocab):
            raise ValueError(f"vocab_size={vocab_size} is below the {len(vocab)} characters of these texts.")
        vocab += [f"[unused{i}]" for i in range(vocab_size - len(vocab))]
    tokenizer = save_char_tokenizer(vocab, out_dir)
    config = tiny_config(model_type, vocab_size=len(tokenizer), **config_kwargs)
    model_class = {"bert": BertForPreTraining, "ernie": ErnieForPreTraining}[model_type]
    torch.manual_seed(seed)
    model_class(config).save_pretrained(out_dir)
    return out_dir


def main(argv=None) -> int:
    """``python -m cse_helpers.tools.tiny --out DIR``: build a tiny model from the sample data, offline."""
    import argparse

    from ..data import read_pairs, read_train_texts

    parser = argparse.ArgumentParser(prog="python -m cse_helpers.tools.tiny", description=main.__doc__)
    parser.add_argument("--out", required=True, help="directory to write the model to")
    parser.add_argument("--train_path", default=os.path.join("data", "train.txt"))
    parser.add_argument("--dev_path", default=os.path.join("data", "dev.tsv"))
    parser.add_argument("--model_type", default="bert", choices=("bert", "ernie"))
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_hidden_layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ernie_base", action="store_true",
                        help="ERNIE 3.0 base's architecture and vocabulary size instead (random weights, 118M "
                             "parameters): a stand-in for timing where the hub cannot be reached")
    args = parser.parse_args(argv)
    texts = list(read_train_texts(args.train_path)) + [s for a, b, _ in read_pairs(args.dev_path) for s in (a, b)]
    sizes = ERNIE_BASE if args.ernie_base else dict(
        model_type=args.model_type, hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=2)
    build_tiny_model(args.out, texts, seed=args.seed, **sizes)
    print(f"{'ERNIE-base stand-in' if args.ernie_base else 'tiny ' + args.model_type} model written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
