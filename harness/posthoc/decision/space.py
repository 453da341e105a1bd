"""The search space of a decision (which classes move, the gate, the weights) and the scorer of candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from harness.config import DecideConfig
from harness.posthoc.decision.fastdecode import HAVE_NUMBA

if HAVE_NUMBA:
    from harness.posthoc.decision.fastdecode import _counts_blend, _counts_fixed
from harness.core.metrics import METRICS, scores_from_counts
from harness.posthoc.decision.inputs import DecisionInputError, OOF
from harness.posthoc.decision.rule import EPS, batch_scores, blend, decode_batch

BATCH = 128  # candidates scored per vectorised call (also the Optuna ask/tell batch)
FUSED_CHUNK = 512  # candidates per compiled-kernel call


@dataclass
class Space:
    n_labels: int
    n_seeds: int
    delta_classes: list[int]
    delta_range: tuple[float, float]
    gate_class: int | None
    tau_range: tuple[float, float]
    search_weights: bool
    fixed_weights: np.ndarray = field(default_factory=lambda: np.ones(1))

    @property
    def dims(self) -> int:
        return len(self.delta_classes) + (1 if self.gate_class is not None else 0) + (
            self.n_seeds if self.search_weights else 0)


def make_space(cfg: DecideConfig, oof: OOF, n_seeds: int | None = None) -> Space:
    k = oof.n_labels
    s = n_seeds or len(oof.seeds)
    problems = []
    if cfg.gate == "off":
        gate = None
    elif cfg.gate == "majority":
        gate = int(np.bincount(oof.labels, minlength=k).argmax())
    else:
        gate = int(cfg.gate)
        if not 0 <= gate < k:
            problems.append(f"decide.gate: class {gate} is outside the label set 0..{k - 1}")
    classes = list(range(k)) if cfg.delta_classes is None else list(cfg.delta_classes)
    bad = [c for c in classes if not 0 <= c < k]
    if bad:
        problems.append(f"decide.delta_classes: {bad} outside 0..{k - 1}")
    lo, hi = cfg.delta_range
    if lo == hi:
        classes = []
    if cfg.blend == "fixed":
        w = np.asarray(cfg.weights, dtype=float)
        if len(w) != s:
            problems.append(f"decide.weights: {len(w)} weights for {s} seeds")
        w = w / w.max() if len(w) and np.isfinite(w).all() and w.max() > 0 else w  # 1e308s do not overflow
        w = w / w.sum() if len(w) == s and w.sum() > 0 else np.ones(s) / s
    else:
        w = np.ones(s) / s
    search_w = cfg.blend == "search" and s > 1
    space = Space(k, s, classes, (lo, hi), gate, tuple(cfg.tau_range), search_w, w)  # type: ignore[arg-type]
    if not classes and cfg.complexity in ("delta", "delta_gate", "full"):
        problems.append(f"decide.complexity={cfg.complexity} searches class biases, but none can move "
                        f"(decide.delta_range {list(cfg.delta_range)}, decide.delta_classes {cfg.delta_classes})")
    if not problems and space.dims == 0:
        problems.append("empty search space: no delta classes (or delta_range low == high), gate off, "
                        "and nothing to blend; widen decide.delta_range or turn the gate on")
    if problems:
        raise DecisionInputError(problems)
    return space


def candidates_from_params(space: Space, params: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Optuna params → (delta (B,K), tau (B,) with NaN for gate off, weights (B,S))."""
    b = len(params)
    delta = np.zeros((b, space.n_labels))
    for c in space.delta_classes:
        delta[:, c] = [p[f"delta_{c}"] for p in params]
    tau = None
    if space.gate_class is not None:
        tau = np.array([p["tau"] if p.get("gate", "on") == "on" else np.nan for p in params], dtype=float)
    if space.search_weights:
        raw = np.array([[p[f"w_{s}"] for s in range(space.n_seeds)] for p in params]) + 1e-9
        weights = raw / raw.sum(1, keepdims=True)
    else:
        weights = np.tile(space.fixed_weights, (b, 1))
    return delta, tau, weights


