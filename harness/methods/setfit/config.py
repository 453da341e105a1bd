"""`setfit:` settings: the contrastive body training, then the embedding and head settings `embed` has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from harness.config.fields import setting
from harness.methods.hf.settings import EmbeddingSettings


# SetFit's papers draw tens of pairs per row; thousands only multiply the time (and the pair table's memory)
MAX_PAIRS_PER_ROW = 1000


@dataclass
class SetFitConfig(EmbeddingSettings):
    SECTION: ClassVar[str] = "setfit"
    pairs_per_row: int = setting(
        "contrastive pairs drawn per training row, half same-class and half other-class (SetFit's num_iterations "
        "is pairs_per_row / 2); anchors are drawn in proportion to loss.class_weights", 8)
    epochs: int = setting("passes over the pairs", 1)
    train_batch_size: int = setting("pairs per optimiser step", 16)
    learning_rate: float = setting("body learning rate (SetFit's body_learning_rate)", 2e-5)
    warmup_ratio: float = setting("fraction of the steps with a linear learning-rate warm-up", 0.1)
    max_length: int = setting(
        "token budget of each text in the contrastive phase (pairs of similar length are batched together); "
        "rows are embedded for the head with prompt.max_length", 128)
    loss: Literal["cosine", "contrastive"] = setting(
        "cosine: CosineSimilarityLoss toward 1 / 0 (SetFit's default); contrastive: OnlineContrastiveLoss "
        "(hard pairs of each batch only)", "cosine")

    def check(self) -> list[str]:
        p = super().check()
        for key, most in (("pairs_per_row", MAX_PAIRS_PER_ROW), ("epochs", 1000), ("train_batch_size", 65536),
                          ("max_length", 1 << 20)):
            if not 1 <= getattr(self, key) <= most:
                p.append(f"setfit.{key}: {getattr(self, key)} is outside 1..{most}")
        if not self.learning_rate > 0:
            p.append("setfit.learning_rate: must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            p.append("setfit.warmup_ratio: must be in [0, 1)")
        return p
