"""What every config section is made of: a field with its help text, and the one error type.

A leaf: method plugins import it to declare their own section without importing the config package.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """All problems found in a config, one per line."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        head = f"invalid config{f' ({source})' if source else ''}:"
        super().__init__("\n".join([head, *("  - " + p for p in problems)]))


def setting(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its help text (what `harness config --keys` prints)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})
