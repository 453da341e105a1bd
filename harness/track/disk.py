"""The disk tracker: a JSON-lines mirror for boxes with no W&B at all (`tail -f RUN_DIR/track/history.jsonl`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from harness.run.rundir import RunDir
from harness.track.base import Tracker


class DiskTracker(Tracker):
    def __init__(self, run_dir: Path):
        self.path = RunDir(run_dir).track_history
        self.where: dict[str, int] = {}

    def _write(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")

    def start_fold(self, seed: int, fold: int) -> None:
        self.where = {"seed": seed, "fold": fold}

    def fold_logger(self) -> Callable[[dict[str, float], int], None]:
        return lambda logs, step: self._write({**self.where, "step": step, **logs})

    def end_fold(self, seed: int, fold: int, metrics: dict[str, Any], progress: dict[str, float]) -> None:
        self._write({"seed": seed, "fold": fold, "event": "fold_done", **progress,
                     **{k: metrics[k] for k in ("macro_f1", "macro_f1_official") if k in metrics}})
