"""A run's results once its folds are done: oof.npz, test.npz and metrics.json assembled from every seed's
folds, the summary keys, and the running keys after each fold that sweeps and pruners read."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from harness.config import ExperimentConfig
from harness.core import keys
from harness.data.folds import Folds
from harness.data.schema import Example
from harness.run.rundir import FoldRecord, OofArrays, RunDir, TestArrays


def assemble(cfg: ExperimentConfig, run: RunDir, train: list[Example], test: list[Example], folds: Folds,
             results: dict[tuple[int, int], FoldRecord]) -> dict[str, Any]:
    """Write oof.npz, test.npz and metrics.json from every seed's folds."""
    label_names = cfg.data.label_names()
    seeds, n_folds, n, k = cfg.train.seeds, cfg.cv.n_folds, len(train), len(label_names)
    row = {e.id: i for i, e in enumerate(train)}
    oof = np.zeros((len(seeds), n, k), dtype=np.float32)
    test_probs = np.zeros((len(seeds), n_folds, len(test), k), dtype=np.float32)
    for (seed, f), r in results.items():
        s = seeds.index(seed)
        oof[s, [row[i] for i in r.val_ids]] = r.val_probs
        test_probs[s, f] = r.test_probs
    y = np.array([e.label for e in train])
    fold_idx = np.array([folds.fold_of[e.id] for e in train])
    per_fold = [{key: r.metrics[key] for key in ("seed", "fold", "macro_f1", "macro_f1_official", "accuracy",
                                                 "balanced_accuracy", "weighted_f1", "val_rows", "seconds")}
                for _, r in sorted(results.items())]
    with run.writing("cv", exclusive=False):  # oof, test and metrics become visible together
        run.write_oof(OofArrays(ids=np.array([e.id for e in train]), labels=y, fold=fold_idx, seeds=np.array(seeds),
                                probs=oof))
        run.write_test(TestArrays(ids=np.array([e.id for e in test]), seeds=np.array(seeds), probs=test_probs))
        metrics = oof_metrics(cfg, run, y, oof, seeds, per_fold)
        run.write_metrics(metrics)
    return metrics


def oof_metrics(cfg: ExperimentConfig, run: RunDir, y: np.ndarray, oof: np.ndarray, seeds: Sequence[int],
                per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json's content from the OOF probabilities (seeds, rows, classes): per seed, the argmax of the
    seed mean ("blend") with CIs, the summary keys, and the decide/* keys of a decision already searched."""
    from harness.core.metrics import majority_baseline, report

    label_names = cfg.data.label_names()
    k = len(label_names)
    per_seed = {str(seed): report(y, oof[s].argmax(1), label_names, cfg.data.score_labels, seed=s)
                for s, seed in enumerate(seeds)}
    blend = report(y, oof.mean(0).argmax(1), label_names, cfg.data.score_labels)
    majority = int(np.bincount(y, minlength=k).argmax())
    summary = {keys.cv(m): blend[m] for m in keys.SCORES}
    summary[keys.CV_FOLD_SD] = float(np.std([p["macro_f1_official"] for p in per_fold]))
    summary[keys.BASELINE_MAJORITY] = majority_baseline(y, k, majority)
    summary[keys.BASELINE_MAJORITY_OFFICIAL] = majority_baseline(y, k, majority, cfg.data.score_labels,
                                                                 "macro_f1_official")
    calibration = run.read_calibration()
    if calibration is not None:  # a decision searched earlier on these OOF rows keeps its keys
        from harness.posthoc.decision import decide_summary

        summary.update(decide_summary(calibration))
    return {"summary": summary, "blend": blend, "per_seed": per_seed, "per_fold": per_fold,
            "label_names": label_names, "majority_class": majority}


def fold_progress(results: dict[tuple[int, int], FoldRecord]) -> dict[str, float]:
    """Running CV keys after each fold (mean over finished folds): what sweeps' early termination and pruners read."""
    return {keys.cv(m): float(np.mean([r.metrics[m] for r in results.values()]))
            for m in keys.FOLD_PROGRESS_SCORES} | {keys.CV_FOLDS_DONE: len(results)}
