"""Classification scores from confusion counts, with bootstrap CIs.

All scores come from one confusion matrix, so the same code serves a single
report, a 1,000-sample bootstrap and the decision layer's batched search.
F1 of a class with no true and no predicted rows is 0 (scikit-learn's
`zero_division=0`), and "macro" always averages over the configured labels,
present or not, so runs on different folds stay comparable.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

METRICS = ("macro_f1_official", "macro_f1", "accuracy", "balanced_accuracy", "weighted_f1")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Rows: true label; columns: predicted label."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def batched_confusion(y_true: np.ndarray, preds: np.ndarray, n_labels: int) -> np.ndarray:
    """Confusion matrices for many prediction vectors at once: preds (B, N), y_true (N,) or (B, N) -> (B, n, n)."""
    b = preds.shape[0]
    y_true = np.broadcast_to(np.asarray(y_true, dtype=np.int64), preds.shape)
    flat = (np.arange(b)[:, None] * n_labels * n_labels + y_true * n_labels + preds).ravel()
    return np.bincount(flat, minlength=b * n_labels * n_labels).reshape(b, n_labels, n_labels)


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """precision, recall, f1, support per class; cm may be (n, n) or (B, n, n)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support = cm.sum(-1).astype(float)
    predicted = cm.sum(-2).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return precision, recall, f1, support


def scores_from_counts(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray,
                       score_labels: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Headline scores from per-class true positives, predicted counts and supports (any leading batch dims).

    The one place the scores are defined: confusion matrices and the decision search's fused kernel both end here.
    """
    tp, predicted = np.asarray(tp, dtype=float), np.asarray(predicted, dtype=float)
    support = np.broadcast_to(np.asarray(support, dtype=float), tp.shape)
    labels = list(score_labels) if score_labels else list(range(tp.shape[-1]))
    denom = support + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = support > 0
    recall = np.where(present, tp / np.maximum(support, 1), 0.0)
    total = support.sum(-1)
    return {
        "accuracy": tp.sum(-1) / np.maximum(total, 1),
        "balanced_accuracy": (recall * present).sum(-1) / np.maximum(present.sum(-1), 1),
        "macro_f1": f1.mean(-1),
        "macro_f1_official": f1[..., labels].mean(-1),
        "weighted_f1": (f1 * support).sum(-1) / np.maximum(total, 1),
    }


def scores_from_confusion(cm: np.ndarray, score_labels: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Headline scores for one (n, n) or a batch (B, n, n) of confusion matrices."""
    return scores_from_counts(np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(-2), cm.sum(-1), score_labels)


def score(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, metric: str,
          score_labels: Sequence[int] | None = None) -> float:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return float(scores_from_confusion(confusion(y_true, y_pred, n_labels), score_labels)[metric])


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, metric: str = "macro_f1",
                 score_labels: Sequence[int] | None = None, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI over rows."""
    rng = np.random.default_rng(seed)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    idx = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    cms = batched_confusion(y_true[idx], y_pred[idx], n_labels)
    vals = scores_from_confusion(cms, score_labels)[metric]
    return float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))


def paired_bootstrap(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_labels: int,
                     metric: str = "macro_f1", score_labels: Sequence[int] | None = None,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Is B better than A on the same rows? Same resamples for both; p = share of resamples where B <= A."""
    rng = np.random.default_rng(seed)
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError("paired bootstrap needs predictions for the same rows")
    idx = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    sa = scores_from_confusion(batched_confusion(y_true[idx], pred_a[idx], n_labels), score_labels)[metric]
    sb = scores_from_confusion(batched_confusion(y_true[idx], pred_b[idx], n_labels), score_labels)[metric]
    diff = sb - sa
    return {"delta": score(y_true, pred_b, n_labels, metric, score_labels) - score(y_true, pred_a, n_labels, metric, score_labels),
            "ci_low": float(np.quantile(diff, 0.025)), "ci_high": float(np.quantile(diff, 0.975)),
            "p_b_not_better": float((diff <= 0).mean())}


def report(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str],
           score_labels: Sequence[int] | None = None, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Everything the run directory and the trackers show for one prediction set."""
    n = len(label_names)
    cm = confusion(y_true, y_pred, n)
    head = {k: float(v) for k, v in scores_from_confusion(cm, score_labels).items()}
    precision, recall, f1, support = per_class_scores(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(cm.sum(1, keepdims=True) > 0, cm / np.maximum(cm.sum(1, keepdims=True), 1), 0.0)
    out: dict[str, Any] = dict(head)
    if n_boot:
        for m in ("macro_f1", "macro_f1_official"):
            lo, hi = bootstrap_ci(y_true, y_pred, n, m, score_labels, n_boot, seed)
            out[f"{m}_ci"] = [lo, hi]
    out["per_class"] = [{"label": i, "name": label_names[i], "precision": float(precision[i]),
                         "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
                        for i in range(n)]
    out["confusion"] = cm.tolist()
    out["confusion_normalized"] = np.round(norm, 4).tolist()
    return out


def majority_baseline(y_true: np.ndarray, n_labels: int, majority: int, score_labels: Sequence[int] | None = None,
                      metric: str = "macro_f1") -> float:
    return score(y_true, np.full(len(y_true), majority), n_labels, metric, score_labels)


def format_per_class(rep: dict[str, Any]) -> str:
    lines = [f"{'label':<28} {'prec':>6} {'recall':>6} {'f1':>6} {'support':>7}"]
    for row in rep["per_class"]:
        lines.append(f"{str(row['label']) + ' ' + row['name']:<28.28} {row['precision']:>6.3f} {row['recall']:>6.3f} "
                     f"{row['f1']:>6.3f} {row['support']:>7d}")
    ci = rep.get("macro_f1_ci")
    lines.append("")
    lines.append(f"macro-F1 {rep['macro_f1']:.4f}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
                 + f"   official macro-F1 {rep['macro_f1_official']:.4f}   accuracy {rep['accuracy']:.4f}"
                 + f"   balanced acc {rep['balanced_accuracy']:.4f}")
    return "\n".join(lines)


def per_class_f1_ci(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, n_boot: int = 1000, seed: int = 0,
                    alpha: float = 0.05) -> np.ndarray:
    """(n_labels, 2) percentile bootstrap CI of each class's F1 over rows (the model card's per-class table)."""
    rng = np.random.default_rng(seed)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    idx = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    f1 = per_class_scores(batched_confusion(y_true[idx], y_pred[idx], n_labels))[2]
    return np.stack([np.quantile(f1, alpha / 2, axis=0), np.quantile(f1, 1 - alpha / 2, axis=0)], 1)
