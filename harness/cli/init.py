"""`harness init`: a first recipe inferred from the user's own data file."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from harness.config import ConfigError
from harness.core.progress import printable

from harness.cli.common import add_command


def add_parser(sub: Any) -> None:
    p = add_command(sub, "init", run, "write a first recipe for your own data file (CSV, TSV, JSONL or PsyDefConv "
                    "JSON): format, columns, label names and groups inferred, each choice explained")
    p.add_argument("data", metavar="DATA", help="your labelled data file")
    p.add_argument("--method", default="tfidf", help="the recipe's method (default tfidf: a fast, strong baseline; "
                   "`harness config --methods` lists them)")
    p.add_argument("--out", help="the recipe to write (default experiments/<file name>.yaml; never overwritten)")
    p.add_argument("--name", help="the experiment's name (default: the file name): its run directory is runs/NAME")


def run(args: argparse.Namespace) -> int:
    from harness.data.init import InitError, infer, write_recipe

    try:
        found = infer(args.data)
        out = Path(args.out) if args.out else Path("experiments") / f"{Path(args.data).stem}.yaml"
        write_recipe(found, out, method=args.method, name=args.name)
    except InitError as e:
        raise ConfigError([str(e)]) from None
    print(f"{args.data}: {found.rows} rows; what init inferred:")
    for line in found.why:
        print(f"  - {printable(line)}")
    print(f"wrote {out}: method {args.method}, grouped {'' if found.columns.get('group') else '(one row a group) '}"
          f"stratified CV; edit it or override keys on the command line")
    print(f"next: harness cv {shlex.quote(str(out))}")
    return 0

