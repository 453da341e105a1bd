"""`harness compare`: paired bootstrap differences between runs on identical folds."""

from __future__ import annotations

import argparse
from typing import Any
from harness.cli.common import add_command, bounded


def add_parser(sub: Any) -> None:
    p = add_command(sub, "compare", run, "did each step really help? paired bootstrap differences between runs on "
                    "identical folds (terminal table, HTML report, JSON, W&B tables)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories, in ladder order")
    p.add_argument("--reference", default="previous",
                   help="what each run is compared with: previous (the rung before; default), first, or a RUN_DIR")
    p.add_argument("--out", default=None, help="HTML report (compare.json beside it); default compare.html beside "
                   "the first run (in the runs' output folder)")
    p.add_argument("--n-boot", type=bounded(int, 100, 1_000_000), default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--use", choices=["argmax", "crossfit"], default="argmax",
                   help="each run's predictions: argmax of the seed mean (default), or its cross-fitted decided "
                        "predictions (the decision layer's honest effect; runs without a decision: argmax)")
    p.add_argument("--no-track", action="store_true", help="do not log the W&B tables (the first run's track.* decides)")


def run(args: argparse.Namespace) -> int:
    from harness.posthoc.compare import run_compare

    from harness.track.report import default_output

    out = args.out or default_output(args.run_dirs, "compare.html")  # beside the runs, never the current folder
    run_compare(args.run_dirs, args.reference, out, track=not args.no_track, n_boot=args.n_boot, use=args.use)
    return 0

