"""Label scoring for generative classifiers: each class's log-probability as a continuation of the prompt.

A class's score is the summed log-probability of its *whole* verbalizer plus the end token after the
prompt (first-token scoring is wrong: SmolLM2 writes " 7" as a space then a digit, and multi-word
labels share first tokens). The prompt runs once; the K continuations are scored together from its
cached keys and values, instead of K full forward passes over prompt + continuation.

Batches of prompts are left-padded so that every prompt ends at the same position; positions are
counted from each row's first real token, so padding changes nothing (a test checks the result
equals scoring every full sequence on its own).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


def _batch_order(prompts: Sequence[Sequence[int]]) -> np.ndarray:
    return np.argsort([len(p) for p in prompts], kind="stable")[::-1]  # longest first: memory errors show at once


@torch.no_grad()
def label_logprobs(model: Any, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                   pad_id: int, batch_size: int = 8, progress: str | None = None) -> np.ndarray:
    """(N, K) summed log-probabilities of each of K continuations (token ids, end token included) after each
    of N prompts: one pass over the prompts, one batched pass over the K continuations from their cache."""
    from harness.core.progress import progress_bar

    model.eval()
    device = next(model.parameters()).device
    k = len(continuations)
    width = max(len(c) for c in continuations)
    # continuation inputs are every token but the last; their targets are every token but the first
    cont_in = torch.full((k, max(width - 1, 1)), pad_id, dtype=torch.long)
    cont_mask = torch.zeros_like(cont_in)
    cont_tgt = torch.zeros_like(cont_in)
    for j, c in enumerate(continuations):
        cont_in[j, :len(c) - 1] = torch.tensor(c[:-1], dtype=torch.long)
        cont_mask[j, :len(c) - 1] = 1
        cont_tgt[j, :len(c) - 1] = torch.tensor(c[1:], dtype=torch.long)
    first = torch.tensor([c[0] for c in continuations], device=device)
    out = np.zeros((len(prompts), k), dtype=np.float64)
    order = _batch_order(prompts)
    for s in progress_bar(range(0, len(order), batch_size), desc=progress or "score labels", enable=bool(progress)):
        idx = order[s:s + batch_size]
        b = len(idx)
        longest = max(len(prompts[i]) for i in idx)
        ids = torch.full((b, longest), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            p = prompts[i]
            ids[r, longest - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, longest - len(p):] = 1
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        # only the last position's logits are read: the LM head over every prompt token would be a fifth of the
        # compute of a 135M model (49k-token vocabulary) and most of the memory of a long batch
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        total = torch.log_softmax(res.logits[:, -1].float(), -1)[:, first]  # (b, K): the first token of each
        if width > 1:
            cache = res.past_key_values
            cache.batch_repeat_interleave(k)  # row r's cache serves its K continuations
            lengths = mask.sum(-1)
            c_ids = cont_in.to(device).repeat(b, 1)
            c_mask = cont_mask.to(device).repeat(b, 1)
            c_pos = lengths.repeat_interleave(k)[:, None] + torch.arange(c_ids.shape[1], device=device)[None]
            full_mask = torch.cat([mask.repeat_interleave(k, 0), c_mask], 1)
            res2 = model(input_ids=c_ids, attention_mask=full_mask, position_ids=c_pos, past_key_values=cache,
                         use_cache=True)
            logp = torch.log_softmax(res2.logits.float(), -1)
            tgt = cont_tgt.to(device).repeat(b, 1)
            rest = (logp.gather(-1, tgt[..., None]).squeeze(-1) * c_mask).sum(-1)
            total = total + rest.view(b, k)
        out[idx] = total.double().cpu().numpy()
    return out


@torch.no_grad()
def label_logprobs_naive(model: Any, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
                         ) -> np.ndarray:
    """The same scores from K full forward passes per row (prompt + continuation each): the reference the
    cached scorer is tested and benchmarked against."""
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
