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
import yaml

from harness.methods.base import Fitted, LogSink, no_log
from harness.methods.sft import ADAPTER, SftFitted, SftMethod
from harness.schema import Example

# keys an sft run must share with the preference run that continues its adapters (flat config keys / prefixes)
SHARED_WITH_SFT = ("data.", "cv.n_folds", "cv.seed", "cv.group_by", "model.name_or_path", "prompt.",
                   "generative.verbalizers", "generative.instruction", "quant.")


def resolve_run(ref: str, run_dir: Path, output_dir: str | Path) -> Path:
    """A run directory from `ref`: a path, or an experiment name among this run's siblings (a sweep's runs),
    then as <output_dir>/<name>."""
    from harness.config import ConfigError

    path = Path(ref)
    if (path / "config.yaml").exists():
        return path
    for sibling in sorted(Path(run_dir).parent.glob("*/config.yaml")):
        if (yaml.safe_load(sibling.read_text(encoding="utf-8")) or {}).get("name") == ref:
            return sibling.parent
    named = Path(output_dir) / ref
    if (named / "config.yaml").exists():
        return named
    raise ConfigError([f"preference.sft_run: {ref!r} is not a run directory, nor the name of a run in "
                       f"{Path(run_dir).parent} or {output_dir}: run the sft experiment first"])


def sft_run_problems(cfg: Any, run_dir: Path, sft_dir: Path) -> list[str]:
    """Why `sft_dir` cannot be the start of this run's folds (all reasons at once; empty: it can)."""
    from harness.config import load_config
    from harness.layout import DATA_FINGERPRINT
    from harness.store import read_json

    theirs = load_config(sft_dir / "config.yaml")
    problems = [] if theirs.method == "sft" else [f"{sft_dir}: method is {theirs.method!r}, not 'sft'"]
    if not theirs.train.save_adapters:
        problems.append(f"{sft_dir}: train.save_adapters is false, so its fold adapters were not kept")
    mine, old = cfg.to_flat_dict(), theirs.to_flat_dict()
    problems += [f"{k}: {old.get(k)!r} in {sft_dir / 'config.yaml'} but {mine[k]!r} here" for k in mine
                 if k.startswith(SHARED_WITH_SFT) and mine[k] != old.get(k)]
    for name in ("folds.json", DATA_FINGERPRINT):
        a, b = run_dir / name, sft_dir / name
        if a.exists() and b.exists():
            ra, rb = read_json(a), read_json(b)
            same = ra.get("fold_of") == rb.get("fold_of") if name == "folds.json" else (
                ra.get("train", {}).get("sha256") == rb.get("train", {}).get("sha256"))
            if not same:
                problems.append(f"{b} differs from {a}: " + ("the folds differ" if name == "folds.json"
                                                             else "the training data differ"))
    return problems


def sft_adapter(sft_dir: Path, seed: int, fold: int) -> Path:
    """The finished fold's saved adapter of the sft run, or a clear error."""
    from harness.config import ConfigError
    from harness.layout import MODEL_DIR, fold_dir

    out = fold_dir(sft_dir, seed, fold)
    if not (out / "probs.npz").exists():
        seeds = sorted(p.name for p in (sft_dir / "folds").glob("seed*"))
        raise ConfigError([f"{out}: fold {fold} of seed {seed} of the sft run is not finished (its seeds: "
                           f"{seeds or 'none'}); run `harness cv` on it first, with the same train.seeds"])
    path = out / MODEL_DIR / ADAPTER
    if not (path / "adapter_config.json").exists():
        raise ConfigError([f"{path}: no saved LoRA adapter (the sft run needs lora.enabled and train.save_adapters)"])
    return path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class PreferenceMethod(SftMethod):
    name = "preference"

    def __init__(self, cfg: Any, cache: Path | None = None):
        super().__init__(cfg, cache)
        self._sft_dir: Path | None = None

    def sft_dir(self, run_dir: Path) -> Path:
        """The checked sft run (resolved and checked once per experiment)."""
        from harness.config import ConfigError

        if self._sft_dir is None:
            found = resolve_run(self.cfg.preference.sft_run, run_dir, self.cfg.output_dir)
            problems = sft_run_problems(self.cfg, run_dir, found)
            if problems:
                raise ConfigError(problems + [f"preference.sft_run: {found} cannot start this run's folds"])
            self._sft_dir = found
        return self._sft_dir

    def fit(self, train: Sequence[Example], inner: Sequence[Example], *, seed: int, class_weights: np.ndarray,
            out: Path, log: LogSink = no_log) -> Fitted:
        from transformers import PrinterCallback, set_seed

        from harness.layout import parse_fold_dir
        from harness.methods.hf.model import mixed_precision
        from harness.methods.hf.preference_trainer import (PairCollator, dpo_trainer_class, kto_trainer_class,
                                                           kto_weights, make_pairs, orpo_trainer_class, pair_columns,
                                                           preference_args, unpaired_columns)
        from harness.methods.hf.sft_trainer import peft_config, to_dataset
        from harness.methods.hf.trainer import log_callback
        from harness.methods.prompting import score_rows
        from harness.progress import interactive

        p = self.cfg.preference
        run_dir, _, fold = parse_fold_dir(out)
        set_seed(seed)
        info: dict[str, Any] = {"preference_algorithm": p.algorithm}
        if p.algorithm in ("dpo", "kto"):
            start = sft_adapter(self.sft_dir(run_dir), seed, fold)
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
        args = preference_args(self.cfg, out / "checkpoints", seed, mixed_precision(self.cfg), kto)
        common = dict(model=model, args=args, train_dataset=to_dataset(columns), processing_class=self.tok,
                      callbacks=[log_callback(log)])
        if p.algorithm == "orpo":
            trainer = orpo_trainer_class()(**common, data_collator=PairCollator(self.tok.pad_token_id,
                                                                                  self.cfg.train.pad_to_multiple_of),
                                           peft_config=peft_config(self.cfg))
        else:
            trainer = (dpo_trainer_class() if p.algorithm == "dpo" else kto_trainer_class())(**common)
        if not interactive():
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # TRL's output_dir; nothing is chosen from it
        if "ref" in getattr(trainer.model, "peft_config", {}):
            trainer.model.delete_adapter("ref")  # the reference copy is the sft adapter: never saved twice
        model = self.trained_model(trainer)
        info["log_history"] = list(trainer.state.log_history)
        return SftFitted(self, model, info)
