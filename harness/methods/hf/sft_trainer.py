"""Instruction fine-tuning of a generative classifier: TRL's `SFTTrainer` with a class-weighted completion loss.

Rows arrive tokenised by `TaskPrompts` (prompt ids + the label's continuation), so a model is trained on
exactly the sequences label scoring later reads. Batches are *left*-padded with positions counted from each
row's first real token (as the scorer does): every completion then ends at the last position, and the LM head
runs only on the last `answer + 1` positions (`logits_to_keep`) instead of the whole prompt: with a 150k-token
vocabulary and 1k-token prompts that is most of the memory of a step.

The loss (`completion_loss`) is a sum over rows divided by the rows of the whole accumulated batch, which
`_get_num_items_in_batch` counts, so it is exact under gradient accumulation (`loss_is_scaled_for_ga`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from trl import SFTConfig, SFTTrainer

from harness.methods.hf.settings import HFSettings
from harness.methods.hf.losses import completion_loss
from harness.methods.hf.trainer import training_kwargs


def completion_features(prompt_ids: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                        weights: Sequence[float]) -> dict[str, list[Any]]:
    """Columns of the training set: the prompt + completion ids, labels (-100 on the prompt), row weights."""
    return {"input_ids": [list(p) + list(c) for p, c in zip(prompt_ids, completions)],
            "labels": [[-100] * len(p) + list(c) for p, c in zip(prompt_ids, completions)],
            "weights": [float(w) for w in weights]}


class LeftPadCollator:
    """Left padding, with position ids from each row's first real token, so completions end together."""

    def __init__(self, pad_id: int, multiple: int = 8):
        self.pad_id, self.multiple = pad_id, max(1, multiple)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(r["input_ids"]) for r in rows)
        width = -(-longest // self.multiple) * self.multiple
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, width - n:] = torch.tensor(r["input_ids"])
            labels[i, width - n:] = torch.tensor(r["labels"])
            mask[i, width - n:] = 1
        return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                "labels": labels, "weights": torch.tensor([r["weights"] for r in rows], dtype=torch.float32)}


class WeightedSFTTrainer(SFTTrainer):
    """`SFTTrainer` whose loss is the class-weighted, label-smoothed, focal completion loss (see module doc)."""

    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, label_smoothing: float = 0.0, focal_gamma: float = 0.0, **kwargs: Any):
        self.smoothing, self.focal_gamma = label_smoothing, focal_gamma
        super().__init__(*args, **kwargs)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        if not batch_samples:
            return None
        rows = torch.tensor(sum(int(b["weights"].numel()) for b in batch_samples), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            rows = self.accelerator.gather(rows).sum()
        return rows

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        labels, weights = inputs.pop("labels"), inputs.pop("weights")
        answer = int(labels.ne(-100).sum(-1).max())  # completions are the last `answer` positions of every row
        out = model(**inputs, use_cache=False, logits_to_keep=answer + 1)
        logits, targets = out.logits[:, :-1], labels[:, -answer:]
        if num_items_in_batch is None:  # evaluation, or a path that counted nothing: scale by hand
            scale = self.current_gradient_accumulation_steps if model.training else 1
            num_items_in_batch = labels.shape[0] * scale
        loss = completion_loss(logits, targets, weights, self.smoothing, self.focal_gamma, num_items_in_batch)
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the count was global
        with torch.no_grad():
            mask = targets.ne(-100)
            right = (logits.argmax(-1).eq(targets) & mask).sum()
            self._metrics["train" if model.training else "eval"]["mean_token_accuracy"].append(
                float(right / mask.sum().clamp(min=1)))
        return (loss, out) if return_outputs else loss


def sft_config(cfg: HFSettings, out_dir: Path, seed: int, with_eval: bool, precision: str) -> SFTConfig:
    """TRL's config from the harness keys. TRL's defaults that bite are set here: bf16 off unless chosen
    (it fails on CPU), no truncation (TRL silently drops rows whose prompt fills `max_length`; the prompt
    builder already enforces the budget), gradient checkpointing only when asked or with 4-bit on CUDA."""
    kw = training_kwargs(cfg, out_dir, seed, with_eval, precision)
    if with_eval:  # the inner split chooses the epoch by its (weighted) completion loss
        kw.update(metric_for_best_model="eval_loss", greater_is_better=False)
    return SFTConfig(**kw, max_length=None, packing=False, padding_free=False, dataset_kwargs={},
                     **checkpointing_kwargs(cfg))


def checkpointing_kwargs(cfg: HFSettings) -> dict[str, Any]:
    """Activation checkpointing when asked for, or with a quantised base on CUDA (TRL's own default is on)."""
    from harness.methods.hf.model import use_cuda

    return dict(gradient_checkpointing=None, activation_checkpointing=cfg.model.gradient_checkpointing or (
        cfg.quant.quantized() and use_cuda()), activation_checkpointing_kwargs={"use_reentrant": False})


def peft_config(cfg: HFSettings) -> Any:
    """LoRA on the causal LM (never on `lm_head`, which DPO/KTO refuse and a classifier does not need)."""
    from peft import LoraConfig, TaskType

    from harness.methods.hf.model import lora_kwargs

    return LoraConfig(task_type=TaskType.CAUSAL_LM, **lora_kwargs(cfg))


def to_dataset(columns: dict[str, list[Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(columns)


def row_weights(labels: Sequence[int], class_weights: np.ndarray, scale: float = 1.0) -> list[float]:
    return [float(class_weights[y]) * scale for y in labels]
