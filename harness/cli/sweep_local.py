"""`harness sweep-local`: a W&B sweep YAML run on this machine without a W&B server."""

from __future__ import annotations

import argparse
from typing import Any
from harness.cli.common import add_command, bounded


def add_parser(sub: Any) -> None:
    p = add_command(sub, "sweep-local", run, "run a W&B sweep YAML on this machine without a W&B server: "
                    "W&B's own search engines propose, runs log offline, state on disk (resumable)")
    p.add_argument("sweep", help="sweep YAML, e.g. sweeps/rank.yaml")
    p.add_argument("--count", type=bounded(int, 1), help="runs to do now (default: until the search space is exhausted)")
    p.add_argument("--state-dir", help="where the sweep's state lives (default runs/sweeps-local/<yaml name>)")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between early-termination checks (default 30)")
    p.add_argument("--dry-run", action="store_true", help="print the first run's command line and exit")
    p.add_argument("--compare", action="store_true", help="then compare the finished runs, each against the "
                   "previous one (paired bootstrap on identical folds; a ladder): terminal, compare.html, W&B")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="appended to every run's command line (e.g. CPU test settings); must not set a sweep parameter")


def run(args: argparse.Namespace) -> int:
    from harness.search.sweep import LocalSweep, agent_command

    sweep = LocalSweep(args.sweep, args.state_dir, list(args.overrides or []), args.poll, verbose=True)
    if args.dry_run:
        s = sweep.optimizer.ask_n_runs(1)
        params = s[0].config.flat_dict() if s else {}
        print(" ".join(agent_command(sweep.sweep, params, sweep.extra)))
        return 0
    sweep.run(args.count)
    if args.compare:
        sweep.compare()
    return 0

