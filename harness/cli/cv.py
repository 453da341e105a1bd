"""`harness cv`: grouped k-fold CV of one experiment, then its decision step, trackers' summary and report."""

from __future__ import annotations

import argparse
import os
from typing import Any

from harness.config import ConfigError

from harness.cli.common import experiment_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "cv", run, "run grouped k-fold CV for one experiment (resumes finished folds)",
                    config="positional")
    p.add_argument("--folds", help="comma-separated fold indices to run now, e.g. 0,1 (spread folds over GPUs)")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.run.experiment import run_experiment

    cfg = experiment_config(args)
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID") and not cfg.run_dir:
        # under a W&B agent (or sweep-local): one run directory per sweep run, so runs never share folds
        from harness.config import apply_overrides
        from harness.run.rundir import RunDir

        sweep_run = RunDir.of_sweep_run(cfg, os.environ["WANDB_SWEEP_ID"], os.environ["WANDB_RUN_ID"])
        cfg = apply_overrides(cfg, {"run_dir": str(sweep_run.path)})
    folds = None
    if args.folds:
        try:
            folds = [int(f) for f in args.folds.split(",")]
        except ValueError:
            raise ConfigError([f"--folds: {args.folds!r} is not a comma-separated list of fold indices (e.g. 0,1)"])
    run_experiment(cfg, folds=folds, verbose=True)
    return 0

