"""Small builders shared by the training tests (tiny-qwen3 on synthetic rows)."""

from __future__ import annotations

from pathlib import Path

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
