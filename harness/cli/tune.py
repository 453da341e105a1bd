"""`harness tune`: an Optuna study over training settings."""

from __future__ import annotations

import argparse
from typing import Any
from harness.cli.common import add_command, add_overrides, bounded, path_component


def add_parser(sub: Any) -> None:
    p = add_command(sub, "tune", run, "search training settings (tune.space) with an Optuna study: fold-level "
                    "pruning, heartbeat + retry of dead workers' trials, resumable; run one per GPU", config="positional")
    p.add_argument("--study", required=True, type=path_component, help="study name (also the W&B group of its trials)")
    p.add_argument("--storage", help="Optuna storage URL (default tune.storage, else sqlite:///studies/STUDY.db); "
                   "postgresql://user:pw@host/db for workers on many machines")
    p.add_argument("--n-trials", type=bounded(int, 1), help="finish when the study holds this many complete+pruned trials "
                   "(counted over all workers and restarts)")
    p.add_argument("--timeout", type=bounded(float, 1e-9), help="stop starting new trials after this many seconds")
    p.add_argument("--status", action="store_true", help="summarise the study (best trial, states, importances)")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.search.tune import run_study, study_status

    overrides = list(args.overrides or [])
    if args.status:
        print(study_status(args.config, overrides, args.study, args.storage))
        return 0
    run_study(args.config, overrides, args.study, args.storage, args.n_trials, args.timeout, verbose=True)
    return 0

