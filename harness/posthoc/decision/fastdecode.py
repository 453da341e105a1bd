"""Fused decode + count kernels for the decision search (numba), with the numpy path as fallback.

One pass per (row, candidate batch): the gate test, the biased argmax over classes and the
true-positive / predicted counts, without materialising a (candidates × rows × classes)
array. harness.core.metrics.scores_from_counts turns those counts and the class supports into scores.
"""

from __future__ import annotations

import numpy as np

try:
    import numba

    @numba.njit(cache=True, nogil=True)
    def _tally(arg, pgate_n, y_n, tau, gate_class, tp, pred):  # pragma: no cover - compiled
        for b in range(arg.shape[0]):
            c = arg[b]
            if gate_class >= 0 and pgate_n >= tau[b]:  # NaN tau: the comparison is False, gate off
                c = gate_class
            pred[b, c] += 1
            if c == y_n:
                tp[b, c] += 1

    @numba.njit(cache=True, nogil=True)
    def _counts_fixed(logp, pgate, y, delta, tau, gate_class):  # pragma: no cover - compiled
        # rows outside, candidates inside: the inner loops run over contiguous candidate arrays (SIMD)
        b_n, k_n = delta.shape
        d_t = np.ascontiguousarray(delta.T)
        tp = np.zeros((b_n, k_n), dtype=np.int64)
        pred = np.zeros((b_n, k_n), dtype=np.int64)
        best = np.empty(b_n, dtype=np.float32)
        arg = np.zeros(b_n, dtype=np.int64)
        for n in range(logp.shape[0]):
            l0 = logp[n, 0]
            for b in range(b_n):
                best[b] = l0 + d_t[0, b]
                arg[b] = 0
            for k in range(1, k_n):
                lk = logp[n, k]
                for b in range(b_n):
                    v = lk + d_t[k, b]
                    if v > best[b]:  # strict: the first maximum wins, as in numpy.argmax
                        best[b] = v
                        arg[b] = k
            _tally(arg, pgate[n], y[n], tau, gate_class, tp, pred)
        return tp, pred

    @numba.njit(cache=True, nogil=True)
    def _counts_blend(probs, weights, y, delta, tau, gate_class, eps):  # pragma: no cover - compiled
        b_n, k_n = delta.shape
        s_n = probs.shape[0]
        w_t = np.ascontiguousarray(weights.T)
        scale = np.ascontiguousarray(np.exp(delta).T)  # argmax log(p)+d == argmax p*exp(d): no log per row
        tp = np.zeros((b_n, k_n), dtype=np.int64)
        pred = np.zeros((b_n, k_n), dtype=np.int64)
        best = np.empty(b_n, dtype=np.float32)
        arg = np.zeros(b_n, dtype=np.int64)
        p = np.empty(b_n, dtype=np.float32)
        pg = np.empty(b_n, dtype=np.float32)
        for n in range(probs.shape[1]):
            for k in range(k_n):
                for b in range(b_n):
                    p[b] = 0.0
                for s in range(s_n):
                    q = probs[s, n, k]
                    for b in range(b_n):
                        p[b] += w_t[s, b] * q
                if k == gate_class:
                    pg[:] = p
                for b in range(b_n):
                    v = (p[b] + eps) * scale[k, b]
                    if k == 0 or v > best[b]:
                        best[b] = v
                        arg[b] = k
            for b in range(b_n):
                c = arg[b]
                if gate_class >= 0 and pg[b] >= tau[b]:
                    c = gate_class
                pred[b, c] += 1
                if c == y[n]:
                    tp[b, c] += 1
        return tp, pred

    HAVE_NUMBA = True
except ImportError:  # numba is optional: the numpy path gives the same numbers, slower
    HAVE_NUMBA = False
