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
    track/history.jsonl  the disk tracker's mirror of what W&B would get (track.backend: disk)
    report.html          the local report
    scored-<key>.npz     a new file's test probabilities (`predict --test`), keyed by its content and the config
    manifest.json        digest, size and writer of every file above that commands build on, and provenance
    writer.lock          who is committing to this directory now (harness.run.manifest)
    .stage-<token>/      a writer's files before its one-step commit

No other module names these files: they ask a RunDir. Every write goes through a commit (harness.run.manifest):
inside `with run.writing(cmd):` all writes become visible together; a lone write is its own commit. Every
read of a listed file is verified against the manifest.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from harness.run.manifest import Manifest, ManifestStore, Transaction, file_digest, warn_unverified
from harness.core.store import StoreError, load_npz, read_json

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from harness.data.folds import Folds

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


class RunDir:
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

    def upgrade(self) -> list[str]:
        """Record a legacy run directory's files in a new manifest, as they are (after refusing one without
        its data fingerprint: nothing could say which data its results belong to)."""
        if self.store.exists():
            return []
        if not (self.path / DATA).exists() and not (self.path / ENSEMBLE).exists():
            raise StoreError(f"{self.path}: no {DATA} (the data fingerprint); its results cannot be tied to any data: "
                             "start a new run directory (run_dir=...)")
        names = [n for n in (CONFIG, DATA, FOLDS, OOF, TEST, METRICS, CALIBRATION, CROSSFIT, ENSEMBLE, COMBINER)
                 if (self.path / n).exists()]
        names += [p.relative_to(self.path).as_posix() for p in sorted((self.path / FOLD_ROOT).glob("seed*/fold*/*"))
                  if p.name in (FOLD_DONE, FOLD_METRICS, MODEL)]
        names += [p.name for p in sorted(self.path.glob(f"{SCORED_PREFIX}*.npz"))]
        manifest = Manifest()
        for n in names:
            sha, size = file_digest(self.path / n)
            manifest.files[n] = {"sha256": sha, "size": size, "writer": "upgrade"}
        manifest.history.append({"writer": "upgrade", "files": names, "removed": []})
        from harness.core.store import atomic_write_json

        self.store.lock.acquire(0.0, "harness verify --upgrade")
        try:
            atomic_write_json(self.store.manifest_path, manifest.to_json())
        finally:
            self.store.lock.release()
        return names

    def check_all(self) -> list[str]:
        """Every problem of the committed state: files whose digest differs, missing or never committed."""
        if not self.store.exists():
            return [f"{self.path}: no {MANIFEST}" + ("; " + UPGRADE.format(path=self.path) if self.is_legacy() else "")]
        self.store.recover()
        manifest = self.store.read()
        problems = []
        for name in manifest.files:
            try:
                self.store.verify(name, manifest)
            except StoreError as e:
                problems.append(str(e))
        for name in (CONFIG, DATA, FOLDS, OOF, TEST, METRICS, CALIBRATION, CROSSFIT, ENSEMBLE, COMBINER):
            if (self.path / name).exists() and name not in manifest.files:
                problems.append(f"{self.path / name}: on disk but not recorded in {MANIFEST}")
        return problems

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

    # -- ensembles ---------------------------------------------------------------------
    def _ensemble_json(self) -> dict[str, Any] | None:
        path = self._optional(ENSEMBLE)
        if path is None:
            return None
        data = read_json(path)
        members = data.get("members") if isinstance(data, dict) else None
        if not isinstance(members, list) or not members:
            raise StoreError(f"{path}: no 'members' list")
        return data

    def read_members(self) -> list[EnsembleMember] | None:
        """The members of an ensemble directory; None for a plain run directory."""
        data = self._ensemble_json()
        if data is None:
            return None
        out, problems = [], []
        fields = set(EnsembleMember.__dataclass_fields__)
        for i, m in enumerate(data["members"]):
            missing = sorted(fields - set(m)) if isinstance(m, dict) else sorted(fields)
            if missing:
                problems.append(f"member {i}: missing {', '.join(missing)}")
                continue
            out.append(EnsembleMember(**{k: m[k] for k in fields}))
        if problems:
            raise StoreError(f"{self.path / ENSEMBLE}: " + "; ".join(problems))
        return out

    def write_members(self, members: list[EnsembleMember], combine: str = "weights",
                      member_manifests: dict[str, str] | None = None) -> None:
        """ensemble.json, and in the manifest's provenance each member's manifest digest as it was when fitted."""
        with self.writing("ensemble", exclusive=False) as tx:
            tx.write_json(ENSEMBLE, {"members": [asdict(m) for m in members], "combine": combine})
            if member_manifests is not None:
                tx.provenance["members"] = member_manifests

    def read_combine(self) -> str | None:
        """How an ensemble's members combine: `weights` (a searched blend) or `stack` (a stacker); None: not one."""
        data = self._ensemble_json()
        if data is None:
            return None
        combine = data.get("combine", "weights")
        if combine not in ("weights", "stack"):
            raise StoreError(f"{self.path / ENSEMBLE}: combine {combine!r} is neither 'weights' nor 'stack'")
        return combine

    def write_combiner(self, arrays: dict[str, np.ndarray]) -> None:
        self._write(COMBINER, lambda p: _npz(p, **arrays))

    def read_combiner(self) -> dict[str, np.ndarray] | None:
        path = self._optional(COMBINER)
        return load_npz(path, "temperatures") if path is not None else None

    def is_ensemble(self) -> bool:
        return self.recorded(ENSEMBLE) or (self.path / ENSEMBLE).exists()

    def member_provenance(self) -> dict[str, str] | None:
        """Each member run's manifest digest when this ensemble was fitted (None: not recorded)."""
        return self.manifest().provenance.get("members") if self.store.exists() else None

    def results_digest(self) -> str | None:
        """What an ensemble builds on, from the manifest: every committed file but the decision's, the config
        (resume-safe settings may change) and caches. A member re-run with other settings or labels changes it."""
        if not self.store.exists():
            return None
        import hashlib
        import json

        files = {k: v["sha256"] for k, v in self.manifest().files.items()
                 if k not in (CALIBRATION, CROSSFIT, METRICS, CONFIG) and not k.startswith(SCORED_PREFIX)}
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()

    # -- the predict cache -----------------------------------------------------------------
    def read_scored(self, key: str) -> dict[str, np.ndarray] | None:
        name = f"{SCORED_PREFIX}{key}.npz"
        path = self._optional(name)
        return load_npz(path, "probs") if path is not None else None

    def write_scored(self, key: str, **arrays: np.ndarray) -> None:
        with self.writing("predict-cache", exclusive=False) as tx:
            tx.write_npz(f"{SCORED_PREFIX}{key}.npz", **arrays)

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
