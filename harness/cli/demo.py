"""`harness demo`: the CPU demo: synthetic PsyDefConv-shaped data, grouped CV, a per-class table."""

from __future__ import annotations

import argparse
from typing import Any
from harness.cli.common import add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "demo", run, "run the CPU demo: synthetic PsyDefConv-shaped data, grouped CV, per-class table")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.config import demo_config
    from harness.run.experiment import run_experiment

    cfg = demo_config(list(args.overrides or []))
    run_experiment(cfg, verbose=True)
    return 0

