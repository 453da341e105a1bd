"""Trackers mirror what the run directory holds; they never decide what to log, and never stop training.

W&B layout (one experiment = one `harness cv` run directory):

    experiment run   job_type=cv    config, OOF summary keys (cv/*, decide/*, baseline/*) with CIs,
                                    per-fold and per-class tables, OOF confusion matrices before/after
                                    the decision layer, the decision, artifacts (oof/test/folds/calibration)
    fold runs        job_type=fold  training curves, the fold's per-class table and confusion matrix;
                                    same `group` as their experiment run

Run ids live in RUN_DIR/track.json so a resumed experiment appends to the same W&B run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from harness.config import ExperimentConfig
from harness.track.base import Tracker, expand_confusion, flat_config, masked_argv
from harness.track.disk import DiskTracker
from harness.track.offline import offline_runs, read_offline_run
from harness.track.wandb_run import WandbTracker, logged_in, resolve_mode

__all__ = ["DiskTracker", "Tracker", "WandbTracker", "expand_confusion", "flat_config", "logged_in", "make_tracker",
           "masked_argv", "offline_runs", "read_offline_run", "resolve_mode"]


def make_tracker(cfg: ExperimentConfig, run_dir: Path, extra_config: dict[str, Any] | None = None) -> Tracker:
    """track.backend → a tracker. W&B falls back to disk when the SDK is missing; it is off when mode is disabled."""
    if cfg.track.backend == "none":
        return Tracker()
    if cfg.track.backend == "disk":
        return DiskTracker(run_dir)
    mode = resolve_mode(cfg.track.mode)
    if mode == "disabled":
        return Tracker()
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        warnings.warn("wandb is not installed: mirroring to RUN_DIR/track/history.jsonl instead", stacklevel=2)
        return DiskTracker(run_dir)
    return WandbTracker(cfg, run_dir, mode, extra_config)


def log_export(cfg: ExperimentConfig, run_dir: Path, out: Path, meta: dict[str, Any]) -> str | None:
    """An export folder logged as a W&B model artifact (track.backend: wandb, mode not disabled); its name."""
    if cfg.track.backend != "wandb" or resolve_mode(cfg.track.mode) == "disabled":
        return None
    from harness.track.wandb_run import log_export as log_to_wandb

    return log_to_wandb(cfg, run_dir, out, meta)


def log_curve(cfg: ExperimentConfig, curve_dir: Path, result: dict[str, Any]) -> None:
    """A learning curve logged to W&B (track.backend: wandb, mode not disabled)."""
    if cfg.track.backend != "wandb" or resolve_mode(cfg.track.mode) == "disabled":
        return
    from harness.track.wandb_run import log_curve as log_to_wandb

    log_to_wandb(cfg, curve_dir, result)
