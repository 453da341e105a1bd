"""The post-hoc decision layer: per-class logit bias δ, a majority-class gate τ, and seed-blend weights.

Decode rule, per row:  if the gate is on and p_m ≥ τ → m;  else argmax_c (log p_c + δ_c).

δ, τ and the blend weights are searched with Optuna on the out-of-fold (OOF) rows. Their
in-sample gain is optimistic by construction (they were tuned on those rows), so the gain
is also *cross-fitted*: fit on K−1 folds' OOF rows, score the held-out fold, for every fold.
Candidates are scored in vectorised batches (ask/tell), so a study of thousands of trials
costs seconds.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core import keys
from harness.posthoc.calibrate import calibration_report
from harness.config import DecideConfig, ExperimentConfig
from harness.config.sections import DELTA_LIMIT
from harness.posthoc.decision.fastdecode import HAVE_NUMBA

if HAVE_NUMBA:
    from harness.posthoc.decision.fastdecode import _counts_blend, _counts_fixed
from harness.core.samplers import make_sampler
from harness.data.schema import content_digest
from harness.core.metrics import METRICS, paired_bootstrap, report, scores_from_confusion, scores_from_counts
from harness.run.rundir import CALIBRATION, RunDir

EPS = 1e-12
BATCH = 128  # candidates scored per vectorised call (also the Optuna ask/tell batch)
FUSED_CHUNK = 512  # candidates per compiled-kernel call
RECORD_CHUNK = 32  # batched search: the study records the best of every this many candidates




class DecisionInputError(ValueError):
    """Bad OOF/test probabilities or an impossible search space; lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("cannot run the decision layer:\n" + "\n".join("  - " + p for p in problems))


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------

def check_probs(probs: np.ndarray, name: str, logits: bool = False, tol: float = 1e-3) -> tuple[np.ndarray, list[str]]:
    """Return valid probabilities (softmax of logits when asked) and the problems found."""
    p: list[str] = []
    arr = np.asarray(probs, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.argwhere(bad)[:, -2])[:5].tolist()
        p.append(f"{name}: {int(bad.sum())} NaN/inf values (rows {rows}...)")
        return arr, p
    if logits:
        if arr.size and (arr >= 0).all() and (arr <= 1).all() and (np.abs(arr.sum(-1) - 1) <= tol).all():
            p.append(f"{name}: every row is already a probability distribution (values in [0, 1] summing to 1), "
                     "not logits: run without --logits")
            return arr, p
        arr = arr - arr.max(-1, keepdims=True)
        arr = np.exp(arr)
        return arr / arr.sum(-1, keepdims=True), p
    if (arr < 0).any():
        p.append(f"{name}: {int((arr < 0).sum())} negative probabilities (pass logits=True for raw scores)")
    sums = arr.sum(-1)
    off = np.abs(sums - 1) > tol
    if off.any():
        rows = np.unique(np.argwhere(off)[:, -1])[:5].tolist()
        p.append(f"{name}: {int(off.sum())} rows do not sum to 1 (e.g. rows {rows}; sums "
                 f"{np.round(sums[off].ravel()[:3], 4).tolist()}); pass logits=True if these are logits")
    return arr, p


@dataclass
class OOF:
    ids: np.ndarray
    labels: np.ndarray
    fold: np.ndarray
    seeds: list[int]
    probs: np.ndarray  # (S, N, K)

    @property
    def n_labels(self) -> int:
        return self.probs.shape[-1]


