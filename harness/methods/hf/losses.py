"""The imbalance-aware loss (weighted, label-smoothed, focal) of the HF trainers.

The loss is a *sum* of per-row terms divided by a row count the caller supplies,
never a weighted mean over the micro-batch: PyTorch's `cross_entropy(weight=…)`
divides by the batch's own weight sum, which makes batch 2 × accumulation 4 differ
from batch 8 × accumulation 1. Weights are normalised to mean 1 over the training
rows, so the loss keeps the scale of plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def imbalance_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
                   label_smoothing: float = 0.0, focal_gamma: float = 0.0,
                   normalizer: float | torch.Tensor | None = None) -> torch.Tensor:
    """sum_i w[y_i] * (1 - p_i,y)^gamma * CE_smoothed_i / normalizer (default: rows in this batch)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, labels[:, None]).squeeze(-1)
    ce = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(-1) if label_smoothing else nll
    if focal_gamma:
        p_true = torch.exp(-nll)
        ce = (1.0 - p_true).pow(focal_gamma) * ce
    if weights is not None:
        ce = ce * weights.to(ce.device, ce.dtype)[labels]
    denom = normalizer if normalizer is not None else labels.numel()
    return ce.sum() / denom


def completion_loss(logits: torch.Tensor, labels: torch.Tensor, row_weights: torch.Tensor | None,
                    label_smoothing: float = 0.0, focal_gamma: float = 0.0,
                    normalizer: float | torch.Tensor | None = None) -> torch.Tensor:
    """The class-weighted SFT loss of a generative classifier, from next-token logits aligned with `labels`
    (logits[:, t] predicts labels[:, t]; -100 = no loss).

    A row's loss is the *summed* negative log-likelihood of its completion tokens (verbalizer + end token),
    i.e. -log P(answer | prompt), the very score label scoring ranks classes by; label smoothing applies per
    token over the vocabulary, focal modulation per row on P(answer). Rows are weighted by their label's class
    weight and the sum is divided by `normalizer`, the rows of the whole accumulated batch (default: this
    batch), so batch 2 x accumulation 4 equals batch 8 x accumulation 1.
    """
    mask = labels.ne(-100)
    logp = F.log_softmax(logits.float(), dim=-1)
    safe = labels.clamp(min=0)
    nll = -logp.gather(-1, safe[..., None]).squeeze(-1) * mask
    tok = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(-1) * mask if label_smoothing else nll
    row = tok.sum(-1)
    if focal_gamma:
        p_answer = torch.exp(-nll.sum(-1))
        row = (1.0 - p_answer).pow(focal_gamma) * row
    if row_weights is not None:
        row = row * row_weights.to(row.device, row.dtype)
    denom = normalizer if normalizer is not None else labels.shape[0]
    return row.sum() / denom
