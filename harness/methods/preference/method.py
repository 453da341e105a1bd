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
from harness.methods.base import Fitted, FoldContext, resolve_other_run
from harness.methods.sft.method import ADAPTER, SftFitted, SftMethod
from harness.run.rundir import RunDir
from harness.data.schema import Example

# keys an sft run must share with the preference run that continues its adapters (flat config keys / prefixes)
SHARED_WITH_SFT = ("data.", "cv.n_folds", "cv.seed", "cv.group_by", "model.name_or_path", "prompt.",
                   "generative.verbalizers", "generative.instruction", "quant.")


def sft_run_problems(cfg: Any, run: RunDir, sft: RunDir) -> list[str]:
    """Why `sft` cannot be the start of this run's folds (all reasons at once; empty: it can)."""
    theirs = sft.read_config()
    problems = [] if theirs.method == "sft" else [f"{sft}: method is {theirs.method!r}, not 'sft'"]
    if not theirs.train.save_adapters:
        problems.append(f"{sft}: train.save_adapters is false, so its fold adapters were not kept")
    mine, old = cfg.to_flat_dict(), theirs.to_flat_dict()
    differ = [k for k in mine if k.startswith(SHARED_WITH_SFT) and mine[k] != old.get(k)]
    problems += [f"{k}: {old.get(k)!r} in {sft.config_path} but {mine[k]!r} here" for k in differ]
    if any(k.startswith(("cv.", "data.")) for k in differ):
        problems.append(f"{sft}: the folds differ (other data or cv settings), so its fold-k model saw this run's "
                        "fold-k validation rows")
    if run.has(run.folds_path().name) and sft.has(sft.folds_path().name) and \
            run.read_folds().fold_of != sft.read_folds().fold_of:
        problems.append(f"{sft.folds_path()} differs from {run.folds_path()}: the folds differ")
    a, b = run.read_fingerprint(), sft.read_fingerprint()
    if a and b and a.get("train", {}).get("sha256") != b.get("train", {}).get("sha256"):
        problems.append(f"{sft}'s data fingerprint differs from {run}'s: the training data differ")
    return problems


def sft_adapter(ctx: FoldContext, sft: RunDir) -> Path:
    """The sft run's saved LoRA adapter of this fold (checked against its manifest), or a clear error."""
    path = ctx.fold_model_of(sft) / ADAPTER
    if not (path / "adapter_config.json").exists():
        raise ConfigError([f"{path}: no saved LoRA adapter (the sft run needs lora.enabled and train.save_adapters)"])
    return path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class PreferenceMethod(SftMethod):
    name = "preference"

    def __init__(self, cfg: Any, cache: Path | None = None):
        super().__init__(cfg, cache)
        self._sft: RunDir | None = None

    def sft_run(self, run: RunDir) -> RunDir:
        """The checked sft run (resolved and checked once per experiment)."""
        if self._sft is None:
            found = resolve_other_run(self.settings.sft_run, run, self.cfg.output_dir, "preference.sft_run")
            problems = sft_run_problems(self.cfg, run, found)
            if problems:
                raise ConfigError(problems + [f"preference.sft_run: {found} cannot start this run's folds"])
            self._sft = found
        return self._sft

    def check_run(self, run: RunDir) -> None:
        super().check_run(run)
        if self.settings.algorithm in ("dpo", "kto"):
            self.sft_run(run)

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
        info: dict[str, Any] = {"preference_algorithm": p.algorithm}
        if p.algorithm in ("dpo", "kto"):
            start = sft_adapter(ctx, self.sft_run(ctx.run))
            model = self.adapter_model(start, trainable=True)
            info.update(started_from=str(start), reference_sha256=file_digest(start / "adapter_model.safetensors"))
        else:
            model = self.build_model()
            info.update(started_from=f"base model {self.cfg.model.name_or_path}")
        ids = self.prompt_ids(train)
        labels = [e.label for e in train]
        # with two labels the hardest wrong label is the only one: no scoring pass needed
        negatives = p.negatives if len(self.label_names) > 2 else "all"
        scores = (score_rows(model, self.prompts, ids, self.cfg.generative.score_batch_size)
                  if negatives == "hard" else None)
        rows, chosen, rejected = make_pairs(labels, scores, len(self.label_names), negatives,
                                            p.rebalance, class_weights, seed)
        columns = pair_columns(ids, self.prompts.continuations, rows, chosen, rejected)
        info.update(preference_pairs=len(rows), pairs_per_class=np.bincount(chosen, minlength=len(self.label_names))
                    .tolist())
        kto = (1.0, 1.0)
        if p.algorithm == "kto":
            columns = unpaired_columns(columns, seed)
            kto = kto_weights(columns["label"], p.kto_balance)
            info.update(kto_desirable_weight=kto[0], kto_undesirable_weight=kto[1])
        args = preference_args(self.cfg, ctx.scratch, seed, mixed_precision(self.cfg), kto)
        common = dict(model=model, args=args, train_dataset=to_dataset(columns), processing_class=self.tok,
                      callbacks=[log_callback(ctx.log)])
        if p.algorithm == "orpo":
            trainer = orpo_trainer_class()(**common, data_collator=PairCollator(self.tok.pad_token_id,
                                                                                  self.cfg.train.pad_to_multiple_of),
                                           peft_config=peft_config(self.cfg))
        else:
            trainer = (dpo_trainer_class() if p.algorithm == "dpo" else kto_trainer_class())(**common)
        if not interactive():
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        shutil.rmtree(ctx.scratch, ignore_errors=True)  # TRL's output_dir; nothing is chosen from it
        if "ref" in getattr(trainer.model, "peft_config", {}):
            trainer.model.delete_adapter("ref")  # the reference copy is the sft adapter: never saved twice
        model = self.trained_model(trainer)
        info["log_history"] = list(trainer.state.log_history)
        return SftFitted(self, model, info)
