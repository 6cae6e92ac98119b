"""What every figure module shares: matplotlib set up for a notebook or a headless run (the Agg backend) with a
CJK font registered, a figure of its own unless an ``ax`` is given, and short tick labels."""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() in ("", "agg") or not matplotlib.rcParams.get("backend"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..fonts import use_cjk_font  # noqa: E402

CJK_FONT = use_cjk_font(warn=False)  # course.setup() warns if there is none (after the Colab install)


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


def legend_outside(ax, fontsize: int = 8, **kwargs):
    """A legend to the right of the axes, off the data."""
    return ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     frameon=False, **kwargs)
