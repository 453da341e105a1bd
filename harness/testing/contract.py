"""`check_method`: the method contract, runnable by a plugin's author (as scikit-learn's `check_estimator` is).

It runs the method through the real fold loop on small synthetic data and checks what every method owes the
harness: probabilities of shape (N, K), finite, summing to 1, for OOF and test rows; a crash mid-run resumes
without refitting a finished fold; no validation row (nor a variant made from one) ever reaches `fit`; saved
fold models load back to identical probabilities; the method's scratch folder is gone after each fold; the
run directory verifies against its manifest.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

SMALL = ("data.synthetic=psydefconv", "data.synthetic_groups=24", "cv.n_folds=3", "track.backend=none",
         "data.score_labels=[1,2,3,4,5,6,7,8]", "train.save_adapters=true", "decide.enabled=false")


class ContractError(AssertionError):
    """A method broke the contract; the message names the method and the clause."""


class _Crash(BaseException):
    """The simulated crash in the middle of a run (not an Exception: nothing may swallow it)."""


@contextlib.contextmanager
def _spied(name: str, fits: list[set[str]], crash_on_fit: int | None) -> Iterator[None]:
    """The method `name`, wrapped to record the ids every `fit` sees and to crash on a chosen fit."""
    from harness.methods import base

    real_lookup = base.method_class
    real = real_lookup(name)

    class Recorded(real):  # type: ignore[misc, valid-type]
        def fit(self, train: Any, inner: Any, ctx: Any) -> Any:
            fits.append({e.source_id or e.id for e in list(train) + list(inner)})
            if crash_on_fit is not None and len(fits) == crash_on_fit:
                raise _Crash(f"simulated crash in fit {crash_on_fit}")
            return super().fit(train, inner, ctx)

    base.method_class = lambda n: Recorded if n == name else real_lookup(n)  # type: ignore[assignment]
    try:
        yield
    finally:
        base.method_class = real_lookup  # type: ignore[assignment]


def _require(ok: bool, name: str, clause: str) -> None:
    if not ok:
        raise ContractError(f"method {name!r} breaks the contract: {clause}")


def check_method(name: str, workdir: str | Path, settings: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the contract on the installed method `name` in `workdir` (a new, empty folder). `settings`: overrides
    that make it fast on a CPU (default: the ones its MethodSpec declares in `test_settings`). Raises
    ContractError naming the clause broken; returns what it measured."""
    from harness.config import load_config
    from harness.run.experiment import run_experiment
    from harness.data.load import load_train
    from harness.methods.base import make_method
    from harness.methods.registry import spec
    from harness.run.rundir import RunDir
    from harness.run.verify import check_all

    extra = list(spec(name).test_settings if settings is None else settings)
    run_dir = Path(workdir) / f"contract-{name}"
    cfg = load_config(None, [*SMALL, *extra, f"method={name}", f"run_dir={run_dir}"])
    run = RunDir(run_dir)
    k = len(cfg.data.label_names())
    fits: list[set[str]] = []
    with _spied(name, fits, crash_on_fit=2):  # 1. a crash in the second fold
        try:
            run_experiment(cfg, verbose=False)
        except _Crash:
            pass
        else:
            raise ContractError(f"method {name!r}: the simulated crash in fit 2 was swallowed")
    _require(run.fold_done(42, 0) and not run.fold_done(42, 1), name,
             "after a crash in fold 1, fold 0 must be complete on disk and fold 1 not")
    fits.clear()
    with _spied(name, fits, crash_on_fit=None):  # 2. the re-run resumes
        metrics = run_experiment(cfg, verbose=False)
    _require(metrics is not None and len(fits) == 2, name, f"a resumed run refits only the unfinished folds "
             f"(it fitted {len(fits)} of 2)")
    folds = run.read_folds()
    for fold, seen in zip([1, 2], fits):
        _require(bool(seen) and not seen & folds.val_ids(fold), name,
                 f"fold {fold}'s validation rows (or variants of them) reached fit")
    oof = run.read_oof()
    _require(oof.probs.shape == (1, len(oof.ids), k), name, f"OOF probabilities of shape (1, {len(oof.ids)}, {k}), "
             f"got {oof.probs.shape}")
    _require(bool(np.isfinite(oof.probs).all() and (oof.probs >= 0).all() and
                  np.allclose(oof.probs.sum(-1), 1, atol=1e-5)), name, "finite probabilities summing to 1")
    rows = load_train(cfg)
    val = [e for e in rows if folds.fold_of[e.id] == 2]
    model = run.verified_model_dir(42, 2)
    _require(model is not None, name, "Fitted.save wrote the fold's model (train.save_adapters=true)")
    again = make_method(cfg).load(model).predict_proba(val)
    _require(np.shape(again) == (len(val), k), name, "a loaded model scores rows with shape (N, K)")
    drift = float(np.abs(np.asarray(again) - run.read_fold(42, 2).val_probs).max())
    _require(drift <= 1e-6, name, f"a saved and loaded model gives the same probabilities (max difference {drift:.2e})")
    _require(not any(run.scratch_dir(42, f).exists() for f in range(3)), name, "its scratch folder is removed")
    problems = check_all(run)
    _require(not problems, name, f"the run directory verifies against its manifest: {problems[:3]}")
    return {"method": name, "rows": len(oof.ids), "classes": k, "reload_max_difference": drift,
            "macro_f1": metrics["summary"]["cv/macro_f1"]}
