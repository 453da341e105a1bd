"""The Trainer subclass, batching, and length-sorted inference.

Built on `transformers.Trainer`, not a TRL trainer: TRL's trainers (SFT, DPO, GRPO,
reward) are built around generation or pairwise preferences; a classification
head trained with a weighted cross-entropy is exactly what `Trainer` does, with
its gradient accumulation, schedulers, length-grouped sampler and checkpoint
selection. Generative classifiers reuse data/prompt/cv/decide and bring a TRL trainer of their own.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

from harness.methods.hf.settings import HFSettings
from harness.methods.hf.losses import imbalance_loss
from harness.core.metrics import confusion, scores_from_confusion


class ImbalanceTrainer(Trainer):
    """`Trainer` whose loss is class-weighted, label-smoothed and focal, and exact under gradient accumulation.

    The loss is a sum over rows divided by `num_items_in_batch` (the rows of the whole
    accumulated batch), so it is already scaled for accumulation: `loss_is_scaled_for_ga`
    is True. transformers counts `num_items_in_batch` only when a `compute_loss_func`
    is set, so the loss is registered through that hook as well.
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, class_weights: np.ndarray | None = None, label_smoothing: float = 0.0,
                 focal_gamma: float = 0.0, **kwargs: Any):
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.label_smoothing = label_smoothing
        self.focal_gamma = focal_gamma
        super().__init__(*args, compute_loss_func=self._loss, **kwargs)

    def _loss(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        return imbalance_loss(outputs.logits, labels, self.class_weights, self.label_smoothing, self.focal_gamma,
                              normalizer=num_items_in_batch)

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        if num_items_in_batch is None:
            # evaluation, or a path that did not count rows: a per-batch mean, scaled for accumulation by hand
            scale = self.current_gradient_accumulation_steps if model.training else 1
            num_items_in_batch = labels.numel() * scale
        loss = self._loss(outputs, labels, num_items_in_batch)
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the count was global
        return (loss, outputs) if return_outputs else loss


def unwrap_mixed_precision(model: Any) -> Any:
    """Training with bf16/fp16 leaves accelerate's autocast wrapper on `model.forward`, so the fold's own
    predictions would run under autocast while a reloaded model (`predict --test`) would not: remove it, so
    a fold's scores and its reloaded model's scores agree."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_fp32_wrapper=False)


def log_callback(sink: Any) -> TrainerCallback:
    """A TrainerCallback sending every Trainer log line (loss, lr, eval_loss…) to a method's log sink."""

    class LogCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs:
                sink({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}, state.global_step)

    return LogCallback()


def make_collator(tokenizer: Any, multiple: int) -> DataCollatorWithPadding:
    """Dynamic padding to the batch's longest row, rounded up to a multiple of `multiple`."""
    return DataCollatorWithPadding(tokenizer, padding="longest", pad_to_multiple_of=multiple)


def to_features(ids: Sequence[list[int]], labels: Sequence[int] | None = None) -> list[dict[str, Any]]:
    if labels is None:
        return [{"input_ids": x} for x in ids]
    return [{"input_ids": x, "labels": int(y)} for x, y in zip(ids, labels)]


@dataclass
class PaddingStats:
    real_tokens: int = 0
    padded_tokens: int = 0

    @property
    def pad_fraction(self) -> float:
        total = self.real_tokens + self.padded_tokens
        return self.padded_tokens / total if total else 0.0

    def add(self, other: "PaddingStats") -> None:
        self.real_tokens += other.real_tokens
        self.padded_tokens += other.padded_tokens


@torch.no_grad()
def predict_proba(model: Any, ids: Sequence[list[int]], collator: Any, batch_size: int,
                  progress_desc: str | None = None) -> tuple[np.ndarray, PaddingStats]:
    """Class probabilities, rows sorted by length into large batches (little padding), returned in input order."""
    from harness.core.progress import progress_bar

    model.eval()
    device = next(p.device for p in model.parameters())
    order = np.argsort([len(x) for x in ids], kind="stable")[::-1]  # longest first: a memory error shows at once
    out: np.ndarray | None = None
    stats = PaddingStats()
    starts = range(0, len(order), batch_size)
    for s in progress_bar(starts, desc=progress_desc or "predict", enable=bool(progress_desc)):
        idx = order[s:s + batch_size]
        batch = collator([{"input_ids": ids[i]} for i in idx])
        real = int(batch["attention_mask"].sum())
        stats.real_tokens += real
        stats.padded_tokens += int(batch["attention_mask"].numel()) - real
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float()
        probs = torch.softmax(logits, -1).cpu().numpy()
        if out is None:
            out = np.zeros((len(ids), probs.shape[1]), dtype=np.float32)
        out[idx] = probs
    model.train()
    return (out if out is not None else np.zeros((0, 0), dtype=np.float32)), stats


def selection_metrics(n_labels: int, score_labels: Sequence[int] | None):
    """`compute_metrics` for the inner split: the foundation's scores, from the confusion matrix."""

    def compute(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        cm = confusion(pred.label_ids, np.argmax(logits, -1), n_labels)
        return {k: float(v) for k, v in scores_from_confusion(cm, score_labels).items()}

    return compute


def training_arguments(cfg: HFSettings, out_dir: Path, seed: int, with_eval: bool, precision: str
                       ) -> TrainingArguments:
    return TrainingArguments(**training_kwargs(cfg, out_dir, seed, with_eval, precision))


def training_kwargs(cfg: HFSettings, out_dir: Path, seed: int, with_eval: bool, precision: str
                    ) -> dict[str, Any]:
    """`TrainingArguments` keys from the config: one place for every HF/TRL trainer of the harness."""
    t = cfg.train
    from harness.core.progress import interactive

    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir), per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.grad_accum, num_train_epochs=t.epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup_ratio, max_grad_norm=t.max_grad_norm, optim=t.optim,
        bf16=precision == "bf16", fp16=precision == "fp16", seed=seed, data_seed=seed,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        logging_strategy="steps", logging_steps=max(1, min(50, t.max_steps if t.max_steps > 0 else 50)),
        report_to="none", disable_tqdm=not interactive(), remove_unused_columns=False,
        dataloader_num_workers=t.dataloader_workers, use_cpu=not torch.cuda.is_available(),
        save_only_model=True,
    )
    if with_eval:
        kwargs.update(eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                      metric_for_best_model=t.selection_metric, greater_is_better=True, save_total_limit=1)
    else:
        kwargs.update(eval_strategy="no", save_strategy="no")
    return kwargs


