"""The run directory's layout: the name of every file in it, and the typed records they hold.

    config.yaml          the resolved config (secrets masked)
    data.json            rows and content digest of the training and test data (and extra training tasks)
    folds.json           the fold of every row (+ its group)
    folds/seed<S>/fold<K>/probs.npz     written last and atomically: its presence means "fold done"
    folds/seed<S>/fold<K>/metrics.json  fold metrics, training log
    folds/seed<S>/fold<K>/model/        what the method saved (`Method.load` reads it)
    folds/seed<S>/fold<K>/claim.json    who trains this fold now (host, pid, heartbeat)
    folds/seed<S>/fold<K>/scratch/      the method's transient files (trainer checkpoints); removed after fit
    cache/               content-keyed caches of a method (e.g. embeddings)
    oof.npz              ids, labels, fold, seeds, probs[seed, row, class]
    test.npz             ids, seeds, probs[seed, fold, row, class]
    metrics.json         OOF metrics per seed and for the seed mean, per fold, summary keys
    calibration.json     the locked decision (delta, tau, blend weights) and its in-sample / cross-fitted gains
    crossfit.npz         each OOF row decided by a rule searched on the other folds (belongs to calibration.json)
    decide.db            the decision searches' Optuna study (SQLite)
    ensemble.json        an ensemble directory's members (run, seed), in blend order, and how they combine
    combiner.npz         an ensemble's per-member temperatures and, stacked, its logistic-regression stacker
    track.json           the W&B run ids this directory was mirrored to
    track/history.jsonl  the disk tracker's mirror of what W&B would get (track.backend: disk)
    report.html          the local report
    scored-<key>.npz     a new file's test probabilities (`predict --test`), keyed by its content and the config
    refit/seed<S>/model/         `harness export --from refit`: one model trained on every training row
    refit/seed<S>/metrics.json   its steps, rows and seconds: written last, in the same commit (its presence: done)
    refit/seed<S>/claim.json     who trains it now
    curve.json           a learning-curve directory (`harness curve`): every point's scores, the fit, the forecasts
    curve.png            its figure
    points/f<F>-d<D>/    one point: a run directory trained on fraction F of each fold's training groups (draw D)
    manifest.json        digest, size and writer of every file above that commands build on, and provenance
    writer.lock          who is committing to this directory now (harness.run.manifest)
    .stage-<token>/      a writer's files before its one-step commit

No other module names these files: RunDir (harness.run.rundir) offers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIG = "config.yaml"
DATA = "data.json"
FOLDS = "folds.json"
OOF = "oof.npz"
TEST = "test.npz"
METRICS = "metrics.json"
CALIBRATION = "calibration.json"
CROSSFIT = "crossfit.npz"
DECIDE_DB = "decide.db"
ENSEMBLE = "ensemble.json"
COMBINER = "combiner.npz"
TRACK = "track.json"
TRACK_HISTORY = "track/history.jsonl"  # the disk tracker's JSON-lines mirror (track.backend: disk)
REPORT = "report.html"
CACHE = "cache"
FOLD_ROOT = "folds"
FOLD_DONE = "probs.npz"
FOLD_METRICS = "metrics.json"
FOLD_CLAIM = "claim.json"
MODEL = "model"
SCRATCH = "scratch"
REFIT_ROOT = "refit"
CURVE = "curve.json"
CURVE_FIGURE = "curve.png"
CURVE_POINTS = "points"
MANIFEST = "manifest.json"
LOCK = "writer.lock"
SCORED_PREFIX = "scored-"
# what a run directory holds once `harness cv` (or `harness ensemble`) has written results: a directory with these
# and no manifest was written by an older harness
RESULTS_MARK = (DATA, OOF, FOLD_ROOT, ENSEMBLE, CALIBRATION)
UPGRADE = "harness verify {path} --upgrade records its files as they are now (after you check them)"
# what a results artifact carries (the mirrors upload these and nothing else)
RESULT_FILES = (OOF, TEST, FOLDS, CALIBRATION, CONFIG, METRICS)


@dataclass
class FoldRecord:
    """One finished fold of one seed: its validation rows' and the test rows' probabilities, and its metrics."""
    seed: int
    fold: int
    val_ids: list[str]
    val_probs: np.ndarray  # (val rows, K)
    test_probs: np.ndarray  # (test rows, K)
    metrics: dict[str, Any]
    resumed: bool = False


@dataclass
class OofArrays:
    """oof.npz: every training row's out-of-fold probabilities for every seed (or ensemble member)."""
    ids: np.ndarray
    labels: np.ndarray
    fold: np.ndarray
    seeds: np.ndarray
    probs: np.ndarray  # (S, N, K)


@dataclass
class TestArrays:
    """test.npz: every fold model's test probabilities for every seed (or ensemble member)."""
    __test__ = False  # not a pytest test class
    ids: np.ndarray
    seeds: np.ndarray
    probs: np.ndarray  # (S, F, M, K)


@dataclass
class EnsembleMember:
    """One blend member of an ensemble directory: one seed's OOF set of one member run."""
    member: int
    run_dir: str
    name: str
    method: str
    seed: int

    def label(self) -> str:
        return f"{self.name}/seed {self.seed}"
