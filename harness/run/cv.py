"""The one fold loop, for every method: folds → augment → leakage check → fit → OOF and test probabilities.

It knows methods only through harness.methods.base (fit / predict_proba / save / load), so it imports
no model library, and the run directory only through harness.run.rundir.RunDir (the layout is listed there).
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from harness.run.claims import FoldClaim
from harness.config import ConfigError, ExperimentConfig
from harness.data.load import Example, group_of, load_test, load_train
from harness.data.folds import Folds, audit, class_problems, make_folds
from harness.run.results import assemble, fold_progress
from harness.run.rundir import FoldRecord, RunDir
from harness.data.schema import rows_digest
from harness.core.metrics import report
from harness.core.store import StoreError

if TYPE_CHECKING:
    from harness.methods.base import Method


# settings that may change between invocations on one run directory without changing its results
RESUME_SAFE = {"cv.folds", "track", "decide", "tune", "train.dataloader_workers", "train.eval_batch_size",
               "run_dir", "output_dir"}




def _check_same_experiment(run: RunDir, cfg: ExperimentConfig) -> None:
    """Refuse to mix two experiments' folds in one run directory (or to train folds inside an ensemble)."""
    if run.is_ensemble():
        raise ConfigError([f"{run.path}: is an ensemble directory (harness ensemble wrote it); cv trains no folds "
                           "there: give the experiment its own run_dir"])
    changes = config_changes(run, cfg)
    if changes:
        raise ConfigError(changes + ["a run directory holds one experiment: set run_dir (or name) to start a new one"])


def config_changes(run: RunDir, cfg: ExperimentConfig) -> list[str]:
    """Every setting in which `cfg` differs from the directory's committed config.yaml, beyond those a resume may
    change (RESUME_SAFE); none when nothing is committed yet."""
    if run.committed_config() is None:
        return []
    from harness.config import load_config

    old = load_config(run.config_path).to_flat_dict()
    new = cfg.to_flat_dict()
    return [f"{k}: {old.get(k)!r} in {run.config_path} but {new[k]!r} now" for k in new
            if new[k] != old.get(k) and k not in RESUME_SAFE and k.split(".")[0] not in RESUME_SAFE]


def _part(source: str | None, rows: list[Example]) -> dict[str, Any]:
    return {"source": source, "rows": len(rows), "sha256": rows_digest(rows)}


def _fingerprint(cfg: ExperimentConfig, method: Method, train: list[Example], test: list[Example]
                 ) -> dict[str, Any]:
    """What the data was: rows and a digest of their full content (ids, labels, groups, every text), for the
    experiment's own files and every extra training data the method adds."""
    parts = {"train": _part(cfg.data.train_path or f"synthetic:{cfg.data.synthetic}", train),
             "test": _part(cfg.data.test_path, test)}
    for name, (source, rows) in method.extra_training_data().items():
        parts[name] = _part(source, rows)
    if cfg.data.label_fixes:  # its rows' labels are in the train digest already; this names the file and each fix
        from harness.data.fixes import fixes_record

        parts["label_fixes"] = fixes_record(cfg.data.label_fixes, train)
    return parts


def _check_same_data(run: RunDir, new: dict[str, Any]) -> None:
    """Refuse to resume over training or test data that changed since the run directory was started:
    its finished folds were trained and scored on the old rows."""
    old = run.read_fingerprint()
    if old is None:
        if run.has_fold_results():
            raise ConfigError([f"{run.path}: has finished folds but no data fingerprint (data.json), so nothing "
                               "says which data they were trained on; they are not resumed: start afresh in a new "
                               "run directory (run_dir=...)"])
        return
    run_dir = run.path
    problems = [f"{new[part]['source']}: the {part} data changed since {run_dir} was started "
                f"({old.get(part, {}).get('rows')} rows then, {new[part]['rows']} now; content digest "
                f"{str(old.get(part, {}).get('sha256'))[:12]} then, {new[part]['sha256'][:12]} now)"
                for part in new if old.get(part, {}).get("sha256") != new[part]["sha256"]]
    if problems:
        raise ConfigError(problems + ["finished folds were trained and scored on the old rows: restore the data, "
                                      "or start a new run directory (run_dir=...)"])


def _planned_folds(run: RunDir, cfg: ExperimentConfig, train: list[Example]) -> Folds:
    """The run's folds: its folds.json (checked against the rows), else made from the rows (not yet written)."""
    if run.folds_path().exists():
        folds = run.read_folds()
        if set(folds.fold_of) != {e.id for e in train}:
            raise ConfigError([f"{run.folds_path()}: its rows differ from the training data; use a new run directory"])
        return folds
    return make_folds(train, cfg.cv.n_folds, cfg.cv.seed, cfg.group_key())


