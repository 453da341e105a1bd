"""The seam every classifier method plugs into, and the registry that maps `method:` to one.

The fold loop (harness.cv) knows only this protocol: it hands a method `Example` rows (never token
ids, so methods without a tokenizer never see one), the fold's class weights and a log sink, and
gets back a `Fitted` whose `predict_proba` gives (N, K) probabilities in the config's label order.
Everything after that (OOF/test files, decision layer, metrics, tracking, tuning) never learns which
method ran. A new method is one module here plus its config section.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.config import ExperimentConfig
from harness.schema import Example

LogSink = Callable[[dict[str, float], int], None]  # (values, step): training curves for the trackers


def no_log(values: dict[str, float], step: int) -> None:
    """The log sink when nothing tracks."""


class Fitted(ABC):
    """One fold's trained model."""

    @abstractmethod
    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        """(len(rows), K) float32 class probabilities, rows summing to 1, in the config's label order."""

    @abstractmethod
    def save(self, out: Path) -> None:
        """Write what `Method.load(out)` needs to give identical probabilities (no pickle)."""

    def info(self) -> dict[str, Any]:
        """Extra fold metrics (training log, padding, …) for the fold's metrics.json."""
        return {}

    def close(self) -> None:
        """Release memory (GPU weights) before the next fold is built."""


class Method(ABC):
    """One family of classifiers. One instance serves a whole experiment, so it may cache per-row work
    (tokenised prompts, embeddings) across folds and seeds, keyed by row content."""

    name: str = ""

    def __init__(self, cfg: ExperimentConfig, cache: Path | None = None):
        self.cfg = cfg
        self.label_names = cfg.data.label_names()
        self.cache = cache  # a folder for content-keyed caches that outlive the process (None: memory only)

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str | None:
        """Optional one-off work over every row before the folds (encode, embed); a line for the log."""
        return None

    @abstractmethod
    def fit(self, train: Sequence[Example], inner: Sequence[Example], *, seed: int, class_weights: np.ndarray,
            out: Path, log: LogSink = no_log) -> Fitted:
        """Train on `train`; `inner` (held-out groups of the training part, maybe empty) is for checkpoint
        choice only. `out` is a scratch folder. Validation rows never reach this call."""

    @abstractmethod
    def load(self, out: Path) -> Fitted:
        """The model `Fitted.save(out)` wrote."""


# name -> "module:Class"; imported on first use, so choosing tfidf never imports transformers
REGISTRY: dict[str, str] = {
    "seqcls": "harness.methods.seqcls:SeqClsMethod",
    "tfidf": "harness.methods.tfidf:TfidfMethod",
    "embed": "harness.methods.embed:EmbedMethod",
    "prompt": "harness.methods.prompting:PromptMethod",
    "sft": "harness.methods.sft:SftMethod",
    "preference": "harness.methods.preference:PreferenceMethod",
}


def method_class(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_method(cfg: ExperimentConfig, cache: Path | None = None) -> Method:
    """The method `cfg.method` names, built for this experiment."""
    return method_class(cfg.method)(cfg, cache)


def check_probs_shape(probs: np.ndarray, n_rows: int, n_labels: int, who: str) -> np.ndarray:
    """The contract at the seam: (N, K) finite probabilities summing to 1; a method breaking it is named."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (n_rows, n_labels):
        raise ValueError(f"{who}: predict_proba gave shape {probs.shape}, expected ({n_rows}, {n_labels})")
    if n_rows and (not np.isfinite(probs).all() or np.abs(probs.sum(1) - 1).max() > 1e-3 or (probs < 0).any()):
        raise ValueError(f"{who}: predict_proba rows must be finite, non-negative and sum to 1")
    return probs