def load_oof(run_dir: Path, cfg: ExperimentConfig, logits: bool = False) -> OOF:
    run = RunDir(run_dir)
    path = run.oof_path
    if not run.has(path.name):
        raise DecisionInputError([f"{path}: missing; run `harness cv` to the end first (all folds, all seeds)"])
    a = run.read_oof()
    z = {"probs": a.probs, "labels": a.labels, "fold": a.fold, "seeds": a.seeds, "ids": a.ids}
    problems: list[str] = []
    probs, more = check_probs(z["probs"], f"{path}:probs", logits)
    problems += more
    labels, fold = z["labels"], z["fold"]
    if probs.ndim != 3:
        problems.append(f"{path}: probs must be (seeds, rows, classes), got shape {probs.shape}")
    elif probs.shape[1] != len(labels) or len(fold) != len(labels):
        problems.append(f"{path}: {probs.shape[1]} probability rows but {len(labels)} labels and {len(fold)} folds")
    k = len(cfg.data.label_names())
    if probs.ndim == 3 and probs.shape[-1] != k:
        problems.append(f"{path}: {probs.shape[-1]} classes but the config has {k} labels")
    missing_folds = sorted(set(range(cfg.cv.n_folds)) - set(np.unique(fold).tolist()))
    if missing_folds:
        problems.append(f"{path}: no rows for folds {missing_folds}")
    labels_ok = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all() and (labels == np.round(labels)).all())
    if not labels_ok:
        problems.append(f"{path}: labels must be integer class ids, got {labels.dtype} values {labels[:3].tolist()}")
    elif len(labels) and (labels.min() < 0 or labels.max() >= k):
        bad = np.flatnonzero((labels < 0) | (labels >= k))
        problems.append(f"{path}: {len(bad)} labels outside 0..{k - 1}, e.g. ids {z['ids'][bad[:3]].tolist()} "
                        f"(labels {labels[bad[:3]].tolist()})")
    if not np.issubdtype(fold.dtype, np.integer) or (len(fold) and (fold.min() < 0 or fold.max() >= cfg.cv.n_folds)):
        bad = sorted(set(np.asarray(fold).tolist()) - set(range(cfg.cv.n_folds)))[:5]
        problems.append(f"{path}: fold ids {bad} outside 0..{cfg.cv.n_folds - 1} (cv.n_folds={cfg.cv.n_folds})")
    uniq, counts = np.unique(z["ids"].astype(str), return_counts=True)
    if (counts > 1).any():
        problems.append(f"{path}: {int((counts > 1).sum())} ids appear more than once, e.g. {uniq[counts > 1][:3].tolist()}")
    seeds = [int(s) for s in z["seeds"]]
    if probs.ndim == 3 and len(seeds) != probs.shape[0]:
        problems.append(f"{path}: {len(seeds)} seeds listed but {probs.shape[0]} OOF sets")
    missing_seeds = sorted(set(cfg.train.seeds) - set(seeds))
    if missing_seeds:
        problems.append(f"{path}: seeds {missing_seeds} of the config have no OOF set")
    if problems:
        raise DecisionInputError(problems)
    return OOF(z["ids"], labels.astype(np.int64), fold.astype(np.int64), seeds, probs)


# ----------------------------------------------------------------------------
# the decode rule, vectorised over candidates
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


# ----------------------------------------------------------------------------
# search space and candidates
# ----------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------
# search
# ----------------------------------------------------------------------------

def decide_sampler(cfg: DecideConfig) -> Any:
    """The decision search's sampler: a longer random warm-up than Optuna's default (cheap candidates)."""
    return make_sampler(cfg.sampler, cfg.seed, startup_trials={"tpe": 50, "cmaes": 20}.get(cfg.sampler))


def _suggest(trial: Any, space: Space) -> None:
    lo, hi = space.delta_range
    for c in space.delta_classes:
        trial.suggest_float(f"delta_{c}", lo, hi)
    if space.gate_class is not None:
        trial.suggest_categorical("gate", ["on", "off"])
        trial.suggest_float("tau", *space.tau_range)
    if space.search_weights:
        for s in range(space.n_seeds):
            trial.suggest_float(f"w_{s}", 0.0, 1.0)


def search(ev: Evaluator, cfg: DecideConfig, study: Any = None, n_trials: int | None = None,
           progress: bool = False, counted: bool = False) -> tuple[Any, ...]:
    """Run (or extend) an Optuna study on the evaluator's rows; return the best decision and its score (and,
    with `counted`, the trials this call finished). A batch interrupted between ask and tell is told FAIL, so no
    trial stays RUNNING forever in the stored study."""
    import optuna

    from harness.core.progress import progress_bar

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is None:
        study = optuna.create_study(direction="maximize", sampler=decide_sampler(cfg))
    space = ev.space
    total = n_trials if n_trials is not None else cfg.n_trials
    if cfg.sampler != "tpe":  # batched: the kernel scores whole generations; the study records them
        done_before = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        start = [study.best_trial.params] if done_before else []
        x, v = batched_search(ev, cfg, total, cfg.seed + len(done_before), start, progress)
        record_search(study, space, x, v, RECORD_CHUNK)
        i = int(v.argmax())
        d, t, w = candidates_from_params(space, _params(space, x[i:i + 1]))
        if done_before and study.best_trial.value > v[i]:  # an earlier search found better: keep it
            d, t, w = candidates_from_params(space, [study.best_trial.params])
        tau = None if t is None or np.isnan(t[0]) else float(t[0])
        decision = Decision(d[0], tau, space.gate_class if tau is not None else None, w[0])
        best = float(max(v[i], study.best_trial.value))
        return (decision, best, study, len(v)) if counted else (decision, best, study)
    if not study.trials:  # start from plain argmax: the search can only improve on it
        base = {f"delta_{c}": 0.0 for c in space.delta_classes}
        if space.gate_class is not None:
            base.update(gate="off", tau=float(space.tau_range[1]))
        if space.search_weights:
            base.update({f"w_{s}": 0.5 for s in range(space.n_seeds)})
        study.enqueue_trial(base)
    deadline = time.time() + cfg.timeout if cfg.timeout else math.inf
    done = 0
    batches = range(0, total, BATCH)
    for _ in progress_bar(batches, desc="decide", enable=progress, total=len(batches)):
        if time.time() > deadline:
            break
        trials: list[Any] = []
        told = 0
        try:
            trials = [study.ask() for _ in range(min(BATCH, total - done))]
            for t in trials:
                _suggest(t, space)
            delta, tau, w = candidates_from_params(space, [t.params for t in trials])
            values = ev.score(delta, tau, w)
            for t, v in zip(trials, values):
                study.tell(t, float(v))
                told += 1
        except BaseException:
            for t in trials[told:]:
                with contextlib.suppress(Exception):
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
            raise
        done += len(trials)
    best = study.best_trial
    d, t, w = candidates_from_params(space, [best.params])
    tau = None if t is None or np.isnan(t[0]) else float(t[0])
    decision = Decision(d[0], tau, space.gate_class if tau is not None else None, w[0])
    return (decision, float(best.value), study, done) if counted else (decision, float(best.value), study)


