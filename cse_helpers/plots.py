"""Figures for the course. Each function returns a matplotlib ``Figure`` and takes an optional ``ax``,
so notebooks stay one line per figure and tests can check what was drawn.

Chinese text in figures needs a CJK font: :func:`use_cjk_font` (called on import) looks for one
among the installed fonts (Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei, ...). Without one,
Chinese characters are drawn as boxes, and matplotlib's "Glyph ... missing" warnings are silenced:
nothing fails. (On Colab the course's setup installs ``fonts-noto-cjk``.) Tables with Chinese text
are also available as HTML (:func:`html_table`, :func:`html_tokens`), which the browser renders
with its own fonts.
"""

from __future__ import annotations

import html
import os
import warnings
from collections.abc import Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() in ("", "agg") or not matplotlib.rcParams.get("backend"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Font families with Chinese glyphs, most wanted first (Linux, Colab, macOS, Windows names).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti", "Songti SC", "AR PL UMing CN",
             "AR PL UKai CN", "Droid Sans Fallback", "Arial Unicode MS")
_FONT_FILE_HINTS = ("cjk", "wqy", "wenquanyi", "simhei", "msyh", "pingfang", "sourcehan", "droidsansfallback",
                    "uming", "ukai", "hiragino", "heiti", "songti", "notosanssc")



def silence_missing_glyph_warnings() -> None:
    """Ignore matplotlib's "Glyph ... missing from font(s)" warnings (boxes are drawn instead)."""
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)


silence_missing_glyph_warnings()


def find_cjk_font(refresh: bool = False) -> str | None:
    """The name of an installed font family with Chinese glyphs, or None.

    ``refresh`` registers font files installed since matplotlib built its font cache (e.g. by
    ``apt-get install fonts-noto-cjk`` in a running notebook).
    """
    from matplotlib import font_manager

    if refresh:
        for path in font_manager.findSystemFonts():
            name = os.path.basename(path).lower().replace("-", "").replace("_", "")
            if any(hint in name for hint in _FONT_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
    available = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in available), None)


def use_cjk_font(refresh: bool = False) -> str | None:
    """Put an installed CJK font first in matplotlib's sans-serif list; return its name (None if none).

    When matplotlib's font cache knows no CJK font, the font files are scanned once more (a font
    installed after the cache was built, e.g. by the Colab setup, is found that way).
    """
    silence_missing_glyph_warnings()
    name = find_cjk_font(refresh) or (None if refresh else find_cjk_font(refresh=True))
    if name is not None:
        rest = [f for f in matplotlib.rcParams["font.sans-serif"] if f != name]
        matplotlib.rcParams["font.sans-serif"] = [name] + rest
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack the minus glyph
    return name


CJK_FONT = use_cjk_font()


def _figure(ax=None, figsize=(6, 4)):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def short(text: str, width: int = 8) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (tick labels)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


# ------------------------------------------------------------------------------------------------
# Training curves
# ------------------------------------------------------------------------------------------------

