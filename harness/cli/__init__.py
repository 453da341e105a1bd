"""`harness …` commands. Each parses its arguments and calls the library; no logic lives here."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from harness.config import ConfigError, ExperimentConfig, field_help, load_config, mask_secrets, masked
from harness.data.load import DataError
from harness.posthoc.decision import DecisionInputError
from harness.core.progress import PrintableStream, printable
from harness.core.store import StoreError

OVERRIDE_HELP = ("config overrides as section.key=value or --section.key=value "
                 "(the forms W&B agents pass with ${args_no_hyphens} / ${args}); see `harness config --keys`")


def _config(args: argparse.Namespace) -> ExperimentConfig:
    path, overrides = getattr(args, "config", None), list(getattr(args, "overrides", []) or [])
    option = getattr(args, "config_option", None)
    if option:  # `--config=X a=b`: the optional positional took the first override
        if path and "=" not in path:
            raise ConfigError([f"two experiment YAMLs given: {path} and --config={option}"])
        path, overrides = option, ([path] if path else []) + overrides
    if getattr(args, "config_required", False) and (not path or "=" in path):
        raise ConfigError(["an experiment YAML is required: `harness COMMAND EXPERIMENT.yaml [section.key=value ...]` "
                           "or --config=EXPERIMENT.yaml"])
    return load_config(path, overrides)


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------

def cmd_config(args: argparse.Namespace) -> int:
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
    cfg = _config(args)
    print(json.dumps(masked(cfg.to_flat_dict()), indent=1, default=str) if args.json else cfg.to_yaml(), end="")
    return 0


def _validate_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config to read the file with: the one given, or, with no --config and no data.* override, the settings
    `harness init` would infer from the file itself (format, columns, labels)."""
    given = getattr(args, "config_option", None) or any(str(o).lstrip("-").startswith("data.")
                                                         for o in (args.overrides or []))
    if given:
        return _config(args)
    from harness.data.init import InitError, infer

    try:
        found = infer(args.file)
    except (InitError, OSError):
        return _config(args)  # the loader then names the problem, line by line
    if not args.json:  # --json prints one JSON document and nothing else
        print(f"reading {args.file} as inferred: " + ", ".join(f"{k}={v}" for k, v in found.overrides().items()
                                                                if v is not None and k != "data.labels")
              + (f", data.labels={found.labels}" if "data.labels" in found.overrides() else ""))
    return load_config(None, list(args.overrides or []), base=found.overrides())


def cmd_init(args: argparse.Namespace) -> int:
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


def cmd_validate(args: argparse.Namespace) -> int:
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


def cmd_folds(args: argparse.Namespace) -> int:
    from harness.data.load import load_train
    from harness.data.folds import audit, format_audit, make_folds

    cfg = _config(args)
    examples = load_train(cfg)
    folds = make_folds(examples, cfg.cv.n_folds, cfg.cv.seed, cfg.group_key())
    report = audit(folds, examples, cfg.data.label_names())
    if args.out:
        folds.save(Path(args.out))
    print(json.dumps(report, indent=1) if args.json else format_audit(report, cfg.data.label_names()))
    return 0 if report["ok"] else 1


def cmd_synth(args: argparse.Namespace) -> int:
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


