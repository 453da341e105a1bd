"""`harness …` commands: one module per command (its parser and what it runs); no logic lives here.

Each command module has `add_parser(sub)` and `run(args) -> int`; `COMMANDS` lists them in `--help`'s order.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness.config import ConfigError, mask_secrets
from harness.data.load import DataError
from harness.posthoc.decision import DecisionInputError
from harness.core.progress import PrintableStream, printable
from harness.core.store import StoreError

from harness.cli import (audit, compare, config, curve, cv, dashboard, decide, demo, ensemble, export, folds, init,
                         predict, report, select, sweep_local, synth, tune, validate, verify)

# in `harness --help`'s order
COMMANDS = (demo, cv, decide, predict, export, init, validate, folds, synth, tune, sweep_local, report, compare, ensemble,
            audit, curve, select, verify, dashboard, config)


def build_parser() -> argparse.ArgumentParser:
    """The command line: each command's module adds its own parser (the order is `--help`'s)."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Fine-tune LLMs as imbalance-aware text classifiers with grouped CV, a post-hoc "
                    "decision layer and tracked experiments.",
        epilog="Start with `harness demo` (CPU, a few minutes). demo, cv, decide, predict, config, tune and "
               "sweep-local take config overrides like train.learning_rate=1e-4 (ensemble: decide.* only); report, "
               "compare, audit and dashboard only read run directories.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; `--section.key=value` (W&B's ${args}) are not declared options: they become
    overrides, in order, after any `section.key=value` given positionally."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not hasattr(args, "overrides") or any("=" not in u or u.startswith("-") and not u.startswith("--")
                                                 for u in unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = list(args.overrides) + unknown
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not getattr(args, "fn", None):
        parser = build_parser()
        parser.print_help()
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    stdout = sys.stdout
    sys.stdout = PrintableStream(stdout)  # ids, texts and names from data files print escaped, never raw
    try:
        return args.fn(args)
    except (ConfigError, DataError, DecisionInputError, StoreError) as e:
        print(f"error: {printable(mask_secrets(str(e)))}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a missing file: name it, no traceback
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {printable(mask_secrets(where + (e.strerror or str(e))))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = ("finished folds are kept; run the same command again to resume" if args.command in
                ("cv", "demo", "tune", "sweep-local") else "nothing it was writing was committed; the previous "
                "state stays in force")
        print(f"interrupted: {kept}", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


