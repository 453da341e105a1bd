"""`harness audit`: which labels look wrong (cleanlab) and every misclassified row."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from harness.cli.common import add_command, bounded


def add_parser(sub: Any) -> None:
    p = add_command(sub, "audit", run, "which labels look wrong (cleanlab on the OOF probabilities, blended over the "
                    "runs given) and every misclassified row: label_issues.json and errors.html")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories on identical folds")
    p.add_argument("--top", type=bounded(int, 1, 1_000_000), default=50,
                   help="how many suspicious labels to list, most suspicious first (default 50)")
    p.add_argument("--fixes-template", action="store_true",
                   help="also write label_fixes.csv: each flagged row's suggested label, a note and an empty accept "
                        "column; mark the fixes you accept (yes) and set data.label_fixes to the file")
    p.add_argument("--out", default=None, help="folder for label_issues.json and errors.html (default audit-<first "
                   "run's name> beside the first run)")


def run(args: argparse.Namespace) -> int:
    from harness.posthoc.audit import audit_runs

    from harness.track.report import default_output

    out = args.out or default_output(args.run_dirs, f"audit-{Path(args.run_dirs[0]).name}")
    audit_runs(args.run_dirs, out, top=args.top, fixes_template=args.fixes_template)
    return 0

