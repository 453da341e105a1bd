"""What the decision layer reads: a run's OOF probabilities, checked (shape, finiteness, labels, folds, ids)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import ExperimentConfig

from harness.run.rundir import RunDir


class DecisionInputError(ValueError):
    """Bad OOF/test probabilities or an impossible search space; lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("cannot run the decision layer:\n" + "\n".join("  - " + p for p in problems))


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
