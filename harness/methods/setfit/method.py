"""`method: setfit`: contrastive fine-tuning of a sentence-embedding body, then `embed`'s logistic head.

SetFit (Tunstall et al. 2022) in the harness's terms. Per fold:

1. Pairs from the fold's training part only: `setfit.pairs_per_row` × rows pairs, half same-class (cosine
   target 1) and half other-class (target 0). Anchors are drawn with probability ∝ loss.class_weights[label],
   so a rare class anchors as many pairs as its weight says (the class-weighted loss in expectation, as the
   losses here take no per-pair weights); the other-class partner's class is drawn uniformly.
2. The body (`model.name_or_path`, a sentence-transformers folder: `minilm` by default) is trained on them with
   sentence-transformers' own `SentenceTransformerTrainer` and `CosineSimilarityLoss` (SetFit's default) or
   `OnlineContrastiveLoss`. The `setfit` package's Trainer is not used: it draws its own unweighted pairs.
3. The rows are embedded by the fold's body exactly as `embed` embeds them (same prompt layout: target and
   context turns embedded separately and concatenated; same pooling), and `embed`'s class-weighted logistic
   head is fitted on them.

Saved without pickle: the body as safetensors (sentence-transformers' folder) and the head as arrays.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.data.schema import Example
from harness.methods.base import Fitted, FoldContext, Method, TaskInfo
from harness.methods.hf.embedding import Embedder, RowFeatures, StandardHead
from harness.methods.setfit.config import SetFitConfig

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

BODY = "body"
HEAD = "head.npz"


def draw_pairs(labels: np.ndarray, class_weights: np.ndarray, n_pairs: int, seed: int
               ) -> list[tuple[int, int, float]]:
    """(anchor, partner, target) row-index pairs: anchors drawn ∝ the class weight of their label, alternately a
    same-class partner (1.0) and an other-class partner (0.0); a class with one row gets only other-class pairs."""
    rng = np.random.default_rng(seed)
    by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    p = class_weights[labels].astype(float)
    p = p / p.sum()
    anchors = rng.choice(len(labels), size=n_pairs, p=p)
    pairs = []
    for i, a in enumerate(anchors.tolist()):
        own = by_class[int(labels[a])]
        others = [c for c in by_class if c != labels[a]]
        if i % 2 == 0 and len(own) > 1:
            b = int(rng.choice(own[own != a]))
            pairs.append((a, b, 1.0))
        elif others:
            b = int(rng.choice(by_class[int(rng.choice(others))]))
            pairs.append((a, b, 0.0))
    return pairs


class SetFitFitted(Fitted):
    """The fold's fine-tuned body and its head; features come from this body, never from a shared cache."""

    def __init__(self, method: SetFitMethod, body: Any, head: StandardHead, info: dict[str, Any]):
        self.method, self.body, self.head, self._info = method, body, head, info
        self.embedder = method.embedder_of(body)

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        return self.head.predict_proba(self.method.rows.features(rows, self.embedder))

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.body.save(str(out / BODY), create_model_card=False)  # safetensors
        self.head.save(out / HEAD)

    def info(self) -> dict[str, Any]:
        return self._info

    def close(self) -> None:
        from harness.methods.hf.base_models import free_memory

        self.body = self.embedder = None
        free_memory()


class SetFitMethod(Method):
    name = "setfit"

    def __init__(self, settings: SetFitConfig, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self._tok: Any = None
        self.rows = RowFeatures(task, self.tokenizer)

    def tokenizer(self) -> Any:
        """The body's tokenizer, for the prompt builder's token budget (no model is loaded for it)."""
        if self._tok is None:
            from harness.methods.hf.model import load_tokenizer

            self._tok = load_tokenizer(self.settings.model)
        return self._tok

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def _body(self, path: str) -> Any:
        from sentence_transformers import SentenceTransformer

        from harness.methods.hf.model import quiet_transformers, use_cuda

        quiet_transformers()
        body = SentenceTransformer(path, device="cuda" if use_cuda() else "cpu")
        body.max_seq_length = self.task.prompt.max_length
        return body

    def embedder_of(self, body: Any) -> Embedder:
        """An Embedder over this body's transformer (the vectors belong to this fold only: no disk cache)."""
        return Embedder.on_body(self.settings, self.task.prompt.max_length, body[0].auto_model, body.tokenizer)

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        s = self.settings
        rows = list(train) + list(inner)  # no checkpoint to choose: the inner rows are training data here
        t0 = time.time()
        y = np.array([e.label for e in rows], dtype=np.int64)
        pairs = draw_pairs(y, ctx.class_weights, s.pairs_per_row * len(rows), ctx.seed * 1009 + ctx.fold)
        body, train_loss = self._train_body(self.rows.texts(rows)[0], pairs, ctx)
        train_seconds = time.time() - t0
        x = self.rows.features(rows, self.embedder_of(body))
        head = StandardHead.fit(x, y, ctx.class_weights, len(self.label_names), s.C, s.max_iter, ctx.seed)
        info = {"pairs": len(pairs), "same_class_pairs": int(sum(t for _, _, t in pairs)),
                "train_loss": train_loss, "body_seconds": round(train_seconds, 2),
                "fit_seconds": round(time.time() - t0, 2), "features": int(x.shape[1])}
        return SetFitFitted(self, body, head, info)

    def _train_body(self, texts: list[str], pairs: list[tuple[int, int, float]], ctx: FoldContext) -> tuple[Any, float]:
        """The body trained on the pairs (the target, or the whole prompt: what it learns to place) with
        sentence-transformers' own trainer; its final training loss."""
        from datasets import Dataset
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss, OnlineContrastiveLoss
        from transformers import PrinterCallback

        from harness.core.progress import interactive
        from harness.methods.hf.model import mixed_precision, resolve_model_path, use_cuda
        from harness.methods.hf.trainer import log_callback

        s = self.settings
        precision = mixed_precision(s)  # auto: bf16 (or fp16) on CUDA, fp32 on a CPU; an explicit choice is kept
        data = Dataset.from_dict({"sentence1": [texts[a] for a, _, _ in pairs],
                                  "sentence2": [texts[b] for _, b, _ in pairs],
                                  "label": [t for _, _, t in pairs]})
        body = self._body(resolve_model_path(s.model.name_or_path))
        loss = CosineSimilarityLoss(body) if s.loss == "cosine" else OnlineContrastiveLoss(body)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(ctx.scratch), num_train_epochs=s.epochs, per_device_train_batch_size=s.train_batch_size,
            learning_rate=s.learning_rate, warmup_steps=s.warmup_ratio,  # a float below 1: a ratio (transformers 5)
            seed=ctx.seed, data_seed=ctx.seed,
            save_strategy="no", report_to="none", logging_steps=max(1, len(pairs) // s.train_batch_size // 10),
            disable_tqdm=not interactive(), bf16=precision == "bf16", fp16=precision == "fp16",
            dataloader_num_workers=0, dataloader_pin_memory=False, use_cpu=not use_cuda())

        class Trainer(SentenceTransformerTrainer):
            def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
                """No model card: it would embed 'widget examples' with a progress bar, for a card never written."""

        trainer = Trainer(model=body, args=args, train_dataset=data, loss=loss, callbacks=[log_callback(ctx.log)])
        if not interactive():
            trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout; trackers get the logs
        out = trainer.train()
        body.eval()
        shutil.rmtree(ctx.scratch, ignore_errors=True)  # the trainer's empty output folder
        return body, float(out.training_loss)

    def load(self, out: Path) -> Fitted:
        return SetFitFitted(self, self._body(str(out / BODY)), StandardHead.load(out / HEAD), {})
