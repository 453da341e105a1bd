"""`harness report`: a static HTML page comparing run directories."""

from __future__ import annotations

import argparse
from typing import Any
from harness.cli.common import add_command


def add_parser(sub: Any) -> None:
    p = add_command(sub, "report", run, "write a static HTML page comparing run directories (no W&B server needed)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories")
    p.add_argument("--out", default=None, help="output HTML file (default: RUN_DIR/report.html for one run, "
                   "report.html beside the first run for several)")


def run(args: argparse.Namespace) -> int:
    from harness.track.report import write_report

    out = write_report(args.run_dirs, args.out)  # None: where the runs are
    print(f"wrote {out} comparing {len(args.run_dirs)} run(s); open it in a browser")
    return 0

