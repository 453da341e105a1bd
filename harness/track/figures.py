"""Figures shared by the HTML report, the notebook and the W&B tracker (matplotlib Figure objects)."""

from __future__ import annotations

from typing import Any

import numpy as np


# pixels per inch of every report figure: a page-wide figure on a laptop screen (90 filled a third of the width)
FIG_DPI = 140

def plt_module() -> Any:
    import matplotlib

    if "inline" not in matplotlib.get_backend():  # keep a notebook's inline backend; files everywhere else
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap_label(name: str, width: int = 14) -> str:
    """A class name on up to two lines instead of cut ("Needs More Infor")."""
    import textwrap

    lines = textwrap.wrap(name, width) or [name]
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


def confusion_figure(cm: list[list[int]], names: list[str], title: str) -> Any:
    """A row-normalised confusion heatmap with counts; recall on the diagonal."""
    plt = plt_module()
    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(3.2, 1.0 + 0.55 * k), max(2.8, 0.8 + 0.5 * k)), dpi=FIG_DPI)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.55 else "black")
    short = [wrap_label(n) for n in names]
    ax.set_xticks(range(k), short, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def reliability_figure(temperature: dict, title: str) -> Any:
    """Reliability diagram: top-label confidence against accuracy per bin, before and after temperature
    scaling (the `temperature` block of calibration.json); the diagonal is perfect calibration."""
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(3.6, 3.4), dpi=FIG_DPI)
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--")
    for key, label, color in (("reliability_before", f"raw (ECE {temperature['ece_before']:.3f})", "tab:red"),
                              ("reliability_after", f"T = {temperature['temperature']:.2f}, cross-fitted "
                                                    f"(ECE {temperature['ece_after_crossfit']:.3f})", "tab:blue")):
        r = temperature[key]
        used = [i for i, c in enumerate(r["count"]) if c > 0]
        sizes = [8 + 60 * r["count"][i] / max(max(r["count"]), 1) for i in used]
        ax.plot([r["confidence"][i] for i in used], [r["accuracy"][i] for i in used], color=color, lw=1)
        ax.scatter([r["confidence"][i] for i in used], [r["accuracy"][i] for i in used], s=sizes, color=color,
                   label=label)
    ax.set_xlim(-0.02, 1.03)
    ax.set_ylim(-0.02, 1.05)  # points at accuracy 1.0 drawn whole, not cut by the frame
    ax.set_xlabel("confidence (top class)", fontsize=8)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig
