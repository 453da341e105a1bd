"""The seam every classifier method plugs into.

A method is built from its own settings (its dataclass, shared sections filled in) and a `TaskInfo`: what the
fold loop knows of the task. It never sees the experiment config.

The fold loop (harness.run.cv) knows only this protocol: it hands a method `Example` rows (never token ids, so
methods without a tokenizer never see one) and a `FoldContext` (which run, seed and fold; a scratch folder;
the fold's class weights; a log sink; a way to reach another run's same fold), and gets back a `Fitted`
whose `predict_proba` gives (N, K) probabilities in the config's label order. Everything after that
(OOF/test files, decision layer, metrics, tracking, tuning) never learns which method ran.

A new method is one package `harness/methods/<name>/` (or a third-party package registered through the
`harness.methods` entry-point group): `__init__.py` with `METHOD = MethodSpec(...)`, `config.py` with its
settings' dataclass, and the `Method` subclass. See README, "Add a method".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.config import ConfigError, ExperimentConfig, PromptConfig
from harness.config.presets import Preset
from harness.methods.registry import spec, specs
from harness.run.rundir import RunDir
from harness.data.schema import Example

LogSink = Callable[[dict[str, float], int], None]  # (values, step): training curves for the trackers


def no_log(values: dict[str, float], step: int) -> None:
    """The log sink when nothing tracks."""


@dataclass(frozen=True)
class TaskInfo:
    """What the fold loop knows about the task: all a method learns of the experiment beyond its own settings."""
    label_names: tuple[str, ...]
    prompt: PromptConfig = field(default_factory=PromptConfig)  # how a row becomes text: layout, context turns, token budget, guide
    facts: Preset | None = None  # the data set's preset: label descriptions, instruction, answer texts
    score_labels: tuple[int, ...] | None = None  # the classes the official score averages over (None: all)
    group_key: str = "group"  # rows sharing this key's value stay on one side of every split
    runs_root: Path = Path("runs")  # where another run is found by experiment name (the config's output_dir)

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> TaskInfo:
        score = cfg.data.score_labels
        return cls(label_names=tuple(cfg.data.label_names()), prompt=cfg.prompt, facts=cfg.data.facts(),
                   score_labels=tuple(score) if score is not None else None, group_key=cfg.group_key(),
                   runs_root=Path(cfg.output_dir))


@dataclass(frozen=True)
class FoldContext:
    """Everything a method may know about the fold it trains, passed explicitly (never parsed from paths)."""
    run: RunDir
    seed: int
    fold: int
    class_weights: np.ndarray  # (K,) from this fold's own training labels (loss.class_weights)
    scratch: Path  # the method's transient files (trainer checkpoints); the method removes what it leaves
    log: LogSink = no_log

    def fold_model_of(self, other: RunDir) -> Path:
        """This seed and fold's saved model in another run (DPO continues the sft run's adapter of the same fold),
        checked against that run's manifest; a clear error when that fold is unfinished or kept no model."""
        if not other.fold_done(self.seed, self.fold):
            raise ConfigError([f"{other.fold_dir(self.seed, self.fold)}: fold {self.fold} of seed {self.seed} of "
                               f"{other.path} is not finished (its seeds: {other.seeds_on_disk() or 'none'}); run "
                               "`harness cv` on it first, with the same train.seeds"])
        model = other.verified_model_dir(self.seed, self.fold)
        if model is None:
            raise ConfigError([f"{other.model_dir(self.seed, self.fold)}: no saved model (that run needs "
                               "train.save_adapters=true)"])
        return model


@dataclass(frozen=True)
class ExportOptions:
    """How `Method.export_model` writes one model: merged full weights, and the decision to fold into a
    classification head (per-class biases δ and a temperature T: scores become (z + δ) / T), if the caller
    found it foldable. A method that cannot fold it says so in its answer and the loader applies it."""
    merge: bool = False
    fold_delta: np.ndarray | None = None
    fold_temperature: float = 1.0


def resolve_other_run(ref: str, run: RunDir, task: TaskInfo, key: str) -> RunDir:
    """Another run a method builds on (a path, or an experiment name among this run's siblings, then under
    the task's runs_root); `key` names the setting in errors."""
    try:
        return RunDir.resolve(ref, run.path, task.runs_root)
    except FileNotFoundError as e:
        raise ConfigError([f"{key}: {e}: run that experiment first"]) from None


