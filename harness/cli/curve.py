"""`harness curve`: a learning curve on the experiment's own folds that forecasts the score with more labels."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import add_command, add_overrides, bounded, experiment_config


def add_parser(sub: Any) -> None:
    p = add_command(sub, "curve", run, "learning curve: train on fractions of every fold's training groups, score "
                    "the same OOF rows, fit score = a - b n^-c and forecast 1.5x and 2x the labels, per class too",
                    config="positional")
    p.add_argument("--fractions", default="0.1,0.25,0.5,1",
                   help="fractions of each fold's training groups, in (0, 1] (default 0.1,0.25,0.5,1)")
    p.add_argument("--draws", type=bounded(int, 1, 100), default=3,
                   help="random draws of the groups per fraction below 1 (default 3); their spread is shown")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.search.curve import parse_fractions, run_curve

    fractions = parse_fractions(args.fractions)
    run_curve(experiment_config(args), fractions, args.draws)
    return 0
