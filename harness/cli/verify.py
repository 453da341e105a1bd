"""`harness verify`: a run directory checked against its manifest."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.config import ConfigError
from harness.core.progress import printable

from harness.cli.common import add_command


def add_parser(sub: Any) -> None:
    p = add_command(sub, "verify", run, "check every file of a run directory against its manifest (digests, files "
                    "missing or never committed); exit 1 on a problem")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run, ensemble or audit directory")
    p.add_argument("--upgrade", action="store_true",
                   help="a run written before manifests: record its files as they are now (check them first)")


def run(args: argparse.Namespace) -> int:
    from harness.run.rundir import RunDir
    from harness.run.verify import check_all, upgrade

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise ConfigError([f"{run.path}: not a directory"])
    if args.upgrade:
        if run.store.exists():
            print(f"{run.path}: already has a manifest; nothing to upgrade")
        else:
            names = upgrade(run)
            print(f"{run.path}: recorded {len(names)} files as they are now in its manifest")
    problems = check_all(run)
    for p in problems:
        print(f"  {printable(p)}")
    if problems:
        print(f"{run.path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    files = run.manifest().files
    print(f"{run.path}: {len(files)} files verified against its manifest")
    return 0