def random_candidates(space: Space, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The published baseline: N uniform candidates in the same box."""
    delta = np.zeros((n, space.n_labels))
    lo, hi = space.delta_range
    delta[:, space.delta_classes] = rng.uniform(lo, hi, size=(n, len(space.delta_classes)))
    tau = rng.uniform(*space.tau_range, size=n) if space.gate_class is not None else None
    weights = rng.dirichlet(np.ones(space.n_seeds), size=n) if space.search_weights else np.tile(space.fixed_weights, (n, 1))
    return delta, tau, weights


class Evaluator:
    """Scores candidate (δ, τ, weights) batches on a fixed set of rows."""

    def __init__(self, probs: np.ndarray, labels: np.ndarray, space: Space, metric: str,
                 score_labels: Sequence[int] | None):
        if metric not in METRICS:
            raise DecisionInputError([f"decide.metric: {metric!r} is not one of {', '.join(METRICS)}"])
        self.probs = probs.astype(np.float32)  # (S, N, K)
        self.y = labels.astype(np.int64)
        self.space, self.metric, self.score_labels = space, metric, score_labels
        self.fixed_p = blend(self.probs, space.fixed_weights.astype(np.float32))
        self.fixed_logp = np.log(self.fixed_p + np.float32(EPS))
        self.support = np.bincount(self.y, minlength=space.n_labels)
        self.shrink = 0.0  # objective = metric - shrink * mean |delta| (shrinkage toward plain argmax)

    def score(self, delta: np.ndarray, tau: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        raw = self._raw(delta, tau, weights)
        return raw - self.shrink * np.abs(delta).mean(1) if self.shrink else raw

    def _raw(self, delta: np.ndarray, tau: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        if HAVE_NUMBA:
            return self._score_fused(delta, tau, weights)
        out = np.empty(len(delta))
        for s in range(0, len(delta), BATCH):
            sl = slice(s, s + BATCH)
            if self.space.search_weights:
                p = blend(self.probs, weights[sl].astype(np.float32))  # (B, N, K)
                logp = np.log(p + EPS)
            else:
                p, logp = self.fixed_p, self.fixed_logp
            pg = p[..., self.space.gate_class] if self.space.gate_class is not None else None
            pred = decode_batch(logp, pg, delta[sl], None if tau is None else tau[sl], self.space.gate_class)
            out[sl] = batch_scores(self.y, pred, self.space.n_labels, self.metric, self.score_labels)
        return out

    def _score_fused(self, delta: np.ndarray, tau: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        """One compiled pass per candidate and row (see harness.posthoc.decision.fastdecode); same numbers as the numpy path."""
        gate = -1 if self.space.gate_class is None else self.space.gate_class
        out = np.empty(len(delta))
        for s in range(0, len(delta), FUSED_CHUNK):  # candidate arrays stay in cache
            sl = slice(s, s + FUSED_CHUNK)
            d = np.ascontiguousarray(delta[sl], dtype=np.float32)
            t = (np.full(len(d), np.nan, dtype=np.float32) if tau is None
                 else np.ascontiguousarray(tau[sl], dtype=np.float32))
            if self.space.search_weights:
                w = np.ascontiguousarray(weights[sl], dtype=np.float32)
                tp, pred = _counts_blend(self.probs, w, self.y, d, t, gate, np.float32(EPS))
            else:
                pg = np.ascontiguousarray(self.fixed_p[:, max(gate, 0)])
                tp, pred = _counts_fixed(self.fixed_logp, pg, self.y, d, t, gate)
            out[sl] = scores_from_counts(tp, pred, self.support, self.score_labels)[self.metric]
        return out

    def argmax_score(self) -> float:
        pred = self.probs.mean(0).argmax(-1)[None]
        return float(batch_scores(self.y, pred, self.space.n_labels, self.metric, self.score_labels)[0])
