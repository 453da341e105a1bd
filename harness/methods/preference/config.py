"""`preference:` settings of DPO / KTO / ORPO on label pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.config.fields import setting
from harness.methods.hf.settings import HFSettings


@dataclass
class PreferenceConfig(HFSettings):
    algorithm: Literal["dpo", "kto", "orpo"] = setting(
        "dpo / kto (TRL, from `sft_run`'s adapter of the same fold, which is also the reference model) or orpo "
        "(trl.experimental, from the base model: it needs no reference)", "dpo")
    sft_run: str | None = setting(
        "dpo/kto: the `method: sft` run to start from: a run directory, or an experiment name (looked up among "
        "this sweep's runs, then as <output_dir>/<name>). It needs identical folds and train.save_adapters", None)
    negatives: Literal["hard", "all"] = setting(
        "rejected answers: hard = the starting model's most likely wrong label of each row; all = every wrong "
        "label (K-1 pairs per row)", "hard")
    rebalance: Literal["pairs", "weights", "none"] = setting(
        "class rebalancing: pairs = equal numbers of pairs per gold class (resampled); weights = pairs drawn in "
        "proportion to loss.class_weights of their gold class; none", "pairs")
    beta: float = setting("beta of the DPO/KTO/ORPO loss (strength of the reference / odds-ratio term)", 0.1)
    dpo_loss: list[str] = setting("DPO loss types (TRL `loss_type`: sigmoid, hinge, ipo, robust, bco_pair, sppo_hard, "
                                "nca_pair, apo_zero, ...); several are summed", factory=lambda: ["sigmoid"])
    kto_balance: bool = setting(
        "kto: set desirable/undesirable weights so both sides of the loss weigh the same in total "
        "(desirable_weight * n_desirable = undesirable_weight * n_undesirable)", True)

    def check(self) -> list[str]:
        p = []
        if self.beta <= 0:
            p.append("preference.beta: must be > 0")
        return p

    def check_with(self, label_names: list[str]) -> list[str]:
        """Rules across its keys and the shared sections (checked before any data is loaded)."""
        p = super().check_with(label_names)
        if self.algorithm in ("dpo", "kto") and not self.sft_run:
            p.append(f"preference.sft_run: {self.algorithm} starts from an sft run's fold adapters; name one")
        if self.algorithm in ("dpo", "kto") and not self.lora.enabled:
            p.append("lora.enabled: dpo/kto continue the sft run's LoRA adapter (its frozen copy is the reference)")
        if self.algorithm == "kto" and self.train.batch_size < 2:
            p.append("train.batch_size: KTO estimates its KL term within a batch; use 2 or more")
        return p
