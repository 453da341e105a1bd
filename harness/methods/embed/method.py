"""`method: embed`: frozen embeddings from any HF encoder or decoder + a class-weighted logistic regression.

The encoder runs once per distinct row text for the whole experiment (every fold and seed reuses
it): embeddings are cached by content, in memory and under the run directory's `cache/`, so a
resumed run or `predict --test` on a file that shares rows does not embed them again.

Input follows the prompt settings: with `prompt.layout: pair` the target and its recent context
(`prompt.context_turns`, budgeted to `prompt.max_length` tokens) are embedded separately and
concatenated, which keeps the target's signal from being averaged away by the context; with
`decoder` the whole prompt is one text. Pooling: mean for encoders, last real token for decoders.
Qwen3-8B in 4 bits works through the same `quant.*` keys as `seqcls` (GPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.data.schema import Example
from harness.methods.base import Fitted, FoldContext, Method, TaskInfo
from harness.methods.embed.config import EmbedConfig
from harness.methods.hf.embedding import Embedder, RowFeatures, StandardHead

HEAD = "head.npz"


class EmbedFitted(Fitted):
    """A fold's head over the method's frozen embeddings."""

    def __init__(self, method: EmbedMethod, head: StandardHead, info: dict[str, Any]):
        self.method, self.head, self._info = method, head, info

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        return self.head.predict_proba(self.method.features(rows))

    def save(self, out: Path) -> None:
        self.head.save(out / HEAD)

    def info(self) -> dict[str, Any]:
        return self._info


class EmbedMethod(Method):
    name = "embed"

    def __init__(self, settings: EmbedConfig, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self.embedder = Embedder(settings, task.prompt.max_length, cache)
        self.rows = RowFeatures(task, self.embedder.tokenizer)

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def features(self, rows: Sequence[Example], progress: bool = False) -> np.ndarray:
        return self.rows.features(rows, self.embedder, progress)

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        t0 = time.time()
        before = len(self.embedder.memo)
        x = self.features(rows, progress)
        return (f"embed: {x.shape[1]}-d features ({self.embedder.pooling()} pooling) for {len(rows)} rows; "
                f"{len(self.embedder.memo) - before} texts embedded in {time.time() - t0:.1f}s, rest from the cache")

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        rows = list(train) + list(inner)  # no checkpoint to choose: the inner rows are training data here
        t0 = time.time()
        x = self.features(rows)
        y = np.array([e.label for e in rows], dtype=np.int64)
        s = self.settings
        head = StandardHead.fit(x, y, ctx.class_weights, len(self.label_names), s.C, s.max_iter, ctx.seed)
        info = {"features": int(x.shape[1]), "fit_seconds": round(time.time() - t0, 3)}
        ctx.log({"train/features": float(x.shape[1]), "train/fit_seconds": info["fit_seconds"]}, 0)
        return EmbedFitted(self, head, info)

    def load(self, out: Path) -> Fitted:
        return EmbedFitted(self, StandardHead.load(out / HEAD), {})
