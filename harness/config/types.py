"""Typed building of config dataclasses from plain data: YAML scalars, command-line strings and dicts.

Every value is checked against its field's type hint; every problem is collected (never the first only).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import yaml

def type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if get_origin(tp) is list:
        return f"list of {type_name(get_args(tp)[0])}"
    if get_origin(tp) is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


NO = object()


def coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or NO. Strings from the command line are parsed as YAML scalars first."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if type(None) in get_args(tp) and isinstance(value, str) and value.lower() in ("null", "~"):
            return None  # `data.test_path=null` unsets an optional path rather than naming a file "null"
        for arg in get_args(tp):
            out = coerce(value, arg)
            if out is not NO:
                return out
        return NO
    if tp is type(None):
        return None if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")) else NO
    if origin is Literal:
        return value if value in get_args(tp) else NO
    if tp is Any:
        return value
    if isinstance(value, str) and tp is not str:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return NO
        if isinstance(parsed, str):
            # YAML 1.1 reads "5e-4" as a string; Python's float() does not
            try:
                return coerce(float(value), tp) if tp is float else NO
            except ValueError:
                return NO
        return coerce(parsed, tp)
    if origin is list:
        (inner,) = get_args(tp)
        if dataclasses.is_dataclass(inner):  # a list of sections (sft.extra_tasks): built by build()
            return NO
        if isinstance(value, (list, tuple)):
            items = [coerce(v, inner) for v in value]
            return NO if any(i is NO for i in items) else items
        return NO
    if origin is dict:
        return dict(value) if isinstance(value, dict) else NO
    if tp is bool:
        return value if isinstance(value, bool) else NO
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else NO
    if tp is float:  # NaN and inf pass every range check and then break training: never a valid setting
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else NO
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        return NO
    return NO


def build(cls: type, data: dict[str, Any], prefix: str, problems: list[str],
          sections: dict[str, type] | None = None) -> Any:
    """`cls` from `data`, problems appended. `sections` (top level only): extra section name -> dataclass, built
    into the `sections` field (the method plugins' own settings)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if sections and key in sections:
            if not isinstance(value, dict):
                problems.append(f"{path}: expected a mapping of {sections[key].__name__} keys, got {type(value).__name__}")
                continue
            kwargs.setdefault("sections", {})[key] = build(sections[key], value, path + ".", problems)
            continue
        if key not in fields:
            allowed = ", ".join(sorted([*fields, *(sections or {})]))
            problems.append(f"{path}: unknown key; allowed here: {allowed}")
            continue
        tp = hints[key]
        item = get_args(tp)[0] if typing.get_origin(tp) is list else None
        if item is not None and dataclasses.is_dataclass(item):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{path}: expected a list of {item.__name__} mappings, got {value!r}")
                continue
            kwargs[key] = [build(item, v, f"{path}[{i}].", problems) for i, v in enumerate(value)]
            continue
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                problems.append(f"{path}: expected a mapping of {tp.__name__} keys, got {type(value).__name__}")
                continue
            kwargs[key] = build(tp, value, path + ".", problems)
            continue
        coerced = coerce(value, tp)
        if coerced is NO:
            problems.append(f"{path}: expected {type_name(tp)}, got {value!r}")
            continue
        kwargs[key] = coerced
    return cls(**kwargs)
