"""Label scoring for generative classifiers: each class's log-probability as a continuation of the prompt.

A class's score is the summed log-probability of its *whole* verbalizer plus the end token after the
prompt (first-token scoring is wrong: SmolLM2 writes " 7" as a space then a digit, and multi-word
labels share first tokens). The K continuations are packed after the prompt in one sequence, with an
attention mask that lets each continuation see the prompt and its own earlier tokens only (a tree of
K branches). One forward pass per batch of prompts then scores every label: the prompt is computed
once, no key/value cache is copied K times, and the language-model head runs only on the packed tail.

Batches of prompts are left-padded so that every prompt ends at the same position; positions are
counted from each row's first real token and padded keys are masked, so padding changes nothing (a
test checks the result equals scoring every full sequence on its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

_MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take an arbitrary 4-D mask


def _batch_order(prompts: Sequence[Sequence[int]]) -> np.ndarray:
    return np.argsort([len(p) for p in prompts], kind="stable")[::-1]  # longest first: memory errors show at once


@dataclass(frozen=True)
class PackedLabels:
    """The K continuations laid end to end: inputs (every token but each one's last), their targets, the
    branch each packed token belongs to and its offset inside the branch."""

    inputs: torch.Tensor    # (P,)
    targets: torch.Tensor   # (P,)
    branch: torch.Tensor    # (P,)
    offset: torch.Tensor    # (P,)
    first: torch.Tensor     # (K,) each continuation's first token, predicted by the prompt's last position
    k: int

    @classmethod
    def of(cls, continuations: Sequence[Sequence[int]]) -> "PackedLabels":
        inputs, targets, branch, offset = [], [], [], []
        for j, c in enumerate(continuations):
            inputs += list(c[:-1])
            targets += list(c[1:])
            branch += [j] * (len(c) - 1)
            offset += list(range(len(c) - 1))
        as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
        return cls(as_long(inputs), as_long(targets), as_long(branch), as_long(offset),
                   as_long([c[0] for c in continuations]), len(continuations))

    def tree_mask(self, prompt_mask: torch.Tensor) -> torch.Tensor:
        """(b, 1, W+P, W+P) boolean mask: causal over each row's real prompt tokens, and each packed token
        sees the prompt and the earlier tokens of its own branch. Padded queries see themselves only, so no
        row of the softmax is empty."""
        b, w = prompt_mask.shape
        p = len(self.inputs)
        n = w + p
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        same_branch = self.branch[:, None] == self.branch[None, :]
        causal[w:, w:] = same_branch & (self.offset[None, :] <= self.offset[:, None])
        keys = torch.cat([prompt_mask.bool(), torch.ones(b, p, dtype=torch.bool)], 1)
        mask = causal[None] & keys[:, None, :]
        mask |= torch.eye(n, dtype=torch.bool)[None]
        return mask[:, None]


def _attention_mask(tree: torch.Tensor, model: Any) -> torch.Tensor:
    if model.config._attn_implementation == "sdpa":
        return tree
    dtype = next(model.parameters()).dtype
    dtype = dtype if dtype.is_floating_point else torch.float32
    return torch.zeros(tree.shape, dtype=dtype).masked_fill(~tree, torch.finfo(dtype).min)


@torch.no_grad()
def label_logprobs(model: Any, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                   pad_id: int, batch_size: int = 8, progress: str | None = None) -> np.ndarray:
    """(N, K) summed log-probabilities of each of K continuations (token ids, end token included) after each
    of N prompts: one forward pass per batch over the prompt and the K packed continuations."""
    from harness.core.progress import progress_bar

    model.eval()
    impl = model.config._attn_implementation
    if impl not in _MASKED_ATTENTION:  # e.g. flash attention ignores a tree mask: score with SDPA, then restore
        model.set_attn_implementation("sdpa")
    try:
        return _score(model, prompts, PackedLabels.of(continuations), pad_id, batch_size,
                      lambda it: progress_bar(it, desc=progress or "score labels", enable=bool(progress)))
    finally:
        if impl not in _MASKED_ATTENTION:
            model.set_attn_implementation(impl)


def _score(model: Any, prompts: Sequence[Sequence[int]], packed: PackedLabels, pad_id: int, batch_size: int,
           bar: Any) -> np.ndarray:
    device = next(model.parameters()).device
    p = len(packed.inputs)
    out = np.zeros((len(prompts), packed.k), dtype=np.float64)
    order = _batch_order(prompts)
    for s in bar(range(0, len(order), batch_size)):
        idx = order[s:s + batch_size]
        b, w = len(idx), max(len(prompts[i]) for i in idx)
        ids = torch.full((b, w), pad_id, dtype=torch.long)
        prompt_mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, w - len(prompts[i]):] = torch.tensor(prompts[i], dtype=torch.long)
            prompt_mask[r, w - len(prompts[i]):] = 1
        lengths = prompt_mask.sum(-1)
        pos = torch.cat([(prompt_mask.cumsum(-1) - 1).clamp(min=0), lengths[:, None] + packed.offset[None]], 1)
        ids = torch.cat([ids, packed.inputs.expand(b, p)], 1)
        mask = _attention_mask(packed.tree_mask(prompt_mask), model)
        # the head runs on the prompt's last position and the packed tail only: over every prompt token it would
        # be a fifth of a 135M model's compute (49k-token vocabulary) and most of the memory of a long batch
        res = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                    use_cache=False, logits_to_keep=p + 1)
        logp = torch.log_softmax(res.logits.float(), -1).cpu()  # (b, P+1, V)
        total = logp[:, 0, packed.first]  # (b, K)
        if p:
            tail = logp[:, 1:].gather(-1, packed.targets.expand(b, p)[..., None]).squeeze(-1)  # (b, P)
            total = total.index_add(1, packed.branch, tail)
        out[idx] = total.double().numpy()
    return out


@torch.no_grad()
def label_logprobs_naive(model: Any, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
                         ) -> np.ndarray:
    """The same scores from K full forward passes per row (prompt + continuation each): the reference the
    packed scorer is tested and benchmarked against."""
    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(prompts), len(continuations)), dtype=np.float64)
    for i, p in enumerate(prompts):
        for j, c in enumerate(continuations):
            ids = torch.tensor([list(p) + list(c)], device=device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            positions = torch.arange(len(p) - 1, len(p) + len(c) - 1, device=device)
            out[i, j] = float(logp[positions, torch.tensor(c, device=device)].sum())
    return out


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from per-class log-scores (float32, rows summing to 1)."""
    z = scores - scores.max(1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)
