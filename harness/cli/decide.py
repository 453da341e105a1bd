"""`harness decide`: the decision layer searched on a finished run's OOF rows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from harness.cli.common import run_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "decide", run, "search the decision layer (class bias, majority gate, seed blend) on a "
                    "run's OOF rows; report in-sample and cross-fitted gains; write calibration.json")
    p.add_argument("run_dir", help="a finished `harness cv` run directory")
    p.add_argument("--logits", action="store_true", help="the stored scores are logits, not probabilities")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.posthoc.decision import decide_run

    cfg = run_config(args.run_dir, list(args.overrides or []))
    decide_run(Path(args.run_dir), cfg, verbose=True, logits=args.logits)
    return 0

