"""`harness ensemble`: several runs combined (blended or stacked) on identical folds."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from harness.config import ConfigError

from harness.cli.common import add_command, stack_c


def add_parser(sub: Any) -> None:
    p = add_command(sub, "ensemble", run, "combine several runs on identical folds: temperature-scaled members "
                    "blended with weights searched with δ and τ on the OOF rows, or stacked (--stack); cross-fitted gain; "
                    "`predict` then uses it")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories (same folds)")
    p.add_argument("--out", required=True, help="the ensemble directory to create (or resume)")
    p.add_argument("--stack", action="store_true",
                   help="stack instead of blending: a class-weighted logistic regression on the members' OOF "
                        "log-probabilities, cross-fitted by fold, then the decision ladder on its output")
    p.add_argument("--stack-c", type=stack_c, default=None, metavar="auto|C",
                   help="the stacker's inverse regularisation strength; auto (default): chosen from "
                        "0.01..3 by cross-fitted log loss, nested inside the stacker's own cross-fitting")
    p.add_argument("overrides", nargs="*", default=[], metavar="decide.key=value",
                   help="decision-layer settings, e.g. decide.n_trials=500")


def run(args: argparse.Namespace) -> int:
    from harness.posthoc.ensemble import build_ensemble

    if args.stack_c is not None and not args.stack:
        raise ConfigError(["--stack-c: applies to --stack only (a weight blend has no stacker); add --stack"])

    build_ensemble(args.run_dirs, args.out, list(args.overrides or []), stack=args.stack, stack_c=args.stack_c)
    print(f"\nnext: harness predict {shlex.quote(str(args.out))} --out submission.json   "
          "(the members' test probabilities, " + ("stacked)" if args.stack else "blended)"))
    return 0

