"""`embed:` settings of the frozen-embeddings + logistic regression method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from harness.methods.hf.settings import EmbeddingSettings


@dataclass
class EmbedConfig(EmbeddingSettings):
    """Its keys are the embedding ones (pooling, batch, head); the encoder comes from the shared model and quant
    sections, the prompt layout from the task."""
    SECTION: ClassVar[str] = "embed"
