"""The complexity ladder: how much decision the OOF rows can pay for, chosen by nested cross-fitting.
Each rung is an object that fits itself on some rows; the ladder lists the rungs that apply, simplest first."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Sequence

import numpy as np

from harness.config import DecideConfig

from harness.posthoc.decision.rule import Decision, batch_scores, decode
from harness.posthoc.decision.space import Evaluator, Space, candidates_from_params
from harness.posthoc.decision.searches import _params, batched_search


PRIOR_GRID = np.linspace(0.0, 1.5, 31)  # prior: delta = -alpha * log(class prior of the fitting rows)
BLEND_STEPS = 4  # the blend rung's weights move in quarters: a few hundred rows cannot pay for finer weights


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a family of decisions, which fits its best member to some OOF rows.

    `searched`: it needs a search (an Optuna study when it is the chosen rung), not an enumeration."""
    shrink: float = 0.0  # searched rungs: pull delta toward 0 by this much per unit of |delta|
    name: ClassVar[str] = ""
    searched: ClassVar[bool] = False

    def label(self) -> str:
        return self.name + (f" (shrinkage {self.shrink:g})" if self.shrink else "")

    def space(self, space: Space) -> Space | None:
        """What this rung searches of the full space, or None when it adds nothing here (no gate, one seed)."""
        return None

    def fit(self, probs: np.ndarray, labels: np.ndarray, space: Space, d: DecideConfig, budget: int,
            score_labels: Sequence[int] | None, seed: int) -> Decision:
        """The rung's best decision on these rows (in-sample: the ladder cross-fits it)."""
        raise NotImplementedError


class Argmax(Rung):
    """No decision: the argmax of the (fixed-weight) blend."""
    name = "argmax"

    def space(self, space: Space) -> Space | None:
        return space

    def fit(self, probs, labels, space, d, budget, score_labels, seed) -> Decision:  # type: ignore[override]
        return Decision(np.zeros(space.n_labels), None, None, space.fixed_weights)


class Prior(Rung):
    """One number: delta = -alpha * log(class prior of the fitting rows), alpha on a grid."""
    name = "prior"

    def space(self, space: Space) -> Space | None:
        return space if space.delta_classes else None

    def fit(self, probs, labels, space, d, budget, score_labels, seed) -> Decision:  # type: ignore[override]
        k = space.n_labels
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


class Blend(Rung):
    """The members' (or seeds') weights alone, on a coarse simplex grid: an ensemble's first question."""
    name = "blend"

    def space(self, space: Space) -> Space | None:
        return replace(space, delta_classes=[], gate_class=None) if space.search_weights else None

    def fit(self, probs, labels, space, d, budget, score_labels, seed) -> Decision:  # type: ignore[override]
        grid = simplex_grid(space.n_seeds, BLEND_STEPS)
        ev = Evaluator(probs, labels, self.space(space), d.metric, score_labels)
        v = ev.score(np.zeros((len(grid), space.n_labels)), None, grid)
        return Decision(np.zeros(space.n_labels), None, None, grid[int(v.argmax())])  # ties: the first, equal weights


class Searched(Rung):
    """A rung whose decision is searched (batched search here; an Optuna study for the chosen rung)."""
    searched = True

    def fit(self, probs, labels, space, d, budget, score_labels, seed) -> Decision:  # type: ignore[override]
        sub = self.space(space)
        ev = Evaluator(probs, labels, sub, d.metric, score_labels)
        ev.shrink = self.shrink
        x, v = batched_search(ev, d, budget, seed)
        dl, t, w = candidates_from_params(sub, _params(sub, x[int(v.argmax()):int(v.argmax()) + 1]))
        tau = None if t is None or np.isnan(t[0]) else float(t[0])
        return Decision(dl[0], tau, sub.gate_class if tau is not None else None, w[0])


class Delta(Searched):
    """A bias per movable class."""
    name = "delta"

    def space(self, space: Space) -> Space | None:
        return replace(space, gate_class=None, search_weights=False) if space.delta_classes else None


class DeltaGate(Searched):
    """Biases plus a gate on the majority class."""
    name = "delta_gate"

    def space(self, space: Space) -> Space | None:
        return replace(space, search_weights=False) if space.gate_class is not None else None


class Full(Searched):
    """Biases, gate and blend weights together."""
    name = "full"

    def space(self, space: Space) -> Space | None:
        return space if space.search_weights else None


RUNG_TYPES: tuple[type[Rung], ...] = (Argmax, Prior, Blend, Delta, DeltaGate, Full)  # simplest first: ties go to
RUNGS = tuple(r.name for r in RUNG_TYPES)  # the simpler rung
_BY_NAME = {r.name: r for r in RUNG_TYPES}


def rung_named(name: str, shrink: float = 0.0) -> Rung:
    """The rung called `name` (what calibration.json and decide.complexity say)."""
    return _BY_NAME[name](shrink)


def simplex_grid(n: int, steps: int) -> np.ndarray:
    """Every weight vector of n parts in multiples of 1/steps, equal weights first (the tie-break)."""
    from itertools import combinations

    points = [np.diff([-1, *bars, steps + n - 1]) - 1 for bars in combinations(range(steps + n - 1), n - 1)]
    grid = np.unique(np.array(points, dtype=float) / steps, axis=0)
    equal = np.full((1, n), 1.0 / n)
    return np.concatenate([equal, grid[~np.isclose(grid, equal).all(1)]])


def rungs_for(space: Space, d: DecideConfig) -> list[Rung]:
    """Every (rung, shrinkage) the decision may take, simplest first; one rung when `decide.complexity` pins it."""
    rungs: list[Rung] = []
    for kind in RUNG_TYPES:
        if kind(0.0).space(space) is not None:  # shrinkage pulls delta toward 0: only searched rungs have delta
            rungs += [kind(lam) for lam in (sorted(set(d.shrinkage)) if kind.searched else [0.0])]
    if d.complexity != "auto":  # pinned: that rung, or the richest below it that applies (full with one seed)
        names = [r.name for r in rungs]
        name = next(n for n in reversed(RUNGS[:RUNGS.index(d.complexity) + 1]) if n in names)
        rungs = [r for r in rungs if r.name == name]
    return rungs


def choose_rung(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, space: Space, d: DecideConfig,
                score_labels: Sequence[int] | None) -> tuple[Rung, dict[str, float]]:
    """The rung the OOF rows can pay for, and every rung's cross-fitted score. Each rung's score pools its
    predictions of every fold, each decided by the rung fitted on the other folds. The winner (`pick_rung`) is the
    simplest rung within `decide.rung_margin` paired standard errors of the best: a richer rung must beat a simpler
    one by more than the fold-to-fold noise of its gain, or picking the maximum of noisy scores would itself
    overfit."""
    k = space.n_labels
    budget = max(128, d.n_trials // 8)  # inner searches only rank rungs: a smaller budget each
    rungs = rungs_for(space, d)
    if len(rungs) == 1:  # pinned, nothing to choose between
        return rungs[0], {}
    groups = np.unique(fold)
    pooled: dict[str, float] = {}
    per_fold: dict[str, np.ndarray] = {}
    for rung in rungs:
        pred = np.empty(len(labels), dtype=np.int64)
        for g in groups:
            fit, held = fold != g, fold == g
            dec = rung.fit(probs[:, fit], labels[fit], space, d, budget, score_labels, d.seed + int(g))
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
