"""`harness predict`: a locked decision applied to test probabilities: a submission."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from harness.cli.common import run_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "predict", run, "apply the locked decision to test probabilities and write a submission")
    p.add_argument("run_dir", help="a `harness cv` run directory (with calibration.json after `harness decide`), or a "
                   "`harness export` folder (with --test)")
    p.add_argument("--test", help="test file to score with the fold adapters (default: the run's data.test_path)")
    p.add_argument("--out", default="submission.json", help="output JSON: [{id, label}] (default submission.json)")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.export.files import is_export
    from harness.posthoc.predict import write_submission

    if is_export(args.run_dir):
        from harness.export.loaded import write_submission as write_from_export

        if args.overrides:
            raise SystemExit("harness predict: an export folder takes no overrides (its config is part of it)")
        write_from_export(Path(args.run_dir), Path(args.test) if args.test else None, Path(args.out))
        return 0

    cfg = run_config(args.run_dir, list(args.overrides or []))
    write_submission(Path(args.run_dir), cfg, Path(args.out), Path(args.test) if args.test else None)
    return 0

