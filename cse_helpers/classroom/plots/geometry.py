"""The embedding space: unit rows, a 2-D projection (PCA) and the singular-value spectrum (anisotropy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .base import _figure, _numpy


def unit_rows(embeddings) -> np.ndarray:
    """The embeddings (N, H) as a float array with each row scaled to length 1 (the cosine's view of them)."""
    x = _numpy(embeddings)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected an (N, H) matrix of N >= 2 embeddings, got shape {x.shape}.")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _gram_eigen(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of ``x.T @ x``, (H, H): the squared singular values
    and right singular vectors of ``x``, much faster than a full SVD of a tall (N, H) matrix."""
    import torch  # its eigh is fast and steady on a busy CPU, where LAPACK's through NumPy can stall

    values, vectors = torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(x.T @ x, dtype=np.float64)))
    values, vectors = values.numpy()[::-1], vectors.numpy()[:, ::-1]  # descending
    return np.clip(values, 0.0, None), vectors


def pca_2d(embeddings) -> tuple[np.ndarray, np.ndarray]:
    """The unit-length embeddings projected on their first two principal components.

    Returns the (N, 2) coordinates (the rows centred on their mean, then projected) and the share of the
    variance that each of the two components holds (2,).
    """
    x = unit_rows(embeddings)
    centred = x - x.mean(axis=0)  # (N, H)
    values, vectors = _gram_eigen(centred)  # (H,), (H, H)
    return centred @ vectors[:, :2], values[:2] / np.sum(values)


def singular_spectrum(embeddings) -> np.ndarray:
    """The singular values of the unit-length embedding matrix (N, H), *not* centred, divided by the largest.

    Rows that share one direction (anisotropy) give one large singular value and a steep fall after it;
    embeddings spread over many directions give a flatter spectrum. ``s[0]² / sum(s²)`` is the share of the
    rows' squared length along the top direction.
    """
    x = unit_rows(embeddings)
    s = np.sqrt(_gram_eigen(x)[0][: min(x.shape)])  # the singular values of x, largest first
    return s / s[0]


def plot_embedding_projection(embeddings, groups: Sequence[str], ax=None, title: str = "PCA of the embeddings",
                              order: Sequence[str] | None = None):
    """The sentences' unit-length embeddings on their first two principal components, coloured by group.

    ``groups`` gives one name per row (e.g. the dev pair's group of each sentence); ``order`` fixes the
    groups' colours across panels. The axis labels give each component's share of the variance.
    """
    fig, ax = _figure(ax, figsize=(6, 5))
    coords, share = pca_2d(embeddings)
    groups = np.asarray(list(groups), dtype=object)
    if len(groups) != len(coords):
        raise ValueError(f"{len(coords)} embeddings but {len(groups)} group names; give one per row.")
    for i, group in enumerate(order if order is not None else dict.fromkeys(groups)):
        rows = groups == group
        ax.scatter(coords[rows, 0], coords[rows, 1], s=7, alpha=0.55, color=f"C{i}", linewidths=0,
                   label=f"{group} ({int(rows.sum())})")
    ax.set_xlabel(f"principal component 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({share[1]:.0%})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    return fig


def plot_singular_spectrum(embeddings: Mapping[str, object], ax=None, title: str = "singular values of the "
                           "embedding matrix"):
    """The normalised singular values (:func:`singular_spectrum`) of several models' embeddings of the same
    sentences, on a log scale; the legend gives each model's share of the top direction."""
    fig, ax = _figure(ax, figsize=(6, 4))
    for i, (name, matrix) in enumerate(embeddings.items()):
        s = singular_spectrum(matrix)
        top = s[0] ** 2 / np.sum(s ** 2)
        ax.plot(np.arange(1, len(s) + 1), s, color=f"C{i}", linestyle=("-", "--", "-.", ":")[i % 4],
                label=f"{name} (top direction {top:.0%})")  # line styles: curves that coincide stay visible
    ax.set_yscale("log")
    ax.set_xlabel("index k of the singular value")
    ax.set_ylabel(r"$\sigma_k / \sigma_1$ (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
