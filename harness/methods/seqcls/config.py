"""`seqcls` settings: the HF family's shared sections only (model, lora, quant, train, loss); it has no section
of its own."""

from __future__ import annotations

from dataclasses import dataclass

from harness.methods.hf.settings import HFSettings


@dataclass
class SeqclsConfig(HFSettings):
    """The HF sequence classifier as the shared sections set it."""
