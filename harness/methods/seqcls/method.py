"""`method: seqcls`: a fine-tuned HF sequence classifier (LoRA, QLoRA or full fine-tuning).

Qwen3-8B with QLoRA by default; BERT-family encoders (e.g. `minilm`) are `seqcls` recipes with an
encoder model and `prompt.layout: pair`. Training is the class-weighted `ImbalanceTrainer`;
inference is length-sorted. Prompts are tokenised once per distinct row content for the whole
experiment (augmented variants are encoded when a fold first needs them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.methods.base import ExportOptions, Fitted, FoldContext, Method, TaskInfo
from harness.data.schema import Example


class SeqClsFitted(Fitted):
    def __init__(self, method: "SeqClsMethod", model: Any, info: dict[str, Any]):
        from harness.methods.hf.trainer import PaddingStats

        self.method, self.model, self._info = method, model, info
        self.pad = PaddingStats()

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        from harness.methods.hf.trainer import make_collator, predict_proba

        m = self.method
        collator = make_collator(m.tokenizer, m.settings.train.pad_to_multiple_of)
        probs, pad = predict_proba(self.model, m.encode(rows), collator, m.settings.train.eval_batch_size)
        self.pad.add(pad)
        return probs if len(rows) else np.zeros((0, len(m.label_names)), dtype=np.float32)

    def save(self, out: Path) -> None:
        self.model.save_pretrained(out)

    def info(self) -> dict[str, Any]:
        return {**self._info, "eval_pad_fraction": self.pad.pad_fraction}

    def close(self) -> None:
        from harness.methods.hf import base_models

        base_models.give_back(self.model)  # the base serves the next fold; this fold's adapter is dropped
        self.model = None
        base_models.free_memory()


class SeqClsMethod(Method):
    name = "seqcls"

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        from harness.methods.hf.model import load_tokenizer
        from harness.data.prompt import PromptBuilder

        self.tokenizer = load_tokenizer(settings.model)
        self.builder = PromptBuilder(self.task.prompt, self.tokenizer, self.label_names, self.task.facts)
        self.ids: dict[str, list[int]] = {}  # row content -> token ids

    def encode(self, rows: Sequence[Example], progress: bool = False) -> list[list[int]]:
        keys = [e.content_key() for e in rows]
        new = {k: e for k, e in zip(keys, rows) if k not in self.ids}
        if new:
            ids, stats = self.builder.encode(list(new.values()), progress=progress)
            self.ids.update(zip(new, ids))
            self.last_stats = stats
        return [self.ids[k] for k in keys]

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        self.encode(rows, progress)
        st = getattr(self, "last_stats", None)
        return "" if st is None else f"prompts truncated: {st.truncated}, over budget: {st.over_budget}"

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        from harness.methods.hf.model import build_model, mixed_precision
        from harness.methods.hf.trainer import log_callback, to_features, train_model

        model = build_model(self.settings, self.task, self.tokenizer, ctx.seed)
        feats = to_features(self.encode(train), [e.label for e in train])
        inner_feats = to_features(self.encode(inner), [e.label for e in inner]) if inner else None
        history, step = train_model(self.settings, model, self.tokenizer, feats, inner_feats, ctx.class_weights,
                              ctx.scratch, ctx.seed, mixed_precision(self.settings), callbacks=[log_callback(ctx.log)],
                              score_labels=self.task.score_labels)
        return SeqClsFitted(self, model, {"log_history": history, "chosen_step": step})

    def load(self, out: Path) -> Fitted:
        from harness.methods.hf.model import load_trained

        return SeqClsFitted(self, load_trained(self.settings, self.task, self.tokenizer, out), {})

    def export_model(self, saved: Path, out: Path, options: ExportOptions) -> dict[str, Any]:
        from harness.methods.hf.export import export_seqcls

        return export_seqcls(self.settings, self.task, self.tokenizer, self.builder, saved, out, options)