def plot_history(history: dict, metric: str = "spearman", ax=None):
    """Training loss per logging window (left axis) and a dev metric per evaluation (right axis)."""
    fig, ax = _figure(ax, figsize=(7, 4))
    log, evals = history.get("log", []), history.get("eval", [])
    if log:
        ax.plot([r["step"] for r in log], [r["loss"] for r in log], color="tab:blue", label="loss (window mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if evals and metric in evals[0]:
        right = ax.twinx()
        right.plot([r["step"] for r in evals], [r[metric] for r in evals], "o-", color="tab:orange", label=metric)
        right.set_ylabel(f"dev {metric}", color="tab:orange")
    ax.set_title("training curves")
    fig.tight_layout()
    return fig


def plot_curves(histories: Mapping[str, dict], key: str = "loss", ax=None, title: str | None = None):
    """One line per run: ``key`` against the step. ``loss`` (and ``contrastive``, ``rtd``) come from the
    logging records, any other key (``spearman``, ``best_f1``, ...) from the evaluations."""
    fig, ax = _figure(ax, figsize=(7, 4))
    for name, history in histories.items():
        records = history.get("log" if key in ("loss", "contrastive", "rtd", "learning_rate") else "eval", [])
        records = [r for r in records if key in r]
        if records:
            ax.plot([r["step"] for r in records], [r[key] for r in records], "o-" if len(records) < 15 else "-",
                    markersize=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(title or ("training loss" if key == "loss" else f"dev {key}"))
    if histories:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_parts(history: dict, lambda_rtd: float, ax=None):
    """DiffCSE's two losses over training: contrastive, RTD and the weighted ``lambda * RTD`` (log scale)."""
    fig, ax = _figure(ax, figsize=(7, 4))
    log = [r for r in history.get("log", []) if "rtd" in r and "contrastive" in r]
    steps = [r["step"] for r in log]
    ax.plot(steps, [r["contrastive"] for r in log], label="contrastive (InfoNCE)")
    ax.plot(steps, [r["rtd"] for r in log], label="RTD (cross-entropy per token)")
    ax.plot(steps, [lambda_rtd * r["rtd"] for r in log], "--", label=f"λ·RTD, λ={lambda_rtd:g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("DiffCSE: the two terms of the loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Data and scores
# ------------------------------------------------------------------------------------------------

def plot_length_histogram(texts: Sequence[str], ax=None, title: str = "sentence length", bins: int | None = None):
    """Histogram of sentence lengths in characters, with the median marked."""
    fig, ax = _figure(ax)
    lengths = np.array([len(t) for t in texts])
    bins = bins or max(5, min(60, int(lengths.max() - lengths.min() + 1))) if len(lengths) else 10
    ax.hist(lengths, bins=bins, color="tab:blue", alpha=0.8)
    if len(lengths):
        median = float(np.median(lengths))
        ax.axvline(median, color="black", linestyle="--", label=f"median {median:g}")
        ax.legend()
    ax.set_xlabel("characters")
    ax.set_ylabel("sentences")
    ax.set_title(f"{title} (n={len(lengths)})")
    fig.tight_layout()
    return fig


def plot_cosine_distribution(groups: Mapping[str, Sequence[float]], ax=None, bins: int = 40,
                             title: str = "cosine similarity", xlim=(-1.0, 1.0)):
    """Overlaid histograms (densities) of cosine similarities, one per group, with each mean marked."""
    fig, ax = _figure(ax)
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    for i, (name, values) in enumerate(groups.items()):
        values = _numpy(values)
        color = f"C{i}"
        ax.hist(values, bins=edges, density=True, alpha=0.45, color=color,
                label=f"{name} (mean {values.mean():.2f})" if len(values) else name)
        if len(values):
            ax.axvline(values.mean(), color=color, linestyle="--")
    ax.set_xlim(*xlim)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_length_bias(length_diffs: Sequence[int], cosines: Sequence[float], ax=None, label: str = "",
                     max_diff: int = 12, title: str = "cosine vs length difference"):
    """Mean cosine (and its standard error) of sentence pairs grouped by |len(a) - len(b)|.

    Call it several times with the same ``ax`` to compare models. Differences above ``max_diff``
    are grouped with ``max_diff``.
    """
    fig, ax = _figure(ax)
    diffs = np.minimum(np.abs(np.asarray(length_diffs)), max_diff)
    cosines = _numpy(cosines)
    xs, means, errors = [], [], []
    for d in np.unique(diffs):
        values = cosines[diffs == d]
        xs.append(int(d))
        means.append(float(values.mean()))
        errors.append(float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0)
    ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label or None)
    ax.set_xlabel(f"|length difference| in characters ({max_diff} = {max_diff} or more)")
    ax.set_ylabel("mean cosine of the pair")
    ax.set_title(title)
    if label:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_added_length(added: Sequence[int], ax=None, title: str = "tokens added by word repetition"):
    """Bar chart of how many tokens word repetition added (one count per augmented sentence)."""
    fig, ax = _figure(ax)
    added = np.asarray(added, dtype=int)
    values, counts = np.unique(added, return_counts=True)
    ax.bar(values, counts / max(1, len(added)), color="tab:green")
    ax.set_xlabel("added tokens")
    ax.set_ylabel("fraction of sentences")
    ax.set_title(f"{title} (mean {added.mean():.2f})" if len(added) else title)
    fig.tight_layout()
    return fig


def plot_queue_fill(sizes: Sequence[int], capacity: int, ax=None):
    """The momentum queue's length after each batch, up to its capacity."""
    fig, ax = _figure(ax, figsize=(5, 3))
    ax.step(range(1, len(sizes) + 1), sizes, where="post", marker="o")
    ax.axhline(capacity, color="gray", linestyle="--", label=f"capacity Q={capacity}")
    ax.set_xlabel("batch")
    ax.set_ylabel("embeddings in the queue")
    ax.set_title("the queue fills up, then the oldest rows drop out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_alignment_uniformity(points: Mapping[str, Mapping[str, float]], ax=None,
                              arrows: Sequence[tuple[str, str]] = ()):
    """Alignment (x) against uniformity (y), one labelled point per model (lower-left is better).

    ``points`` maps a name to a dict with ``alignment`` and ``uniformity`` (e.g. what
    :func:`cse_helpers.evaluate.evaluate_pairs` returns); ``arrows`` draws (from, to) moves.
    """
    fig, ax = _figure(ax, figsize=(5.5, 4.5))
    for i, (name, metrics) in enumerate(points.items()):
        ax.scatter(metrics["alignment"], metrics["uniformity"], s=60, color=f"C{i}", zorder=3)
        ax.annotate(name, (metrics["alignment"], metrics["uniformity"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=9)
    for start, end in arrows:
        a, b = points[start], points[end]
        ax.annotate("", xy=(b["alignment"], b["uniformity"]), xytext=(a["alignment"], a["uniformity"]),
                    arrowprops={"arrowstyle": "->", "color": "gray"})
    ax.set_xlabel(r"alignment $\ell_{align}$ (lower: positives closer)")
    ax.set_ylabel(r"uniformity $\ell_{uniform}$ (lower: more spread)")
    ax.set_title("alignment and uniformity (Wang & Isola, 2020)")
    ax.grid(alpha=0.3)
    ax.margins(0.25)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Matrices
# ------------------------------------------------------------------------------------------------

def plot_label_matrix(labels, tick_labels: Sequence[str] | None = None, ax=None,
                      title: str = "SimCSE label matrix (2B x 2B)"):
    """The (2B, 2B) label matrix of :func:`cse_helpers.losses.simcse_label_matrix` with each value written.

    -100 (ignored: a row against itself) is grey, 1 (the positive, the twin view) green, 0 (negatives) white.
    """
    values = _numpy(labels).astype(int)
    n = values.shape[0]
    fig, ax = _figure(ax, figsize=(0.6 * n + 2.5, 0.6 * n + 1.5))
    colours = np.ones((n, n, 3))
    colours[values == 1] = (0.55, 0.85, 0.55)
    colours[values == -100] = (0.75, 0.75, 0.75)
    ax.imshow(colours)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=8)
    ticks = list(tick_labels) if tick_labels is not None else [f"{chr(97 + k // 2)}{k % 2 + 1}" for k in range(n)]
    ax.set_xticks(range(n), ticks, rotation=90)
    ax.set_yticks(range(n), ticks)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_similarity_matrix(matrix, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                           ax=None, title: str = "cosine similarity", annotate: bool | None = None,
                           vmin: float | None = -1.0, vmax: float | None = 1.0, cmap: str = "viridis",
                           separator: int | None = None, colorbar: bool = True, mark_diagonal: bool = True):
    """A heatmap of a (N, M) matrix (cosines, logits or probabilities), values written when small.

    ``separator`` draws a vertical line before that column (ESimCSE: batch | queue); the
    diagonal (the positives) is outlined when ``mark_diagonal``.
    """
    values = _numpy(matrix)
    n, m = values.shape
    fig, ax = _figure(ax, figsize=(min(14, 0.55 * m + 3), min(10, 0.5 * n + 1.5)))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if annotate if annotate is not None else (n <= 12 and m <= 16):
        for i in range(n):
            for j in range(m):  # white on the dark end of the colour map, black on the light end
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if image.norm(values[i, j]) < 0.5 else "black")
    if mark_diagonal:
        for i in range(min(n, m)):
            ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    if separator is not None:
        ax.axvline(separator - 0.5, color="white", linewidth=2.5)
    if row_labels is not None:
        ax.set_yticks(range(n), list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(m), list(col_labels), rotation=90)
    ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_playground(result: Mapping, ax=None):
    """The loss playground's picture: the softmax probabilities of the batch, the loss in the title.

    ``result`` is what :func:`cse_helpers.widgets.batch_loss` returns. Row i is the anchor
    (first view of sentence i); the red squares are its positive, whose probability the loss
    pushes to 1 (loss = mean of -log of the red cells).
    """
    probs = _numpy(result["probs"])
    labels = [short(t, 6) for t in result["texts"]]
    extra = probs.shape[1] - len(labels)
    cols = labels + [f"q{k}" for k in range(extra)]
    title = f"loss {result['loss']:.4f}"
    if result.get("rtd") is not None:
        title += f" = {result['contrastive']:.4f} + {result['lambda_rtd']:g}·{result['rtd']:.4f} (RTD)"
    fig = plot_similarity_matrix(probs, labels, cols, ax=ax, title=title, vmin=0.0, vmax=1.0, cmap="magma",
                                 annotate=probs.shape[0] <= 10 and probs.shape[1] <= 12)
    fig.axes[0].set_xlabel("candidates: second view of each sentence")
    fig.axes[0].set_ylabel("anchor: first view")
    return fig


# ------------------------------------------------------------------------------------------------
# HTML tables (Chinese text is rendered by the browser, whatever fonts matplotlib has)
# ------------------------------------------------------------------------------------------------

HIGHLIGHT = "background-color:#ffd54f;font-weight:bold"


def html_tokens(tokens: Sequence[str], marks: Sequence[bool] | None = None, style: str = HIGHLIGHT,
                sep: str = "") -> str:
    """Tokens as HTML, the marked ones highlighted (``<span style=...>``). Text is escaped."""
    marks = list(marks) if marks is not None else [False] * len(tokens)
    if len(marks) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(marks)} marks; give one mark per token.")
    return sep.join(f'<span style="{style}">{html.escape(str(t))}</span>' if m else html.escape(str(t))
                    for t, m in zip(tokens, marks))


def html_table(header: Sequence[str], rows: Sequence[Sequence], raw_html: bool = False, floatfmt: str = ".4f") -> str:
    """A small HTML table. Cells are escaped unless ``raw_html`` (cells made by :func:`html_tokens`)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value) if raw_html else html.escape(str(value))

    head = "".join(f"<th style='text-align:left'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_token_grid(row_names: Sequence[str], rows: Sequence[Sequence[str]],
                    marks: Sequence[Sequence[bool]] | None = None, style: str = HIGHLIGHT) -> str:
    """Token rows aligned in columns (one column per position), marked cells highlighted.

    For DiffCSE's table: original / masked / generated / RTD label, one token per column.
    """
    if len(row_names) != len(rows):
        raise ValueError(f"{len(row_names)} row names for {len(rows)} rows.")
    marks = marks if marks is not None else [[False] * len(r) for r in rows]
    width = max(len(r) for r in rows)
    body = []
    for name, tokens, row_marks in zip(row_names, rows, marks):
        if len(row_marks) != len(tokens):
            raise ValueError(f"row {name!r}: {len(tokens)} tokens but {len(row_marks)} marks.")
        cells = [f'<td style="{style};text-align:center">{html.escape(str(t))}</td>' if m
                 else f"<td style='text-align:center'>{html.escape(str(t))}</td>"
                 for t, m in zip(tokens, row_marks)]
        cells += ["<td></td>"] * (width - len(tokens))
        body.append(f"<tr><th style='text-align:left'>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table>{''.join(body)}</table>"
