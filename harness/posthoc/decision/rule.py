"""The decision rule and its decoder: a per-class bias δ, a gate τ on one class, blend weights; vectorised over
candidates. Decode, per row: if the gate is on and p_m ≥ τ → m; else argmax_c (log p_c + δ_c)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config.sections import DELTA_LIMIT

from harness.core.metrics import scores_from_confusion
from harness.run.rundir import CALIBRATION, RunDir
from harness.posthoc.decision.inputs import DecisionInputError

EPS = 1e-12


# ----------------------------------------------------------------------------

@dataclass
class Decision:
    delta: np.ndarray  # (K,)
    tau: float | None  # None: gate off
    gate_class: int | None
    weights: np.ndarray  # (S,)

    def to_json(self) -> dict[str, Any]:
        return {"delta": [float(x) for x in self.delta], "tau": self.tau, "gate_class": self.gate_class,
                "weights": [float(x) for x in self.weights]}

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = CALIBRATION, n_labels: int | None = None,
                  n_sets: int | None = None) -> "Decision":
        """A decision read from disk, every number checked in its domain (a hand-edited or damaged file, a
        setting gone wrong): finite biases within ±DELTA_LIMIT, a gate threshold in [0, 1] on a class that
        exists, weights on the simplex. All problems at once, naming the file and key."""
        problems = check_decision_json(d, n_labels, n_sets)
        if problems:
            raise DecisionInputError([f"{where}: {p}" for p in problems] +
                                     ["re-run `harness decide` on the run directory to write a valid decision"])
        return cls(np.array(d["delta"], dtype=float), None if d["tau"] is None else float(d["tau"]),
                   None if d["gate_class"] is None else int(d["gate_class"]), np.array(d["weights"], dtype=float))


def _numbers(value: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


def check_weights(weights: Any, key: str, n: int | None = None) -> list[str]:
    """Blend weights: finite, non-negative, not all zero (normalised they lie on the simplex)."""
    w = _numbers(weights)
    if w is None or not len(w):
        return [f"{key}: {weights!r} is not a list of numbers"]
    p = []
    if n is not None and len(w) != n:
        p.append(f"{key}: {len(w)} weights for {n} blended sets")
    if not np.isfinite(w).all() or (w < 0).any():
        p.append(f"{key}: {list(weights)} must be finite and >= 0")
    elif not w.sum() > 0 or not np.isfinite((w / w.max()).sum()):
        p.append(f"{key}: {list(weights)} are all zero: nothing to blend")
    return p


def check_decision_json(d: Any, n_labels: int | None, n_sets: int | None) -> list[str]:
    if not isinstance(d, dict):
        return ["not a JSON object"]
    missing = [k for k in ("delta", "tau", "gate_class", "weights") if k not in d]
    if missing:
        return [f"missing key(s) {', '.join(missing)}"]
    p = []
    delta = _numbers(d["delta"])
    if delta is None:
        p.append(f"delta: {d['delta']!r} is not a list of numbers")
    else:
        if n_labels is not None and len(delta) != n_labels:
            p.append(f"delta: {len(delta)} biases for {n_labels} classes")
        if not np.isfinite(delta).all() or (np.abs(delta) > DELTA_LIMIT).any():
            p.append(f"delta: {d['delta']} must be finite and within ±{DELTA_LIMIT:g}")
    tau, gate = d["tau"], d["gate_class"]
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau <= 1):
        p.append(f"tau: {tau!r} must be a number in [0, 1] (or null: no gate)")
    if (tau is None) != (gate is None):
        p.append(f"gate_class: {gate!r} with tau {tau!r}: a gate needs both (or neither)")
    elif gate is not None and (isinstance(gate, bool) or not isinstance(gate, int) or not 0 <= gate < (n_labels or gate + 1)):
        p.append(f"gate_class: {gate!r} is not a class index 0..{(n_labels or 0) - 1}")
    w = _numbers(d["weights"])
    if w is not None and len(w) and np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0 and \
            abs(w.sum() - 1) > 1e-6:
        p.append(f"weights: {d['weights']} do not sum to 1")
    p += check_weights(d["weights"], "weights", n_sets)
    return p


def blend(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(S, N, K) probabilities and (S,) or (B, S) weights → (N, K) or (B, N, K)."""
    return np.tensordot(weights, probs, axes=([-1], [0]))


def decode_batch(logp: np.ndarray, p_gate: np.ndarray | None, delta: np.ndarray, tau: np.ndarray | None,
                 gate_class: int | None) -> np.ndarray:
    """Predictions (B, N) for B candidates. logp: (N, K) or (B, N, K); delta: (B, K); tau: (B,), NaN = gate off."""
    scores = (logp if logp.ndim == 3 else logp[None]) + delta[:, None, :].astype(logp.dtype)
    pred = scores.argmax(-1)
    if gate_class is not None and tau is not None:
        pg = p_gate if p_gate.ndim == 2 else p_gate[None]
        pred = np.where(pg >= tau[:, None], gate_class, pred)  # NaN tau never fires
    return pred


def decode(probs: np.ndarray, d: Decision) -> np.ndarray:
    """Plain single-decision rule on (S, N, K) probabilities; the reference the batched one is tested against."""
    p = blend(probs, d.weights)
    pred = np.argmax(np.log(p + EPS) + d.delta, axis=-1)
    if d.gate_class is not None and d.tau is not None:
        pred = np.where(p[:, d.gate_class] >= d.tau, d.gate_class, pred)
    return pred


def batch_scores(y: np.ndarray, preds: np.ndarray, n_labels: int, metric: str,
                 score_labels: Sequence[int] | None) -> np.ndarray:
    """Metric for each of B prediction vectors: one bincount gives all B confusion matrices."""
    b, n = preds.shape
    flat = (np.arange(b, dtype=np.int64)[:, None] * (n_labels * n_labels) + y[None, :] * n_labels + preds).ravel()
    cms = np.bincount(flat, minlength=b * n_labels * n_labels).reshape(b, n_labels, n_labels)
    return scores_from_confusion(cms, score_labels)[metric]

def load_decision(run_dir: Path, n_labels: int | None = None, n_sets: int | None = None) -> Decision | None:
    run = RunDir(run_dir)
    found = run.read_calibration()
    return Decision.from_json(found, str(run.calibration_path), n_labels, n_sets) if found is not None else None


def apply_to_test(test_probs: np.ndarray, decision: Decision | None) -> np.ndarray:
    """test_probs (S, F, M, K): average folds per seed, then blend and decode with the locked decision."""
    per_seed = test_probs.mean(1)
    if decision is None:
        return per_seed.mean(0).argmax(-1)
    if len(decision.weights) != per_seed.shape[0]:
        raise DecisionInputError([f"calibration has {len(decision.weights)} seed weights, test.npz {per_seed.shape[0]} seeds"])
    return decode(per_seed, decision)
