"""`harness validate`: a data file checked and summarised, every problem listed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.config import ExperimentConfig, load_config
from harness.data.load import DataError
from harness.core.progress import printable

from harness.cli.common import experiment_config, add_command, add_overrides


def add_parser(sub: Any) -> None:
    p = add_command(sub, "validate", run, "check a data file and summarise it; exit 1 listing every problem",
                    config="option")
    p.add_argument("file", help="a data file; with no --config and no data.* override its format, columns and "
                   "labels are inferred as `harness init` does")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--labelled", action="store_true", help="require a label on every row")
    add_overrides(p)


def run(args: argparse.Namespace) -> int:
    from harness.data.load import load_file, summarize

    cfg = _validate_config(args)
    try:
        examples = load_file(args.file, cfg, require_label=args.labelled)
    except DataError as e:
        if args.json:
            print(json.dumps({"valid": False, "file": args.file, "problems": e.to_json()}, indent=1))
        else:
            print(printable(f"INVALID {args.file}\n{e}"), file=sys.stderr)
        return 1
    from harness.data.folds import class_problems

    labelled = [e for e in examples if e.label is not None]
    problems = class_problems(labelled, cfg.data.label_names(), cfg.cv.n_folds, args.file, cfg.group_key())[0] \
        if labelled else []
    if problems:  # a file that loads but cannot make an honest CV run
        if args.json:
            print(json.dumps({"valid": False, "file": args.file, "problems": problems}, indent=1))
        else:
            print(printable(f"INVALID {args.file}\n" + "\n".join(f"  - {x}" for x in problems)), file=sys.stderr)
        return 1
    summary: dict[str, Any] = {"valid": True, "file": args.file, **summarize(examples, cfg.data.label_names())}
    summary["tokens"] = _token_summary(cfg, examples)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"VALID {args.file}: {summary['rows']} rows, {summary['groups']} groups, "
          f"{summary['labelled']} labelled")
    if summary["labelled"]:
        for name, c in summary["class_counts"].items():
            print(f"  {name:<28} {c['count']:>6} {c['pct']:>6.2f}%")
    t = summary["turns_per_item"]
    print(f"turns per item: min {t['min']}, mean {t['mean']}, max {t['max']}")
    tok = summary["tokens"]
    if "error" in tok:
        print(f"token lengths: skipped ({tok['error']})")
    else:
        print(f"prompt tokens ({tok['tokenizer']}, budget {tok['budget']}): "
              + ", ".join(f"p{k} {v}" for k, v in tok["percentiles"].items())
              + f"; truncated {tok['truncated']} of {tok['rows']}")
    return 0


def _validate_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config to read the file with: the one given, or, with no --config and no data.* override, the settings
    `harness init` would infer from the file itself (format, columns, labels)."""
    given = getattr(args, "config_option", None) or any(str(o).lstrip("-").startswith("data.")
                                                         for o in (args.overrides or []))
    if given:
        return experiment_config(args)
    from harness.data.init import InitError, infer

    try:
        found = infer(args.file)
    except (InitError, OSError):
        return experiment_config(args)  # the loader then names the problem, line by line
    if not args.json:  # --json prints one JSON document and nothing else
        print(f"reading {args.file} as inferred: " + ", ".join(f"{k}={v}" for k, v in found.overrides().items()
                                                                if v is not None and k != "data.labels")
              + (f", data.labels={found.labels}" if "data.labels" in found.overrides() else ""))
    return load_config(None, list(args.overrides or []), base=found.overrides())


def _token_summary(cfg: ExperimentConfig, examples: list) -> dict[str, Any]:
    """Prompt-length percentiles, for methods whose inputs are token prompts (the method's own settings say with
    which tokenizer: harness.methods.hf reads them)."""
    from harness.methods.registry import specs

    spec = specs().get(cfg.method)
    if spec is None or not spec.token_prompts:
        return {"error": f"method {cfg.method!r} builds no token prompt"}
    from harness.methods.base import TaskInfo
    from harness.methods.hf.model import prompt_token_summary

    return prompt_token_summary(cfg.settings(), TaskInfo.of(cfg), examples)

