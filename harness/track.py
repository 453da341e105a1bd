"""Trackers mirror what the run directory holds; they never decide what to log, and never stop training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import ExperimentConfig


class Tracker:
    """The interface, and the null implementation."""

    def start_experiment(self, cfg: ExperimentConfig) -> None: ...

    def start_fold(self, seed: int, fold: int) -> None: ...

    def fold_callbacks(self) -> list[Any]:
        return []

    def end_fold(self, seed: int, fold: int, metrics: dict[str, Any]) -> None: ...

    def end_experiment(self, run_dir: Path, metrics: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


def make_tracker(cfg: ExperimentConfig, run_dir: Path) -> Tracker:
    return Tracker()
