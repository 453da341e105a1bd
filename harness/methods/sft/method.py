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

from harness.methods.base import ExportOptions, Fitted, FoldContext, Method, TaskInfo
from harness.methods.hf.causal import LabelScoredFitted, LabelScoredLM
from harness.methods.hf.generative import TaskPrompts
from harness.methods.sft.config import SftConfig
from harness.data.schema import Example


class SftMethod(Method):
    name = "sft"

    def __init__(self, settings: SftConfig, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self.lm = LabelScoredLM(settings, task)
        self._extra: list[tuple[Any, TaskPrompts, list[Example], list[list[int]]]] | None = None

    def check_run(self, run: "RunDir") -> None:
        self.lm.check_here()

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        note = self.lm.prompt_note(rows, self.name)
        extra = self.extra_tasks()
        self.check_extra_tasks_disjoint(rows)
        return note + "".join(f"; task {t.name}: {len(r)} extra training rows" for t, _, r, _ in extra)

    def extra_tasks(self) -> list[tuple[Any, TaskPrompts, list[Example], list[list[int]]]]:
        """(task, its prompts, its rows, their prompt ids) of every `sft.extra_tasks` entry, loaded once."""
        if self._extra is None:
            from harness.data.load import load_task

            self._extra = []
            for task in self.settings.extra_tasks:
                rows = load_task(task)
                prompts = TaskPrompts(self.task.prompt, self.lm.tok, task.data.label_names(), task.verbalizers,
                                      task.instruction, task.data.facts())
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
        cols = completion_features(self.lm.prompt_ids(rows), [self.lm.prompts.continuations[y] for y in labels],
                                   row_weights(labels, class_weights))
        for task, prompts, extra_rows, ids in (self.extra_tasks() if with_extra else []):
            y = [e.label for e in extra_rows]
            w = weights_of(y, len(prompts.label_names), self.settings.loss)
            more = completion_features(ids, [prompts.continuations[c] for c in y], row_weights(y, w, task.weight))
            for k in cols:
                cols[k] += more[k]
        return cols

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        import shutil

        from transformers import PrinterCallback, set_seed

        from harness.methods.hf.model import mixed_precision
        from harness.methods.hf.sft_trainer import LeftPadCollator, WeightedSFTTrainer, peft_config, sft_config, to_dataset
        from harness.methods.hf.trainer import chosen_step, log_callback
        from harness.core.progress import interactive

        set_seed(ctx.seed)
        model = self.lm.build_model()
        train_set = to_dataset(self.training_set(train, ctx.class_weights, with_extra=True))
        inner_set = to_dataset(self.training_set(inner, ctx.class_weights, with_extra=False)) if inner else None
        ckpt = ctx.scratch
        trainer = WeightedSFTTrainer(
            model=model, args=sft_config(self.settings, ckpt, ctx.seed, inner_set is not None, mixed_precision(self.settings)),
            train_dataset=train_set, eval_dataset=inner_set, processing_class=self.lm.tok,
            data_collator=LeftPadCollator(self.lm.tok.pad_token_id, self.settings.train.pad_to_multiple_of),
            peft_config=peft_config(self.settings) if self.settings.lora.enabled else None,
            callbacks=[log_callback(ctx.log)], label_smoothing=self.settings.loss.label_smoothing,
            focal_gamma=self.settings.loss.focal_gamma)
        if not interactive():
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        shutil.rmtree(ckpt, ignore_errors=True)  # checkpoints were only for choosing the epoch
        model = self.lm.trained_model(trainer)
        return LabelScoredFitted(self.lm, model, {"log_history": list(trainer.state.log_history),
                                                  "chosen_step": chosen_step(trainer.state),
                                       "sft_train_rows": len(train_set)})

    def load(self, out: Path) -> Fitted:
        return self.lm.load(out)

    def export_model(self, saved: Path, out: Path, options: ExportOptions) -> dict[str, Any]:
        return self.lm.export(saved, out)
