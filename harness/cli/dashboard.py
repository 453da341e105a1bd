"""`harness dashboard`: a W&B report over an experiment's or sweep's runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.config import ConfigError

from harness.cli.common import add_command


def add_parser(sub: Any) -> None:
    p = add_command(sub, "dashboard", run, "build a W&B report comparing an experiment's (or sweep's) runs")
    p.add_argument("--run", help="a run directory: takes the project, group and class names from it")
    p.add_argument("--project", help="W&B project (default: the run's track.project)")
    p.add_argument("--entity", help="W&B entity (default: your default entity)")
    p.add_argument("--group", help="only runs of this W&B group (an experiment, or a tuning study)")
    p.add_argument("--sweep", help="only runs of this W&B sweep id")
    p.add_argument("--save", action="store_true", help="save the report on the W&B server (needs a login)")
    p.add_argument("--out", default="dashboard.json", help="without --save: write the report spec here")


def run(args: argparse.Namespace) -> int:
    from harness.track.dashboard import build_report
    from harness.track.report import load_run
    from harness.core.store import read_json

    project, group, names = args.project, args.group, []
    if args.run:
        run = load_run(args.run)
        names = run.label_names
        from harness.run.rundir import RunDir

        track = RunDir(args.run).track_path
        ids = read_json(track) if track.exists() else {}
        project = project or run.config.get("track.project")
        group = group or ids.get("group")
    if not project:
        raise ConfigError(["dashboard: give --project (or --run RUN_DIR to take it from the run's config)"])
    report = build_report(project, args.entity, group=group, sweep=args.sweep, label_names=names)
    if args.save:
        report.save()
        print(f"saved W&B report: {report.url}")
        return 0
    from harness.core.store import atomic_write_text

    atomic_write_text(Path(args.out), report._to_model().model_dump_json(indent=1))
    print(f"wrote the report spec to {args.out} ({len(report.blocks)} blocks, runs filtered by "
          f"{report.blocks[2].runsets[0].filters!r}); add --save to create it on the W&B server")
    return 0

