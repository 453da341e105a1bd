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
import warnings
from pathlib import Path
from typing import Any

from harness.config.fields import shared_fields
from harness.methods.spec import CORE_KEYS, MethodSpec

ENTRY_POINT_GROUP = "harness.methods"
_SPECS: dict[str, MethodSpec] | None = None
# plugins that could not be loaded (name -> why): each costs only itself, named when it is asked for
BROKEN: dict[str, str] = {}


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
    """Every plugin that loads; one that raises (even SystemExit) or is no MethodSpec is set aside in BROKEN."""
    specs = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except BaseException as e:  # noqa: BLE001 - a plugin's sys.exit or error must not silence the CLI
            if isinstance(e, KeyboardInterrupt):
                raise
            _broken(ep.name, f"method plugin {ep.name!r} ({ep.value}) cannot be loaded: {type(e).__name__}: {e}")
            continue
        if not isinstance(spec, MethodSpec):
            _broken(ep.name, f"method plugin {ep.name!r} ({ep.value}) is a {type(spec).__name__}, "
                             "not a harness.methods.spec.MethodSpec")
            continue
        specs.append(spec)
    return specs


def _broken(name: str, why: str) -> None:
    if name not in BROKEN:
        BROKEN[name] = why
        warnings.warn(f"{why}; the other methods work", stacklevel=3)


def specs(refresh: bool = False) -> dict[str, MethodSpec]:
    """name -> spec of every installed method (cached; `refresh` re-reads the entry points)."""
    global _SPECS
    if _SPECS is None or refresh:
        if refresh:
            BROKEN.clear()
        found: dict[str, MethodSpec] = {}
        sections: dict[str, str] = {}
        builtin = _builtin()
        for spec in builtin + _installed():
            plugin = spec not in builtin
            why = None
            if spec.name in found and found[spec.name] != spec:
                why = f"two methods are named {spec.name!r}: {found[spec.name].method} and {spec.method}"
            elif spec.section and sections.get(spec.section, spec.name) != spec.name:
                why = (f"methods {sections[spec.section]!r} and {spec.name!r} both claim the config section "
                       f"{spec.section!r}")
            elif spec.section in CORE_KEYS:
                why = f"method {spec.name!r} ({spec.method}) claims the core config key {spec.section!r}"
            elif spec.section and spec.section in _shared_of(found.values()):
                why = f"method {spec.name!r} ({spec.method}) claims the shared config section {spec.section!r}"
            elif _shared_clash(spec, found.values(), sections):
                why = _shared_clash(spec, found.values(), sections)
            if why and not plugin:
                raise RegistryError(why)  # a built-in clash is this package's bug
            if why:
                _broken(spec.name, f"method plugin {spec.name!r} set aside: {why}")
                continue
            found[spec.name] = spec
            if spec.section:
                sections[spec.section] = spec.name
        _SPECS = found
    return _SPECS


def spec(name: str) -> MethodSpec:
    known = specs()
    if name not in known:
        if name in BROKEN:
            raise KeyError(BROKEN[name])
        raise KeyError(f"unknown method {name!r}; installed: {sorted(known)}")
    return known[name]


def _shared_of(known: Any) -> dict[str, type]:
    """name -> type of the shared sections (not core keys) that the given specs' settings declare."""
    out: dict[str, type] = {}
    for s in known:
        if s.config is not None:
            out.update({k: tp for k, tp in shared_fields(s.config).items() if k not in CORE_KEYS})
    return out


def _shared_clash(spec: MethodSpec, known: Any, own_sections: dict[str, str]) -> str | None:
    """Why `spec`'s shared sections cannot join the known ones: another method's own section of that name, or the
    same name with another dataclass."""
    if spec.config is None:
        return None
    declared = _shared_of(known)
    for name, tp in shared_fields(spec.config).items():
        if name in CORE_KEYS:
            continue
        if name in own_sections:
            return f"method {spec.name!r} shares a section {name!r} that is method {own_sections[name]!r}'s own"
        if declared.get(name, tp) is not tp:
            return f"method {spec.name!r} declares the shared section {name!r} with another dataclass"
    return None


def own_sections() -> dict[str, type]:
    """section name -> its dataclass, for every installed method that has keys of its own."""
    return {s.section: s.config for s in specs().values() if s.section and s.config is not None}


def shared_sections() -> dict[str, type]:
    """section name -> its dataclass, for the sections families of methods share (the HF methods' model, lora,
    quant, generative), in the order their settings declare them."""
    return _shared_of(specs().values())


def sections() -> dict[str, type]:
    """Every section beyond the core ones: the methods' own and the shared ones."""
    return {**shared_sections(), **own_sections()}
