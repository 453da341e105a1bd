"""Small builders shared by the training tests (tiny-qwen3 on synthetic rows)."""

from __future__ import annotations

from pathlib import Path

from harness.config import ExperimentConfig, load_config

TINY = ["model.name_or_path=tiny-qwen3", "data.synthetic=psydefconv", "prompt.max_length=256",
        "prompt.context_turns=4", "lora.r=4", "lora.alpha=8", "lora.dropout=0", "track.backend=none"]


def tiny_config(tmp_path: Path | None = None, *extra: str) -> ExperimentConfig:
    over = list(TINY) + (["run_dir=" + str(tmp_path / "run")] if tmp_path else []) + list(extra)
    return load_config(None, over)
