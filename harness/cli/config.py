"""`harness config`: the resolved config, or every key with its help, or the installed methods."""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.config import field_help, masked

from harness.cli.common import experiment_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "config", run, "print the resolved config (YAML) or list every key with its help",
                    config="option")
    p.add_argument("--json", action="store_true", help="flat section.key JSON, as loggers see it")
    p.add_argument("--keys", action="store_true", help="list every config key with its help")
    p.add_argument("--methods", action="store_true",
                   help="list the installed methods (built-in and entry-point plugins) and their sections")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    if args.methods:
        from harness.methods.registry import specs

        for spec in specs().values():
            section = f"[{spec.section}.*]" if spec.section else ""
            print(f"{spec.name:<12} {section:<14} {spec.help}  ({spec.method.split(':')[0]})")
        return 0
    if args.keys:
        from harness.config.experiment import field_defaults

        defaults = field_defaults()
        for k, h in field_help().items():
            d = json.dumps(defaults.get(k), default=str) if k in defaults else ""
            print(f"{k:<34} {d if len(d) <= 24 else d[:21] + '...':<25} {h}")
        return 0
    cfg = experiment_config(args)
    print(json.dumps(masked(cfg.to_flat_dict()), indent=1, default=str) if args.json else cfg.to_yaml(), end="")
    return 0

