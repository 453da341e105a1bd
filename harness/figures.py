"""Figures shared by the HTML report, the notebook and the W&B tracker (matplotlib Figure objects)."""

from __future__ import annotations

from typing import Any

import numpy as np


def plt_module() -> Any:
    import matplotlib

    if "inline" not in matplotlib.get_backend():  # keep a notebook's inline backend; files everywhere else
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(cm: list[list[int]], names: list[str], title: str) -> Any:
    """A row-normalised confusion heatmap with counts; recall on the diagonal."""
    plt = plt_module()
    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(3.2, 1.0 + 0.55 * k), max(2.8, 0.8 + 0.5 * k)), dpi=90)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.55 else "black")
    short = [n[:14] for n in names]
    ax.set_xticks(range(k), short, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
