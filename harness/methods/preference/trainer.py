"""Preference optimisation of a generative classifier: TRL's DPO, KTO and ORPO trainers on label pairs.

A pair is (prompt of a training row, chosen = its gold label's continuation, rejected = a wrong label's). Rows
arrive tokenised by `TaskPrompts`, exactly as label scoring reads them, so the trainers are given token ids and
never re-tokenise text (TRL's text path would re-tokenise the chat-templated prompt and could move the prompt /
answer boundary). What each subclass changes, and why:

- `PairDPOTrainer` / `PairKTOTrainer`: accept token-id datasets as they are (`_prepare_dataset`); KTO's
  KL completions are the batch-rotated completions it would have built itself.
- `PairORPOTrainer`: TRL's experimental ORPO puts its NLL term on the whole sequence (prompt included) and runs
  the LM head over every position. Here the NLL is the chosen answer's, and the head runs only on the answer
  positions (left padding makes every answer end at the last position), as in `WeightedSFTTrainer`.
- Class rebalancing happens in the pairs, not in TRL's loss code: `rebalance: weights` draws the pairs with
  replacement in proportion to their gold class's weight, which gives the class-weighted loss in expectation
  (and keeps KTO's fixed batch order, which its KL estimate needs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from harness.methods.preference.config import PreferenceConfig
from harness.methods.hf.sft_trainer import LeftPadCollator, checkpointing_kwargs
from harness.methods.hf.trainer import training_kwargs


# -- pairs ---------------------------------------------------------------------

def make_pairs(labels: Sequence[int], scores: np.ndarray | None, n_labels: int, negatives: str, rebalance: str,
               class_weights: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index, chosen label, rejected label) of every training pair, shuffled.

    negatives: hard = each row's highest-scoring wrong label under `scores` (the starting model); all = every
    wrong label. rebalance: pairs = each present gold class gets the same number of pairs (every pair of a class
    is used once before any repeats); weights = as many pairs drawn with replacement in proportion to
    `class_weights` of their gold class; none = as built."""
    y = np.asarray(labels, dtype=int)
    if negatives == "hard":
        if scores is None:
            raise ValueError("hard negatives need the starting model's scores")
        masked = np.array(scores, dtype=np.float64, copy=True)
        masked[np.arange(len(y)), y] = -np.inf
        rows, rejected = np.arange(len(y)), masked.argmax(1)
    else:
        rows = np.repeat(np.arange(len(y)), n_labels - 1)
        rejected = np.array([c for g in y for c in range(n_labels) if c != g], dtype=int)
    chosen = y[rows]
    rng = np.random.default_rng(seed)
    if rebalance == "pairs":
        present = np.unique(chosen)
        per_class = -(-len(rows) // len(present))
        keep = []
        for c in present:
            idx = np.flatnonzero(chosen == c)
            cycles = -(-per_class // len(idx))
            keep.append(np.concatenate([rng.permutation(idx) for _ in range(cycles)])[:per_class])
        order = rng.permutation(np.concatenate(keep))
    elif rebalance == "weights":
        w = np.asarray(class_weights, dtype=np.float64)[chosen]
        order = rng.choice(len(rows), size=len(rows), replace=True, p=w / w.sum())
    else:
        order = rng.permutation(len(rows))
    return rows[order], chosen[order], rejected[order]


def pair_columns(prompt_ids: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]], rows: np.ndarray,
                 chosen: np.ndarray, rejected: np.ndarray) -> dict[str, list[list[int]]]:
    """Token-id columns of a paired dataset (DPO, ORPO)."""
    return {"prompt_ids": [list(prompt_ids[i]) for i in rows],
            "chosen_ids": [list(continuations[c]) for c in chosen],
            "rejected_ids": [list(continuations[r]) for r in rejected]}


def unpaired_columns(pairs: dict[str, list[list[int]]], seed: int) -> dict[str, list[Any]]:
    """KTO's unpaired examples: each pair's chosen answer (desirable) and rejected answer (undesirable), shuffled
    once here (KTO reads them in this fixed order and estimates its KL term from neighbouring rows)."""
    n = len(pairs["prompt_ids"])
    order = np.random.default_rng(seed).permutation(2 * n)
    pair_of, desirable = order % n, order < n
    return {"prompt_ids": [pairs["prompt_ids"][i] for i in pair_of],
            "completion_ids": [pairs["chosen_ids"][i] if d else pairs["rejected_ids"][i]
                               for i, d in zip(pair_of, desirable)],
            "label": [bool(d) for d in desirable]}


# -- trainers --------------------------------------------------------------------

def _pretokenized(dataset: Any) -> bool:
    return "prompt_ids" in dataset.column_names


def dpo_trainer_class() -> type:
    from trl import DPOTrainer

    class PairDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            return dataset if _pretokenized(dataset) else super()._prepare_dataset(
                dataset, processing_class, args, dataset_name)

    return PairDPOTrainer


