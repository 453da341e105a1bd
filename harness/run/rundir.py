"""RunDir: the one reader and writer of a run directory, the source of truth every command reads.

Its files are named in harness.run.layout; an ensemble's in harness.run.ensemble_files, a refit's in
harness.run.refit_files. No other module
names them: they ask a RunDir. Every write goes through a commit (harness.run.manifest): inside
`with run.writing(cmd):` all writes become visible together; a lone write is its own commit. Every read of a
listed file is verified against the manifest.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from harness.run.ensemble_files import EnsembleFiles
from harness.run.refit_files import RefitFiles
from harness.run.layout import (CACHE, CALIBRATION, COMBINER, CONFIG, CROSSFIT, DATA, DECIDE_DB, ENSEMBLE, FOLDS,
                                FOLD_CLAIM, FOLD_DONE, FOLD_METRICS, FOLD_ROOT, LOCK, MANIFEST, METRICS, MODEL, OOF,
                                REPORT, RESULTS_MARK, RESULT_FILES, SCORED_PREFIX, SCRATCH, TEST, TRACK,
                                TRACK_HISTORY, UPGRADE, CURVE, CURVE_FIGURE, CURVE_POINTS, REFIT_ROOT, EnsembleMember,
                                FoldRecord, OofArrays, TestArrays)  # noqa: F401 - RunDir offers every layout name
from harness.run.manifest import Manifest, ManifestStore, Transaction, file_digest, warn_unverified
from harness.core.store import StoreError, load_npz, read_json

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from harness.data.folds import Folds

class RunDir(EnsembleFiles, RefitFiles):
    """Paths and typed records of one run directory (a `harness cv` experiment or an ensemble)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store = ManifestStore(self.path, MANIFEST, LOCK)

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

    # -- commits and verified reads --------------------------------------------------
    def is_legacy(self) -> bool:
        """Results on disk but no manifest: written by a harness before run directories were verified."""
        return not self.store.exists() and any((self.path / n).exists() for n in RESULTS_MARK)

    def manifest(self) -> Manifest:
        return self.store.read()

    @contextlib.contextmanager
    def writing(self, writer: str, exclusive: bool = True, wait: float = 0.0) -> Iterator[Transaction]:
        """Every write of the block committed in one step (harness.run.manifest); a legacy directory is refused."""
        if self.store.active is None and self.is_legacy():
            raise StoreError(f"{self.path}: written by an older harness without a manifest; {writer} does not add "
                             f"to it unverified: {UPGRADE.format(path=self.path)}, or start a new run directory")
        with self.store.transaction(writer, exclusive, wait) as tx:
            yield tx

    def _write(self, name: str, put: Callable[[Path], None]) -> None:
        with self.writing("harness", exclusive=False) as tx:
            put(tx.path(name))

    def recorded(self, name: str) -> bool:
        """The file is part of the committed state (listed by the manifest; on a legacy run: on disk)."""
        found = self.store.recorded(name)
        return (self.path / name).exists() if found is None else found

    def verified(self, name: str) -> Path:
        """The path to read `name` from, after checking it is what its writer committed (StoreError if not)."""
        tx = self.store.active
        staged = tx.staged_path(name) if tx is not None else None
        if staged is not None or self.store.exists():
            return staged or self.store.checked(name)
        path = self.path / name
        if not path.exists():
            raise StoreError(f"{path}: not found")
        warn_unverified(self.path, UPGRADE.format(path=self.path))
        return path

    def _optional(self, name: str) -> Path | None:
        """A file that may be absent: None when the committed state has none. On disk but never committed:
        refused (a file left by hand, or by a command that failed, is not trusted silently)."""
        if self.recorded(name):
            return self.verified(name)
        on_disk = self.path / name
        if self.store.exists() and on_disk.exists():
            raise StoreError(f"{on_disk}: not recorded in {MANIFEST}: written by a command that did not finish, "
                             "or by hand; remove it or re-run the step that writes it")
        return None

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

    @property
    def track_history(self) -> Path:
        """The disk tracker's history (outside the manifest: a mirror, appended to as folds finish)."""
        return self.path / TRACK_HISTORY

    def fold_dir(self, seed: int, fold: int) -> Path:
        return self.path / FOLD_ROOT / f"seed{seed}" / f"fold{fold}"

    def model_dir(self, seed: int, fold: int) -> Path:
        return self.fold_dir(seed, fold) / MODEL

    def claim_path(self, seed: int, fold: int) -> Path:
        """Who is training this fold now (harness.run.claims.FoldClaim)."""
        return self.fold_dir(seed, fold) / FOLD_CLAIM

    def scratch_dir(self, seed: int, fold: int) -> Path:
        return self.fold_dir(seed, fold) / SCRATCH

    def model_dirs(self) -> list[Path]:
        return sorted((self.path / FOLD_ROOT).glob(f"seed*/fold*/{MODEL}"))

    def seeds_on_disk(self) -> list[str]:
        return sorted(p.name for p in (self.path / FOLD_ROOT).glob("seed*"))

    def decide_storage(self) -> str:
        """The SQLite URL of the decision searches' study."""
        return f"sqlite:///{(self.path / DECIDE_DB).resolve()}"

    def has(self, name: str) -> bool:
        """Part of the committed state (listed by the manifest; on a legacy run: on disk)."""
        return self.recorded(name)

    def is_run(self) -> bool:
        return self.config_path.exists()

    def is_finished(self) -> bool:
        """All folds of all seeds were assembled into oof.npz."""
        return self.recorded(OOF)

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
        """The run's config (verified), readable even when its method's plugin is no longer installed."""
        from harness.config import load_run_config

        return load_run_config(self.verified(CONFIG))

    def write_config(self, cfg: ExperimentConfig) -> None:
        self._write(CONFIG, cfg.save)

    def committed_config(self) -> dict[str, Any] | None:
        """config.yaml as plain data when it is part of the committed state (a config.yaml left by an attempt
        that failed before its first commit is not: the corrected command may take the directory)."""
        if not self.recorded(CONFIG):
            return None
        from harness.config import read_yaml

        return read_yaml(self.verified(CONFIG))

    def raw_config(self) -> dict[str, Any]:
        """config.yaml as plain data, for looking a run up by name without validating it."""
        from harness.config import read_yaml

        return read_yaml(self.config_path)

    # -- data and folds ------------------------------------------------------------
    def read_fingerprint(self) -> dict[str, Any] | None:
        path = self._optional(DATA)
        return read_json(path) if path is not None else None

    def require_fingerprint(self, what: str) -> dict[str, Any]:
        """data.json, or a refusal: a run that cannot say which data it was trained on is not verified."""
        found = self.read_fingerprint()
        if found is None:
            raise StoreError(f"{self.path}: no {DATA} (the content digest of the data it was trained on), so {what} "
                             "cannot check its data; start afresh in a new run directory (run_dir=...)")
        return found

    def write_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        self._write(DATA, lambda p: _json(p, fingerprint))

    def read_folds(self) -> Folds:
        from harness.data.folds import Folds

        return Folds.load(self.verified(FOLDS))

    def write_folds(self, folds: Folds) -> None:
        self._write(FOLDS, folds.save)

    def folds_path(self) -> Path:
        return self.path / FOLDS

    def copy_identity_from(self, other: RunDir) -> None:
        """Take another run's folds and data fingerprint (an ensemble is on its members' folds and data)."""
        for name in (FOLDS, DATA):
            src = other.verified(name)
            self._write(name, lambda p, src=src: shutil.copyfile(src, p))

    # -- fold results ------------------------------------------------------------
    def _fold_file(self, seed: int, fold: int, name: str) -> str:
        return f"{FOLD_ROOT}/seed{seed}/fold{fold}/{name}"

    def has_fold_results(self) -> bool:
        """Any fold finished (committed, or on disk in a directory without a manifest)."""
        if self.store.exists():
            return any(n.startswith(FOLD_ROOT + "/") and n.endswith("/" + FOLD_DONE) for n in self.manifest().files)
        return any((self.path / FOLD_ROOT).glob(f"seed*/fold*/{FOLD_DONE}")) or (self.path / OOF).exists()

    def fold_done(self, seed: int, fold: int) -> bool:
        return self.recorded(self._fold_file(seed, fold, FOLD_DONE))

    def read_fold(self, seed: int, fold: int) -> FoldRecord | None:
        """A finished fold, or None when not finished. A file whose digest fails raises StoreError naming it."""
        if not self.fold_done(seed, fold):
            return None
        z = load_npz(self.verified(self._fold_file(seed, fold, FOLD_DONE)), "val_ids", "val_probs", "test_probs")
        metrics = read_json(self.verified(self._fold_file(seed, fold, FOLD_METRICS)))
        return FoldRecord(seed, fold, [str(i) for i in z["val_ids"]], z["val_probs"], z["test_probs"], metrics,
                          resumed=True)

    def forget_fold(self, seed: int, fold: int) -> None:
        """Drop a fold from the committed state (its files failed their check): it is trained again."""
        with self.writing("cv", exclusive=False) as tx:
            for name in (FOLD_DONE, FOLD_METRICS, MODEL):
                tx.remove(self._fold_file(seed, fold, name))

    def write_fold(self, r: FoldRecord, save_model: Callable[[Path], None] | None = None) -> None:
        """A fold's metrics, probabilities and (with `save_model`) model, committed together: probs.npz in the
        manifest means the fold is done. Only the commit holds the directory's lock (processes share folds)."""
        with self.writing("cv", exclusive=False) as tx:
            if save_model is not None:
                save_model(tx.path(self._fold_file(r.seed, r.fold, MODEL)))
            tx.write_json(self._fold_file(r.seed, r.fold, FOLD_METRICS), r.metrics)
            tx.write_npz(self._fold_file(r.seed, r.fold, FOLD_DONE), val_ids=np.array(r.val_ids),
                         val_probs=r.val_probs, test_probs=r.test_probs)

    def verified_model_dir(self, seed: int, fold: int) -> Path | None:
        """A fold's saved model, checked against the manifest; None when the fold kept no model."""
        name = self._fold_file(seed, fold, MODEL)
        return self.verified(name) if self.recorded(name) else None

    # -- OOF and test arrays ---------------------------------------------------------
    @property
    def oof_path(self) -> Path:
        return self.path / OOF

    @property
    def test_path(self) -> Path:
        return self.path / TEST

    def read_oof(self) -> OofArrays:
        z = load_npz(self.verified(OOF), "ids", "labels", "fold", "seeds", "probs")
        return OofArrays(z["ids"], z["labels"], z["fold"], z["seeds"], z["probs"])

    def write_oof(self, a: OofArrays) -> None:
        self._write(OOF, lambda p: _npz(p, **asdict(a)))

    def read_test(self) -> TestArrays:
        z = load_npz(self.verified(TEST), "ids", "probs")
        return TestArrays(z["ids"], z.get("seeds", np.arange(z["probs"].shape[0])), z["probs"])

    def write_test(self, a: TestArrays) -> None:
        self._write(TEST, lambda p: _npz(p, **asdict(a)))

    # -- metrics -------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    def read_metrics(self) -> dict[str, Any] | None:
        path = self._optional(METRICS)
        return read_json(path) if path is not None else None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self._write(METRICS, lambda p: _json(p, metrics))

    def replace_summary_keys(self, prefix: str, values: dict[str, float]) -> None:
        """Swap the summary keys starting with `prefix` (e.g. the decide/* keys of a new decision)."""
        metrics = self.read_metrics()
        if metrics is None:
            return
        if not isinstance(metrics.get("summary"), dict):
            raise StoreError(f"{self.metrics_path}: no 'summary' table; re-run `harness cv` to write it")
        metrics["summary"] = {k: v for k, v in metrics["summary"].items() if not k.startswith(prefix)}
        metrics["summary"].update(values)
        self.write_metrics(metrics)

    # -- the decision ------------------------------------------------------------------
    @property
    def calibration_path(self) -> Path:
        return self.path / CALIBRATION

    def read_calibration(self) -> dict[str, Any] | None:
        path = self._optional(CALIBRATION)
        return read_json(path) if path is not None else None

    def write_calibration(self, decision: dict[str, Any], crossfit_ids: np.ndarray | None = None,
                          crossfit_pred: np.ndarray | None = None) -> None:
        """The locked decision, with its cross-fitted predictions or none: a crossfit.npz of an earlier decision
        never outlives it (it would report the gain of a decision no longer in force). One commit."""
        with self.writing("decide", exclusive=False) as tx:
            if crossfit_pred is None:
                tx.remove(CROSSFIT)
            else:
                tx.write_npz(CROSSFIT, ids=np.asarray(crossfit_ids), pred=np.asarray(crossfit_pred, dtype=np.int64))
            tx.write_json(CALIBRATION, decision)

    def read_crossfit(self) -> dict[str, np.ndarray] | None:
        path = self._optional(CROSSFIT)
        return load_npz(path, "ids", "pred") if path is not None else None

    # -- other runs ----------------------------------------------------------------------
    @staticmethod
    def of_sweep_run(cfg: ExperimentConfig, sweep_id: str, run_id: str) -> RunDir:
        """Where a sweep's run trains: its config's run_dir, else one directory per sweep run (runs of one
        sweep never share folds). `harness cv` under an agent and sweep-local's read-back both ask this."""
        if cfg.run_dir:
            return RunDir(cfg.run_dir)
        import re

        from harness.config import ConfigError

        bad = [f"{k}={v!r}" for k, v in (("WANDB_SWEEP_ID", sweep_id), ("WANDB_RUN_ID", run_id))
               if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", v)]
        if bad:  # a W&B id is letters, digits, - and _; anything else could name a folder outside output_dir
            raise ConfigError([f"{b}: not a W&B id (letters, digits, '-', '_')" for b in bad])
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


def _json(path: Path, obj: Any) -> None:
    from harness.core.store import atomic_write_json

    atomic_write_json(path, obj)


def _npz(path: Path, **arrays: Any) -> None:
    from harness.core.store import atomic_write_npz

    atomic_write_npz(path, **arrays)
