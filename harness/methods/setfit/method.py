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


class LengthGroupedBatches:
    """Batches of pairs of similar token length, in random order (the idea of HF's `group_by_length`): each side
    of a batch is padded to its longest text, so a short pair batched with a 256-token one pays for 256. Pairs
    are shuffled, cut into pools of `pool` batches, sorted by length inside a pool, batched, and the batches
    shuffled; every pair is seen once an epoch."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, pool: int = 32):
        self.lengths, self.batch_size, self.seed, self.pool = lengths, batch_size, seed, pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        span = self.batch_size * self.pool
        batches = []
        for s in range(0, len(order), span):
            chunk = order[s:s + span]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[b:b + self.batch_size].tolist() for b in range(0, len(chunk), self.batch_size)]
        for i in rng.permutation(len(batches)):
            yield batches[i]


def pair_loss(body: Any, kind: str) -> Any:
    """SetFit's cosine loss with both sides of every pair embedded in one forward pass (pairs are batched by
    length, so merging the two columns pads little), or sentence-transformers' OnlineContrastiveLoss."""
    from sentence_transformers.base.losses.merged_forward import embed_columns
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss, OnlineContrastiveLoss

    if kind != "cosine":
        return OnlineContrastiveLoss(body)

    class OneForwardCosineLoss(CosineSimilarityLoss):
        def forward(self, sentence_features: Any, labels: Any) -> Any:
            return self.compute_loss_from_embeddings(
                embed_columns(self.model, sentence_features, separate_first=False), labels)

    return OneForwardCosineLoss(body)


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
        if self.settings.model.freeze_embeddings:  # no dense gradient and Adam update of the vocabulary table
            body[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
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
        x = self.rows.features(rows, self.embedder_of(body), progress=True)
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
        body.max_seq_length = min(s.max_length, self.task.prompt.max_length)  # the contrastive phase's budget
        lengths = np.array([len(ids) for ids in body.tokenizer(texts, truncation=True,
                                                               max_length=body.max_seq_length)["input_ids"]])
        pair_lengths = np.array([max(lengths[a], lengths[b]) for a, b, _ in pairs])
        loss = pair_loss(body, s.loss)
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

            def get_batch_sampler(self, dataset: Any, batch_size: int, *a: Any, **kw: Any) -> LengthGroupedBatches:
                return LengthGroupedBatches(pair_lengths, batch_size, ctx.seed)

        trainer = Trainer(model=body, args=args, train_dataset=data, loss=loss, callbacks=[log_callback(ctx.log)])
        if not interactive():
            trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout; trackers get the logs
        out = trainer.train()
        body.eval()
        body.max_seq_length = self.task.prompt.max_length  # rows are embedded with the whole prompt budget
        shutil.rmtree(ctx.scratch, ignore_errors=True)  # the trainer's empty output folder
        return body, float(out.training_loss)

    def load(self, out: Path) -> Fitted:
        return SetFitFitted(self, self._body(str(out / BODY)), StandardHead.load(out / HEAD), {})
