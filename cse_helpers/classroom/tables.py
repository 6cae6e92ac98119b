"""HTML tables for the notebooks: scores with their intervals, per-group scores, highlighted tokens.

Chinese text in an HTML table is drawn by the browser, whatever fonts matplotlib has. Each function
returns a string; a notebook shows it with ``display(HTML(tables.scores_table(results)))``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from ..evaluate import spearman_text

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


COLUMN_NAMES = {"spearman": "Spearman [95% CI]", "best_accuracy": "best accuracy", "best_f1": "best F1",
                "f1": "F1 at 0.5", "alignment": "alignment", "uniformity": "uniformity", "pearson": "Pearson"}


def scores_table(results: Mapping[str, Mapping], columns: Sequence[str] = ("spearman", "best_accuracy", "best_f1",
                                                                           "alignment", "uniformity")) -> str:
    """One row per model of :func:`~cse_helpers.evaluate.evaluate_pairs` results, as HTML.

    The Spearman is printed with its bootstrap interval (``0.034 [-0.02, 0.09]``); other numbers with
    4 decimals (NaN, e.g. a baseline's alignment, as "-").
    """
    def cell(result, key):
        if key == "spearman":
            return spearman_text(result)
        value = result.get(key, float("nan"))
        return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else value

    return html_table(["model", *[COLUMN_NAMES.get(c, c) for c in columns]],
                      [(name, *[cell(r, c) for c in columns]) for name, r in results.items()])


def groups_table(results: Mapping[str, Mapping]) -> str:
    """Per-group scores of several models (``result["groups"]``) as HTML: one row per group, per model
    the mean score (a cosine; for character overlap, the overlap) and, where some group has both labels,
    the Spearman with its interval ("-" in a group with a single label)."""
    names = [name for name, r in results.items() if "groups" in r]
    if not names:
        return ""
    groups = list(dict.fromkeys(g for name in names for g in results[name]["groups"]))
    ranked = any(np.isfinite(g["spearman"]) for name in names for g in results[name]["groups"].values())
    whats = ("mean score", "Spearman") if ranked else ("mean score",)
    header = ["group", "pairs"] + [f"{name}: {what}" for name in names for what in whats]
    rows = []
    for group in groups:
        first = next(results[n]["groups"][group] for n in names if group in results[n]["groups"])
        row = [group, first["n"]]
        for name in names:
            g = results[name]["groups"].get(group)
            cells = ["-"] * len(whats) if g is None else [g["mean_cosine"]]
            if g is not None and ranked:
                cells.append(spearman_text(g) if np.isfinite(g["spearman"]) else "-")
            row += cells
        rows.append(row)
    return html_table(header, rows, floatfmt=".3f")


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
