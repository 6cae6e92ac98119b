"""Using a trained encoder: similarity of sentence pairs and semantic search, from Python or the command line.

    python -m cse_helpers.inference --model runs/simcse/best "男孩喝女孩的故事" "怎样才知道是生男孩还是女孩"
    python -m cse_helpers.inference --model runs/simcse/best --pairs data/dev.tsv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from .encoder import SentenceEncoder


def similarity(encoder: SentenceEncoder, pairs: Sequence[Sequence[str]], batch_size: int = 128) -> list[float]:
    """Cosine similarity of each (a, b) pair (extra columns such as labels are ignored), in [-1, 1]."""
    pairs = list(pairs)
    if not pairs:
        return []
    for number, pair in enumerate(pairs, start=1):
        if isinstance(pair, str) or len(pair) < 2:
            raise ValueError(f"pair {number} is {pair!r}; give (sentence_a, sentence_b) tuples.")
    a = encoder.encode([p[0] for p in pairs], batch_size=batch_size)  # (N, H) unit rows
    b = encoder.encode([p[1] for p in pairs], batch_size=batch_size)
    return (a * b).sum(dim=1).tolist()


def semantic_search(encoder, query: str, corpus: Sequence[str], k: int = 5,
                    corpus_embeddings: torch.Tensor | None = None) -> list[tuple[float, str]]:
    """The ``k`` sentences of ``corpus`` most similar to ``query`` (cosine), best first.

    Pass ``corpus_embeddings`` (from ``encoder.encode(corpus)``) to embed the corpus once for many queries.
    """
    if not query.strip():
        return []
    if corpus_embeddings is None:
        corpus_embeddings = encoder.encode(list(corpus))
    if corpus_embeddings.size(0) != len(corpus):
        raise ValueError(f"corpus_embeddings has {corpus_embeddings.size(0)} rows for {len(corpus)} sentences.")
    q = encoder.encode([query])  # (1, H), unit length
    scores = (corpus_embeddings @ q.T).squeeze(1)  # (N,)
    top = torch.topk(scores, min(k, len(corpus)))
    return [(float(s), corpus[i]) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.inference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a checkpoint directory or a hub name")
    parser.add_argument("--pairs", help="a file of a<TAB>b<TAB>label lines")
    parser.add_argument("sentences", nargs="*", help="sentence pairs: a1 b1 a2 b2 ...")
    args = parser.parse_args(argv)
    if args.pairs:
        from .data import read_pairs
        pairs = [(a, b) for a, b, _ in read_pairs(args.pairs)]
    else:
        if not args.sentences or len(args.sentences) % 2:
            parser.error("give an even number of sentences (a1 b1 a2 b2 ...) or --pairs FILE")
        pairs = list(zip(args.sentences[::2], args.sentences[1::2]))
    encoder = SentenceEncoder.from_pretrained(args.model)
    for (a, b), score in zip(pairs, similarity(encoder, pairs)):
        print(f"{score:.4f}\t{a}\t{b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
