"""Per-class loss weights from one fold's training labels: the fold loop computes them, every method reads them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.config import LossConfig


def class_weights(labels: Sequence[int], n_labels: int, cfg: LossConfig) -> np.ndarray:
    """Per-class weights from one fold's training labels (mean weight over those rows = 1)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_labels).astype(float)
    safe = np.maximum(counts, 1.0)  # a class absent from this fold's training part gets the rarest weight
    if cfg.class_weights == "none":
        w = np.ones(n_labels)
    elif cfg.class_weights == "inverse":
        w = 1.0 / safe
    elif cfg.class_weights == "inverse_sqrt":
        w = 1.0 / np.sqrt(safe)
    elif cfg.class_weights == "effective_number":
        w = (1.0 - cfg.effective_beta) / (1.0 - np.power(cfg.effective_beta, safe))
    else:
        raise ValueError(f"unknown class_weights {cfg.class_weights!r}")
    per_row_mean = (w * counts).sum() / max(counts.sum(), 1.0)
    return w / per_row_mean
