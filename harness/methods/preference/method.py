"""`method: preference`: DPO, KTO or ORPO on label pairs, the last rungs of the generative ladder.

Each training row of a fold gives pairs: the prompt `sft` and `prompt` use, chosen = its gold label's answer,
rejected = the starting model's most likely wrong label (`preference.negatives: hard`) or every wrong label
(`all`). Pairs are rebalanced per gold class (`preference.rebalance`). Prediction is label scoring, as for sft.

- DPO and KTO start from the LoRA adapter of the *same fold and seed* of an sft run (`preference.sft_run`), and
  that adapter, frozen, is the reference model (TRL copies it into a "ref" adapter). The sft run must have the
  same folds: its fold-k model never saw fold k's validation rows, so neither does this one. Only the trained
  adapter is saved, not the reference copy.
- ORPO needs no reference: it starts from the base model with a fresh adapter.

`train.inner_val_fraction` holds groups out as for other methods, but no checkpoint is chosen on them: set it
to 0 so every training row gives pairs.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError
from harness.methods.base import ExportOptions, Fitted, FoldContext, Method, TaskInfo, resolve_other_run
from harness.methods.hf.causal import ADAPTER, LabelScoredFitted, LabelScoredLM
from harness.run.rundir import RunDir
from harness.data.schema import Example


def _settings_view(settings: Any, task: TaskInfo) -> dict[str, Any]:
    """What an sft run's adapters and this run's pairs must agree on (setting -> value): the model and how it
    was loaded, the prompts and their answers, the task's labels. (Its folds and data: the fold loop.)"""
    from dataclasses import asdict

    return {"model.name_or_path": settings.model.name_or_path,
            **{f"quant.{k}": v for k, v in asdict(settings.quant).items()},
            "generative.verbalizers": settings.generative.verbalizers,
            "generative.instruction": settings.generative.instruction,
            **{f"prompt.{k}": v for k, v in asdict(task.prompt).items()}, "data.labels": list(task.label_names),
            # the preset's instruction, guide and answer texts (data.preset) shape every prompt too
            "data.preset": task.facts.name if task.facts is not None else None}


def sft_run_problems(settings: Any, task: TaskInfo, sft: RunDir) -> list[str]:
    """Why `sft` cannot be the start of this run's folds, from its settings (all reasons at once; empty: it can).
    Its folds and training data are compared by the fold loop (`builds_on`)."""
    theirs = sft.read_config()
    if theirs.method != "sft":
        return [f"{sft}: method is {theirs.method!r}, not 'sft'"]
    problems = [] if theirs.train.save_adapters else [
        f"{sft}: train.save_adapters is false, so its fold adapters were not kept"]
    mine, old = _settings_view(settings, task), _settings_view(theirs.settings(), TaskInfo.of(theirs))
    return problems + [f"{k}: {old[k]!r} in {sft.config_path} but {mine[k]!r} here" for k in mine if mine[k] != old[k]]


