"""`harness export`: a run's final model as a folder transformers / PEFT / sentence-transformers load, with its
decision and a model card; `harness.load(DIR)` and `harness predict DIR` use it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import add_command, add_overrides, bounded, run_config


def add_parser(sub: Any) -> None:
    p = add_command(sub, "export", run, "write a finished run's model (its fold ensemble, one fold, or a refit on "
                    "every training row) in Hugging Face's format with its decision and a model card")
    p.add_argument("run_dir", help="a finished `harness cv` (or `harness ensemble`) run directory")
    p.add_argument("--out", required=True, help="the export folder to create (never overwritten)")
    p.add_argument("--from", dest="source", choices=("folds", "refit"), default="folds",
                   help="folds (default): the run's fold models, as `predict --test` uses them; refit: one model "
                        "trained now on every training row with the run's settings (seqcls/sft: the median number "
                        "of steps its folds kept), kept in the run directory for the next export")
    p.add_argument("--seeds", default=None,
                   help="--from refit: the seeds to refit, comma-separated (default: the run's train.seeds; one "
                        "model per seed, averaged like the run's seeds; one seed gives a single model)")
    p.add_argument("--fold", type=bounded(int, 0), default=None,
                   help="export only this fold's model (of the run's first seed): a single model")
    p.add_argument("--merge", action="store_true",
                   help="LoRA runs: write the adapter merged into the base's weights (a plain transformers model)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_overrides(p)  # track.* only: where the export is logged (e.g. track.registry=...)


def run(args: argparse.Namespace) -> int:
    from harness.config import ConfigError, mask_secrets
    from harness.export.writer import export_run

    overrides = list(args.overrides or [])
    bad = [o for o in overrides if not o.startswith("track.")]
    if bad:
        raise ConfigError([f"{o}: an export is the run's model as trained; only track.* settings (where it is logged) "
                           "may be given" for o in bad])
    seeds = None
    if args.seeds:
        try:
            seeds = list(dict.fromkeys(int(x) for x in args.seeds.split(",") if x.strip()))
        except ValueError:
            raise ConfigError([f"--seeds: {args.seeds!r} is not a comma-separated list of integers"]) from None
        if args.source != "refit" or not seeds:
            raise ConfigError(["--seeds: the seeds of a refit (with --from refit), e.g. --seeds 1,2,3"])
    if args.source == "refit" and args.fold is not None:
        raise SystemExit("harness export: --fold picks one of the run's fold models; --from refit trains a new one: "
                         "give one of them")
    command = mask_secrets(f"harness export {args.run_dir} --out {args.out} --from {args.source}"
                           + (f" --fold {args.fold}" if args.fold is not None else "") + (" --merge" if args.merge else "")
                           + (f" --seeds {args.seeds}" if args.seeds else ""))
    meta = export_run(Path(args.run_dir), Path(args.out), args.source, args.fold, args.merge, not args.quiet, command,
                      seeds)
    from harness.track import log_export

    logged = log_export(run_config(args.run_dir, overrides), Path(args.run_dir), Path(args.out), meta)
    if logged and not args.quiet:
        print(f"W&B: logged {args.out} as the model artifact {logged} (aliases: the run's name, latest)")
    return 0
