"""Small builders shared by the training tests (tiny-qwen3 on synthetic rows)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.config import ExperimentConfig, load_config

TINY = ["model.name_or_path=tiny-qwen3", "data.synthetic=psydefconv", "prompt.max_length=256",
        "prompt.context_turns=4", "lora.r=4", "lora.alpha=8", "lora.dropout=0", "track.backend=none"]


def tiny_config(tmp_path: Path | None = None, *extra: str) -> ExperimentConfig:
    over = list(TINY) + (["run_dir=" + str(tmp_path / "run")] if tmp_path else []) + list(extra)
    return load_config(None, over)


def wandb_env(mp: "pytest.MonkeyPatch", root: Path, mode: str = "offline") -> Path:
    """Point every W&B folder at a temporary place (never ~/.cache or ./wandb); returns WANDB_DIR."""
    for var, sub in (("WANDB_DIR", "dir"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                     ("WANDB_CONFIG_DIR", "config")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        mp.setenv(var, str(root / sub))
    mp.setenv("WANDB_MODE", mode)
    mp.setenv("WANDB_SILENT", "true")
    mp.delenv("WANDB_API_KEY", raising=False)
    import wandb

    wandb.teardown()  # wandb keeps process-wide settings from the first run: start each test afresh
    return root / "dir"


def fold_dir(run: Path, seed: int, fold: int) -> Path:
    """A fold's folder, as the run directory's owner (harness.run.rundir.RunDir) places it."""
    from harness.run.rundir import RunDir

    return RunDir(run).fold_dir(seed, fold)


def fold_context(run: Path, seed: int, fold: int, class_weights, tmp: Path):
    """The FoldContext the fold loop would hand `fit` for this fold of `run` (for calling a method directly)."""
    from harness.methods.base import FoldContext
    from harness.run.rundir import RunDir

    return FoldContext(run=RunDir(run), seed=seed, fold=fold, class_weights=class_weights, scratch=tmp / "scratch")


def run_cli(*args: str, cwd: Path | None = None, ok: bool = True) -> "subprocess.CompletedProcess[str]":
    """`harness ARGS` in this process (no new interpreter re-importing torch): exit code and what it printed.
    Tests whose point is a process boundary (kill -9, two processes, what a terminal shows) start real ones."""
    import contextlib
    import io
    import os

    from harness import cli

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as e:  # argparse errors
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(old)
    r = subprocess.CompletedProcess(["harness", *args], code, out.getvalue(), err.getvalue())
    if ok:
        assert code == 0, r.stderr[-3000:]
    return r
