"""`harness synth`: deterministic synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.config import ConfigError

from harness.cli.common import add_command, bounded


def add_parser(sub: Any) -> None:
    p = add_command(sub, "synth", run, "write deterministic synthetic data (PsyDefConv JSON or Dreaddit CSV)")
    p.add_argument("kind", choices=["psydefconv", "dreaddit"])
    p.add_argument("out", help="output file")
    p.add_argument("--groups", type=bounded(int, 10, 100_000), default=200, help="dialogues / posts (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unlabelled", action="store_true", help="psydefconv: omit labels (test-file shape)")


def run(args: argparse.Namespace) -> int:
    from harness.data.synthetic import make_dreaddit, make_psydefconv, write_dreaddit_csv, write_psydefconv

    out = Path(args.out)
    if args.groups < 10:
        raise ConfigError([f"--groups: {args.groups}; synthetic data needs at least 10 dialogues/posts"])
    if args.kind == "psydefconv":
        ex = make_psydefconv(args.groups, args.seed)
        write_psydefconv(out, ex, with_labels=not args.unlabelled)
    else:
        ex = make_dreaddit(args.groups, args.seed)
        write_dreaddit_csv(out, ex)
    print(f"wrote {len(ex)} rows in {len({e.group for e in ex})} groups to {out}")
    return 0

