"""Fused decode + count kernels for the decision search (numba), with the numpy path as fallback.

One pass per (candidate, row): the gate test, the biased argmax over classes and the
true-positive / predicted counts, without materialising a (candidates × rows × classes)
array. Macro-F1 and the other scores need only those counts and the class supports.
"""

from __future__ import annotations

import numpy as np

try:
    import numba

    @numba.njit(cache=True, nogil=True)
    def _counts_fixed(logp, pgate, y, delta, tau, gate_class):  # pragma: no cover - compiled
        b_n, k_n = delta.shape
        n_rows = logp.shape[0]
        tp = np.zeros((b_n, k_n), dtype=np.int64)
        pred = np.zeros((b_n, k_n), dtype=np.int64)
        for b in range(b_n):
            t = tau[b]
            for n in range(n_rows):
                if gate_class >= 0 and pgate[n] >= t:  # NaN tau: the comparison is False, gate off
                    c = gate_class
                else:
                    best = logp[n, 0] + delta[b, 0]
                    c = 0
                    for k in range(1, k_n):
                        v = logp[n, k] + delta[b, k]
                        if v > best:  # strict: the first maximum wins, as in numpy.argmax
                            best = v
                            c = k
                pred[b, c] += 1
                if c == y[n]:
                    tp[b, c] += 1
        return tp, pred

    @numba.njit(cache=True, nogil=True)
    def _counts_blend(probs, weights, y, delta, tau, gate_class, eps):  # pragma: no cover - compiled
        b_n, k_n = delta.shape
        s_n, n_rows = probs.shape[0], probs.shape[1]
        tp = np.zeros((b_n, k_n), dtype=np.int64)
        pred = np.zeros((b_n, k_n), dtype=np.int64)
        p = np.empty(k_n, dtype=np.float32)
        scale = np.exp(delta)  # argmax log(p)+d == argmax p*exp(d): no log per row
        for b in range(b_n):
            t = tau[b]
            for n in range(n_rows):
                for k in range(k_n):
                    acc = np.float32(0.0)
                    for s in range(s_n):
                        acc += weights[b, s] * probs[s, n, k]
                    p[k] = acc
                if gate_class >= 0 and p[gate_class] >= t:
                    c = gate_class
                else:
                    best = (p[0] + eps) * scale[b, 0]
                    c = 0
                    for k in range(1, k_n):
                        v = (p[k] + eps) * scale[b, k]
                        if v > best:
                            best = v
                            c = k
                pred[b, c] += 1
                if c == y[n]:
                    tp[b, c] += 1
        return tp, pred

    HAVE_NUMBA = True
except ImportError:  # numba is optional: the numpy path gives the same numbers, slower
    HAVE_NUMBA = False


def scores_from_counts(tp: np.ndarray, pred: np.ndarray, support: np.ndarray,
                       score_labels: list[int] | None) -> dict[str, np.ndarray]:
    """The metrics of harness.metrics from per-class true-positive and predicted counts (B, K)."""
    tp = tp.astype(float)
    pred = pred.astype(float)
    support = support.astype(float)[None, :]
    n = support.sum()
    denom = support + pred
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = support > 0
    recall = np.where(present, tp / np.maximum(support, 1), 0.0)
    labels = score_labels if score_labels else list(range(tp.shape[1]))
    return {"accuracy": tp.sum(1) / max(n, 1), "balanced_accuracy": (recall * present).sum(1) / max(present.sum(), 1),
            "macro_f1": f1.mean(1), "macro_f1_official": f1[:, labels].mean(1),
            "weighted_f1": (f1 * support).sum(1) / max(n, 1)}
