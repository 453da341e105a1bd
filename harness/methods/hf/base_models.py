"""One base model per process: loaded (and quantised) once, reused by every fold, seed and tune trial.

Loading Qwen3-8B and quantising it to 4 bits takes minutes on a GPU box; a 5-fold, 2-seed experiment
did it ten times, and every trial of a study again. Here the process keeps the last base model it
loaded, keyed by everything that shapes it (model settings, quantisation, labels, whether LoRA is
used). A fold *borrows* it and gives it back when the fold's model is closed:

- with LoRA, giving back unloads the fold's adapter (and its copy of the head), leaving the base
  weights as loaded: LoRA never changes them;
- with full fine-tuning the weights do change, so a CPU copy of the loaded weights is taken on the
  first load (only for models up to `SNAPSHOT_LIMIT` bytes) and restored when the model is given back;
- hooks a fold's trainer registered on the base (TRL's input-gradient hook with gradient checkpointing,
  once per fold) are removed, so a long study does not pile them up.

A fold that crashes never gives its model back, so the next fold loads afresh: a half-trained model
is never reused. The fold's own head is re-initialised after seeding (`reset_head`), in the same
order of random draws whether the base was loaded or reused, so results equal a fresh load per fold
(tests/test_base_models.py). `HARNESS_RELOAD_BASE=1` turns reuse off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

SNAPSHOT_LIMIT = 4 << 30  # bytes of weights a full fine-tuning base may copy to CPU memory to be reused


@dataclass
class _Slot:
    key: str
    model: Any
    snapshot: dict[str, Any] | None
    hooks: dict[str, tuple[set[int], set[int]]]  # module -> (forward, forward-pre) hook ids as loaded
    lent: bool = False


_slot: _Slot | None = None


def reuse_enabled() -> bool:
    return os.environ.get("HARNESS_RELOAD_BASE", "") in ("", "0")


def release() -> None:
    """Drop the kept base model and free its memory (the next fold loads afresh)."""
    _drop()


def _drop() -> None:
    global _slot
    if _slot is not None:
        _slot = None
        free_memory()


def borrow(key: str, load: Callable[[], Any], trains_weights: bool) -> Any:
    """The base model for `key`: the one the last fold gave back, or `load()` (dropping any other model
    first, so two bases never share memory). `trains_weights`: full fine-tuning, which needs a copy of
    the loaded weights to be reusable."""
    global _slot
    if _slot is not None and _slot.key == key and not _slot.lent and reuse_enabled():
        _slot.lent = True
        return _slot.model
    _drop()
    model = load()
    if reuse_enabled():
        snapshot = _snapshot(model) if trains_weights else None
        if not trains_weights or snapshot is not None:
            _slot = _Slot(key, model, snapshot, _hooks(model), lent=True)
    return model


def shared(key: str, load: Callable[[], Any]) -> Any:
    """A frozen base (embedding, zero-shot scoring) used by many at once: never lent out, never changed."""
    global _slot
    if _slot is not None and _slot.key == key and not _slot.lent and reuse_enabled():
        return _slot.model
    _drop()
    model = load()
    if reuse_enabled():
        _slot = _Slot(key, model, None, {})
    return model


def give_back(model: Any) -> None:
    """Return a fold's model: its LoRA adapter is unloaded (or its weights restored) and the base kept for the
    next fold. A model that is not the lent base (reuse off, or another key loaded meanwhile) is just dropped."""
    if _slot is None or not _slot.lent or model is None:
        return
    from peft import PeftModel

    base = model.unload() if isinstance(model, PeftModel) else model
    if base is not _slot.model:  # not the lent base (e.g. a reloaded adapter on a fresh base)
        return
    if _slot.snapshot is not None:
        base.load_state_dict(_slot.snapshot)
    for name, m in base.named_modules():
        forward, pre = _slot.hooks.get(name, (set(), set()))
        for table, kept in ((m._forward_hooks, forward), (m._forward_pre_hooks, pre)):
            for h in [h for h in table if h not in kept]:
                del table[h]
    base.zero_grad(set_to_none=True)
    _slot.lent = False


def _hooks(model: Any) -> dict[str, tuple[set[int], set[int]]]:
    return {name: (set(m._forward_hooks), set(m._forward_pre_hooks)) for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks}


def _snapshot(model: Any) -> dict[str, Any] | None:
    state = model.state_dict()
    size = sum(t.numel() * t.element_size() for t in state.values())
    if size > SNAPSHOT_LIMIT:
        return None
    return {k: t.detach().to("cpu", copy=True) for k, t in state.items()}


def reset_head(model: Any, head: str) -> None:
    """Draw the classification head's weights afresh from the current random state, exactly as loading a
    checkpoint without that head does (transformers' `_init_weights`), so a reused base and a fresh one give
    the fold the same head."""
    module = model.get_submodule(head)
    for p in module.parameters():
        if hasattr(p, "_is_hf_initialized"):
            del p._is_hf_initialized
    for m in module.modules():
        model._init_weights(m)


def free_memory() -> None:
    """Release a dropped model's memory (GPU included) before the next fold builds one."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
