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


def shared_section(cls: type) -> Any:
    """A field of a method's settings that is not the method's own key but a top-level section the methods of a
    family share (the HF methods' `model:`, `lora:`, ...): never read from the method's own YAML section, filled
    from the experiment's section of the same name when the method is built."""
    return field(default_factory=cls, metadata={"shared": True, "internal": True})


def own_fields(cls: Any) -> list[dataclasses.Field]:
    """The fields a section's YAML holds (not its shared sections)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def shared_fields(cls: Any) -> dict[str, type]:
    """name -> type of the shared sections a method's settings declare."""
    import typing

    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.metadata.get("shared")}


def own_dict(obj: Any) -> dict[str, Any]:
    """A section's own keys as plain data (what config.yaml writes under the section's name)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in own_fields(obj)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return own_dict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