def cmd_cv(args: argparse.Namespace) -> int:
    from harness.run.cv import run_cv

    cfg = _config(args)
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID") and not cfg.run_dir:
        # under a W&B agent (or sweep-local): one run directory per sweep run, so runs never share folds
        from harness.config import apply_overrides
        from harness.run.rundir import RunDir

        run = RunDir.of_sweep_run(cfg, os.environ["WANDB_SWEEP_ID"], os.environ["WANDB_RUN_ID"])
        cfg = apply_overrides(cfg, {"run_dir": str(run.path)})
    folds = None
    if args.folds:
        try:
            folds = [int(f) for f in args.folds.split(",")]
        except ValueError:
            raise ConfigError([f"--folds: {args.folds!r} is not a comma-separated list of fold indices (e.g. 0,1)"])
    run_cv(cfg, folds=folds, verbose=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.config import demo_config
    from harness.run.cv import run_cv

    cfg = demo_config(list(args.overrides or []))
    run_cv(cfg, verbose=True)
    return 0


def _run_config(run_dir: str, overrides: list[str]) -> ExperimentConfig:
    """A run directory's own config.yaml, with overrides (e.g. decide.n_trials=2000)."""
    from harness.run.rundir import RunDir

    run = RunDir(run_dir)
    path = run.config_path
    if not path.exists():
        raise ConfigError([f"{path}: not found; is {run_dir} a run directory written by `harness cv`?"])
    return load_config(run.verified(path.name), overrides)  # checked against the manifest first


def cmd_decide(args: argparse.Namespace) -> int:
    from harness.posthoc.decision import decide_run

    cfg = _run_config(args.run_dir, list(args.overrides or []))
    decide_run(Path(args.run_dir), cfg, verbose=True, logits=args.logits)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from harness.posthoc.predict import write_submission

    cfg = _run_config(args.run_dir, list(args.overrides or []))
    write_submission(Path(args.run_dir), cfg, Path(args.out), Path(args.test) if args.test else None)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.search.tune import run_study, study_status

    overrides = list(args.overrides or [])
    if args.status:
        print(study_status(args.config, overrides, args.study, args.storage))
        return 0
    run_study(args.config, overrides, args.study, args.storage, args.n_trials, args.timeout, verbose=True)
    return 0


def cmd_sweep_local(args: argparse.Namespace) -> int:
    from harness.search.sweep import LocalSweep, agent_command

    sweep = LocalSweep(args.sweep, args.state_dir, list(args.overrides or []), args.poll, verbose=True)
    if args.dry_run:
        s = sweep.optimizer.ask_n_runs(1)
        params = s[0].config.flat_dict() if s else {}
        print(" ".join(agent_command(sweep.sweep, params, sweep.extra)))
        return 0
    sweep.run(args.count)
    if args.compare:
        sweep.compare()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.track.report import write_report

    out = write_report(args.run_dirs, args.out)  # None: where the runs are
    print(f"wrote {out} comparing {len(args.run_dirs)} run(s); open it in a browser")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.posthoc.compare import run_compare

    from harness.track.report import default_output

    out = args.out or default_output(args.run_dirs, "compare.html")  # beside the runs, never the current folder
    run_compare(args.run_dirs, args.reference, out, track=not args.no_track, n_boot=args.n_boot, use=args.use)
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from harness.posthoc.ensemble import build_ensemble

    if args.stack_c is not None and not args.stack:
        raise ConfigError(["--stack-c: applies to --stack only (a weight blend has no stacker); add --stack"])

    build_ensemble(args.run_dirs, args.out, list(args.overrides or []), stack=args.stack, stack_c=args.stack_c)
    print(f"\nnext: harness predict {shlex.quote(str(args.out))} --out submission.json   "
          "(the members' test probabilities, " + ("stacked)" if args.stack else "blended)"))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from harness.posthoc.audit import audit_runs

    from harness.track.report import default_output

    out = args.out or default_output(args.run_dirs, f"audit-{Path(args.run_dirs[0]).name}")
    audit_runs(args.run_dirs, out, top=args.top)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.run.rundir import RunDir

    run = RunDir(args.run_dir)
    if not run.path.is_dir():
        raise ConfigError([f"{run.path}: not a directory"])
    if args.upgrade:
        if run.store.exists():
            print(f"{run.path}: already has a manifest; nothing to upgrade")
        else:
            names = run.upgrade()
            print(f"{run.path}: recorded {len(names)} files as they are now in its manifest")
    problems = run.check_all()
    for p in problems:
        print(f"  {printable(p)}")
    if problems:
        print(f"{run.path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    files = run.manifest().files
    print(f"{run.path}: {len(files)} files verified against its manifest")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
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


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------

def _bounded(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` within [low, high], else a one-line usage error naming the range."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value != value or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is outside {low}..{high if high is not None else 'inf'}")
        return value
    return parse


def _stack_c(text: str) -> float | None:
    return None if text == "auto" else _bounded(float, 1e-6, 1e6)(text)


def _component(text: str) -> str:
    """An argparse type for names that become one folder or file (a study name)."""
    if text in ("", ".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} must be one path component (no '/', not '..')")
    return text


def _add(sub: Any, name: str, fn: Callable[[argparse.Namespace], int], help: str,
         config: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    if config == "positional":
        p.add_argument("config", nargs="?", help="experiment YAML (e.g. experiments/dreaddit_minilm.yaml), or a "
                       "shipped recipe name (demo_cpu)")
        p.add_argument("--config", dest="config_option", metavar="YAML",
                       help="the experiment YAML as an option (what a sweep over recipes passes: --config=...)")
        p.set_defaults(config_required=True)
    elif config == "option":
        p.add_argument("--config", help="experiment YAML whose data/prompt/model settings apply")
    p.set_defaults(fn=fn)
    return p


def _overrides(p: argparse.ArgumentParser) -> None:
    """Trailing section.key=value overrides; added last so other positionals come first."""
    p.add_argument("overrides", nargs="*", default=[], metavar="section.key=value", help=OVERRIDE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Fine-tune LLMs as imbalance-aware text classifiers with grouped CV, a post-hoc "
                    "decision layer and tracked experiments.",
        epilog="Start with `harness demo` (CPU, a few minutes). demo, cv, decide, predict, config, tune and "
               "sweep-local take config overrides like train.learning_rate=1e-4 (ensemble: decide.* only); report, "
               "compare, audit and dashboard only read run directories.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(sub, "demo", cmd_demo, "run the CPU demo: synthetic PsyDefConv-shaped data, grouped CV, per-class table")
    _overrides(p)

    p = _add(sub, "cv", cmd_cv, "run grouped k-fold CV for one experiment (resumes finished folds)",
             config="positional")
    p.add_argument("--folds", help="comma-separated fold indices to run now, e.g. 0,1 (spread folds over GPUs)")
    _overrides(p)

    p = _add(sub, "decide", cmd_decide, "search the decision layer (class bias, majority gate, seed blend) on a "
             "run's OOF rows; report in-sample and cross-fitted gains; write calibration.json")
    p.add_argument("run_dir", help="a finished `harness cv` run directory")
    p.add_argument("--logits", action="store_true", help="the stored scores are logits, not probabilities")
    _overrides(p)

    p = _add(sub, "predict", cmd_predict, "apply the locked decision to test probabilities and write a submission")
    p.add_argument("run_dir", help="a `harness cv` run directory (with calibration.json after `harness decide`)")
    p.add_argument("--test", help="test file to score with the fold adapters (default: the run's data.test_path)")
    p.add_argument("--out", default="submission.json", help="output JSON: [{id, label}] (default submission.json)")
    _overrides(p)

    p = _add(sub, "init", cmd_init, "write a first recipe for your own data file (CSV, TSV, JSONL or PsyDefConv "
             "JSON): format, columns, label names and groups inferred, each choice explained")
    p.add_argument("data", metavar="DATA", help="your labelled data file")
    p.add_argument("--method", default="tfidf", help="the recipe's method (default tfidf: a fast, strong baseline; "
                   "`harness config --methods` lists them)")
    p.add_argument("--out", help="the recipe to write (default experiments/<file name>.yaml; never overwritten)")
    p.add_argument("--name", help="the experiment's name (default: the file name): its run directory is runs/NAME")

    p = _add(sub, "validate", cmd_validate, "check a data file and summarise it; exit 1 listing every problem",
             config="option")
    p.add_argument("file", help="a data file; with no --config and no data.* override its format, columns and "
                   "labels are inferred as `harness init` does")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--labelled", action="store_true", help="require a label on every row")
    _overrides(p)

    p = _add(sub, "folds", cmd_folds, "build the grouped folds of an experiment and print the leakage audit",
             config="positional")
    p.add_argument("--json", action="store_true", help="machine-readable audit")
    p.add_argument("--out", help="also write folds.json here")
    _overrides(p)

    p = _add(sub, "synth", cmd_synth, "write deterministic synthetic data (PsyDefConv JSON or Dreaddit CSV)")
    p.add_argument("kind", choices=["psydefconv", "dreaddit"])
    p.add_argument("out", help="output file")
    p.add_argument("--groups", type=_bounded(int, 10, 100_000), default=200, help="dialogues / posts (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unlabelled", action="store_true", help="psydefconv: omit labels (test-file shape)")

    p = _add(sub, "tune", cmd_tune, "search training settings (tune.space) with an Optuna study: fold-level "
             "pruning, heartbeat + retry of dead workers' trials, resumable; run one per GPU", config="positional")
    p.add_argument("--study", required=True, type=_component, help="study name (also the W&B group of its trials)")
    p.add_argument("--storage", help="Optuna storage URL (default tune.storage, else sqlite:///studies/STUDY.db); "
                   "postgresql://user:pw@host/db for workers on many machines")
    p.add_argument("--n-trials", type=_bounded(int, 1), help="finish when the study holds this many complete+pruned trials "
                   "(counted over all workers and restarts)")
    p.add_argument("--timeout", type=_bounded(float, 1e-9), help="stop starting new trials after this many seconds")
    p.add_argument("--status", action="store_true", help="summarise the study (best trial, states, importances)")
    _overrides(p)

    p = _add(sub, "sweep-local", cmd_sweep_local, "run a W&B sweep YAML on this machine without a W&B server: "
             "W&B's own search engines propose, runs log offline, state on disk (resumable)")
    p.add_argument("sweep", help="sweep YAML, e.g. sweeps/rank.yaml")
    p.add_argument("--count", type=_bounded(int, 1), help="runs to do now (default: until the search space is exhausted)")
    p.add_argument("--state-dir", help="where the sweep's state lives (default runs/sweeps-local/<yaml name>)")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between early-termination checks (default 30)")
    p.add_argument("--dry-run", action="store_true", help="print the first run's command line and exit")
    p.add_argument("--compare", action="store_true", help="then compare the finished runs, each against the "
                   "previous one (paired bootstrap on identical folds; a ladder): terminal, compare.html, W&B")
    p.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="appended to every run's command line (e.g. CPU test settings); must not set a sweep parameter")

    p = _add(sub, "report", cmd_report, "write a static HTML page comparing run directories (no W&B server needed)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories")
    p.add_argument("--out", default=None, help="output HTML file (default: RUN_DIR/report.html for one run, "
                   "report.html beside the first run for several)")

    p = _add(sub, "compare", cmd_compare, "did each step really help? paired bootstrap differences between runs on "
             "identical folds (terminal table, HTML report, JSON, W&B tables)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories, in ladder order")
    p.add_argument("--reference", default="previous",
                   help="what each run is compared with: previous (the rung before; default), first, or a RUN_DIR")
    p.add_argument("--out", default=None, help="HTML report (compare.json beside it); default compare.html beside "
                   "the first run (in the runs' output folder)")
    p.add_argument("--n-boot", type=_bounded(int, 100, 1_000_000), default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--use", choices=["argmax", "crossfit"], default="argmax",
                   help="each run's predictions: argmax of the seed mean (default), or its cross-fitted decided "
                        "predictions (the decision layer's honest effect; runs without a decision: argmax)")
    p.add_argument("--no-track", action="store_true", help="do not log the W&B tables (the first run's track.* decides)")

    p = _add(sub, "ensemble", cmd_ensemble, "combine several runs on identical folds: temperature-scaled members "
             "blended with weights searched with δ and τ on the OOF rows, or stacked (--stack); cross-fitted gain; "
             "`predict` then uses it")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished `harness cv` run directories (same folds)")
    p.add_argument("--out", required=True, help="the ensemble directory to create (or resume)")
    p.add_argument("--stack", action="store_true",
                   help="stack instead of blending: a class-weighted logistic regression on the members' OOF "
                        "log-probabilities, cross-fitted by fold, then the decision ladder on its output")
    p.add_argument("--stack-c", type=_stack_c, default=None, metavar="auto|C",
                   help="the stacker's inverse regularisation strength; auto (default): chosen from "
                        "0.01..3 by cross-fitted log loss, nested inside the stacker's own cross-fitting")
    p.add_argument("overrides", nargs="*", default=[], metavar="decide.key=value",
                   help="decision-layer settings, e.g. decide.n_trials=500")

    p = _add(sub, "audit", cmd_audit, "which labels look wrong (cleanlab on the OOF probabilities, blended over the "
             "runs given) and every misclassified row: label_issues.json and errors.html")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories on identical folds")
    p.add_argument("--top", type=_bounded(int, 1, 1_000_000), default=50,
                   help="how many suspicious labels to list, most suspicious first (default 50)")
    p.add_argument("--out", default=None, help="folder for label_issues.json and errors.html (default audit-<first "
                   "run's name> beside the first run)")

    p = _add(sub, "verify", cmd_verify, "check every file of a run directory against its manifest (digests, files "
             "missing or never committed); exit 1 on a problem")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run, ensemble or audit directory")
    p.add_argument("--upgrade", action="store_true",
                   help="a run written before manifests: record its files as they are now (check them first)")

    p = _add(sub, "dashboard", cmd_dashboard, "build a W&B report comparing an experiment's (or sweep's) runs")
    p.add_argument("--run", help="a run directory: takes the project, group and class names from it")
    p.add_argument("--project", help="W&B project (default: the run's track.project)")
    p.add_argument("--entity", help="W&B entity (default: your default entity)")
    p.add_argument("--group", help="only runs of this W&B group (an experiment, or a tuning study)")
    p.add_argument("--sweep", help="only runs of this W&B sweep id")
    p.add_argument("--save", action="store_true", help="save the report on the W&B server (needs a login)")
    p.add_argument("--out", default="dashboard.json", help="without --save: write the report spec here")

    p = _add(sub, "config", cmd_config, "print the resolved config (YAML) or list every key with its help",
             config="option")
    p.add_argument("--json", action="store_true", help="flat section.key JSON, as loggers see it")
    p.add_argument("--keys", action="store_true", help="list every config key with its help")
    p.add_argument("--methods", action="store_true",
                   help="list the installed methods (built-in and entry-point plugins) and their sections")
    _overrides(p)
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


if __name__ == "__main__":
    sys.exit(main())
