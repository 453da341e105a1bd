"""Every installed method: the built-in ones (each a package `harness/methods/<name>/` exposing `METHOD`)
and third-party ones registered through the `harness.methods` entry-point group.

A third-party package declares, in its pyproject.toml:

    [project.entry-points."harness.methods"]
    mymethod = "my_package.harness_method:METHOD"     # a harness.methods.spec.MethodSpec

Discovery imports only the packages' `__init__` (which names the spec and its config dataclass), never a
model library. Moving a built-in method is moving its folder.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from pathlib import Path

from harness.methods.spec import MethodSpec

ENTRY_POINT_GROUP = "harness.methods"
_SPECS: dict[str, MethodSpec] | None = None


class RegistryError(RuntimeError):
    """A plugin that cannot be loaded, or two that claim one name or one section."""


def _builtin() -> list[MethodSpec]:
    here = Path(__file__).parent
    specs = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if info.ispkg:
            spec = getattr(importlib.import_module(f"harness.methods.{info.name}"), "METHOD", None)
            if isinstance(spec, MethodSpec):
                specs.append(spec)
    return specs


def _installed() -> list[MethodSpec]:
    specs = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin is named, not a traceback in every command
            raise RegistryError(f"method plugin {ep.name!r} ({ep.value}) cannot be loaded: {e}") from e
        if not isinstance(spec, MethodSpec):
            raise RegistryError(f"method plugin {ep.name!r} ({ep.value}) is a {type(spec).__name__}, "
                                "not a harness.methods.spec.MethodSpec")
        specs.append(spec)
    return specs


def specs(refresh: bool = False) -> dict[str, MethodSpec]:
    """name -> spec of every installed method (cached; `refresh` re-reads the entry points)."""
    global _SPECS
    if _SPECS is None or refresh:
        found: dict[str, MethodSpec] = {}
        sections: dict[str, str] = {}
        for spec in _builtin() + _installed():
            if spec.name in found and found[spec.name] != spec:
                raise RegistryError(f"two methods are named {spec.name!r}: {found[spec.name].method} and {spec.method}")
            if spec.section and sections.get(spec.section, spec.name) != spec.name:
                raise RegistryError(f"methods {sections[spec.section]!r} and {spec.name!r} both claim the config "
                                    f"section {spec.section!r}")
            found[spec.name] = spec
            if spec.section:
                sections[spec.section] = spec.name
        _SPECS = found
    return _SPECS


def spec(name: str) -> MethodSpec:
    known = specs()
    if name not in known:
        raise KeyError(f"unknown method {name!r}; installed: {sorted(known)}")
    return known[name]


def sections() -> dict[str, type]:
    """section name -> its dataclass, for every installed method that has settings."""
    return {s.section: s.config for s in specs().values() if s.section and s.config is not None}
