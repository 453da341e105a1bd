"""`harness folds`: the grouped folds of an experiment and their leakage audit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from harness.cli.common import experiment_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "folds", run, "build the grouped folds of an experiment and print the leakage audit",
                    config="positional")
    p.add_argument("--json", action="store_true", help="machine-readable audit")
    p.add_argument("--out", help="also write folds.json here")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.data.load import load_train
    from harness.data.folds import audit, format_audit, make_folds

    cfg = experiment_config(args)
    examples = load_train(cfg)
    folds = make_folds(examples, cfg.cv.n_folds, cfg.cv.seed, cfg.group_key())
    report = audit(folds, examples, cfg.data.label_names())
    if args.out:
        folds.save(Path(args.out))
    print(json.dumps(report, indent=1) if args.json else format_audit(report, cfg.data.label_names()))
    return 0 if report["ok"] else 1

