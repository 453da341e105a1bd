"""`prompt` settings: the HF family's shared sections only (model, quant, generative); it has no section of its
own."""

from __future__ import annotations

from dataclasses import dataclass

from harness.methods.hf.settings import HFSettings


@dataclass
class PromptingConfig(HFSettings):
    """Zero-/few-shot label scoring as the shared sections set it (it trains nothing: lora and train are unread)."""
