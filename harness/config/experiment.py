"""The experiment config: the core sections plus the settings section of every method that has one.

A method's section comes from the method registry (harness.methods.registry: built-in packages and the
`harness.methods` entry points), so a new method adds its settings without touching this file. So do the
sections a family of methods shares (the HF methods' model, lora, quant, generative: declared by their
settings' dataclass). The chosen method's sections are always present (with their defaults); another
method's section is kept when given. Only the method reads its settings: `settings()` hands them over.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config.fields import own_dict, own_fields, shared_fields
from harness.config.fields import setting as _help
from harness.config.secrets import masked
from harness.config.sections import (AugmentConfig, CVConfig, DataConfig, DecideConfig, LossConfig, PromptConfig,
                                     TrackConfig, TrainConfig, TuneConfig)
from harness.config.types import NO, coerce, type_name


def method_sections() -> dict[str, type]:
    """section name -> dataclass of every installed method's own settings, and of every section a family of
    methods shares (model, lora, quant, generative)."""
    from harness.methods.registry import sections

    return sections()


def _method_help() -> str:
    from harness.methods.registry import specs

    return "classifier family, one of the installed methods: " + "; ".join(
        f"{s.name} ({s.help})" if s.help else s.name for s in specs().values())


@dataclass
class ExperimentConfig:
    name: str = _help("experiment name (W&B run name, run directory name)", "experiment")
    output_dir: str = _help("parent of run directories", "runs")
    run_dir: str | None = _help("explicit run directory; none = <output_dir>/<name>", None)
    method: str = _help("classifier family: an installed method (`harness config --methods` lists them)", "seqcls")
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    decide: DecideConfig = field(default_factory=DecideConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    # the methods' own sections and the shared ones (section name -> its dataclass), at the top level in YAML
    sections: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})

    def __post_init__(self) -> None:
        spec = self._spec()
        if spec is None or spec.config is None:
            return
        known = method_sections()
        for name in [spec.section] * bool(spec.section) + list(shared_fields(spec.config)):
            if name not in self.sections and name in known:
                self.sections[name] = known[name]()

    def _spec(self) -> Any:
        from harness.methods.registry import specs

        return specs().get(self.method)

    def __getattr__(self, name: str) -> Any:
        """`cfg.tfidf`: a method's section, read by that method (nothing else reads another's section)."""
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        if sections is not None and name in method_sections():
            return method_sections()[name]()  # a section not given: its defaults
        raise AttributeError(f"{type(self).__name__} has no section or key {name!r}")

    def settings(self) -> Any:
        """The chosen method's settings (None when it has none): its own section, with the shared sections its
        dataclass declares (an HF method's model, lora, quant, train, loss, generative) filled from this config."""
        spec = self._spec()
        if spec is None or spec.config is None:
            return None
        own = self.sections[spec.section] if spec.section else spec.config()
        shared = {name: getattr(self, name) for name in shared_fields(spec.config)}
        return dataclasses.replace(own, **shared) if shared else own

    # -- derived ----------------------------------------------------------------
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path(self.output_dir) / self.name

    def group_key(self) -> str:
        if self.cv.group_by != "auto":
            return self.cv.group_by
        if self.data.format == "psydefconv":
            return "dialogue_id"
        return "group"

    def check(self) -> list[str]:
        from harness.methods.registry import BROKEN, specs

        p: list[str] = []
        installed = specs()
        if self.method in BROKEN:
            p.append(f"method: {BROKEN[self.method]}")
        elif self.method not in installed:
            p.append(f"method: {self.method!r} is not an installed method; one of {sorted(installed)}")
        for f in dataclasses.fields(self):
            sub = getattr(self, f.name)
            if dataclasses.is_dataclass(sub) and hasattr(sub, "check"):
                p.extend(sub.check())
        for sub in self.sections.values():
            p.extend(sub.check())
        own = self.settings() if self.method in installed else None
        if own is not None and hasattr(own, "check_with"):
            p.extend(own.check_with(self.data.label_names()))
        n = len(self.data.label_names())
        if not n:  # data.check said why there are no labels; a class index cannot be checked against none
            return p
        for c in self.augment.classes:
            if not 0 <= c < n:
                p.append(f"augment.classes: {c} is outside 0..{n - 1}")
        for c in self.decide.delta_classes or []:
            if not 0 <= c < n:
                p.append(f"decide.delta_classes: {c} is outside 0..{n - 1}")
        if self.decide.gate.lstrip("-").isdigit() and not 0 <= int(self.decide.gate) < n:
            p.append(f"decide.gate: class {self.decide.gate} is outside 0..{n - 1}")
        known = {"auto", "utterance", "group", "dialogue_id" if self.data.format == "psydefconv" else None,
                 self.data.group_column}
        if self.cv.group_by not in known:
            p.append(f"cv.group_by: {self.cv.group_by!r} names no grouping of this data; one of "
                     f"{sorted(k for k in known if k)} (a table groups by data.group_column)")
        p += _space_problems(self.tune.space)
        p += _generic_problems(self.to_dict())
        if self.name in ("", ".", "..") or "/" in self.name or "\\" in self.name:
            p.append(f"name: {self.name!r} must be one path component (it names the run directory under "
                     "output_dir); set run_dir for a directory elsewhere")
        if self.decide.blend == "fixed" and self.decide.weights and len(self.decide.weights) != len(self.train.seeds):
            p.append(f"decide.weights: {len(self.decide.weights)} weights for {len(self.train.seeds)} seeds")
        return p

    # -- export -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data, the methods' sections at the top level (as in YAML): the shared sections after `prompt`,
        the methods' own before `decide`."""
        from harness.methods.registry import shared_sections

        shared = [s for s in shared_sections() if s in self.sections]
        own = sorted(s for s in self.sections if s not in shared)
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "sections":
                continue
            if f.name == "decide":
                out.update({k: _section_dict(self.sections[k]) for k in own})
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            if f.name == "prompt":
                out.update({k: _section_dict(self.sections[k]) for k in shared})
        return out

    def to_flat_dict(self, sep: str = ".") -> dict[str, Any]:
        """Flat `section.key` dict for loggers (W&B config, Optuna user attrs)."""
        out: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                out.update({f"{key}{sep}{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    def to_yaml(self) -> str:
        """The config as YAML, secrets masked: what config.yaml, `harness config` and logs show."""
        return yaml.safe_dump(masked(self.to_dict()), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        from harness.core.store import atomic_write_text

        atomic_write_text(Path(path), self.to_yaml())


def _section_dict(section: Any) -> dict[str, Any]:
    return own_dict(section) if dataclasses.is_dataclass(section) else dict(section)  # a plugin's, as read


def key_types() -> dict[str, Any]:
    """`section.key` (and top-level `key`) -> its type, for every core key and every installed method's."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update({f"{f.name}.{k}": t for k, t in typing.get_type_hints(tp).items()})
        else:
            out[f.name] = tp
    for name, cls in method_sections().items():
        hints = typing.get_type_hints(cls)
        out.update({f"{name}.{f.name}": hints[f.name] for f in own_fields(cls)})
    return out


def field_help() -> dict[str, str]:
    """`section.key` -> help text of every core key and every installed method's (`harness config --keys`)."""
    out = {}
    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        if f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            out.update({f"{f.name}.{g.name}": g.metadata.get("help", "") for g in dataclasses.fields(hints[f.name])})
        else:
            out[f.name] = _method_help() if f.name == "method" else f.metadata.get("help", "")
    for name, cls in method_sections().items():
        out.update({f"{name}.{g.name}": g.metadata.get("help", "") for g in own_fields(cls)})
    return out


def field_defaults() -> dict[str, Any]:
    """`section.key` -> default value of every core key and every installed method's (what --keys shows)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ExperimentConfig):
        if f.metadata.get("internal"):
            continue
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in dataclasses.asdict(value).items()})
        else:
            out[f.name] = value
    for name, cls in method_sections().items():
        out.update({f"{name}.{k}": v for k, v in own_dict(cls()).items()})
    return out


def _space_problems(space: dict[str, Any]) -> list[str]:
    """tune.space names searchable keys, and every value it can propose fits the key's type (a trial must not
    fail late, after the study recorded it)."""
    types_ = key_types()
    p = []
    for key, spec in space.items():
        where = f"tune.space.{key}"
        if key not in types_ or key.startswith(("tune.", "track.")) or key in ("run_dir", "name", "output_dir"):
            p.append(f"{where}: not a searchable config key (see `harness config --keys`)")
            continue
        if not isinstance(spec, dict):
            continue  # reported by TuneConfig.check
        values = spec.get("choices") if spec.get("type") == "categorical" else [spec.get("low"), spec.get("high")]
        for v in values if isinstance(values, list) else []:
            if v is not None and coerce(v, types_[key]) is NO:
                p.append(f"{where}: {v!r} is not a valid value ({type_name(types_[key])})")
    return p


def _hidden_chars(text: str) -> list[str]:
    """Control, format (bidirectional overrides such as U+202E, zero-width) and other unprintable characters."""
    import unicodedata

    return sorted({c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cn")})


def _generic_problems(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Rules for every section alike: no NUL byte in any text (no file name, id or URL holds one), and seeds
    are what numpy accepts (0 <= seed < 2**32), checked here rather than failing inside a fold."""
    p = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key != "space":
            p += _generic_problems(value, path + ".")
        elif isinstance(value, str) and "\x00" in value:
            p.append(f"{path}: holds a NUL byte")
        elif path in ("name", "run_dir", "output_dir") and isinstance(value, str) and _hidden_chars(value):
            p.append(f"{path}: holds invisible or direction-changing characters "
                     f"({', '.join(f'U+{ord(c):04X}' for c in _hidden_chars(value))}): a path shown on screen would "
                     "not be the one written")
        elif key == "seed" or key.endswith("_seed") or key == "seeds":
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, int) and not 0 <= v < 2**32:
                    p.append(f"{path}: {v} is not a seed (0 <= seed < 2**32)")
    return p