# ----------------------------------------------------------------------------
# batched search: candidates proposed and scored in large batches, the study records each generation's best
# ----------------------------------------------------------------------------

def _box(space: Space) -> np.ndarray:
    """(D, 2) bounds of the candidate vector [delta of each searched class | gate switch, tau | raw weights]."""
    rows = [space.delta_range] * len(space.delta_classes)
    if space.gate_class is not None:
        rows += [(0.0, 1.0), tuple(space.tau_range)]
    if space.search_weights:
        rows += [(0.0, 1.0)] * space.n_seeds
    box = np.array(rows, dtype=float).reshape(-1, 2)
    box[:, 1] = np.maximum(box[:, 1], box[:, 0] + 1e-9)  # a degenerate range (tau [1, 1]) stays searchable
    return box


def _params(space: Space, x: np.ndarray) -> list[dict[str, Any]]:
    """Candidate vectors (B, D) as Optuna-style params (what candidates_from_params and the study read)."""
    out = []
    for row in x:
        p: dict[str, Any] = {f"delta_{c}": float(v) for c, v in zip(space.delta_classes, row)}
        i = len(space.delta_classes)
        if space.gate_class is not None:
            p.update(gate="on" if row[i] >= 0.5 else "off", tau=float(row[i + 1]))
            i += 2
        if space.search_weights:
            p.update({f"w_{s}": float(v) for s, v in enumerate(row[i:i + space.n_seeds])})
        out.append(p)
    return out


