"""`embed:` settings of the frozen-embeddings + logistic regression method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from harness.config.fields import setting
from harness.methods.hf.settings import HFSettings


@dataclass
class EmbedConfig(HFSettings):
    """Its own keys; the encoder (model, quant) and prompt layout come from the shared sections and the task."""
    SECTION: ClassVar[str] = "embed"  # the section these settings sit in (setfit's settings extend them)
    pooling: Literal["auto", "mean", "last", "cls"] = setting(
        "auto: mean over tokens for encoders, the last real token for decoders (causal LMs)", "auto")
    normalize: bool = setting("L2-normalise each embedding before the head", True)
    batch_size: int = setting("rows per embedding forward pass (rows are length-sorted)", 32)
    C: float = setting("logistic-regression head: inverse regularisation strength", 1.0)
    max_iter: int = setting("logistic-regression head: solver iterations", 3000)

    def check(self) -> list[str]:
        p = []
        if self.batch_size < 1:
            p.append(f"{self.SECTION}.batch_size: must be >= 1")
        if self.C <= 0:
            p.append(f"{self.SECTION}.C: must be > 0")
        if self.max_iter < 1:
            p.append(f"{self.SECTION}.max_iter: must be >= 1")
        return p