def builds_on_problems(other: RunDir, folds: Folds, fingerprint: dict[str, Any]) -> list[str]:
    """Why another run's fold-k model may have seen this run's fold-k validation rows: other folds (other data or
    cv settings: cv.n_folds, cv.seed, cv.group_by) or other training data."""
    problems = []
    if not other.has(other.folds_path().name) or other.read_folds().fold_of != folds.fold_of:
        problems.append(f"{other.folds_path()}: the folds differ from this run's (other data or cv settings: "
                        "cv.n_folds, cv.seed, cv.group_by), so its fold-k model saw this run's fold-k validation rows")
    theirs = other.read_fingerprint() or {}
    if theirs.get("train", {}).get("sha256") != fingerprint["train"]["sha256"]:
        problems.append(f"{other}: its data fingerprint differs from this run's: the training data differ")
    return problems


def _inner_split(train_part: list[Example], frac: float, seed: int, group_key: str) -> tuple[list[Example], list[Example]]:
    """Hold out whole groups of the training part (variants follow their source) for checkpoint choice."""
    if frac <= 0:
        return train_part, []
    originals = [e for e in train_part if e.source_id is None]
    n_groups = len({group_of(e, group_key) for e in originals})
    inner = make_folds(originals, max(2, min(round(1 / frac), n_groups)), seed, group_key)
    hold = inner.val_ids(0)
    fit = [e for e in train_part if (e.source_id or e.id) not in hold]
    held = [e for e in train_part if e.id in hold]
    return fit, held


class LeakageError(RuntimeError):
    """Rows of a fold's validation part (or variants made from them) reached its training part."""


def check_no_leak(fold: int, train_rows: Sequence[Example], val_rows: Sequence[Example]) -> None:
    val = {e.id for e in val_rows}
    leak = sorted({e.source_id or e.id for e in train_rows} & val)
    if leak:
        raise LeakageError(f"fold {fold}: {len(leak)} validation row(s) reached training, e.g. ids {leak[:10]}")


def load_fold(run: RunDir, seed: int, k: int) -> FoldRecord | None:
    """A finished fold from disk, or None (not done, or its files fail their check: then it is retrained)."""
    try:
        return run.read_fold(seed, k)
    except StoreError as e:
        warnings.warn(f"{run.fold_dir(seed, k)}: fold files fail their check ({e}); this fold is trained again",
                      stacklevel=2)
        run.forget_fold(seed, k)
        return None