def _arrays(space: Space, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Candidate vectors (B, D) as the kernel's (delta (B, K), tau (B,) NaN = gate off, weights (B, S)): the same
    decisions `candidates_from_params(space, _params(space, x))` gives, without building a dict per candidate."""
    b, n_d = len(x), len(space.delta_classes)
    delta = np.zeros((b, space.n_labels))
    delta[:, space.delta_classes] = x[:, :n_d]
    i, tau = n_d, None
    if space.gate_class is not None:
        tau = np.where(x[:, i] >= 0.5, x[:, i + 1], np.nan)
        i += 2
    if space.search_weights:
        raw = x[:, i:i + space.n_seeds] + 1e-9
        weights = raw / raw.sum(1, keepdims=True)
    else:
        weights = np.tile(space.fixed_weights, (b, 1))
    return delta, tau, weights


def _vector(space: Space, params: dict[str, Any]) -> np.ndarray:
    x = [params.get(f"delta_{c}", 0.0) for c in space.delta_classes]
    if space.gate_class is not None:
        x += [1.0 if params.get("gate", "off") == "on" else 0.0, params.get("tau", space.tau_range[1])]
    if space.search_weights:
        x += [params.get(f"w_{s}", 0.5) for s in range(space.n_seeds)]
    return np.array(x, dtype=float)


def _distributions(space: Space) -> dict[str, Any]:
    import optuna

    d: dict[str, Any] = {f"delta_{c}": optuna.distributions.FloatDistribution(*space.delta_range)
                         for c in space.delta_classes}
    if space.gate_class is not None:
        d["gate"] = optuna.distributions.CategoricalDistribution(["on", "off"])
        d["tau"] = optuna.distributions.FloatDistribution(*space.tau_range)
    if space.search_weights:
        d.update({f"w_{s}": optuna.distributions.FloatDistribution(0.0, 1.0) for s in range(space.n_seeds)})
    return d


def batched_search(ev: Evaluator, cfg: DecideConfig, n_candidates: int, seed: int,
                   start: list[dict[str, Any]] = (), progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate scored (vectors (B, D), scores (B,)), in large batches so the fused kernel does the work:
    plain argmax and `start` (an earlier study's best) first; then a scrambled Sobol design over the box
    (`qmc`), uniform draws (`random`), or a Sobol warm start refined by CMA-ES generations (`cmaes`)."""
    from scipy.stats import qmc

    from harness.core.progress import progress_bar

    space = ev.space
    deadline = time.time() + cfg.timeout if cfg.timeout else math.inf  # decide.timeout: checked every generation
    box = _box(space)
    lo, hi = box[:, 0], box[:, 1]
    base = _vector(space, {})  # delta 0, gate off, equal weights: argmax of the seed mean
    xs = [np.vstack([base] + [np.clip(_vector(space, p), lo, hi) for p in start])]
    left = max(0, n_candidates - len(xs[0]))
    rng = np.random.default_rng(seed)
    warm = left if cfg.sampler in ("qmc", "random") else min(left, max(64, left // 4))
    if warm:
        with warnings.catch_warnings():  # Sobol's balance is best at powers of two; any count is still a design
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol")
            u = (rng.uniform(size=(warm, len(box))) if cfg.sampler == "random"
                 else qmc.Sobol(len(box), scramble=True, seed=seed).random(warm))
        xs.append(lo + u * (hi - lo))
    scores = [ev.score(*_arrays(space, x)) for x in xs]
    left -= warm
    if left > 0:  # cmaes: generations of a bounded CMA-ES around the best so far
        from cmaes import CMA

        allx, alls = np.vstack(xs), np.concatenate(scores)
        pop = max(16, 4 + int(3 * np.log(len(box))))
        # no bounds inside CMA (its rejection sampling dominated the cost): proposals are clipped to the box
        cma = CMA(mean=allx[alls.argmax()], sigma=0.3 * float(np.median(hi - lo)), seed=seed, population_size=pop)
        gens = range(0, left, pop)
        for _ in progress_bar(gens, desc="decide", enable=progress, total=len(gens)):
            if time.time() > deadline:
                break
            raw = np.array([cma.ask() for _ in range(pop)])
            x = np.clip(raw, lo, hi)
            v = ev.score(*_arrays(space, x))
            cma.tell([(ri, -float(vi)) for ri, vi in zip(raw, v)])  # cmaes minimises
            xs.append(x)
            scores.append(v)
            if cma.should_stop():
                cma = CMA(mean=allx[alls.argmax()], sigma=0.3 * float(np.median(hi - lo)),
                          seed=int(rng.integers(1 << 31)), population_size=pop)
    return np.vstack(xs)[:n_candidates], np.concatenate(scores)[:n_candidates]


def record_search(study: Any, space: Space, x: np.ndarray, v: np.ndarray, chunk: int) -> None:
    """The study (engine of record) gets one finished trial per `chunk` candidates: the best of that chunk,
    with how many it stands for; written in one batch (no per-candidate storage round trip)."""
    import optuna

    dist = _distributions(space)
    trials = []
    chunk = max(chunk, -(-len(v) // 8))  # at most 8 stored trials a search: each is a database transaction
    for s in range(0, len(v), chunk):
        i = s + int(v[s:s + chunk].argmax())
        trials.append(optuna.trial.create_trial(params=_params(space, x[i:i + 1])[0], distributions=dist,
                                                value=float(v[i]),
                                                user_attrs={"candidates": int(min(chunk, len(v) - s))}))
    study.add_trials(trials)


def random_search(ev: Evaluator, n: int, seed: int) -> tuple[float, np.ndarray]:
    """Best score of N uniform candidates, and the running best after each candidate (for efficiency plots)."""
    rng = np.random.default_rng(seed)
    delta, tau, w = random_candidates(ev.space, n, rng)
    scores = ev.score(delta, tau, w)
    return float(scores.max()), np.maximum.accumulate(scores)


# ----------------------------------------------------------------------------
# the complexity ladder: how much decision the OOF rows can pay for, chosen by cross-fitting
# ----------------------------------------------------------------------------

RUNGS = ("argmax", "prior", "blend", "delta", "delta_gate", "full")  # simplest first: ties go to the simpler rung
PRIOR_GRID = np.linspace(0.0, 1.5, 31)  # prior: delta = -alpha * log(class prior of the fitting rows)


@dataclass(frozen=True)
class Rung:
    name: str
    shrink: float = 0.0

    def label(self) -> str:
        return self.name + (f" (shrinkage {self.shrink:g})" if self.shrink else "")


def rung_space(space: Space, name: str) -> Space | None:
    """The search space of a searched rung, or None when the rung adds nothing here (no gate, one seed)."""
    if name == "blend":  # the members' (or seeds') weights alone, on a coarse grid: an ensemble's first question
        return replace(space, delta_classes=[], gate_class=None) if space.search_weights else None
    if name == "delta":
        return replace(space, gate_class=None, search_weights=False) if space.delta_classes else None
    if name == "delta_gate":
        return replace(space, search_weights=False) if space.gate_class is not None else None
    if name == "full":
        return space if space.search_weights else None
    return None


BLEND_STEPS = 4  # the blend rung's weights move in quarters: a few hundred rows cannot pay for finer weights
GRID_RUNGS = ("argmax", "prior", "blend")  # decided by enumeration: nothing for a study to search


def simplex_grid(n: int, steps: int) -> np.ndarray:
    """Every weight vector of n parts in multiples of 1/steps, equal weights first (the tie-break)."""
    from itertools import combinations

    points = [np.diff([-1, *bars, steps + n - 1]) - 1 for bars in combinations(range(steps + n - 1), n - 1)]
    grid = np.unique(np.array(points, dtype=float) / steps, axis=0)
    equal = np.full((1, n), 1.0 / n)
    return np.concatenate([equal, grid[~np.isclose(grid, equal).all(1)]])


def ladder(space: Space, d: DecideConfig) -> list[Rung]:
    """Every (rung, shrinkage) the decision may take, simplest first; one rung when `decide.complexity` pins it."""
    rungs = [Rung("argmax")] + ([Rung("prior")] if space.delta_classes else [])
    for name in RUNGS[2:]:
        if rung_space(space, name) is not None:  # shrinkage pulls delta toward 0: blend has no delta
            rungs += [Rung(name, lam) for lam in ([0.0] if name == "blend" else sorted(set(d.shrinkage)))]
    if d.complexity != "auto":  # pinned: that rung, or the richest below it that applies (full with one seed)
        names = [r.name for r in rungs]
        name = next(n for n in reversed(RUNGS[:RUNGS.index(d.complexity) + 1]) if n in names)
        rungs = [r for r in rungs if r.name == name]
    return rungs


def fit_rung(probs: np.ndarray, labels: np.ndarray, space: Space, rung: Rung, d: DecideConfig, budget: int,
             score_labels: Sequence[int] | None, seed: int) -> Decision:
    """The rung's best decision on these rows (in-sample: the caller cross-fits it)."""
    k = space.n_labels
    if rung.name == "argmax":
        return Decision(np.zeros(k), None, None, space.fixed_weights)
    if rung.name == "prior":
        prior = (np.bincount(labels, minlength=k) + 1.0) / (len(labels) + k)
        deltas = -PRIOR_GRID[:, None] * np.log(prior)[None]
        deltas = deltas - deltas.mean(1, keepdims=True)  # a shift of every class by one amount decides nothing
        mask = np.zeros(k, dtype=bool)
        mask[space.delta_classes] = True
        deltas = np.clip(np.where(mask, deltas, 0.0), *space.delta_range)  # within the user's box and classes
        flat = Space(k, space.n_seeds, list(range(k)), (-1e9, 1e9), None, space.tau_range, False, space.fixed_weights)
        ev = Evaluator(probs, labels, flat, d.metric, score_labels)
        v = ev.score(deltas, None, np.tile(space.fixed_weights, (len(deltas), 1)))
        return Decision(deltas[int(v.argmax())], None, None, space.fixed_weights)
    if rung.name == "blend":
        grid = simplex_grid(space.n_seeds, BLEND_STEPS)
        ev = Evaluator(probs, labels, rung_space(space, "blend"), d.metric, score_labels)
        v = ev.score(np.zeros((len(grid), k)), None, grid)
        return Decision(np.zeros(k), None, None, grid[int(v.argmax())])  # ties: the first, equal weights
    sub = rung_space(space, rung.name)
    ev = Evaluator(probs, labels, sub, d.metric, score_labels)
    ev.shrink = rung.shrink
    x, v = batched_search(ev, d, budget, seed)
    dl, t, w = candidates_from_params(sub, _params(sub, x[int(v.argmax()):int(v.argmax()) + 1]))
    tau = None if t is None or np.isnan(t[0]) else float(t[0])
    return Decision(dl[0], tau, sub.gate_class if tau is not None else None, w[0])


def choose_rung(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, space: Space, d: DecideConfig,
                score_labels: Sequence[int] | None) -> tuple[Rung, dict[str, float]]:
    """The rung the OOF rows can pay for, and every rung's cross-fitted score. Each rung's score pools its
    predictions of every fold, each decided by the rung fitted on the other folds. The winner (`pick_rung`) is the
    simplest rung within `decide.rung_margin` paired standard errors of the best: a richer rung must beat a simpler
    one by more than the fold-to-fold noise of its gain, or picking the maximum of noisy scores would itself
    overfit."""
    k = space.n_labels
    budget = max(128, d.n_trials // 8)  # inner searches only rank rungs: a smaller budget each
    rungs = ladder(space, d)
    if len(rungs) == 1:  # pinned, nothing to choose between
        return rungs[0], {}
    groups = np.unique(fold)
    pooled: dict[str, float] = {}
    per_fold: dict[str, np.ndarray] = {}
    for rung in rungs:
        pred = np.empty(len(labels), dtype=np.int64)
        for g in groups:
            fit, held = fold != g, fold == g
            dec = fit_rung(probs[:, fit], labels[fit], space, rung, d, budget, score_labels, d.seed + int(g))
            pred[held] = decode(probs[:, held], dec)
        pooled[rung.label()] = float(batch_scores(labels, pred[None], k, d.metric, score_labels)[0])
        per_fold[rung.label()] = batch_scores(labels[None].repeat(1, 0), pred[None], k, d.metric, score_labels) \
            if len(groups) < 2 else np.array([batch_scores(labels[fold == g], pred[fold == g][None], k, d.metric,
                                                            score_labels)[0] for g in groups])
    return pick_rung(rungs, pooled, per_fold, d.rung_margin), pooled


def pick_rung(rungs: Sequence[Rung], pooled: dict[str, float], per_fold: dict[str, np.ndarray], margin: float) -> Rung:
    """The simplest rung within `margin` paired standard errors (of the fold-by-fold differences) of the best
    pooled score, among the rungs that score above every simpler one: a richer rung that is no better than a
    simpler one is never the pick, however noisy its folds (noise alone would put it "within the margin")."""
    best = max(rungs, key=lambda r: pooled[r.label()])
    simpler_best = -np.inf
    for rung in rungs:  # simplest first
        if pooled[rung.label()] <= simpler_best:
            continue
        simpler_best = pooled[rung.label()]
        diff = per_fold[best.label()] - per_fold[rung.label()]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        if pooled[rung.label()] >= pooled[best.label()] - margin * se:
            return rung
    return best


# ----------------------------------------------------------------------------
# cross-fitting and the whole step
# ----------------------------------------------------------------------------

def crossfit(oof: OOF, cfg: ExperimentConfig, space: Space) -> dict[str, Any]:
    """Fit on K−1 folds' OOF rows, score the held-out fold; the honest estimate of the gain."""
    d = cfg.decide
    k = oof.n_labels
    folds = sorted(np.unique(oof.fold).tolist())
    pooled_after = np.empty(len(oof.labels), dtype=np.int64)
    pooled_before = oof.probs.mean(0).argmax(-1)
    gains = []
    chosen = []
    for f in folds:
        fit, held = oof.fold != f, oof.fold == f
        # nested: the rung is chosen by cross-fitting on the other folds only, then fitted on all of them
        rung, _ = choose_rung(oof.probs[:, fit], oof.labels[fit], oof.fold[fit], space, d, cfg.data.score_labels)
        decision = fit_rung(oof.probs[:, fit], oof.labels[fit], space, rung, d, d.n_trials, cfg.data.score_labels,
                            d.seed)
        chosen.append(rung.label())
        pooled_after[held] = decode(oof.probs[:, held], decision)
        ev_held = Evaluator(oof.probs[:, held], oof.labels[held], space, d.metric, cfg.data.score_labels)
        after = float(batch_scores(oof.labels[held], pooled_after[held][None], k, d.metric, cfg.data.score_labels)[0])
        gains.append(after - ev_held.argmax_score())
    boot = paired_bootstrap(oof.labels, pooled_before, pooled_after, k, d.metric, cfg.data.score_labels)
    return {"per_fold_gain": gains, "gain_mean": float(np.mean(gains)), "gain_sd": float(np.std(gains, ddof=1))
            if len(gains) > 1 else 0.0, "pooled_before": float(batch_scores(oof.labels, pooled_before[None], k,
                                                                            d.metric, cfg.data.score_labels)[0]),
            "pooled_after": float(batch_scores(oof.labels, pooled_after[None], k, d.metric, cfg.data.score_labels)[0]),
            "pooled_gain": boot["delta"], "pooled_gain_ci": [boot["ci_low"], boot["ci_high"]],
            "p_not_better": boot["p_b_not_better"], "rung_per_fold": chosen, "predictions": pooled_after}


def decide_run(run_dir: Path, cfg: ExperimentConfig, verbose: bool = True, logits: bool = False,
               wait: float = 0.0) -> dict[str, Any]:
    """Search δ, τ and weights on a run's OOF rows (resuming its study), cross-fit the gain, write calibration.json.

    Holds the run directory's writer lock throughout and commits calibration.json, crossfit.npz and the decide/*
    keys of metrics.json in one step: an error anywhere leaves the decision in force as it was. Another writer
    holding the lock: refused, or waited for up to `wait` s (`harness cv` processes that finish together)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise DecisionInputError([f"{run.path}: not found (was the run directory moved or deleted?)"])
    with run.writing("decide", wait=wait):
        out = _decide(run, cfg, verbose, logits)
    rung = out["complexity"]["chosen"]
    if verbose:
        print(format_decision(out, cfg.data.label_names()))
    if "crossfit" in out and out["crossfit"]["pooled_gain"] <= 0 < out["in_sample"]["gain"] and rung != "argmax":
        msg = (f"WARNING: the cross-fitted gain of the decision layer is not positive "
               f"({out['crossfit']['pooled_gain']:+.4f}); its in-sample gain ({out['in_sample']['gain']:+.4f}) "
               "does not carry over to rows it was not fitted to. Consider decide.complexity=argmax.")
        if verbose:  # said once: on screen for a person, as a warning for code calling quietly
            print("\n" + "!" * 78 + "\n" + msg + "\n" + "!" * 78)
        else:
            warnings.warn(msg, stacklevel=2)
    return out


def _decide(run: RunDir, cfg: ExperimentConfig, verbose: bool, logits: bool) -> dict[str, Any]:
    import optuna

    d = cfg.decide
    oof = load_oof(run.path, cfg, logits)
    space = make_space(d, oof)
    names = cfg.data.label_names()
    ev = Evaluator(oof.probs, oof.labels, space, d.metric, cfg.data.score_labels)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # one study per search space: a narrower delta_range or more delta_classes must not reuse trials
    # sampled from another space (their parameters would fall outside it, or be missing)
    t0 = time.time()
    rung, inner = choose_rung(oof.probs, oof.labels, oof.fold, space, d, cfg.data.score_labels)
    sub = rung_space(space, rung.name)
    space_key = content_digest([d.delta_range, d.delta_classes, d.gate, d.tau_range, d.blend, d.weights,
                                oof.seeds, cfg.data.score_labels, rung.name, rung.shrink])[:10]
    study_name = f"decide-{d.metric}-{d.sampler}-{d.seed}-{rung.name}-{space_key}"
    try:
        study, added, complete = None, 0, 0
        if rung.name in GRID_RUNGS:  # argmax, prior or blend: nothing for a study to search
            decision = fit_rung(oof.probs, oof.labels, space, rung, d, d.n_trials, cfg.data.score_labels, d.seed)
        else:  # the chosen rung, searched on every row with the full budget; the study records it (resumable)
            study = optuna.create_study(direction="maximize", sampler=decide_sampler(d),
                                        storage=run.decide_storage(), study_name=study_name, load_if_exists=True)
            ev_rung = Evaluator(oof.probs, oof.labels, sub, d.metric, cfg.data.score_labels)
            ev_rung.shrink = rung.shrink
            decision, _, study, added = search(ev_rung, d, study, progress=verbose, counted=True)
            complete = sum(int(t.user_attrs.get("candidates", 1))  # a recorded trial stands for its batch
                           for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    except Exception as e:  # noqa: BLE001 - a read-only run, a full disk, a torn decide.db: one line, no traceback
        from harness.core.store import StoreError

        if type(e).__module__.split(".")[0] not in ("sqlalchemy", "sqlite3", "optuna") and not isinstance(e, OSError):
            raise
        raise StoreError(f"{run.decide_storage()}: the decision study cannot be opened or written "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); check the run directory is "
                         "writable with free space, or remove a damaged decide.db to search afresh") from None
    seconds = time.time() - t0
    before_pred = oof.probs.mean(0).argmax(-1)
    after_pred = decode(oof.probs, decision)
    before_rep = report(oof.labels, before_pred, names, cfg.data.score_labels)
    after_rep = report(oof.labels, after_pred, names, cfg.data.score_labels)
    out: dict[str, Any] = {
        **decision.to_json(), "gate_on": decision.tau is not None, "sampler": d.sampler, "seed": d.seed,
        "metric": d.metric, "study": study_name if study is not None else None, "storage": run.decide_storage(),
        "complexity": {"setting": d.complexity, "chosen": rung.name, "shrinkage": rung.shrink,
                       "cross_fitted_scores": inner,
                       "why": f"{rung.label()}: the simplest rung whose cross-fitted {d.metric} over the OOF folds "
                              f"({inner[rung.label()]:.4f}) is within {d.rung_margin:g} paired standard errors of the "
                              f"best ({max(inner.values()):.4f}), richer rungs that score no better than a simpler "
                              "one passed over" if inner else
                              (f"pinned by decide.complexity={d.complexity}" if rung.name == d.complexity else
                               f"decide.complexity={d.complexity} pinned, but that rung has nothing to search here "
                               f"(one blended set, no gate, or no class that can move): {rung.name}, the richest "
                               "rung below it, is locked")},
        "trials_total": complete, "trials_added": added,  # finished trials only (a killed search's never ran)
        "search_seconds": round(seconds, 2), "seeds": oof.seeds,
        "in_sample": {"before": before_rep[d.metric], "after": after_rep[d.metric],
                      "gain": after_rep[d.metric] - before_rep[d.metric]},
        "before": before_rep, "after": after_rep,
    }
    out["temperature"] = calibration_report(oof.probs.mean(0), oof.labels, oof.fold)
    members = run.read_members()
    if members is not None and run.read_combine() == "stack":  # one OOF set: the stacker's, over these members
        out["stacked"] = [m.label() for m in members]
    elif members is not None:  # an ensemble: the blend's axis is its members (run/seed), not seeds of one run
        out["members"] = [m.label() for m in members]
    if d.random_baseline:
        rb, _ = random_search(ev, d.random_baseline, d.seed)
        out["random_baseline"] = {"candidates": d.random_baseline, "best": rb}
    cf_pred = None
    if d.crossfit:
        cf = crossfit(oof, cfg, space)
        cf_pred = cf.pop("predictions")  # the honest decided predictions, for `harness compare --use crossfit`
        out["crossfit"] = cf
        out["crossfit"]["after_report"] = report(oof.labels, cf_pred, names, cfg.data.score_labels)
    run.write_calibration(out, oof.ids, cf_pred)  # without cross-fitting, an older crossfit.npz is removed
    run.replace_summary_keys(keys.decide(""), decide_summary(out))
    return out


def decide_summary(out: dict[str, Any]) -> dict[str, float]:
    """Stable decide/* keys (README) that sweeps, studies and dashboards target."""
    m = out["metric"]
    found = {keys.decide(k): out["after"][k] for k in keys.DECIDE_SCORES}
    found.update({keys.decide(m): out["in_sample"]["after"], keys.GAIN_IN_SAMPLE: out["in_sample"]["gain"]})
    if "temperature" in out:
        t = out["temperature"]
        found.update({keys.TEMPERATURE: t["temperature"], keys.ECE_BEFORE: t["ece_before"],
                      keys.ECE_AFTER: t["ece_after_crossfit"]})
    if "crossfit" in out:
        cf = out["crossfit"]
        found.update({keys.crossfit(m): cf["pooled_after"], keys.GAIN_CROSSFIT: cf["pooled_gain"],
                      keys.ci(keys.GAIN_CROSSFIT, "low"): cf["pooled_gain_ci"][0],
                      keys.ci(keys.GAIN_CROSSFIT, "high"): cf["pooled_gain_ci"][1]})
    return {k: float(v) for k, v in found.items()}


def format_decision(out: dict[str, Any], names: Sequence[str]) -> str:
    """The decision for a person: what was chosen and why, what it does, and what it is worth out of sample."""
    m = out["metric"]
    c = out.get("complexity", {})
    ladder_scores = ", ".join(f"{k} {v:.4f}" for k, v in c.get("cross_fitted_scores", {}).items())
    lines = [f"decision layer: {c.get('chosen', 'delta_gate')}"
             + (f" (shrinkage {c['shrinkage']:g})" if c.get("shrinkage") else "")
             + (f", chosen by cross-fitted {m} on the OOF folds: {ladder_scores}" if len(c.get(
                 "cross_fitted_scores", {})) > 1 else f" ({c.get('why', 'pinned by decide.complexity')})")]
    shifted = [f"{names[i] if i < len(names) else i} {v:+.2f}" for i, v in enumerate(out["delta"]) if abs(v) > 1e-9]
    if shifted:
        lines.append("  class biases: " + ", ".join(shifted))
    if out["gate_on"]:
        gate = names[out["gate_class"]] if out["gate_class"] < len(names) else out["gate_class"]
        lines.append(f"  gate: predict {gate} whenever its probability is at least {out['tau']:.3f}")
    if "stacked" in out:
        lines.append("  on a stacker of: " + ", ".join(out["stacked"]))
    if "members" in out:
        lines.append("  member weights: " + ", ".join(f"{x} {w:.2f}" for x, w in zip(out["members"], out["weights"])))
    elif len(out["weights"]) > 1:
        lines.append("  seed weights: " + ", ".join(f"{s} {w:.2f}" for s, w in zip(out["seeds"], out["weights"])))
    argmax_kept = c.get("chosen") == "argmax"
    if argmax_kept:  # the locked rule is argmax: it changes no prediction, so there is no gain to speak of
        lines.append(f"  {m}: {out['in_sample']['before']:.4f}, the plain argmax of the seed mean (no richer rule "
                     "earned its place)")
    else:
        lines.append(f"  {m}: argmax {out['in_sample']['before']:.4f} -> decided {out['in_sample']['after']:.4f} on "
                     f"the rows it was fitted to (gain {out['in_sample']['gain']:+.4f}, optimistic)")
    if "crossfit" in out and not argmax_kept:
        cf = out["crossfit"]
        lines.append(f"  out of sample (cross-fitted): {cf['pooled_before']:.4f} -> {cf['pooled_after']:.4f}, "
                     f"gain {cf['pooled_gain']:+.4f} (95% CI {cf['pooled_gain_ci'][0]:+.4f}..{cf['pooled_gain_ci'][1]:+.4f})")
        others = sorted({r.split(" (")[0] for r in cf.get("rung_per_fold", [])} - {c.get("chosen")})
        if others:  # the estimate is of the whole procedure, the rung chosen again without each fold
            lines.append(f"    (of the ladder as a procedure: without each fold's rows it chose "
                         f"{', '.join(cf['rung_per_fold'])} on the folds)")
    if "temperature" in out:
        t = out["temperature"]
        lines.append(f"  calibration: temperature {t['temperature']:.2f}; expected calibration error "
                     f"{t['ece_before']:.3f} -> {t['ece_after_crossfit']:.3f} out of sample (cross-fitted), "
                     f"log loss {t['nll_before']:.3f} -> {t['nll_after_crossfit']:.3f}")
    if out.get("study"):
        lines.append(f"  search: {out['trials_added']} candidates now ({out['sampler']}), {out['trials_total']} in all "
                     f"in its study ({out['storage'].rsplit('/', 1)[-1]})")
    if "random_baseline" in out:
        rb = out["random_baseline"]
        lines.append(f"  random search of {rb['candidates']} candidates: best {rb['best']:.4f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# applying a locked decision
# ----------------------------------------------------------------------------

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
