"""`harness init DATA`: a first recipe for a user's own file, inferred, never asked.

It reads a CSV / TSV / JSONL table or a PsyDefConv JSON file, infers the format, the id / text / label / group
columns, the label names in a stable order and a preset when the file is a known data set, and writes a
commented recipe that runs as it is. It says what it chose and why, and which key to override when a guess is
wrong. `harness validate` infers a table the same way when no config says otherwise.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ID_NAMES = ("id", "ID", "Id", "uid", "row_id", "example_id", "item_id", "idx")
TEXT_NAMES = ("text", "sentence", "utterance", "content", "body", "post", "message", "review", "document")
LABEL_NAMES = ("label", "labels", "class", "category", "target", "y", "gold", "stress", "sentiment")
GROUP_NAMES = ("group", "post_id", "user_id", "author", "dialogue_id", "conversation_id", "thread_id", "patient_id",
               "speaker_id", "session_id", "document_id", "doc_id", "subject_id")


class InitError(ValueError):
    """The file cannot be turned into a recipe; the message names the file and what is missing."""


@dataclass
class Inferred:
    """What init (and validate) inferred about a data file, with the reasons to show a person."""
    path: Path
    format: str  # "table" or "psydefconv"
    columns: dict[str, str | None] = field(default_factory=dict)  # id, text, label, group
    labels: list[str] = field(default_factory=list)
    preset: str = "none"
    rows: int = 0
    groups: int = 0  # distinct groups (rows when there is no group column): a bound on cv.n_folds
    why: list[str] = field(default_factory=list)

    def overrides(self) -> dict[str, Any]:
        """The data.* settings that read this file."""
        out: dict[str, Any] = {"data.format": self.format, "data.preset": self.preset}
        if self.format == "table":
            out.update({"data.id_column": self.columns["id"], "data.text_column": self.columns["text"],
                        "data.label_column": self.columns["label"], "data.group_column": self.columns["group"]})
        if self.preset == "none":
            out["data.labels"] = self.labels
        return out


def _table(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".json"):
        stripped = text.lstrip()
        if stripped.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.split("\n") if line.strip()]
        return [r for r in rows if isinstance(r, dict)]
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" or text.split("\n", 1)[0].count("\t") > \
        text.split("\n", 1)[0].count(",") else "excel"
    csv.field_size_limit(1 << 30)
    return list(csv.DictReader(io.StringIO(text, newline=""), dialect=dialect))


def _is_psydefconv(path: Path) -> bool:
    if path.suffix.lower() not in (".json", ".jsonl"):
        return False
    try:
        head = path.read_text(encoding="utf-8-sig")[:20000].lstrip()
    except OSError:
        return False
    return head.startswith("[") and '"dialogue"' in head and ('"current_text"' in head or '"target' in head)


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _group_column(found: Inferred, rows: list[dict[str, Any]], candidates: list[str]) -> str | None:
    """The column named like a group, unless every row has its own value there (then it groups nothing)."""
    groupc = _pick(candidates, GROUP_NAMES)
    if groupc is not None and len({str(r.get(groupc) or "") for r in rows}) == len(rows):
        found.why.append(f"group column {groupc!r} ignored: every row has its own value")
        return None
    return groupc


def _infer_labels(found: Inferred, raw: list[str]) -> None:
    """Class ids 0..K-1 kept as ids; other values become names in sorted order (class id = position)."""
    distinct = sorted(set(raw))
    ints = all(v.lstrip("-").isdigit() for v in distinct)
    if ints and sorted(int(v) for v in distinct) == list(range(len(distinct))):
        found.labels = [str(i) for i in range(len(distinct))]
        found.why.append(f"labels: class ids 0..{len(distinct) - 1} (name them with data.labels=[...] in id order)")
    else:
        found.labels = distinct
        found.why.append(f"labels: {len(distinct)} names, in sorted order (class id = position): {', '.join(distinct)}")


def infer(path: str | Path) -> Inferred:
    """The format, columns, labels and preset of a data file (InitError naming what cannot be inferred)."""
    path = Path(path)
    if not path.is_file():
        raise InitError(f"{path}: not found (or not a file)")
    if _is_psydefconv(path):
        from harness.config.presets import PRESETS

        return Inferred(path, "psydefconv", preset="psydefdetect", groups=5, labels=list(PRESETS["psydefdetect"].labels),
                        why=["format psydefconv: a JSON list of dialogues with a target utterance",
                             "preset psydefdetect: the PsyDefDetect label set, its official score labels and guide"])
    try:
        rows = _table(path)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise InitError(f"{path}: not a CSV, TSV or JSONL table ({type(e).__name__}: {e})") from None
    if not rows:
        raise InitError(f"{path}: no rows")
    columns = list(rows[0])
    found = Inferred(path, "table", rows=len(rows))
    idc = _pick(columns, ID_NAMES)
    textc = _pick(columns, TEXT_NAMES)
    if textc is None:  # the column with the longest texts on average
        lengths = {c: sum(len(str(r.get(c) or "")) for r in rows) / len(rows) for c in columns if c != idc}
        textc = max(lengths, key=lengths.get) if lengths else None
        found.why.append(f"text column {textc!r}: the longest texts (no column is named like {TEXT_NAMES[0]!r})")
    labelc = _pick([c for c in columns if c not in (idc, textc)], LABEL_NAMES)
    if labelc is None:
        few = {c: len({str(r.get(c)) for r in rows}) for c in columns if c not in (idc, textc)}
        few = {c: n for c, n in few.items() if 1 < n <= max(2, len(rows) // 5)}
        labelc = min(few, key=few.get) if few else None
        if labelc:
            found.why.append(f"label column {labelc!r}: the column with the fewest distinct values")
    if textc is None or labelc is None:
        raise InitError(f"{path}: cannot tell the {'text' if textc is None else 'label'} column among {columns}; "
                        "rename it (e.g. 'text', 'label') or write the recipe's data.* keys by hand")
    groupc = _group_column(found, rows, [c for c in columns if c not in (idc, textc, labelc)])
    if idc is None:
        raise InitError(f"{path}: no id column (one of {', '.join(ID_NAMES[:4])}, ...); add one with a unique value "
                        "per row: ids tie predictions, folds and label fixes to rows")
    found.columns = {"id": idc, "text": textc, "label": labelc, "group": groupc}
    found.groups = len({str(r.get(groupc)) for r in rows}) if groupc else len(rows)
    found.why.insert(0, f"format table ({path.suffix or 'no suffix'}): columns {', '.join(columns)}")
    if groupc:
        found.why.append(f"group column {groupc!r}: rows sharing it stay in one fold (no leakage across folds)")
    else:
        found.why.append("no group column: each row is its own group (set data.group_column if rows share a "
                         "source, e.g. a user or a document)")
    _infer_labels(found, [str(r.get(labelc)).strip() for r in rows if r.get(labelc) not in (None, "")])
    if {"subreddit", "post_id", "sentence"} <= set(columns) and found.labels == ["0", "1"]:
        found.preset = "dreaddit"
        found.why.append("preset dreaddit: its columns (subreddit, post_id, sentence) and binary labels")
    return found


RECIPE = """\
# harness cv {recipe}
# A first experiment on {data}, written by `harness init` ({rows} rows). What it inferred:
{why}
# Override any key on the command line (harness cv {recipe} cv.n_folds=10) or edit it here.
name: {name}
method: {method}
data:
{data_block}cv:
  n_folds: {folds}          # grouped, stratified k-fold CV
  seed: 0
