"""An experiment end to end, what `harness cv` (and `demo`, and every tuning trial) runs: the fold loop
(harness.run.cv.CVRun), then the decision step, the trackers' summary of the run, and its HTML report.

The fold loop knows nothing of what follows it; this is the one place the steps are chained.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from harness.config import ExperimentConfig
from harness.core import keys
from harness.run.cv import CVRun
from harness.run.rundir import FoldRecord


def run_experiment(cfg: ExperimentConfig, folds: Sequence[int] | None = None, verbose: bool = True,
                   tracker: Any = None, on_fold: Callable[[FoldRecord], None] | None = None) -> dict[str, Any] | None:
    """Run (or resume) every fold of every seed; once all are on disk, decide (decide.enabled), summarise to the
    trackers and write the report. None while folds are missing (run elsewhere with --folds, or claimed by another
    process). `on_fold` sees every finished fold in order (a tuning trial reports it and may raise
    optuna.TrialPruned). The tracker (made here when none is given) is finished here."""
    from harness.track import make_tracker

    tracker = tracker or make_tracker(cfg, cfg.resolved_run_dir())
    try:
        cv = CVRun(cfg, tracker, verbose)
        metrics = cv(folds, on_fold)
        if metrics is not None:
            _after_the_folds(cv, metrics)
        return metrics
    finally:
        tracker.finish()


def _after_the_folds(cv: CVRun, metrics: dict[str, Any]) -> None:
    """The decision step (it waits for another process's decision to commit), the trackers' summary, the report."""
    from harness.core.metrics import format_per_class
    from harness.track.report import write_report

    cfg, run = cv.cfg, cv.run
    if cfg.decide.enabled:
        from harness.posthoc.decision import decide_run

        metrics["decide"] = decide_run(run.path, cfg, verbose=cv.verbose, wait=600.0)
        metrics["summary"] = run.read_metrics()["summary"]  # decide/* keys added there
    cv.tracker.end_experiment(run.path, metrics)
    write_report([run.path], run.report_path)
    s = metrics["summary"]
    cv.say("\nOOF per class (mean of seeds):\n" + format_per_class(metrics["blend"]))
    cv.say(f"majority baseline macro-F1 {s[keys.BASELINE_MAJORITY]:.4f}, "
           f"official {s[keys.BASELINE_MAJORITY_OFFICIAL]:.4f}\nresults in {run.path} (report: {run.report_path})")
