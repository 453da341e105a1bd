"""A learning curve's fit and forecast: score(n) = a - b * n^(-c), the saturating power law of learning curves
(Hestness et al. 2017; Mukherjee et al. 2003 for small clinical sets), fitted with scipy's `curve_fit`.

Its uncertainty is a bootstrap that keeps the points paired: every resample draws the same OOF rows for every
point (each point scores the whole of every fold) and, per point, draws of the training subsample with
replacement; the curve is refitted on each resample and the forecast's interval is the percentiles of the
refitted forecasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from harness.core.metrics import batched_confusion, per_class_scores, scores_from_confusion

BOUNDS = ([0.0, 0.0, 0.01], [1.0, np.inf, 3.0])


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def fit_power_law(n: Sequence[float], y: Sequence[float]) -> np.ndarray | None:
    """(a, b, c), or None when the points cannot pin three parameters (fewer than three distinct sizes) or the
    fit fails."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(n)) < 3:
        return None
    p0 = (min(1.0, float(y.max()) + 0.05), max(1e-3, float(y.max() - y.min())) * float(n.min()) ** 0.5, 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(power_law, n, y, p0=p0, bounds=BOUNDS, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return params


@dataclass
class CurveData:
    """Every point's OOF predictions on the same rows: sizes (P,) mean training rows, preds[p] (draws, N)."""
    labels: np.ndarray
    sizes: np.ndarray
    preds: list[np.ndarray]
    n_labels: int
    score_labels: Sequence[int] | None

    def value(self, cm: np.ndarray, metric: str) -> np.ndarray:
        """A headline metric, or `f1:<class>` (that class's F1), of a batch of confusion matrices."""
        if metric.startswith("f1:"):
            return per_class_scores(cm)[2][:, int(metric[3:])]
        return scores_from_confusion(cm, self.score_labels)[metric]

    def scores(self, metric: str, idx: np.ndarray, draws: list[np.ndarray]) -> np.ndarray:
        """(B, P) metric per resample and point: rows `idx` (B, N); `draws[p]` (B, D) the draws each resample takes
        of point p (its score is their mean)."""
        out = np.zeros((idx.shape[0], len(self.preds)))
        for p, pred in enumerate(self.preds):
            for d in range(pred.shape[0]):
                picked = (draws[p] == d).sum(1)
                if picked.any():
                    cm = batched_confusion(self.labels[idx], pred[d][idx], self.n_labels)
                    out[:, p] += picked * self.value(cm, metric)
            out[:, p] /= draws[p].shape[1]
        return out


def forecast(data: CurveData, metric: str, at: Sequence[float], use: np.ndarray, n_boot: int = 300,
             seed: int = 0) -> dict[str, object]:
    """Fit on the points `use` (a boolean mask) and forecast the metric at sizes `at`, with 95% intervals."""
    rng = np.random.default_rng(seed)
    n_rows = len(data.labels)
    full = np.arange(n_rows)[None]
    draws0 = [np.arange(p.shape[0])[None] for p in data.preds]
    point = data.scores(metric, full, draws0)[0]
    params = fit_power_law(data.sizes[use], point[use])
    idx = rng.integers(0, n_rows, size=(n_boot, n_rows))
    draws = [rng.integers(0, p.shape[0], size=(n_boot, p.shape[0])) for p in data.preds]
    boot = data.scores(metric, idx, draws)
    fits = [fit_power_law(data.sizes[use], b[use]) for b in boot]
    preds = np.array([power_law(np.asarray(at, float), *f) for f in fits if f is not None])
    ok = len(preds)
    return {"metric": metric, "points": point.tolist(), "fit": None if params is None else
            dict(zip("abc", map(float, params))),
            "forecast": [{"n": float(n), "score": None if params is None else float(power_law(n, *params)),
                          "lo": float(np.quantile(preds[:, i], 0.025)) if ok else None,
                          "hi": float(np.quantile(preds[:, i], 0.975)) if ok else None}
                         for i, n in enumerate(at)],
            "bootstrap_fits": ok, "bootstrap": n_boot}