train:
  seeds: [42]
decide:
  enabled: true        # the decision ladder on the OOF rows: it keeps argmax unless a rule earns its place
track:
  backend: {backend}      # Weights & Biases: offline runs in ./wandb unless you are logged in; none: off
"""


def write_recipe(found: Inferred, out: Path, method: str = "tfidf", name: str | None = None) -> str:
    """The recipe's text, written to `out` (which must not exist: nothing already written is lost)."""
    import yaml

    out = Path(out)
    if out.exists():
        raise InitError(f"--out {out}: exists; choose another path (nothing is overwritten)")
    name = name or found.path.stem
    data = {"train_path": str(found.path), **{k.split(".", 1)[1]: v for k, v in found.overrides().items()}}
    block = "".join(f"  {line}\n" for line in yaml.safe_dump(data, sort_keys=False, allow_unicode=True).splitlines())
    text = RECIPE.format(recipe=out, data=found.path, rows=found.rows, why="\n".join(f"#   - {w}" for w in found.why),
                         name=name, method=method, data_block=block, folds=min(5, max(2, found.groups)),
                         backend="wandb")
    from harness.config import from_dict
    from harness.core.store import atomic_write_text

    from_dict(yaml.safe_load(text), source=str(out))  # the recipe must load as it is (ConfigError if not)
    atomic_write_text(out, text)
    return text
