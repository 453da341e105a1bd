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
CORE_KEYS = frozenset({"name", "output_dir", "run_dir", "method", "data", "prompt", "model", "lora", "quant", "train",
                       "loss", "cv", "augment", "generative", "decide", "track", "tune", "sections"})


@dataclass(frozen=True)
class MethodSpec:
    """One method family, as the registry knows it.

    name: the value of `method:` that chooses it.
    method: "module:Class" of its `Method` subclass, imported on first use (choosing tfidf never imports torch).
    help: one line for `harness config --keys` and `--help`.
    section: the YAML section holding its own settings (None: it has none); `config`: that section's dataclass,
      whose `check()` returns its problems and whose optional `check_with(cfg)` checks it against the rest of the
      experiment when this method is the chosen one. uses_model: the method reads `model.name_or_path`.
    """

    name: str
    method: str
    help: str = ""
    section: str | None = None
    config: type | None = None
    uses_model: bool = False  # it reads model.name_or_path (reports show the model only for such methods)
    # overrides that make it fast on a CPU for `harness.testing.check_method` (the built-in contract test and a
    # plugin's own tests use them: no list of methods is kept anywhere else)
    test_settings: tuple[str, ...] = ()

    def method_class(self) -> Any:
        module, cls = self.method.split(":")
        return getattr(importlib.import_module(module), cls)