class Fitted(ABC):
    """One fold's trained model."""

    @abstractmethod
    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        """(len(rows), K) float32 class probabilities, rows summing to 1, in the config's label order."""

    @abstractmethod
    def save(self, out: Path) -> None:
        """Write what `Method.load(out)` needs to give identical probabilities (no pickle)."""

    def info(self) -> dict[str, Any]:
        """Extra fold metrics (training log, padding, …) for the fold's metrics.json."""
        return {}

    def close(self) -> None:
        """Release memory (GPU weights) before the next fold is built."""


class Method(ABC):
    """One family of classifiers. One instance serves a whole experiment, so it may cache per-row work
    (tokenised prompts, embeddings) across folds and seeds, keyed by row content."""

    name: str = ""

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        self.settings = settings  # its spec's `config` dataclass, shared sections filled in (None: it has none)
        self.task = task
        self.label_names = list(task.label_names)
        self.cache = cache  # a folder for content-keyed caches that outlive the process (None: memory only)

    def extra_training_data(self) -> dict[str, tuple[str, list[Example]]]:
        """Labelled data the method adds to every fold's training part beyond the experiment's own rows
        (part name -> (source, rows)): fingerprinted with the run, so a resume over changed data is refused."""
        return {}

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str | None:
        """Optional one-off work over every row before the folds (encode, embed); a line for the log."""
        return None

    def check_run(self, run: RunDir) -> None:
        """Optional checks of what the method needs from outside its rows (another run), before any fold
        trains; raise ConfigError listing every problem."""

    def builds_on(self, run: RunDir) -> list[RunDir]:
        """Other runs whose fold models this method continues (as DPO continues an sft run): the fold loop
        refuses one whose folds or training data differ from this run's, before any fold trains."""
        return []

    @abstractmethod
    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        """Train on `train`; `inner` (held-out groups of the training part, maybe empty) is for checkpoint
        choice only. Validation rows never reach this call."""

    @abstractmethod
    def load(self, out: Path) -> Fitted:
        """The model `Fitted.save(out)` wrote."""

    def export_model(self, saved: Path, out: Path, options: ExportOptions) -> dict[str, Any]:
        """Write the model `Fitted.save` wrote in `saved` to the new folder `out`, in its ecosystem's format where
        it has one, so that `load(out)` still gives the same probabilities; returns what the model card says of
        it: `format`, `loads_with` (a line of Python), `folded` (the decision is in the head), `settings` (keys
        of the method's settings the exported model now differs in, e.g. a merged adapter: lora.enabled=false).
        By default the harness's own files (arrays and JSON, no pickle), which `harness.load` reads."""
        import shutil

        shutil.copytree(saved, out)
        return {"format": "harness", "loads_with": "harness.load(DIR)", "folded": False, "settings": {}}


def method_class(name: str) -> type[Method]:
    return spec(name).method_class()


def make_method(cfg: ExperimentConfig, cache: Path | None = None) -> Method:
    """The method `cfg.method` names, built from its settings and the task (never the config itself)."""
    try:
        cls = method_class(cfg.method)
    except KeyError as e:  # a run of a plugin that is not installed here: readable, not runnable
        from harness.config import ConfigError

        raise ConfigError([f"method: {e.args[0]}; install its plugin to train or score with it"]) from None
    return cls(cfg.settings(), TaskInfo.of(cfg), cache)


def installed() -> list[str]:
    return sorted(specs())


def check_probs_shape(probs: np.ndarray, n_rows: int, n_labels: int, who: str) -> np.ndarray:
    """The contract at the seam: (N, K) finite probabilities summing to 1; a method breaking it is named."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape != (n_rows, n_labels):
        raise ValueError(f"{who}: predict_proba gave shape {probs.shape}, expected ({n_rows}, {n_labels})")
    if n_rows and (not np.isfinite(probs).all() or np.abs(probs.sum(1) - 1).max() > 1e-3 or (probs < 0).any()):
        raise ValueError(f"{who}: predict_proba rows must be finite, non-negative and sum to 1")
    return probs
