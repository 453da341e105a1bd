"""Synthetic OOF probabilities for the decision-layer tests and benchmark."""

from __future__ import annotations

from harness.data.synthetic import OFFICIAL_COUNTS


def make_oof_probs(n_rows: int = 1864, n_seeds: int = 2, n_folds: int = 5, seed: int = 0,
                   signal: float = 1.6, majority_bias: float = 1.2):
    """Synthetic imbalanced OOF probabilities (S, N, K) of a model that over-predicts the majority class,
    with labels and folds: the situation the decision layer is for."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = np.array(OFFICIAL_COUNTS, dtype=float) / sum(OFFICIAL_COUNTS)
    k = len(p)
    y = rng.choice(k, size=n_rows, p=p)
    fold = rng.integers(0, n_folds, size=n_rows)
    shared = rng.normal(size=(n_rows, k))
    probs = []
    for _ in range(n_seeds):
        logits = signal * np.eye(k)[y] + 0.8 * shared + 0.6 * rng.normal(size=(n_rows, k)) + np.log(p) * 0.5
        logits[:, int(p.argmax())] += majority_bias
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs.append(e / e.sum(1, keepdims=True))
    return np.stack(probs).astype(np.float32), y, fold
