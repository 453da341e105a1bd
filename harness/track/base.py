"""The tracker interface every backend implements, and what backends share (the flat config, the masked
command line, confusion matrices as label pairs)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.config import ExperimentConfig, mask_secrets, masked


class Tracker:
    """The interface, and the null implementation."""

    def start_experiment(self, cfg: ExperimentConfig) -> None: ...

    def start_fold(self, seed: int, fold: int) -> None: ...

    def fold_logger(self) -> Callable[[dict[str, float], int], None]:
        """Where a method sends its training curves (values, step) during the current fold."""
        return _drop

    def end_fold(self, seed: int, fold: int, metrics: dict[str, Any], progress: dict[str, float]) -> None:
        """`metrics` is the fold's report; `progress` the running CV keys after this fold (for sweeps' pruning)."""

    def end_experiment(self, run_dir: Path, metrics: dict[str, Any]) -> None: ...

    def log_comparison(self, name: str, columns: list[str], rows: list[list[Any]],
                       per_class: tuple[list[str], list[list[Any]]]) -> None:
        """`harness compare`'s tables (a run of job_type=compare)."""

    def finish(self) -> None: ...

def flat_config(cfg: ExperimentConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config as trackers store it: flat section.key, secrets masked."""
    out = masked(cfg.to_flat_dict())
    return {**out, **(extra or {})}

@contextlib.contextmanager
def masked_argv() -> Any:
    """sys.argv with secrets masked while W&B reads it (a --storage password must not reach its files)."""
    import sys

    real = sys.argv
    sys.argv = [mask_secrets(a) for a in real]
    try:
        yield
    finally:
        sys.argv = real

def expand_confusion(cm: list[list[int]]) -> tuple[list[int], list[int]]:
    """(y_true, y_pred) pairs whose confusion matrix is `cm` (W&B's chart takes pairs, the run dir keeps counts)."""
    m = np.asarray(cm, dtype=np.int64)
    t, p = np.nonzero(m)
    reps = m[t, p]
    return np.repeat(t, reps).tolist(), np.repeat(p, reps).tolist()


def _drop(logs: dict[str, float], step: int) -> None:
    """The log sink of a tracker that keeps no training curves."""