class CVRun:
    """One experiment's fold loop: `prepare` checks the experiment and its data and claims the run directory,
    `fold` trains (or resumes) one seed's fold, `finish` assembles OOF/test/metrics once every fold is on disk.
    `run` does the three. What follows (the decision step, the trackers' summary, the report) is chained by the
    command (harness.run.experiment), never here."""

    def __init__(self, cfg: ExperimentConfig, tracker: Any, verbose: bool = True, cache: Path | None = None):
        self.cfg, self.tracker, self.verbose = cfg, tracker, verbose
        self.cache = cache  # content-keyed method caches shared beyond this run (a learning curve's points)
        self.run = RunDir(cfg.resolved_run_dir())
        self.label_names = cfg.data.label_names()
        self.results: dict[tuple[int, int], FoldRecord] = {}
        self.train: list[Example] = []
        self.test: list[Example] = []

    def say(self, *parts: Any) -> None:
        if self.verbose:
            print(*parts, flush=True)

    # -- prepare ------------------------------------------------------------------
    def prepare(self, folds: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """Everything before the first fold: the data loaded and checked, the method built, the directory claimed
        for this experiment (config, fingerprint, folds), the method's one-off work. The (seed, fold) jobs asked."""
        from harness.methods.base import make_method

        cfg, run = self.cfg, self.run
        wanted = list(folds) if folds is not None else (cfg.cv.folds or list(range(cfg.cv.n_folds)))
        bad = [f for f in wanted if not 0 <= f < cfg.cv.n_folds]
        if bad:
            raise ConfigError([f"--folds: {bad} outside 0..{cfg.cv.n_folds - 1} (cv.n_folds={cfg.cv.n_folds})"])
        run.check_usable()
        _check_same_experiment(run, cfg)
        self.train, self.test = self._load_data()
        self.method = make_method(cfg, self.cache or run.cache)
        fingerprint = _fingerprint(cfg, self.method, self.train, self.test)
        _check_same_data(run, fingerprint)
        planned = _planned_folds(run, cfg, self.train)
        self._check_method_here(planned, fingerprint)
        self.folds = self._claim(fingerprint, planned)
        check = audit(self.folds, self.train, self.label_names)
        if not check["ok"]:
            raise RuntimeError(f"fold audit failed: {check}")
        self.say(f"run dir: {run.path}\nmethod {cfg.method}: {len(self.train)} train rows ({check['groups']} groups), "
                 f"{len(self.test)} test rows")
        jobs = [(s, k) for s in cfg.train.seeds for k in wanted]
        if any(not run.fold_done(s, k) for s, k in jobs):
            note = self.method.prepare(self.train + self.test, progress=self.verbose)  # once for every fold and seed
            if note:
                self.say(note)
        self.tracker.start_experiment(cfg)
        return jobs

    def _load_data(self) -> tuple[list[Example], list[Example]]:
        cfg = self.cfg
        train, test = load_train(cfg), load_test(cfg)
        problems, notes = class_problems(train, self.label_names, cfg.cv.n_folds,
                                         cfg.data.train_path or f"synthetic:{cfg.data.synthetic}", cfg.group_key())
        if problems:
            raise ConfigError(problems)
        for note in notes:
            self.say(note)
        if cfg.data.test_path and cfg.data.train_path and Path(cfg.data.test_path).resolve() == \
                Path(cfg.data.train_path).resolve():
            warnings.warn(f"data.test_path is the training file {cfg.data.train_path}: its test scores are of rows "
                          "every fold model trained on (except its own fold's)", stacklevel=3)
        return train, test

    def _check_method_here(self, folds: Folds, fingerprint: dict[str, Any]) -> None:
        """The method's own checks (e.g. the sft run a preference run continues), and the runs whose fold models it
        continues having this run's folds and training data: every problem at once, before the claim."""
        problems: list[str] = []
        try:
            self.method.check_run(self.run)
        except ConfigError as e:
            problems += e.problems
        for other in self.method.builds_on(self.run):
            problems += builds_on_problems(other, folds, fingerprint)
        if problems:
            raise ConfigError(problems)

    def _claim(self, fingerprint: dict[str, Any], planned: Folds) -> Folds:
        """Only now, with the data in order, does the directory become this experiment's: under its lock, so of two
        processes started together with different settings one commits and the other is refused."""
        run, cfg = self.run, self.cfg
        with run.writing("cv", wait=120.0):
            _check_same_experiment(run, cfg)  # the winner (or an earlier run) committed it: it must be this one
            _check_same_data(run, fingerprint)
            run.write_config(cfg)  # the same experiment: its resume-safe settings (decide, track, …) are the latest
            if run.read_fingerprint() is None:
                run.write_fingerprint(fingerprint)
            if run.folds_path().exists():  # committed by now (by us earlier, or by another process): read and checked
                return _planned_folds(run, cfg, self.train)
            run.write_folds(planned)
            return planned

    # -- fold ---------------------------------------------------------------------
    def fold(self, seed: int, k: int) -> FoldRecord | None:
        """Train one fold for one seed with any method and commit its files (or load them when finished).
        None: another live process has claimed this fold and is training it."""
        finished = load_fold(self.run, seed, k)
        if finished is not None:
            return finished
        with FoldClaim(self.run.claim_path(seed, k)) as claim:
            if not claim.acquire():
                return None
            return load_fold(self.run, seed, k) or self._train(seed, k)

    def _train(self, seed: int, k: int) -> FoldRecord:
        from harness.data.augment import augment
        from harness.data.weights import class_weights
        from harness.methods.base import FoldContext

        cfg, run, t0 = self.cfg, self.run, time.time()
        train_part, val_part = self.folds.split(self.train, k)
        if cfg.cv.train_fraction < 1:  # a learning-curve point: fewer training groups, the same validation rows
            from harness.data.folds import subsample_groups

            train_part = subsample_groups(train_part, cfg.cv.train_fraction,
                                          cfg.cv.seed * 7919 + cfg.cv.fraction_draw * 104729 + k, cfg.group_key())
        train_aug = augment(train_part, cfg.augment)
        check_no_leak(k, train_aug, val_part)
        fit, inner = _inner_split(train_aug, cfg.train.inner_val_fraction, seed, cfg.group_key())
        weights = class_weights([e.label for e in fit], len(self.label_names), cfg.loss)
        self.tracker.start_fold(seed, k)
        ctx = FoldContext(run=run, seed=seed, fold=k, class_weights=weights, scratch=run.scratch_dir(seed, k),
                          log=self.tracker.fold_logger())
        try:
            fitted = self.method.fit(fit, inner, ctx)
        finally:
            shutil.rmtree(ctx.scratch, ignore_errors=True)  # transient by contract: never left in the run directory
        try:
            val_probs, test_probs = self._predict(fitted, seed, k, val_part)
            metrics = report(np.array([e.label for e in val_part]), val_probs.argmax(1), self.label_names,
                             cfg.data.score_labels, n_boot=0)
            metrics.update(seed=seed, fold=k, method=cfg.method, train_rows=len(fit),
                           augmented_rows=len(train_aug) - len(train_part), inner_rows=len(inner),
                           val_rows=len(val_part), class_weights=weights.tolist(),
                           seconds=round(time.time() - t0, 1), **fitted.info())
            record = FoldRecord(seed, k, [e.id for e in val_part], val_probs, test_probs, metrics, resumed=False)
            run.write_fold(record, fitted.save if cfg.train.save_adapters else None)  # model, metrics, probs: one commit
        finally:
            fitted.close()
        return record

    def _predict(self, fitted: Any, seed: int, k: int, val_part: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        """The fold model's validation and test probabilities, checked at the seam."""
        from harness.methods.base import check_probs_shape

        n, who = len(self.label_names), f"method {self.cfg.method!r} (seed {seed} fold {k})"
        val = check_probs_shape(fitted.predict_proba(val_part), len(val_part), n, who)
        test = fitted.predict_proba(self.test) if self.test else np.zeros((0, n), np.float32)
        return val, check_probs_shape(test, len(self.test), n, who)

    def run_folds(self, jobs: Sequence[tuple[int, int]], on_fold: Callable[[FoldRecord], None] | None = None) -> None:
        """Every job in turn (a progress bar on a terminal, a line per fold in a log); `on_fold` sees each finished
        fold (a tuning trial reports it and may raise optuna.TrialPruned)."""
        from harness.core.progress import interactive, progress_bar

        log_lines = self.verbose and not interactive()  # a log file gets a line as each fold starts
        for seed, k in progress_bar(jobs, desc="folds", enable=self.verbose):
            if log_lines and not self.run.fold_done(seed, k):
                self.say(f"seed {seed} fold {k}: training ({time.strftime('%H:%M:%S')})")
            r = self.fold(seed, k)
            if r is None:
                holder = FoldClaim(self.run.claim_path(seed, k)).holder() or {}
                self.say(f"seed {seed} fold {k}: being trained by {holder.get('host', '?')} pid {holder.get('pid', '?')}")
                continue
            self.results[(seed, k)] = r
            self.tracker.end_fold(seed, k, r.metrics, fold_progress(self.results))
            self.say(f"seed {seed} fold {k}: {'resumed' if r.resumed else 'trained'} "
                     f"macro-F1 {r.metrics['macro_f1']:.4f} official {r.metrics['macro_f1_official']:.4f} "
                     f"({r.metrics.get('seconds', 0)}s)")
            if on_fold:
                on_fold(r)

    # -- finish -------------------------------------------------------------------
    def finish(self) -> dict[str, Any] | None:
        """oof.npz, test.npz and metrics.json once every seed's folds are on disk (folds run elsewhere with --folds
        count once their files are here); None, saying which are missing, before that."""
        cfg = self.cfg
        for seed in cfg.train.seeds:
            for k in range(cfg.cv.n_folds):
                if (seed, k) not in self.results:
                    done = load_fold(self.run, seed, k)
                    if done is not None:
                        self.results[(seed, k)] = done
        missing = [(s, k) for s in cfg.train.seeds for k in range(cfg.cv.n_folds) if (s, k) not in self.results]
        if missing:
            self.say(f"{len(missing)} fold(s) still to run: " + ", ".join(f"seed {s} fold {k}" for s, k in missing))
            return None
        return assemble(cfg, self.run, self.train, self.test, self.folds, self.results)

    def __call__(self, folds: Sequence[int] | None = None, on_fold: Callable[[FoldRecord], None] | None = None
                 ) -> dict[str, Any] | None:
        """prepare, every fold asked, finish."""
        self.run_folds(self.prepare(folds), on_fold)
        return self.finish()
