"""Temperature scaling fitted out of sample, and what a reliability diagram shows.

A model's probabilities are calibrated when, among rows it gives confidence c, a fraction c is right.
Fine-tuned and class-weighted models rarely are, and a blend of members that are over- and
under-confident by different amounts weighs them by their confidence rather than their skill. One
temperature T per OOF set (p ∝ p_raw^(1/T)) fixes most of it and never changes the argmax.

Honest by construction, like the decision layer: the ECE "after" is cross-fitted (each fold's rows are
scaled by the T fitted on the other folds); the T that is kept is fitted on every OOF row.
Arrays in, numbers out: no files, no model library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-12
N_BINS = 15
LOG_T_RANGE = (-3.0, 3.0)  # T in [0.05, 20]


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, None))


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) over the last axis."""
    z = log_probs(probs) / temperature
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-log_probs(probs)[np.arange(len(labels)), labels].mean()) if len(labels) else 0.0


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the NLL of these rows (bounded 1-D search over log T)."""
    from scipy.optimize import minimize_scalar

    if len(labels) == 0:
        return 1.0
    z = log_probs(probs)
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(1, keepdims=True)
        return float((np.log(np.exp(s).sum(1)) - s[rows, labels]).mean())

    return float(np.exp(minimize_scalar(loss, bounds=LOG_T_RANGE, method="bounded",
                                        options={"xatol": 1e-4}).x))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Top-label confidence against accuracy in equal-width bins (the reliability diagram's points)."""
    conf = probs.max(1)
    right = (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(float)
    safe = np.maximum(count, 1)
    return {"confidence": (np.bincount(which, conf, n_bins) / safe).tolist(),
            "accuracy": (np.bincount(which, right, n_bins) / safe).tolist(), "count": count.astype(int).tolist()}


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error: the count-weighted gap between confidence and accuracy over the bins."""
    r = reliability(probs, labels, n_bins)
    n = max(sum(r["count"]), 1)
    return float(sum(c * abs(a - f) for c, a, f in zip(r["count"], r["accuracy"], r["confidence"])) / n)


@dataclass
class Calibrated:
    """One OOF set's temperature: the kept T, and the OOF rows scaled out of sample (each fold by the T of
    the others), which is what a blend or a stacker fitted on OOF rows should see."""
    temperature: float
    fold_temperatures: dict[int, float]
    oof: np.ndarray  # (N, K) cross-fitted scaled probabilities


def crossfit_temperature(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> Calibrated:
    out = np.empty_like(np.asarray(probs, dtype=np.float64))
    per_fold = {}
    for f in np.unique(fold).tolist():
        held = fold == f
        per_fold[int(f)] = fit_temperature(probs[~held], labels[~held]) if (~held).any() else 1.0
        out[held] = scale(probs[held], per_fold[int(f)])
    return Calibrated(fit_temperature(probs, labels), per_fold, out)


def calibration_report(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> dict[str, Any]:
    """calibration.json → `temperature`: the kept T, ECE and NLL before and after (after cross-fitted), and
    both reliability diagrams, for the probabilities the argmax uses (the seed mean)."""
    c = crossfit_temperature(probs, labels, fold)
    return {"temperature": c.temperature, "fold_temperatures": {str(k): v for k, v in c.fold_temperatures.items()},
            "bins": N_BINS, "ece_before": ece(probs, labels), "ece_after_crossfit": ece(c.oof, labels),
            "nll_before": nll(probs, labels), "nll_after_crossfit": nll(c.oof, labels),
            "reliability_before": reliability(probs, labels), "reliability_after": reliability(c.oof, labels)}