def sft_adapter(ctx: FoldContext, sft: RunDir) -> Path:
    """The sft run's saved LoRA adapter of this fold (checked against its manifest), or a clear error."""
    path = ctx.fold_model_of(sft) / ADAPTER
    if not (path / "adapter_config.json").exists():
        raise ConfigError([f"{path}: no saved LoRA adapter (the sft run needs lora.enabled and train.save_adapters)"])
    return path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class PreferenceMethod(Method):
    name = "preference"

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self.lm = LabelScoredLM(settings, task)  # prompts, models and scoring, shared with sft by composition
        self._sft: RunDir | None = None

    def sft_run(self, run: RunDir) -> RunDir:
        """The sft run this one continues, resolved and its settings checked (once per experiment)."""
        if self._sft is None:
            found = resolve_other_run(self.settings.sft_run, run, self.task, "preference.sft_run")
            problems = sft_run_problems(self.settings, self.task, found)
            if problems:
                raise ConfigError(problems + [f"preference.sft_run: {found} cannot start this run's folds"])
            self._sft = found
        return self._sft

    def builds_on(self, run: RunDir) -> list[RunDir]:
        if self.settings.algorithm not in ("dpo", "kto"):
            return []
        return [resolve_other_run(self.settings.sft_run, run, self.task, "preference.sft_run")]

    def check_run(self, run: RunDir) -> None:
        self.lm.check_here()
        if self.settings.algorithm in ("dpo", "kto"):
            self.sft_run(run)

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        return self.lm.prompt_note(rows, self.name)

    def load(self, out: Path) -> Fitted:
        return self.lm.load(out)

    def export_model(self, saved: Path, out: Path, options: ExportOptions) -> dict[str, Any]:
        return self.lm.export(saved, out)

    def start_model(self, ctx: FoldContext) -> tuple[Any, dict[str, Any]]:
        """The model this fold trains: the sft run's adapter of the same fold (dpo, kto: also the reference), or
        the base model with a fresh adapter (orpo); and what it started from, for the fold's metrics."""
        if self.settings.algorithm in ("dpo", "kto"):
            start = sft_adapter(ctx, self.sft_run(ctx.run))
            return (self.lm.adapter_model(start, trainable=True),
                    {"started_from": str(start), "reference_sha256": file_digest(start / "adapter_model.safetensors")})
        return self.lm.build_model(), {"started_from": f"base model {self.settings.model.name_or_path}"}

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        from transformers import PrinterCallback, set_seed

        from harness.methods.hf.model import mixed_precision
        from harness.methods.preference.trainer import (PairCollator, dpo_trainer_class, kto_trainer_class,
                                                           kto_weights, make_pairs, orpo_trainer_class, pair_columns,
                                                           preference_args, unpaired_columns)
        from harness.methods.hf.sft_trainer import peft_config, to_dataset
        from harness.methods.hf.trainer import log_callback
        from harness.methods.hf.generative import score_rows
        from harness.core.progress import interactive

        p, seed, class_weights = self.settings, ctx.seed, ctx.class_weights
        set_seed(seed)
        model, started = self.start_model(ctx)
        info: dict[str, Any] = {"preference_algorithm": p.algorithm, **started}
        ids = self.lm.prompt_ids(train)
        labels = [e.label for e in train]
        # with two labels the hardest wrong label is the only one: no scoring pass needed
        negatives = p.negatives if len(self.label_names) > 2 else "all"
        scores = (score_rows(model, self.lm.prompts, ids, self.settings.generative.score_batch_size)
                  if negatives == "hard" else None)
        rows, chosen, rejected = make_pairs(labels, scores, len(self.label_names), negatives,
                                            p.rebalance, class_weights, seed)
        columns = pair_columns(ids, self.lm.prompts.continuations, rows, chosen, rejected)
        info.update(preference_pairs=len(rows), pairs_per_class=np.bincount(chosen, minlength=len(self.label_names))
                    .tolist())
        kto = (1.0, 1.0)
        if p.algorithm == "kto":
            columns = unpaired_columns(columns, seed)
            kto = kto_weights(columns["label"], p.kto_balance)
            info.update(kto_desirable_weight=kto[0], kto_undesirable_weight=kto[1])
        args = preference_args(self.settings, ctx.scratch, seed, mixed_precision(self.settings), kto)
        common = dict(model=model, args=args, train_dataset=to_dataset(columns), processing_class=self.lm.tok,
                      callbacks=[log_callback(ctx.log)])
        if p.algorithm == "orpo":
            trainer = orpo_trainer_class()(**common, data_collator=PairCollator(self.lm.tok.pad_token_id,
                                                                                  self.settings.train.pad_to_multiple_of),
                                           peft_config=peft_config(self.settings))
        else:
            trainer = (dpo_trainer_class() if p.algorithm == "dpo" else kto_trainer_class())(**common)
        if not interactive():
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        shutil.rmtree(ctx.scratch, ignore_errors=True)  # TRL's output_dir; nothing is chosen from it
        if "ref" in getattr(trainer.model, "peft_config", {}):
            trainer.model.delete_adapter("ref")  # the reference copy is the sft adapter: never saved twice
        model = self.lm.trained_model(trainer)
        info["log_history"] = list(trainer.state.log_history)
        return LabelScoredFitted(self.lm, model, info)
