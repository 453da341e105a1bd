"""`harness export --from refit`: one model trained on every training row with the run's own settings, the way
scikit-learn's `refit=True` does after a search.

A method that chose its checkpoint on an inner split (seqcls, sft) has no held-out rows left to choose with, so
the refit trains the median number of steps its folds kept, and touches no other row. The refit is one unit of
work like a fold: claimed (two processes never train it twice), committed in one step with its metrics
(`refit/seed<S>/` in the run directory), and reused by the next export; a killed refit is trained again.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError, ExperimentConfig
from harness.core.store import StoreError
from harness.run.claims import FoldClaim
from harness.run.rundir import REFIT_ROOT, RunDir

REFIT_FOLD = -1  # the FoldContext fold of a refit: it has no held-out fold


def refit_steps(run: RunDir, cfg: ExperimentConfig) -> int | None:
    """The median of the steps the folds kept, when they chose a checkpoint on an inner split; None when the
    folds trained their whole schedule (the refit trains the same schedule)."""
    if cfg.train.inner_val_fraction <= 0:
        return None
    steps = []
    for seed in cfg.train.seeds:
        for k in range(cfg.cv.n_folds):
            record = run.read_fold(seed, k)
            chosen = None if record is None else record.metrics.get("chosen_step")
            if chosen is not None:
                steps.append(int(chosen))
    return max(1, int(np.median(steps))) if steps else None


def _check_refittable(run: RunDir, cfg: ExperimentConfig, method: Any) -> None:
    if run.is_ensemble():
        raise ConfigError([f"{run.path}: an ensemble has no single training recipe to refit; export it with "
                           "--from folds, or refit and export each member run"])
    if method.builds_on(run):
        raise ConfigError([f"{run.path}: method {cfg.method} continues another run's fold models (e.g. DPO on the sft "
                           "run's adapters), so a refit would need that run's refit first; export with --from folds"])


def _training_rows(run: RunDir, cfg: ExperimentConfig) -> list[Any]:
    """The run's training rows, refused when they changed since its folds were trained."""
    from harness.data.load import load_train
    from harness.data.schema import rows_digest

    rows = load_train(cfg)
    then = (run.require_fingerprint("export --from refit").get("train") or {}).get("sha256")
    if rows_digest(rows) != then:
        raise ConfigError([f"{cfg.data.train_path or 'the synthetic data'}: the training data changed since {run.path} "
                           "was trained; a refit on other rows would not be the run's model: restore the data or "
                           "run `harness cv` in a new run directory"])
    return rows


def refit(run: RunDir, cfg: ExperimentConfig, verbose: bool = True, seeds: Sequence[int] | None = None
          ) -> list[tuple[dict[str, Any], Path]]:
    """The run's refit models, one per seed (default: the run's train.seeds, as its folds were trained): each
    trained now or the one already committed; their metrics and folders."""
    from harness.config import apply_overrides
    from harness.methods.base import make_method

    seeds = list(seeds or cfg.train.seeds)
    found = {s: _finished_refit(run, s) for s in seeds}
    todo = [s for s in seeds if found[s] is None]
    if verbose and len(todo) < len(seeds):
        print(f"refit: reusing seed(s) {[s for s in seeds if found[s] is not None]} from {run.path / REFIT_ROOT}")
    if todo:
        steps = refit_steps(run, cfg)
        refit_cfg = apply_overrides(cfg, {"train.max_steps": steps}) if steps else cfg
        method = make_method(refit_cfg, run.cache)
        _check_refittable(run, cfg, method)
        rows = _training_rows(run, cfg)
        for seed in todo:
            found[seed] = _claimed(run, refit_cfg, method, rows, seed, steps, verbose)
    return [found[s] for s in seeds]  # type: ignore[misc]


def _claimed(run: RunDir, cfg: ExperimentConfig, method: Any, rows: list[Any], seed: int, steps: int | None,
             verbose: bool) -> tuple[dict[str, Any], Path]:
    """One seed's refit under its claim (another process training it is named, never joined)."""
    with FoldClaim(run.refit_claim_path(seed)) as claim:
        if not claim.acquire():
            holder = claim.holder() or {}
            raise ConfigError([f"{run.refit_dir(seed)}: being refitted by {holder.get('host', '?')} pid "
                               f"{holder.get('pid', '?')}; wait for it, then export again"])
        found = _finished_refit(run, seed)  # finished by another process while we waited for the claim
        return found if found is not None else _train(run, cfg, method, rows, seed, steps, verbose)


def _finished_refit(run: RunDir, seed: int) -> tuple[dict[str, Any], Path] | None:
    try:
        return run.read_refit(seed)
    except StoreError as e:
        warnings.warn(f"{run.refit_dir(seed)}: refit files fail their check ({e}); it is trained again", stacklevel=3)
        run.forget_refit(seed)
        return None


def _train(run: RunDir, cfg: ExperimentConfig, method: Any, rows: list[Any], seed: int, steps: int | None,
           verbose: bool) -> tuple[dict[str, Any], Path]:
    from harness.data.augment import augment
    from harness.data.weights import class_weights
    from harness.methods.base import FoldContext

    t0 = time.time()
    train = augment(rows, cfg.augment)
    weights = class_weights([e.label for e in train], len(cfg.data.label_names()), cfg.loss)
    if verbose:
        print(f"refit: training {cfg.method} on all {len(rows)} rows ({len(train) - len(rows)} augmented) with seed "
              f"{seed}, " + (f"{steps} steps (the median its folds kept)" if steps else "the folds' schedule"),
              flush=True)
    note = method.prepare(train, progress=verbose)
    if note and verbose:
        print(note)
    scratch = run.refit_dir(seed) / "scratch"
    ctx = FoldContext(run=run, seed=seed, fold=REFIT_FOLD, class_weights=weights, scratch=scratch)
    try:
        fitted = method.fit(train, [], ctx)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        metrics = {"seed": seed, "method": cfg.method, "train_rows": len(rows), "augmented_rows": len(train) - len(rows),
                   "steps": steps, "class_weights": weights.tolist(), "seconds": round(time.time() - t0, 1),
                   **{k: v for k, v in fitted.info().items() if k != "log_history"}}
        run.write_refit(seed, metrics, fitted.save)
    finally:
        fitted.close()
    found = run.read_refit(seed)
    assert found is not None
    return found
