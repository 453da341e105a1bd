"""How a method announces itself: a name, its settings' dataclass, and where its code is.

A leaf (standard library only): the config reads specs to know each method's section without importing
any model library; the method's code is imported only when the method is chosen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


# the experiment config's own top-level keys: no method may take one as its section (tests/test_plugins.py
# checks this list against ExperimentConfig's fields)
CORE_KEYS = frozenset({"name", "output_dir", "run_dir", "method", "data", "prompt", "train", "loss", "cv", "augment",
                       "decide", "track", "tune", "sections"})


@dataclass(frozen=True)
class MethodSpec:
    """One method family, as the registry knows it.

    name: the value of `method:` that chooses it.
    method: "module:Class" of its `Method` subclass, imported on first use (choosing tfidf never imports torch).
    help: one line for `harness config --keys` and `--help`.
    section: the YAML section holding its own keys (None: it has none).
    config: the dataclass of the method's settings, what its `Method` is built from: its own keys (the section's),
      plus the sections it shares with a family of methods, declared with `harness.config.fields.shared_section`
      (the HF methods extend `harness.methods.hf.settings.HFSettings`). `check()` returns the problems of its own
      keys; an optional `check_with(label_names)` checks them against the shared sections and the task's labels.
    uses_model: the method reads `model.name_or_path`.
    """

    name: str
    method: str
    help: str = ""
    section: str | None = None
    config: type | None = None
    uses_model: bool = False  # it reads model.name_or_path (reports show the model only for such methods)
    token_prompts: bool = False  # its inputs are token prompts (`harness validate` shows their lengths)
    # overrides that make it fast on a CPU for `harness.testing.check_method` (the built-in contract test and a
    # plugin's own tests use them: no list of methods is kept anywhere else)
    test_settings: tuple[str, ...] = ()

    def method_class(self) -> Any:
        module, cls = self.method.split(":")
        return getattr(importlib.import_module(module), cls)
