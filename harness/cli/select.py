"""`harness select`: rank unlabelled rows for annotation with the runs' fold models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import add_command, bounded


def add_parser(sub: Any) -> None:
    p = add_command(sub, "select", run, "rank unlabelled rows for annotation with the runs' fold models (entropy, "
                    "margin, disagreement between fold models, random), optionally spread over predicted classes; "
                    "a CSV for annotators")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished runs (or ensembles) with fold models")
    p.add_argument("--pool", required=True, help="unlabelled rows in the runs' data format")
    p.add_argument("--n", type=bounded(int, 1), required=True, help="rows to pick")
    p.add_argument("--strategy", choices=("entropy", "margin", "disagreement", "random"), default="entropy",
                   help="entropy of the fold-model mean (default), margin between its two likeliest classes, "
                        "disagreement between the fold models (BALD), or random")
    p.add_argument("--balance", action="store_true",
                   help="take the picks in turn from each predicted class, the rarest training class first")
    p.add_argument("--seed", type=int, default=0, help="the random strategy's seed")
    p.add_argument("--out", default=None, help="CSV to write (never overwritten; default select-<first run>.csv "
                   "beside the first run)")


def run(args: argparse.Namespace) -> int:
    from harness.posthoc.select import select_rows
    from harness.track.report import default_output

    out = Path(args.out) if args.out else default_output(args.run_dirs, f"select-{Path(args.run_dirs[0]).name}.csv")
    select_rows(args.run_dirs, args.pool, args.n, out, args.strategy, args.balance, args.seed)
    return 0
