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
from typing import Any, Sequence

import numpy as np

from harness.methods.base import Fitted, FoldContext
from harness.methods.embed.method import EmbedFitted, EmbedMethod, Embedder
from harness.methods.linear import LinearHead
from harness.data.schema import Example
from harness.core.store import atomic_write_npz

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


class SetFitFitted(EmbedFitted):
    """The fold's fine-tuned body and its head; features come from this body, never from a shared cache."""

    def __init__(self, method: "SetFitMethod", body: Any, embedder: Embedder, head: LinearHead, mean: np.ndarray,
                 scale: np.ndarray, info: dict[str, Any]):
        super().__init__(method, head, mean, scale, info)
        self.body, self.embedder = body, embedder

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        return self.head.predict_proba((self.method.features(rows, embedder=self.embedder) - self.mean) / self.scale)

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.body.save(str(out / BODY), create_model_card=False)  # safetensors
        atomic_write_npz(out / HEAD, mean=self.mean, scale=self.scale, **self.head.arrays("head_"))

    def close(self) -> None:
        from harness.methods.hf.model import free_memory

        self.body = self.embedder = None
        free_memory()


class SetFitMethod(EmbedMethod):
    name = "setfit"

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str | None:
        """Nothing to embed before the folds: every fold embeds with its own fine-tuned body."""
        return None

    def _body(self, path: str) -> Any:
        from sentence_transformers import SentenceTransformer

        from harness.methods.hf.model import quiet_transformers, use_cuda

        quiet_transformers()
        body = SentenceTransformer(path, device="cuda" if use_cuda() else "cpu")
        body.max_seq_length = self.task.prompt.max_length
        return body

    def _embedder(self, body: Any) -> Embedder:
        """An Embedder over this body's transformer, with no disk cache (the vectors belong to this fold only)."""
        emb = Embedder(self.settings, self.task.prompt.max_length, None)
        emb.model = body[0].auto_model.eval()
        emb.tok = body.tokenizer
        emb.tok.padding_side = "right"
        emb.decoder = False
        return emb

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        from datasets import Dataset
        from transformers import PrinterCallback
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss, OnlineContrastiveLoss

        from harness.methods.hf.model import resolve_model_path, use_cuda
        from harness.methods.hf.trainer import log_callback
        from harness.core.progress import interactive

        s = self.settings
        rows = list(train) + list(inner)  # no checkpoint to choose: the inner rows are training data here
        t0 = time.time()
        texts = self._texts(rows)[0]  # the target (pair layout) or the whole prompt: what the body learns to place
        y = np.array([e.label for e in rows], dtype=np.int64)
        pairs = draw_pairs(y, ctx.class_weights, s.pairs_per_row * len(rows), ctx.seed * 1009 + ctx.fold)
        data = Dataset.from_dict({"sentence1": [texts[a] for a, _, _ in pairs],
                                  "sentence2": [texts[b] for _, b, _ in pairs],
                                  "label": [t for _, _, t in pairs]})
        body = self._body(resolve_model_path(self.settings.model.name_or_path))
        loss = CosineSimilarityLoss(body) if s.loss == "cosine" else OnlineContrastiveLoss(body)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(ctx.scratch), num_train_epochs=s.epochs, per_device_train_batch_size=s.train_batch_size,
            learning_rate=s.learning_rate, warmup_steps=s.warmup_ratio,  # a float below 1: a ratio (transformers 5)
            seed=ctx.seed, data_seed=ctx.seed,
            save_strategy="no", report_to="none", logging_steps=max(1, len(pairs) // s.train_batch_size // 10),
            disable_tqdm=not interactive(), bf16=use_cuda() and self.settings.train.precision in ("auto", "bf16"),
            dataloader_num_workers=0, dataloader_pin_memory=False)

        class Trainer(SentenceTransformerTrainer):
            def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
                """No model card: it would embed 'widget examples' with a progress bar, for a card never written."""

        trainer = Trainer(model=body, args=args, train_dataset=data, loss=loss, callbacks=[log_callback(ctx.log)])
        if not interactive():
            trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout; trackers get the logs
        out = trainer.train()
        body.eval()
        shutil.rmtree(ctx.scratch, ignore_errors=True)  # the trainer's empty output folder
        train_seconds = time.time() - t0
        emb = self._embedder(body)
        x = self.features(rows, embedder=emb)
        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        head = LinearHead.fit_logreg((x - mean) / scale, y, ctx.class_weights, len(self.label_names), s.C,
                                     s.max_iter, ctx.seed)
        info = {"pairs": len(pairs), "same_class_pairs": int(sum(t for _, _, t in pairs)),
                "train_loss": float(out.training_loss), "body_seconds": round(train_seconds, 2),
                "fit_seconds": round(time.time() - t0, 2), "features": int(x.shape[1])}
        return SetFitFitted(self, body, emb, head, mean, scale, info)

    def load(self, out: Path) -> Fitted:
        body = self._body(str(out / BODY))
        z = np.load(out / HEAD, allow_pickle=False)
        return SetFitFitted(self, body, self._embedder(body), LinearHead.from_arrays(z, "head_"), z["mean"],
                            z["scale"], {})