def kto_trainer_class() -> type:
    from trl import KTOTrainer

    class PairKTOTrainer(KTOTrainer):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            if not _pretokenized(dataset):
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if not self.calculate_KL:
                return dataset
            size = args.per_device_train_batch_size

            def rotate(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
                # the mismatched answers of a batch: its own answers, each paired with another row's prompt
                done = batch["completion_ids"]
                return {"KL_completion_ids": done[-1:] + done[:-1]}

            return dataset.map(rotate, batched=True, batch_size=size)

    return PairKTOTrainer


class PairCollator:
    """ORPO batches: chosen sequences then rejected ones, left-padded (answers end at the last position)."""

    def __init__(self, pad_id: int, multiple: int = 8):
        self.pad = LeftPadCollator(pad_id, multiple)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = [{"input_ids": r["prompt_ids"] + r[side], "labels": [-100] * len(r["prompt_ids"]) + r[side],
                 "weights": 1.0} for side in ("chosen_ids", "rejected_ids") for r in rows]
        batch = self.pad(seqs)
        batch.pop("weights")
        return batch


def answer_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the answer tokens (rows, answer) and their mask, with the LM head run on
    the answer positions only."""
    labels = batch["labels"]
    answer = int(labels.ne(-100).sum(-1).max())
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], use_cache=False, logits_to_keep=answer + 1)
    logits, targets = out.logits[:, :-1].float(), labels[:, -answer:]
    mask = targets.ne(-100)
    logp = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def orpo_trainer_class() -> type:
    from trl.experimental.orpo import ORPOTrainer

    class PairORPOTrainer(ORPOTrainer):
        def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict[str, Any]:
            if "prompt_ids" in feature:
                return {}  # already token ids: keep the columns as they are
            return super().tokenize_row(feature, model)

        def concatenated_forward(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[Any, ...]:
            logp, mask = answer_logps(model, batch)
            half = logp.shape[0] // 2
            mean_logp = logp.sum(-1) / mask.sum(-1).clamp(min=1)  # ORPO's odds use the length-normalised logp
            nll = -logp[:half].sum() / mask[:half].sum().clamp(min=1)  # the chosen answer's NLL
            dummy = mean_logp.detach()[:, None, None]  # TRL logs the mean logit; answers' logits are not kept
            return mean_logp[:half], mean_logp[half:], dummy[:half], dummy[half:], nll

    return PairORPOTrainer


# -- configs ---------------------------------------------------------------------

def preference_args(cfg: PreferenceConfig, out_dir: Path, seed: int, precision: str,
                    kto_weights: tuple[float, float] = (1.0, 1.0)) -> Any:
    """TRL's config for `preference.algorithm` from the harness keys. TRL defaults that bite are overridden: bf16
    follows train.precision (TRL's default fails on CPU), the learning rate is train.learning_rate (TRL's 1e-6 is
    far too low for LoRA), no truncation (the prompt builder keeps the budget; TRL drops rows whose prompt fills
    `max_length`), the reference log-probs come from the adapter switched off (no second model)."""
    p = cfg  # the preference settings (checked with the config: KTO's batch rule included)
    kw = training_kwargs(cfg, out_dir, seed, False, precision)
    # pairs have no single length column to group by; KTO reads its examples in their (shuffled) order
    kw.update(train_sampling_strategy="sequential" if p.algorithm == "kto" else "random")
    if p.algorithm == "dpo":
        from trl import DPOConfig

        return DPOConfig(**kw, beta=p.beta, loss_type=list(p.dpo_loss), max_length=None, padding_free=False,
                         precompute_ref_log_probs=False, pad_to_multiple_of=cfg.train.pad_to_multiple_of,
                         **checkpointing_kwargs(cfg))
    if p.algorithm == "kto":
        from trl import KTOConfig

        return KTOConfig(**kw, beta=p.beta, max_length=None, precompute_ref_log_probs=False,
                         desirable_weight=kto_weights[0], undesirable_weight=kto_weights[1],
                         pad_to_multiple_of=cfg.train.pad_to_multiple_of,
                         **checkpointing_kwargs(cfg))
    from trl.experimental.orpo import ORPOConfig

    return ORPOConfig(**kw, beta=p.beta, max_length=1 << 30,  # tokenize_row is bypassed; this silences its warning
                      **checkpointing_kwargs(cfg))


def kto_weights(labels_desirable: Sequence[bool], balance: bool) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight): both sides weigh the same in total when `balance`."""
    n_d = max(1, int(np.sum(labels_desirable)))
    n_u = max(1, len(labels_desirable) - n_d)
    return (n_u / n_d, 1.0) if balance and n_u >= n_d else ((1.0, n_d / n_u) if balance else (1.0, 1.0))
