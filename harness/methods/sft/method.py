"""`method: sft`: instruction fine-tuning of a generative LLM as a classifier (Mental-Alpaca style).

Each training row becomes the prompt `prompt` would score (instruction, guide, the row within the token
budget, chat template) followed by its label's verbalizer and the end token. `WeightedSFTTrainer` trains
LoRA (or QLoRA with `quant.load_in_4bit`; full fine-tuning with `lora.enabled: false`) on the completion
only, each row weighted by its label's class weight (`loss.class_weights`), with `loss.label_smoothing`
and `loss.focal_gamma`. Prediction is label scoring (harness.methods.hf.scoring) with the trained model, so
OOF rows are class probabilities like every other method's.

Multi-task: `sft.extra_tasks` adds other labelled datasets, each with its own labels, verbalizers and
instruction, to every fold's training part (never to validation); their rows are weighted by their own
task's class weights times the task's `weight`. Scores and metrics are the experiment's own task only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.methods.base import Fitted, FoldContext, Method, TaskInfo
from harness.methods.hf.generative import TaskPrompts, score_rows
from harness.methods.sft.config import SftConfig
from harness.data.schema import Example

ADAPTER = "adapter"  # LoRA weights only (the base model is rebuilt from model.name_or_path)
FULL = "full"        # lora.enabled: false: the whole fine-tuned model


class SftFitted(Fitted):
    def __init__(self, method: "SftMethod", model: Any, info: dict[str, Any]):
        self.method, self.model, self._info = method, model, info

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        from harness.methods.hf.scoring import softmax_rows

        m = self.method
        if not rows:
            return np.zeros((0, len(m.label_names)), dtype=np.float32)
        s = score_rows(self.model, m.prompts, m.prompt_ids(rows), m.settings.generative.score_batch_size)
        return softmax_rows(s)

    def save(self, out: Path) -> None:
        # a PeftModel writes its adapter only; a fully fine-tuned model writes itself
        self.model.save_pretrained(out / (ADAPTER if self.method.settings.lora.enabled else FULL))

    def info(self) -> dict[str, Any]:
        return self._info

    def close(self) -> None:
        from harness.methods.hf.model import free_memory

        self.model = None
        free_memory()


class SftMethod(Method):
    name = "sft"

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        from harness.methods.hf.model import load_tokenizer

        self.tok = load_tokenizer(settings.model)
        g = settings.generative
        self.prompts = TaskPrompts(task.prompt, self.tok, self.label_names, g.verbalizers, g.instruction, task.facts)
        # extra training tasks are sft's own setting (a method built on sft, like preference, has none)
        self.tasks = self.settings.extra_tasks if isinstance(self.settings, SftConfig) else []
        self._ids: dict[str, list[int]] = {}  # row content -> prompt ids, for every fold and seed
        self._extra: list[tuple[Any, TaskPrompts, list[Example], list[list[int]]]] | None = None

    def prompt_ids(self, rows: Sequence[Example]) -> list[list[int]]:
        keys = [e.content_key() for e in rows]
        for k, e in zip(keys, rows):
            if k not in self._ids:
                self._ids[k] = self.prompts.prompt_ids(e)
        return [self._ids[k] for k in keys]

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        ids = self.prompt_ids(rows)
        extra = self.extra_tasks()
        self.check_extra_tasks_disjoint(rows)
        lengths = [len(x) for x in ids]
        note = f"{self.name} prompts: {len(ids)} rows, tokens p50 {int(np.median(lengths))}, max {max(lengths)}"
        return note + "".join(f"; task {t.name}: {len(r)} extra training rows" for t, _, r, _ in extra)

    def extra_tasks(self) -> list[tuple[Any, TaskPrompts, list[Example], list[list[int]]]]:
        """(task, its prompts, its rows, their prompt ids) of every `sft.extra_tasks` entry, loaded once."""
        if self._extra is None:
            from harness.data.load import load_task

            self._extra = []
            for task in self.tasks:
                rows = load_task(task)
                prompts = TaskPrompts(self.task.prompt, self.tok, task.data.label_names(), task.verbalizers, task.instruction,
                                      task.data.facts())
                self._extra.append((task, prompts, rows, [prompts.prompt_ids(e) for e in rows]))
        return self._extra

    def extra_training_data(self) -> dict[str, tuple[str, list[Example]]]:
        return {f"task {task.name}": (task.data.train_path or f"synthetic:{task.data.synthetic}", rows)
                for task, _, rows, _ in self.extra_tasks()}

    def check_extra_tasks_disjoint(self, rows: Sequence[Example]) -> None:
        """An extra task holding the experiment's own texts (the same data set added twice, or an overlapping
        release) would put validation rows into every fold's training part: refuse, naming the rows."""
        from harness.config import ConfigError

        own = {e.target.strip() for e in rows}
        problems = []
        for task, _, extra_rows, _ in self.extra_tasks():
            dup = [e.id for e in extra_rows if e.target.strip() in own]
            if dup:
                problems.append(f"sft.extra_tasks {task.name!r} ({task.data.train_path or task.data.synthetic}): "
                                f"{len(dup)} rows have the same text as the experiment's own rows (e.g. ids {dup[:3]})")
        if problems:
            raise ConfigError(problems + ["they would put validation rows into every fold's training part: remove "
                                          "them from the extra task's file"])

    def training_set(self, rows: Sequence[Example], class_weights: np.ndarray, with_extra: bool
                     ) -> dict[str, list[Any]]:
        from harness.methods.hf.sft_trainer import completion_features, row_weights
        from harness.data.weights import class_weights as weights_of

        labels = [e.label for e in rows]
        cols = completion_features(self.prompt_ids(rows), [self.prompts.continuations[y] for y in labels],
                                   row_weights(labels, class_weights))
        for task, prompts, extra_rows, ids in (self.extra_tasks() if with_extra else []):
            y = [e.label for e in extra_rows]
            w = weights_of(y, len(prompts.label_names), self.settings.loss)
            more = completion_features(ids, [prompts.continuations[c] for c in y], row_weights(y, w, task.weight))
            for k in cols:
                cols[k] += more[k]
        return cols

    def build_model(self) -> Any:
        """The causal LM to fine-tune: 4-bit base prepared for k-bit training with `quant.load_in_4bit`."""
        from harness.methods.hf.model import disable_cpu_bf16_repack, use_cuda

        model = self.base_model()
        if self.settings.quant.quantized():
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=self.settings.model.gradient_checkpointing or use_cuda(),
                gradient_checkpointing_kwargs={"use_reentrant": False})
            disable_cpu_bf16_repack(model)
        return model

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        import shutil

        from transformers import PrinterCallback, set_seed

        from harness.methods.hf.model import mixed_precision
        from harness.methods.hf.sft_trainer import LeftPadCollator, WeightedSFTTrainer, peft_config, sft_config, to_dataset
        from harness.methods.hf.trainer import log_callback
        from harness.core.progress import interactive

        set_seed(ctx.seed)
        model = self.build_model()
        train_set = to_dataset(self.training_set(train, ctx.class_weights, with_extra=True))
        inner_set = to_dataset(self.training_set(inner, ctx.class_weights, with_extra=False)) if inner else None
        ckpt = ctx.scratch
        trainer = WeightedSFTTrainer(
            model=model, args=sft_config(self.settings, ckpt, ctx.seed, inner_set is not None, mixed_precision(self.settings)),
            train_dataset=train_set, eval_dataset=inner_set, processing_class=self.tok,
            data_collator=LeftPadCollator(self.tok.pad_token_id, self.settings.train.pad_to_multiple_of),
            peft_config=peft_config(self.settings) if self.settings.lora.enabled else None,
            callbacks=[log_callback(ctx.log)], label_smoothing=self.settings.loss.label_smoothing,
            focal_gamma=self.settings.loss.focal_gamma)
        if not interactive():
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        shutil.rmtree(ckpt, ignore_errors=True)  # checkpoints were only for choosing the epoch
        model = self.trained_model(trainer)
        return SftFitted(self, model, {"log_history": list(trainer.state.log_history),
                                       "sft_train_rows": len(train_set)})

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

    def load(self, out: Path) -> Fitted:
        if not self.settings.lora.enabled:
            from transformers import AutoModelForCausalLM

            return SftFitted(self, AutoModelForCausalLM.from_pretrained(out / FULL), {})
        return SftFitted(self, self.adapter_model(out / ADAPTER), {})

    def adapter_model(self, path: Path, trainable: bool = False) -> Any:
        """The base model (quantised as configured) with the LoRA adapter saved at `path`."""
        from peft import PeftModel

        from harness.methods.hf.model import disable_cpu_bf16_repack

        base = self.build_model() if trainable else self.base_model()
        model = PeftModel.from_pretrained(base, str(path), is_trainable=trainable)
        disable_cpu_bf16_repack(model)
        return model

    def base_model(self) -> Any:
        from harness.methods.hf.generative import load_causal_lm

        base = load_causal_lm(self.settings)
        base.config.pad_token_id = self.tok.pad_token_id
        return base
