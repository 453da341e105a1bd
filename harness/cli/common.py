"""What every command shares: reading the experiment config from its arguments, and the parser helpers."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from harness.config import ConfigError, ExperimentConfig, load_config

OVERRIDE_HELP = ("config overrides as section.key=value or --section.key=value "
                 "(the forms W&B agents pass with ${args_no_hyphens} / ${args}); see `harness config --keys`")


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
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


def run_config(run_dir: str, overrides: list[str]) -> ExperimentConfig:
    """A run directory's own config.yaml, with overrides (e.g. decide.n_trials=2000)."""
    from harness.run.rundir import RunDir

    run = RunDir(run_dir)
    path = run.config_path
    if not path.exists():
        raise ConfigError([f"{path}: not found; is {run_dir} a run directory written by `harness cv`?"])
    return load_config(run.verified(path.name), overrides)  # checked against the manifest first


def bounded(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
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


def stack_c(text: str) -> float | None:
    return None if text == "auto" else bounded(float, 1e-6, 1e6)(text)


def path_component(text: str) -> str:
    """An argparse type for names that become one folder or file (a study name)."""
    if text in ("", ".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} must be one path component (no '/', not '..')")
    return text


def add_command(sub: Any, name: str, fn: Callable[[argparse.Namespace], int], help: str,
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


def add_overrides(p: argparse.ArgumentParser) -> None:
    """Trailing section.key=value overrides; added last so other positionals come first."""
    p.add_argument("overrides", nargs="*", default=[], metavar="section.key=value", help=OVERRIDE_HELP)

