"""The core config sections: data, prompt layout, training, loss, folds, decisions, tracking and search.
A method's own settings live beside the method (harness/methods/<name>/config.py); the settings the HF
methods share (model, lora, quant, generative) live in harness/methods/hf/settings.py.

Imports no torch, numpy, wandb or optuna: every command imports it.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, Literal

from harness.core import keys
from harness.config.fields import setting as _help
from harness.config.presets import PRESETS, Preset

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
    preset: str = _help(
        "the public data set whose facts (label names, prompt guide, instruction, answer texts) fill what this "
        "config leaves unset: " + ", ".join(PRESETS) + "; auto = psydefdetect for PsyDefConv files and synthetic "
        "psydefconv, dreaddit for synthetic dreaddit, none for tables; none = no facts (give data.labels)", "auto")
    labels: list[str] | None = _help("label names, index = label id; none = the preset's", None)
    score_labels: list[int] | None = _help(
        "label ids of the official macro-F1 (PsyDefDetect: 1..8); none = all labels", None)
    max_rows: int | None = _help("use only the first N rows (quick looks); none = all", None)
    label_fixes: str | None = _help(
        "CSV of label corrections applied to the training rows at load time: id, label (name or id), optional "
        "note, optional accept (only rows marked yes are applied); counted in the data fingerprint and listed in "
        "the report. `harness audit RUN --fixes-template` writes one from the audit", None)
    max_target_chars: int = _help(
        "a row whose target text is longer is reported as invalid (a 1 MB target would make a model try to "
        "allocate hundreds of GB)", 20000)

    def facts(self) -> Preset | None:
        """The preset this data set takes its facts from (None: none, the config says everything itself)."""
        name = self.preset
        if name == "auto":
            name = {"psydefconv": "psydefdetect", "dreaddit": "dreaddit"}.get(self.synthetic, "none")
            if self.synthetic == "none":
                name = "psydefdetect" if self.format == "psydefconv" else "none"
        return PRESETS.get(name)

    def label_names(self) -> list[str]:
        if self.labels:
            return list(self.labels)
        facts = self.facts()
        return list(facts.labels) if facts else []

    def check(self) -> list[str]:
        p = []
        if self.preset not in ("auto", "none", *PRESETS):
            p.append(f"data.preset: {self.preset!r} is not one of auto, none, {', '.join(PRESETS)}")
        elif not self.label_names():
            p.append("data.labels: required (the label names in id order), or choose a data.preset: "
                     + ", ".join(PRESETS))
        names = self.label_names()
        if len(set(names)) != len(names):
            p.append(f"data.labels: label names must be distinct, got {names}")
        if self.synthetic_groups < 10:
            p.append("data.synthetic_groups: must be >= 10")
        n = len(self.label_names())
        for lab in (self.score_labels or []) if n else []:  # no labels at all is said once, above
            if not 0 <= lab < n:
                p.append(f"data.score_labels: {lab} is outside 0..{n - 1}")
        if self.max_rows is not None and self.max_rows < 2:
            p.append("data.max_rows: must be >= 2")
        return p


@dataclass
class PromptConfig:
    layout: Literal["decoder", "pair"] = _help(
        "decoder: guide + context + marked target + instruction; pair: target as segment A, context as B", "decoder")
    guide: str = _help("label guide in decoder prompts: 'auto' (the data preset's, if it has one), 'dmrs', "
                       "'none', or the literal guide text", "auto")
    context_turns: int = _help("keep at most this many turns before the target", 30)
    max_length: int = _help("token budget per prompt; the guide and target are never cut", 1024)
    truncate_target: bool = _help(
        "plain-text tasks (Dreaddit): cut a target that alone exceeds max_length; dialogue tasks keep it whole",
        False)
    instruction: str = _help(
        "output instruction appended after the target (decoder layout): auto = the data preset's, none, or the "
        "literal text", "auto")

    def check(self) -> list[str]:
        p = []
        if self.context_turns < 0:
            p.append("prompt.context_turns: must be >= 0")
        if self.max_length < 16:
            p.append("prompt.max_length: must be >= 16")
        return p


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
    train_fraction: float = _help(
        "learning curves (`harness curve`): train each fold on this fraction of its training groups, drawn per "
        "class so every class keeps a group where it can; validation parts stay whole", 1.0)
    fraction_draw: int = _help("learning curves: which random draw of the training groups (0, 1, ...)", 0)

    def check(self) -> list[str]:
        p = []
        if self.n_folds < 2:
            p.append("cv.n_folds: must be >= 2")
        if not 0 < self.train_fraction <= 1:
            p.append(f"cv.train_fraction: {self.train_fraction} must be in (0, 1]")
        if self.fraction_draw < 0:
            p.append("cv.fraction_draw: must be >= 0")
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


DELTA_LIMIT = 50.0  # the largest class bias a decision may hold (harness.posthoc.decision checks files against it too)


@dataclass
class DecideConfig:
    enabled: bool = _help("run the decision layer at the end of `harness cv`", False)
    sampler: Literal["tpe", "random", "qmc", "cmaes"] = _help(
        "cmaes: a Sobol warm start refined by CMA-ES generations; qmc: a Sobol design; random: uniform draws (all "
        "three scored in large batches, the study recording each batch's best); tpe: Optuna's TPE, one trial at a "
        "time (slow: for comparison)", "cmaes")
    n_trials: int = _help("candidate decisions scored per search (each cross-fitting search too)", 1000)
    timeout: float | None = _help("seconds per search (none = no limit)", None)
    seed: int = _help("sampler seed", 0)
    delta_range: list[float] = _help("box for each class bias delta", factory=lambda: [-2.0, 2.0])
    delta_classes: list[int] | None = _help("classes that get a bias (none = all)", None)
    gate: str = _help("gate class: 'majority' (training majority), 'off', or a label id", "majority")
    tau_range: list[float] = _help("range of the gate threshold tau", factory=lambda: [0.5, 1.0])
    blend: Literal["search", "equal", "fixed"] = _help("seed-blend weights: searched, equal, or `weights`", "search")
    weights: list[float] | None = _help("fixed seed-blend weights (blend=fixed)", None)
    complexity: Literal["auto", "argmax", "prior", "blend", "delta", "delta_gate", "full"] = _help(
        "how much decision the OOF rows may pay for: auto = the rung of argmax -> prior (one class-prior shift) -> "
        "blend (seed or member weights only) -> delta (per-class bias) -> delta_gate (+ majority gate) -> full "
        "(delta + gate + weights) whose cross-fitted score over the OOF folds is best (argmax when nothing earns "
        "its place); or pin one rung", "auto")
    shrinkage: list[float] = _help(
        "penalties on mean |delta| tried for each searched rung (chosen with the rung, by cross-fitting)",
        factory=lambda: [0.0, 0.02])
    rung_margin: float = _help(
        "complexity auto: a richer rung is locked only if it beats every simpler one by more than this many paired "
        "standard errors of the fold-by-fold score differences (larger: argmax more often)", 2.0)
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
        if self.weights is not None:
            w = [float(x) for x in self.weights]
            if not all(math.isfinite(x) and x >= 0 for x in w):
                p.append(f"decide.weights: {self.weights} must be finite and >= 0")
            elif not any(x > 0 for x in w):
                p.append(f"decide.weights: {self.weights} are all zero: nothing to blend")
        bounds = [*self.delta_range, *self.tau_range]
        if not all(math.isfinite(float(x)) for x in bounds):
            p.append("decide.delta_range, decide.tau_range: must be finite")
        elif len(self.delta_range) == 2 and max(abs(float(x)) for x in self.delta_range) > DELTA_LIMIT:
            p.append(f"decide.delta_range: {self.delta_range} beyond ±{DELTA_LIMIT:g} (a bias that large decides "
                     "every row by itself)")
        if len(self.tau_range) == 2 and self.tau_range[0] == self.tau_range[1] and self.gate != "off":
            p.append(f"decide.tau_range: {self.tau_range} is empty; give low < high, or decide.gate=off")
        if self.random_baseline < 0:
            p.append("decide.random_baseline: must be >= 0 (0 = skip)")
        if self.timeout is not None and not self.timeout > 0:
            p.append("decide.timeout: must be > 0 seconds (or null: no limit)")
        if self.metric not in keys.SCORES:
            p.append(f"decide.metric: {self.metric!r} is not one of {list(keys.SCORES)}")
        if not self.shrinkage or any(x < 0 for x in self.shrinkage):
            p.append("decide.shrinkage: one or more penalties >= 0")
        if self.rung_margin < 0:
            p.append("decide.rung_margin: must be >= 0")
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
    verbose: bool = _help("W&B's own console lines (run links, sync hints); off so the harness's table is the last "
                          "thing on screen (`wandb sync` and the run directory's track.json still say where runs are)",
                          False)
    log_adapters: bool = _help(
        "add every fold's saved model (folds/*/*/model) to the results artifact (large for 8B models)", False)
    registry: str | None = _help(
        "`harness export`: link the exported model artifact to this W&B Registry collection "
        "('wandb-registry-model/<collection>', or '<collection>' in the model registry); online runs only", None)




@dataclass
class TuneConfig:
    space: dict[str, Any] = _help(
        "search space: {'section.key': {type: float|int|categorical, low, high, log, choices}}", factory=dict)
    metric: str = _help("objective: a key of metrics.json, e.g. cv/macro_f1_official or decide/macro_f1_official",
                        keys.DEFAULT_TUNE_METRIC)
    direction: Literal["maximize", "minimize"] = _help("optimisation direction", "maximize")
    storage: str | None = _help("Optuna storage URL; none = sqlite:///studies/<study>.db", None)
    pruner: Literal["median", "percentile", "halving", "wilcoxon", "none"] = _help(
        "fold-level pruner: median (running CV mean below the other trials' median at the same fold), percentile "
        "(below tune.pruner_percentile), halving (asynchronous successive halving over folds: keeps the top "
        "third at each rung), or wilcoxon (paired test of per-fold scores against the best trial; needs >= 4 folds "
        "to ever prune). Default from benchmarks/pruning.py: percentile saved the most fold trainings (45-51%) and "
        "kept the unpruned best trial", "percentile")
    pruner_warmup_folds: int = _help("folds every trial runs before it can be pruned", 2)
    pruner_startup_trials: int = _help("median, percentile: finished trials needed before pruning starts", 3)
    pruner_percentile: float = _help("percentile: keep trials above this percentile of the others at the same "
                                     "fold (50 = median; lower prunes more)", 25.0)
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
        if not 0 < self.pruner_percentile < 100:
            p.append("tune.pruner_percentile: must be in (0, 100)")
        if self.pruner_warmup_folds < 1:
            p.append("tune.pruner_warmup_folds: must be >= 1")
        for key, spec in self.space.items():  # which keys are searchable: ExperimentConfig.check
            where = f"tune.space.{key}"
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


