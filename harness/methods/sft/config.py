"""`sft:` settings of class-weighted instruction fine-tuning, and its extra training tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.fields import setting
from harness.config.sections import DataConfig
from harness.config.presets import named_instructions
from harness.methods.hf.settings import HFSettings


@dataclass
class TaskConfig:
    """One extra labelled dataset for multi-task instruction tuning (Mental-Alpaca style)."""
    name: str = setting("task name (logs, data fingerprint)", "task")
    data: DataConfig = field(default_factory=DataConfig)
    verbalizers: list[str] | None = setting("answer text of each of this task's labels; none = its data preset's", None)
    instruction: str = setting("this task's instruction: auto (its data preset's), a named one ("
                             + ", ".join(named_instructions()) + ") or literal text", "auto")
    weight: float = setting("multiplier on this task's rows in the loss (after its own class weights)", 1.0)

    def check(self, prefix: str) -> list[str]:
        p = [prefix + x.removeprefix("data.") for x in self.data.check()]
        n = len(self.data.label_names())
        if self.data.synthetic == "none" and not self.data.train_path:
            p.append(f"{prefix}train_path: required unless {prefix}synthetic is set")
        if self.verbalizers is not None and n and len(self.verbalizers) != n:  # n = 0: labels already reported
            p.append(f"{prefix.removesuffix('data.')}verbalizers: {len(self.verbalizers)} for {n} labels")
        if self.weight <= 0:
            p.append(f"{prefix.removesuffix('data.')}weight: must be > 0")
        return p


@dataclass
class SftConfig(HFSettings):
    extra_tasks: list[TaskConfig] = setting(
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
