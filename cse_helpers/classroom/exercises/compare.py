"""Notebook 4's exercises: mean pooling and top-k search."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .verdict import (
    Verdict,
    _call,
    _checked,
    _not_attempted,
    _right,
    _tensor,
    _wrong,
)


def mean_pool_reference(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The ``mean`` pooler of :class:`cse_helpers.encoder.SentenceEncoder` (tested to agree): (N, L, H) -> (N, H)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (N, L, 1)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)


@_checked("mean pooling")
def check_mean_pooling(mean_pool: Callable | None) -> Verdict:
    """Check ``mean_pool(last_hidden_state, attention_mask)`` -> (N, H): the average of the real tokens' vectors.

    Compared with the ``mean`` pooler of :class:`cse_helpers.encoder.SentenceEncoder` on a padded batch.
    """
    exercise = "mean pooling"
    if mean_pool is None:
        return _not_attempted(exercise, "Write mean_pool(last_hidden_state, attention_mask)")
    hidden = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(3))  # (N, L, H)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])  # rows 2 and 3 padded
    got = _call(exercise, mean_pool, hidden.clone(), mask.clone(), described="a padded batch (3, 6, 4)")
    if got is None:
        return _not_attempted(exercise, "Make mean_pool(...) return the (N, H) sentence embeddings")
    pooled = _tensor(got, exercise, (3, 4)).float()
    expected = mean_pool_reference(hidden, mask)
    if torch.allclose(pooled, expected, atol=1e-5):
        return _right(exercise, "Padding is left out of the average, as in SentenceEncoder(pooler='mean').")
    weights = mask.unsqueeze(-1).float()
    hint = next((h for value, h in [
        (hidden.mean(1), "you averaged the padding positions too: average the real tokens only (attention_mask)."),
        ((hidden * weights).sum(1), "you summed the real tokens' vectors; divide by how many there are."),
        ((hidden * weights).sum(1) / hidden.size(1), "you divided by the padded length; divide by the number of "
                                                     "real tokens of each sentence."),
        (hidden[:, 0], "that is the cls pooler (the vector at position 0)."),
    ] if torch.allclose(pooled, value, atol=1e-5)), "the mean pooler averages the last layer's vectors of the "
                                                    "real tokens.")
    rows = sorted(set((pooled - expected).abs().gt(1e-5).nonzero()[:, 0].tolist()))
    return _wrong(exercise, f"the embeddings of rows {rows} differ: {hint}")


@_checked("top-k search")
def check_top_k(top_k: Callable | None) -> Verdict:
    """Check ``top_k(query, corpus, k)`` -> the indices of the k corpus rows most similar (cosine) to the query.

    ``query`` is (H,), ``corpus`` (N, H), neither normalised; best first, like
    :func:`cse_helpers.inference.semantic_search`.
    """
    exercise = "top-k search"
    if top_k is None:
        return _not_attempted(exercise, "Write top_k(query, corpus, k)")
    generator = torch.Generator().manual_seed(4)
    corpus = torch.randn(30, 8, generator=generator) * torch.linspace(0.2, 5, 30).unsqueeze(1)  # (N, H), lengths vary
    query = torch.randn(8, generator=generator)
    k = 5
    got = _call(exercise, top_k, query.clone(), corpus.clone(), k, described="30 sentences, k=5")
    if got is None:
        return _not_attempted(exercise, "Make top_k(...) return a list of k indices, best first")
    indices = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
    cosines = F.cosine_similarity(corpus, query.unsqueeze(0), dim=1)  # (N,)
    expected = torch.topk(cosines, k).indices.tolist()
    if indices == expected:
        return _right(exercise, "The k highest cosines, best first.")
    if len(indices) != k:
        return _wrong(exercise, f"got {len(indices)} indices for k={k}.")
    hint = {tuple(torch.topk(corpus @ query, k).indices.tolist()):
            "you ranked by the dot product of unnormalised vectors, so long vectors win; normalise first (cosine).",
            tuple(torch.topk(cosines, k, largest=False).indices.tolist()):
            "those are the *least* similar: sort by decreasing cosine.",
            tuple(reversed(expected)): "the right sentences, in reverse order: best first."}.get(tuple(indices))
    if hint is None and sorted(indices) == sorted(expected):
        hint = "the right sentences in the wrong order: best first."
    return _wrong(exercise, f"got {indices}: {hint or 'return the indices of the k highest cosines, best first.'}")
