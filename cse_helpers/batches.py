"""From tokenized sentences to training batches: the order of an epoch, the two views of each sentence.

- :func:`tokenize_for_training`: every training sentence tokenized once, before the loop (cut to ``max_seq_len``);
- :func:`check_token_rows`: which sentences are the same row to the model (e.g. only [UNK]), said in a warning;
- :func:`batch_indices`: one epoch of shuffled batches, identical sentences removed from each batch;
- :class:`ViewBuilder`: the 2B rows a1 a2 b1 b2 ... of one batch (ESimCSE: words repeated in a view).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import torch

from . import augment
from .data import DataFormatError
from .defaults import paper
from .encoder import SentenceEncoder

logger = logging.getLogger(__name__)


class ViewBuilder:
    """Turns B tokenized sentences into the 2B rows a1 a2 b1 b2 ... of one training batch.

    The sentences are tokenized once, before the loop; here they are only repeated (when the
    objective ``repeats_words``: ESimCSE, :attr:`~cse_helpers.objectives.Objective.repeats_words`), given
    their special tokens and padded to the longest row of the batch.
    """

    def __init__(self, encoder: SentenceEncoder, max_seq_len: int, repeats_words: bool = False,
                 dup_rate: float = paper("dup_rate"), repeat_both_views: bool = False, seed: int = 0,
                 repetition: str = "second_view"):
        self.encoder, self.max_seq_len, self.repeats_words = encoder, max_seq_len, repeats_words
        self.dup_rate, self.repeat_both_views, self.repetition = dup_rate, repeat_both_views, repetition
        self.rng = random.Random(seed)
    def views(self, body: list[int]) -> tuple[list[int], list[int]]:
        if not self.repeats_words or self.repetition == "none":
            return body, body  # SimCSE/DiffCSE: the same tokens twice; dropout makes the difference
        if self.repetition == "same_length":
            return augment.same_length_repetition(body, self.dup_rate, self.rng)
        second = augment.word_repetition(body, self.dup_rate, self.rng)
        first = augment.word_repetition(body, self.dup_rate, self.rng) if self.repeat_both_views else body
        return first, second

    def rows(self, bodies: Sequence[list[int]]) -> list[list[int]]:
        """The 2B rows a1 a2 b1 b2 ... as token-id lists (no special tokens yet)."""
        return [row for body in bodies for row in self.views(body)]

    def __call__(self, bodies: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        return self.encoder.pad(self.rows(bodies), self.max_seq_len)  # input_ids, attention_mask: (2B, L)


def batch_indices(keys: Sequence, batch_size: int, generator: torch.Generator, min_size: int = 2):
    """One epoch of shuffled batches as index lists, identical sentences removed per batch.

    ``keys[i]`` says which sentences are identical (the sentences themselves, or their token ids:
    two texts that tokenize alike are the same row to the model). Returns the batches and the
    number of duplicates removed. The last batch may be smaller. A batch left with fewer than
    ``min_size`` distinct sentences (2, or one per process when there are more than 2 processes)
    joins the previous batch, or, at the start of the epoch, the next one; so with at least
    ``min_size`` distinct keys there is always a batch.
    """
    order = torch.randperm(len(keys), generator=generator).tolist()
    batches, removed, carried = [], 0, []
    for start in range(0, len(order), batch_size):
        seen, batch = set(), []
        for i in carried + order[start:start + batch_size]:
            if keys[i] in seen:
                removed += 1
            else:
                seen.add(keys[i])
                batch.append(i)
        carried = []
        if len(batch) >= min_size:
            batches.append(batch)
        elif batches:
            last = {keys[j] for j in batches[-1]}
            batches[-1].extend(i for i in batch if keys[i] not in last)
            removed += sum(keys[i] in last for i in batch)
        else:
            carried = batch  # a first batch of one distinct sentence: it joins the next
    return batches, removed

def tokenize_for_training(encoder: SentenceEncoder, texts: Sequence[str], max_seq_len: int
                          ) -> tuple[list[list[int]], int]:
    """Token ids of each text (no special tokens), cut to what fits in ``max_seq_len``; and how many
    texts were cut.

    Only the first ``32 * (limit + 1)`` characters of a text are tokenized (a 5 MB line would take
    gigabytes as a list of token ids); a text whose prefix gives too few tokens to fill the row
    (tokens of 32+ characters) is tokenized whole.
    """
    limit = encoder.max_body_len(max_seq_len)
    budget = 32 * (limit + 1)
    bodies = encoder.body_ids([text[:budget] for text in texts])
    truncated = 0
    for i, text in enumerate(texts):
        if len(text) > budget and len(bodies[i]) <= limit:
            bodies[i] = encoder.body_ids([text])[0]
        if len(bodies[i]) > limit:
            truncated += 1
            bodies[i] = bodies[i][:limit]
    return bodies, truncated


def check_token_rows(encoder: SentenceEncoder, texts: Sequence[str], bodies: list[list[int]],
                     where: str) -> list[int]:
    """Report sentences that are empty or only [UNK] once tokenized; return each sentence's row key.

    Such sentences (emoji, symbols the vocabulary lacks) are all the same row to the model: they are
    kept, but at most one per batch, and said in a warning with examples. Fewer than 2 different
    rows in all is an error: nothing to contrast.
    """
    unk = encoder.tokenizer.unk_token_id
    blank = [i for i, body in enumerate(bodies) if all(t == unk for t in body)]
    lines = getattr(texts, "line_numbers", None)

    def at(i: int) -> str:
        return f"line {lines[i]}" if lines else f"train_texts[{i}]"

    if blank:
        examples = ", ".join(f"{at(i)} {texts[i][:20]!r}" for i in blank[:3])
        logger.warning("%s: %d of %d training sentences are empty or only [UNK] once tokenized (the model's "
                       "vocabulary has none of their characters), e.g. %s. They are all the same row to the model, so "
                       "at most one of them is used per batch. Check the data, or use a model whose vocabulary "
                       "covers them.", where, len(blank), len(texts), examples)
    keys = [hash(tuple(body)) for body in bodies]
    if len(set(keys)) < 2:
        raise DataFormatError(where, None, f"all {len(texts)} training sentences become the same tokens for this "
                              f"model ({encoder.tokenizer.convert_ids_to_tokens(bodies[0][:5])}), so there is nothing "
                              "to contrast.", "Give sentences in the model's language, or a model whose vocabulary "
                              "covers them.")
    return keys