def train_model(cfg: HFSettings, model: Any, tokenizer: Any, train_feats: list[dict[str, Any]],
                inner_feats: list[dict[str, Any]] | None, class_weights: np.ndarray | None, out_dir: Path,
                seed: int, precision: str, callbacks: list[TrainerCallback] | None = None,
                score_labels: Sequence[int] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Train in place; with an inner split, keep the best epoch on it (never on the fold's validation rows),
    scored over `score_labels` (the task's official classes; None: all). The log and the step kept."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from harness.core.progress import interactive

    with_eval = bool(inner_feats)
    cbs = list(callbacks or [])
    if with_eval and cfg.train.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    n_labels = model.config.num_labels
    trainer = ImbalanceTrainer(
        model=model, args=training_arguments(cfg, out_dir, seed, with_eval, precision),
        train_dataset=train_feats, eval_dataset=inner_feats or None,
        data_collator=make_collator(tokenizer, cfg.train.pad_to_multiple_of), processing_class=tokenizer,
        compute_metrics=selection_metrics(n_labels, score_labels) if with_eval else None,
        callbacks=cbs, class_weights=class_weights, label_smoothing=cfg.loss.label_smoothing,
        focal_gamma=cfg.loss.focal_gamma)
    if not interactive():
        trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout; trackers get the logs
    trainer.train()
    unwrap_mixed_precision(model)
    shutil.rmtree(out_dir, ignore_errors=True)  # checkpoints were only for choosing the epoch
    return list(trainer.state.log_history), chosen_step(trainer.state)


def chosen_step(state: Any) -> int:
    """The optimiser step whose weights the fold keeps: the best checkpoint on the inner split, else the last
    (a refit on every row trains this many steps: `harness export --from refit`)."""
    return int(state.best_global_step or state.global_step)
