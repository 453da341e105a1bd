"""A causal LM used as a classifier by label scoring: what `sft` and `preference` share, by composition.

`LabelScoredLM` holds the task's prompts (their token ids cached by row content for every fold and seed), builds
the base model (quantised as configured), a trainable one, and one with a saved adapter, and turns a trainer's
model into one that scores exactly as its reloaded adapter will. `LabelScoredFitted` is a fold's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.data.schema import Example
from harness.methods.base import Fitted
from harness.methods.hf.generative import TaskPrompts, score_rows
from harness.methods.hf.settings import HFSettings

if TYPE_CHECKING:
    from harness.methods.base import TaskInfo

ADAPTER = "adapter"  # LoRA weights only (the base model is rebuilt from model.name_or_path)
FULL = "full"        # lora.enabled: false: the whole fine-tuned model


class LabelScoredLM:
    """The model side of a generative classifier: tokenizer, task prompts, and the models built from settings."""

    def __init__(self, settings: HFSettings, task: TaskInfo):
        from harness.methods.hf.model import load_tokenizer

        self.settings, self.label_names = settings, list(task.label_names)
        self.tok = load_tokenizer(settings.model)
        g = settings.generative
        self.prompts = TaskPrompts(task.prompt, self.tok, self.label_names, g.verbalizers, g.instruction, task.facts)
        self._ids: dict[str, list[int]] = {}  # row content -> prompt ids, for every fold and seed

    def check_here(self) -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def prompt_ids(self, rows: Sequence[Example]) -> list[list[int]]:
        keys = [e.content_key() for e in rows]
        for k, e in zip(keys, rows):
            if k not in self._ids:
                self._ids[k] = self.prompts.prompt_ids(e)
        return [self._ids[k] for k in keys]

    def prompt_note(self, rows: Sequence[Example], who: str) -> str:
        """Encode every row's prompt once; a line for the log."""
        lengths = [len(x) for x in self.prompt_ids(rows)]
        return f"{who} prompts: {len(lengths)} rows, tokens p50 {int(np.median(lengths))}, max {max(lengths)}"

    def base_model(self, prepared: bool = False) -> Any:
        """The process's causal LM for these settings (`base_models`: loaded once, lent to one fold at a time).
        `prepared`: a 4-bit base readied for k-bit training (which casts and hooks it, hence its own key)."""
        from harness.methods.hf import base_models
        from harness.methods.hf.model import base_key

        prepared = prepared and self.settings.quant.quantized()
        return base_models.borrow(base_key("causal-kbit-train" if prepared else "causal", self.settings),
                                  lambda: self._load(prepared), trains_weights=not self.settings.lora.enabled)

    def _load(self, prepared: bool) -> Any:
        from harness.methods.hf.generative import load_causal_lm
        from harness.methods.hf.model import disable_cpu_bf16_repack, use_cuda

        model = load_causal_lm(self.settings, self.tok.pad_token_id)
        if prepared:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=self.settings.model.gradient_checkpointing or use_cuda(),
                gradient_checkpointing_kwargs={"use_reentrant": False})
            disable_cpu_bf16_repack(model)
        return model

    def build_model(self) -> Any:
        """The causal LM to fine-tune: 4-bit base prepared for k-bit training with `quant.load_in_4bit`."""
        return self.base_model(prepared=True)

    def adapter_model(self, path: Path, trainable: bool = False) -> Any:
        """The base model (quantised as configured) with the LoRA adapter saved at `path`."""
        from peft import PeftModel

        from harness.methods.hf.model import disable_cpu_bf16_repack

        base = self.build_model() if trainable else self.base_model()
        model = PeftModel.from_pretrained(base, str(path), is_trainable=trainable)
        disable_cpu_bf16_repack(model)
        return model

    def trained_model(self, trainer: Any) -> Any:
        """The trainer's model, ready to score exactly as its saved and reloaded adapter will."""
        import torch

        from harness.methods.hf.model import disable_cpu_bf16_repack
        from harness.methods.hf.trainer import unwrap_mixed_precision

        model = unwrap_mixed_precision(trainer.model)
        disable_cpu_bf16_repack(model)
        if self.settings.quant.quantized():
            # TRL trains a quantised model's adapter in bf16; PEFT loads a saved adapter as fp32. Upcast (exact)
            # so this fold's scores equal those of its reloaded adapter (`predict --test`)
            for p in model.parameters():
                if p.requires_grad and p.dtype == torch.bfloat16:
                    p.data = p.data.float()
        return model

    def export(self, saved: Path, out: Path) -> dict[str, Any]:
        """The fold model with its tokenizer and label scoring (`harness export`)."""
        from harness.methods.hf.export import EXAMPLE_ROW, export_label_scored

        return export_label_scored(self.tok, self.prompts.verbalizers, self.prompts.user_text(EXAMPLE_ROW), saved,
                                   out)

    def load(self, out: Path) -> LabelScoredFitted:
        """The fold model `LabelScoredFitted.save(out)` wrote."""
        if not self.settings.lora.enabled:
            from transformers import AutoModelForCausalLM

            return LabelScoredFitted(self, AutoModelForCausalLM.from_pretrained(out / FULL), {})
        return LabelScoredFitted(self, self.adapter_model(out / ADAPTER), {})


class LabelScoredFitted(Fitted):
    """One fold's model: rows scored on every label's answer text, softmaxed into class probabilities."""

    def __init__(self, lm: LabelScoredLM, model: Any, info: dict[str, Any]):
        self.lm, self.model, self._info = lm, model, info

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        from harness.methods.hf.scoring import softmax_rows

        if not rows:
            return np.zeros((0, len(self.lm.label_names)), dtype=np.float32)
        s = score_rows(self.model, self.lm.prompts, self.lm.prompt_ids(rows), self.lm.settings.generative.score_batch_size)
        return softmax_rows(s)

    def save(self, out: Path) -> None:
        # a PeftModel writes its adapter only; a fully fine-tuned model writes itself
        self.model.save_pretrained(out / (ADAPTER if self.lm.settings.lora.enabled else FULL))

    def info(self) -> dict[str, Any]:
        return self._info

    def close(self) -> None:
        from harness.methods.hf import base_models

        base_models.give_back(self.model)  # the base serves the next fold; this fold's adapter is dropped
        self.model = None
        base_models.free_memory()
