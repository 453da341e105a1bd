"""RunDir: the one reader and writer of a run directory, the source of truth every command reads.

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
    report.html          the local report
    scored-<key>.npz     a new file's test probabilities (`predict --test`), keyed by its content and the config

No other module names these files: they ask a RunDir.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.store import StoreError, atomic_write_json, atomic_write_npz, load_npz, read_json

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from harness.folds import Folds

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
REPORT = "report.html"
CACHE = "cache"
FOLD_ROOT = "folds"
FOLD_DONE = "probs.npz"
FOLD_METRICS = "metrics.json"
FOLD_CLAIM = "claim.json"
MODEL = "model"
SCRATCH = "scratch"
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


class RunDir:
    """Paths and typed records of one run directory (a `harness cv` experiment or an ensemble)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    @property
    def name(self) -> str:
        return self.path.name

    # -- paths ------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def cache(self) -> Path:
        return self.path / CACHE

    @property
    def track_path(self) -> Path:
        return self.path / TRACK

    def fold_dir(self, seed: int, fold: int) -> Path:
        return self.path / FOLD_ROOT / f"seed{seed}" / f"fold{fold}"

    def model_dir(self, seed: int, fold: int) -> Path:
        return self.fold_dir(seed, fold) / MODEL

    def claim_path(self, seed: int, fold: int) -> Path:
        """Who is training this fold now (harness.claims.FoldClaim)."""
        return self.fold_dir(seed, fold) / FOLD_CLAIM

    def scratch_dir(self, seed: int, fold: int) -> Path:
        return self.fold_dir(seed, fold) / SCRATCH

    def model_dirs(self) -> list[Path]:
        return sorted((self.path / FOLD_ROOT).glob(f"seed*/fold*/{MODEL}"))

    def seeds_on_disk(self) -> list[str]:
        return sorted(p.name for p in (self.path / FOLD_ROOT).glob("seed*"))

    def scored_cache(self, key: str) -> Path:
        """Test probabilities of a new file scored by this run's fold models, keyed by its content and config."""
        return self.path / f"scored-{key}.npz"

    def decide_storage(self) -> str:
        """The SQLite URL of the decision searches' study."""
        return f"sqlite:///{(self.path / DECIDE_DB).resolve()}"

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def is_run(self) -> bool:
        return self.config_path.exists()

    def is_finished(self) -> bool:
        """All folds of all seeds were assembled into oof.npz."""
        return (self.path / OOF).exists()

    def check_usable(self, key: str = "run_dir") -> None:
        """A path that can become (or already is) a run directory; else a one-line error naming it."""
        from harness.config import ConfigError

        if self.path.is_symlink() and not self.path.exists():
            raise ConfigError([f"{key}: {self.path} is a broken symbolic link (to {self.path.readlink()})"])
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError([f"{key}: {self.path} is a file, not a directory"])
        for parent in self.path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ConfigError([f"{key}: {parent} is a file, not a directory"])
                break

    # -- config -----------------------------------------------------------------
    def read_config(self) -> ExperimentConfig:
        from harness.config import load_config

        return load_config(self.config_path)

    def write_config(self, cfg: ExperimentConfig) -> None:
        cfg.save(self.config_path)

    def claim(self, cfg: ExperimentConfig) -> bool:
        """Make this directory `cfg`'s experiment, atomically: of two processes starting on one empty directory
        only one writes config.yaml. False: it existed already (the caller checks it is the same experiment)."""
        from harness.store import create_exclusive_text

        return create_exclusive_text(self.config_path, cfg.to_yaml())

    def raw_config(self) -> dict[str, Any]:
        """config.yaml as plain data, for looking a run up by name without validating it."""
        from harness.config import read_yaml

        return read_yaml(self.config_path)

    # -- data and folds ------------------------------------------------------------
    def read_fingerprint(self) -> dict[str, Any] | None:
        return read_json(self.path / DATA) if self.has(DATA) else None

    def write_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        atomic_write_json(self.path / DATA, fingerprint)

    def read_folds(self) -> Folds:
        from harness.folds import Folds

        return Folds.load(self.path / FOLDS)

    def write_folds(self, folds: Folds) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        folds.save(self.path / FOLDS)

    def folds_path(self) -> Path:
        return self.path / FOLDS

    def copy_identity_from(self, other: RunDir) -> None:
        """Take another run's folds and data fingerprint (an ensemble is on its members' folds and data)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in (FOLDS, DATA):
            shutil.copyfile(other.path / name, self.path / name)

    # -- fold results ------------------------------------------------------------
    def fold_done(self, seed: int, fold: int) -> bool:
        return (self.fold_dir(seed, fold) / FOLD_DONE).exists()

    def read_fold(self, seed: int, fold: int) -> FoldRecord | None:
        """A finished fold, or None when not finished. A torn file raises StoreError naming it (and is removed,
        so the fold is trained again)."""
        out = self.fold_dir(seed, fold)
        done = out / FOLD_DONE
        if not done.exists():
            return None
        try:
            z = load_npz(done, "val_ids", "val_probs", "test_probs")
            metrics = read_json(out / FOLD_METRICS)
        except StoreError:
            done.unlink(missing_ok=True)
            raise
        return FoldRecord(seed, fold, [str(i) for i in z["val_ids"]], z["val_probs"], z["test_probs"], metrics,
                          resumed=True)

    def write_fold(self, r: FoldRecord) -> None:
        """Metrics first, probabilities last and atomically: probs.npz on disk means the fold is done."""
        out = self.fold_dir(r.seed, r.fold)
        atomic_write_json(out / FOLD_METRICS, r.metrics)
        atomic_write_npz(out / FOLD_DONE, val_ids=np.array(r.val_ids), val_probs=r.val_probs,
                         test_probs=r.test_probs)

    # -- OOF and test arrays ---------------------------------------------------------
    @property
    def oof_path(self) -> Path:
        return self.path / OOF

    @property
    def test_path(self) -> Path:
        return self.path / TEST

    def read_oof(self) -> OofArrays:
        z = load_npz(self.oof_path, "ids", "labels", "fold", "seeds", "probs")
        return OofArrays(z["ids"], z["labels"], z["fold"], z["seeds"], z["probs"])

    def write_oof(self, a: OofArrays) -> None:
        atomic_write_npz(self.oof_path, **asdict(a))

    def read_test(self) -> TestArrays:
        z = load_npz(self.test_path, "ids", "probs")
        return TestArrays(z["ids"], z.get("seeds", np.arange(z["probs"].shape[0])), z["probs"])

    def write_test(self, a: TestArrays) -> None:
        atomic_write_npz(self.test_path, **asdict(a))

    # -- metrics -------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def read_metrics(self) -> dict[str, Any] | None:
        return read_json(self.metrics_path) if self.metrics_path.exists() else None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        atomic_write_json(self.metrics_path, metrics)

    def replace_summary_keys(self, prefix: str, values: dict[str, float]) -> None:
        """Swap the summary keys starting with `prefix` (e.g. the decide/* keys of a new decision)."""
        metrics = self.read_metrics()
        if metrics is None:
            return
        metrics["summary"] = {k: v for k, v in metrics["summary"].items() if not k.startswith(prefix)}
        metrics["summary"].update(values)
        self.write_metrics(metrics)

    # -- the decision ------------------------------------------------------------------
    @property
    def calibration_path(self) -> Path:
        return self.path / CALIBRATION

    def read_calibration(self) -> dict[str, Any] | None:
        return read_json(self.calibration_path) if self.calibration_path.exists() else None

    def write_calibration(self, decision: dict[str, Any], crossfit_ids: np.ndarray | None = None,
                          crossfit_pred: np.ndarray | None = None) -> None:
        """The locked decision, with its cross-fitted predictions or none: a crossfit.npz of an earlier decision
        never outlives it (it would report the gain of a decision no longer in force)."""
        if crossfit_pred is None:
            (self.path / CROSSFIT).unlink(missing_ok=True)
        else:
            atomic_write_npz(self.path / CROSSFIT, ids=np.asarray(crossfit_ids),
                             pred=np.asarray(crossfit_pred, dtype=np.int64))
        atomic_write_json(self.calibration_path, decision)

    def read_crossfit(self) -> dict[str, np.ndarray] | None:
        path = self.path / CROSSFIT
        return load_npz(path, "ids", "pred") if path.exists() else None

    # -- ensembles ---------------------------------------------------------------------
    def read_members(self) -> list[EnsembleMember] | None:
        """The members of an ensemble directory; None for a plain run directory."""
        path = self.path / ENSEMBLE
        if not path.exists():
            return None
        return [EnsembleMember(**m) for m in read_json(path)["members"]]

    def write_members(self, members: list[EnsembleMember], combine: str = "weights") -> None:
        atomic_write_json(self.path / ENSEMBLE, {"members": [asdict(m) for m in members], "combine": combine})

    def read_combine(self) -> str | None:
        """How an ensemble's members combine: `weights` (a searched blend) or `stack` (a stacker); None: not one."""
        path = self.path / ENSEMBLE
        return read_json(path).get("combine", "weights") if path.exists() else None

    def write_combiner(self, arrays: dict[str, np.ndarray]) -> None:
        atomic_write_npz(self.path / COMBINER, **arrays)

    def read_combiner(self) -> dict[str, np.ndarray] | None:
        path = self.path / COMBINER
        return load_npz(path, "temperatures") if path.exists() else None

    def is_ensemble(self) -> bool:
        return self.has(ENSEMBLE)

    # -- other runs ----------------------------------------------------------------------
    @staticmethod
    def of_sweep_run(cfg: ExperimentConfig, sweep_id: str, run_id: str) -> RunDir:
        """Where a sweep's run trains: its config's run_dir, else one directory per sweep run (runs of one
        sweep never share folds). `harness cv` under an agent and sweep-local's read-back both ask this."""
        if cfg.run_dir:
            return RunDir(cfg.run_dir)
        return RunDir(Path(cfg.output_dir) / "sweeps" / sweep_id / run_id)

    @staticmethod
    def resolve(ref: str | Path, near: str | Path, output_dir: str | Path) -> RunDir:
        """A run directory from `ref`: a path, or an experiment name among the siblings of `near` (a sweep's
        runs), then as <output_dir>/<name>. Raises FileNotFoundError naming the places searched."""
        path = RunDir(ref)
        if path.is_run():
            return path
        parent = Path(near).parent
        for sibling in sorted(parent.iterdir()) if parent.is_dir() else []:
            run = RunDir(sibling)
            if run.is_run():
                try:
                    if run.raw_config().get("name") == str(ref):
                        return run
                except Exception:  # noqa: BLE001 - a broken sibling is not the one asked for
                    continue
        named = RunDir(Path(output_dir) / str(ref))
        if named.is_run():
            return named
        raise FileNotFoundError(f"{ref!r} is not a run directory, nor the name of a run in {parent} or {output_dir}")
