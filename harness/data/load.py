"""Loaders, schema validation and label maps.

Every loader returns a list of :class:`Example` and either succeeds or raises
:class:`DataError` naming *every* problem (file, row or id, field) at once, so a
malformed file is never half-read in silence.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from harness.config import DataConfig, ExperimentConfig
from harness.data.issues import DataError, Issue, parse_label  # noqa: F401  (re-exported)
from harness.data.schema import SEEKER, Example, Turn  # noqa: F401  (re-exported: loaders return them)


# ----------------------------------------------------------------------------
# raw file reading
# ----------------------------------------------------------------------------

def _read_text(path: Path, issues: list[Issue]) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as e:
        issues.append(Issue(str(path), "file", "-", f"cannot read: {e.strerror or e}"))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        issues.append(Issue(str(path), f"line {line}", "-", f"not UTF-8 (byte {e.start}: {raw[e.start]:#x})"))
        return None


def _read_records(path: Path, issues: list[Issue]) -> list[Any] | None:
    """JSON array or JSONL, by content (not by file name)."""
    text = _read_text(path, issues)
    if text is None:
        return None
    stripped = text.lstrip()
    if not stripped:
        issues.append(Issue(str(path), "file", "-", "empty file"))
        return None
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            issues.append(Issue(str(path), f"line {e.lineno}", "-", f"invalid JSON: {e.msg}"))
            return None
        return data
    records = []
    # JSONL records end at "\n" only: str.splitlines() would also split inside strings at U+2028,
    # U+0085, form feed and other characters that JSON allows unescaped
    for n, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            issues.append(Issue(str(path), f"line {n}", "-", f"invalid JSON line: {e.msg}"))
            records.append(None)
    return records


# ----------------------------------------------------------------------------
# PsyDefConv schema
# ----------------------------------------------------------------------------

def _dialogue_turns(dia: list[Any], cur: str | None, file: str, where: str, issues: list[Issue]) -> list[Turn]:
    """A record's dialogue as turns, ending with the seeker's target utterance (problems appended to `issues`)."""
    turns: list[Turn] = []
    if not dia:
        issues.append(Issue(file, where, "dialogue", "empty dialogue"))
    for j, t in enumerate(dia):
        if not isinstance(t, dict) or not isinstance(t.get("speaker"), str) or not isinstance(t.get("text"), str):
            issues.append(Issue(file, where, f"dialogue[{j}]", "expected {speaker: str, text: str}"))
        else:
            turns.append(Turn(t["speaker"], t["text"]))
    if turns and len(turns) == len(dia):
        if turns[-1].speaker != SEEKER:
            issues.append(Issue(file, where, "dialogue[-1].speaker", f"last turn is {turns[-1].speaker!r}, not the seeker's"))
        if cur is not None and turns[-1].text != cur:
            issues.append(Issue(file, where, "dialogue[-1].text", "last turn differs from current_text"))
    return turns


def _record_label(rec: dict[str, Any], n_labels: int, require_label: bool, file: str, where: str,
                  issues: list[Issue]) -> int | None:
    """A record's class id, checked against the label set (None: unlabelled, or a problem appended)."""
    label = rec.get("label")
    if label is None:
        if require_label:
            issues.append(Issue(file, where, "label", "missing (this file must be labelled)"))
        return None
    if not isinstance(label, int) or isinstance(label, bool):
        issues.append(Issue(file, where, "label", f"expected an integer, got {label!r}"))
        return None
    if not 0 <= label < n_labels:
        issues.append(Issue(file, where, "label", f"{label} is outside the label set 0..{n_labels - 1}"))
    return label


def parse_psydefconv(records: list[Any], file: str, n_labels: int, require_label: bool) -> tuple[list[Example], list[Issue]]:
    issues: list[Issue] = []
    examples: list[Example] = []
    seen: dict[str, int] = {}
    if not isinstance(records, list):
        return [], [Issue(file, "file", "-", "top level must be a JSON array (or JSONL)")]
    for i, rec in enumerate(records):
        where = f"row {i}"
        if not isinstance(rec, dict):
            issues.append(Issue(file, where, "-", f"expected an object, got {type(rec).__name__}"))
            continue
        rid = rec.get("id")
        if isinstance(rid, str) and rid:
            where = f"row {i} (id {rid})"
        bad = len(issues)

        def need(key: str, typ: type, what: str) -> Any:
            if key not in rec:
                issues.append(Issue(file, where, key, "missing"))
                return None
            v = rec[key]
            if not isinstance(v, typ) or isinstance(v, bool):
                issues.append(Issue(file, where, key, f"expected {what}, got {type(v).__name__}"))
                return None
            return v

        rid = need("id", str, "a string")
        did = need("dialogue_id", str, "a string")
        cur = need("current_text", str, "a string")
        dia = need("dialogue", list, "a list of {speaker, text}")
        if rid is not None and not rid.strip():
            issues.append(Issue(file, where, "id", "blank id"))
        elif rid is not None and not rid.isprintable():
            issues.append(Issue(file, where, "id", f"id {rid!r} holds control characters"))
        elif rid is not None:
            if rid in seen:
                issues.append(Issue(file, where, "id", f"duplicate id (first at row {seen[rid]})"))
            else:
                seen[rid] = i
        if cur is not None and not cur.strip():
            issues.append(Issue(file, where, "current_text", "empty target text"))
        turns = _dialogue_turns(dia, cur, file, where, issues) if dia is not None else []
        label = _record_label(rec, n_labels, require_label, file, where, issues)
        if len(issues) == bad:
            examples.append(Example(id=rid, group=did, target=cur, dialogue=tuple(turns), label=label))
    return examples, issues


# ----------------------------------------------------------------------------
# tables: CSV or JSONL with named columns (e.g. Dreaddit's id,text,label,post_id)
# ----------------------------------------------------------------------------

def _table_rows(path: Path, issues: list[Issue]) -> list[dict[str, Any]] | None:
    if path.suffix.lower() in (".jsonl", ".json"):
        recs = _read_records(path, issues)
        if recs is None:
            return None
        return [r if isinstance(r, dict) else {} for r in recs]
    text = _read_text(path, issues)
    if text is None:
        return None
    csv.field_size_limit(1 << 30)  # long fields are judged by data.max_target_chars, naming the row
    reader = csv.DictReader(io.StringIO(text, newline=""))  # quoted newlines stay inside their field
    try:
        return list(reader)
    except csv.Error as e:
        issues.append(Issue(str(path), f"line {reader.line_num}", "-", f"CSV error: {e}"))
        return None


def parse_table(rows: list[dict[str, Any]], file: str, cfg_data: Any, names: list[str],
                require_label: bool) -> tuple[list[Example], list[Issue]]:
    issues: list[Issue] = []
    examples: list[Example] = []
    seen: dict[str, int] = {}
    idc, tc, lc, gc = cfg_data.id_column, cfg_data.text_column, cfg_data.label_column, cfg_data.group_column
    if rows:
        present = set(rows[0])
        missing = [c for c in (idc, tc, gc) if c and c not in present]
        if require_label and lc not in present:
            missing.append(lc)
        if missing:
            return [], [Issue(file, "header", c, f"column missing (columns: {', '.join(sorted(present))})")
                        for c in missing]
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        bad = len(issues)
        rid = _cell(row.get(idc)).strip()
        if not rid:
            issues.append(Issue(file, where, idc, "missing id"))
        elif not rid.isprintable():
            issues.append(Issue(file, where, idc, f"id {rid!r} holds control characters"))
        elif rid in seen:
            issues.append(Issue(file, where, idc, f"duplicate id {rid!r} (first at row {seen[rid]})"))
        else:
            seen[rid] = i + 1
        text = row.get(tc)
        if not isinstance(text, str) or not text.strip():
            issues.append(Issue(file, where, tc, "empty target text"))
        label = None
        raw = row.get(lc)
        if raw not in (None, ""):
            label, why = parse_label(raw, names)
            if why:
                issues.append(Issue(file, where, lc, why))
        elif require_label:
            issues.append(Issue(file, where, lc, "missing label"))
        group = _cell(row.get(gc)).strip() if gc else rid
        if gc and not group:
            issues.append(Issue(file, where, gc, "missing group"))
        if len(issues) == bad:
            examples.append(Example(id=rid, group=group, target=text, dialogue=(Turn(SEEKER, text),), label=label))
    return examples, issues


def _cell(value: Any) -> str:
    """A table cell as text: a JSONL number 0 is the id "0", not a missing one."""
    return "" if value is None else str(value)


# ----------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------

def load_file(path: str | Path, cfg: ExperimentConfig, require_label: bool) -> list[Example]:
    """Read and validate one file in the configured format; raise DataError with every problem."""
    return read_file(path, cfg.data, require_label)


def read_file(path: str | Path, data: DataConfig, require_label: bool) -> list[Example]:
    """One file read as `data` (a `data:` section) describes it; DataError lists every problem."""
    path = Path(path)
    issues: list[Issue] = []
    n_labels = len(data.label_names())
    if data.format == "psydefconv" and path.suffix.lower() in (".csv", ".tsv"):
        raise DataError([Issue(str(path), "file", "-", f"a {path.suffix} table, but data.format is psydefconv (JSON "
                               "dialogues): pass data.format=table and data.labels=[...] (label names in id order), "
                               "and data.group_column=... if rows share a group")])
    if data.format == "psydefconv":
        recs = _read_records(path, issues)
        examples, more = ([], []) if recs is None else parse_psydefconv(recs, str(path), n_labels, require_label)
    else:
        rows = _table_rows(path, issues)
        examples, more = ([], []) if rows is None else parse_table(rows, str(path), data,
                                                                   data.label_names(), require_label)
    issues += more
    limit = data.max_target_chars
    issues += [Issue(str(path), f"id {e.id}", "target", f"{len(e.target):,} characters, over data.max_target_chars="
                     f"{limit:,} (a pasted document? a broken export?); raise the limit if it is real")
               for e in examples if len(e.target) > limit]
    if issues:
        raise DataError(issues)
    if not examples:
        raise DataError([Issue(str(path), "file", "-", "no rows")])
    return examples


def load_train(cfg: ExperimentConfig) -> list[Example]:
    return load_rows(cfg.data)


def load_rows(data: DataConfig) -> list[Example]:
    """The labelled rows a `data:` section names: a file, or generated synthetic rows."""
    if data.synthetic != "none":
        from harness.data.synthetic import make_dreaddit, make_psydefconv

        gen = make_psydefconv if data.synthetic == "psydefconv" else make_dreaddit
        examples = gen(n_groups=data.synthetic_groups, seed=data.synthetic_seed)
        top = max(e.label for e in examples if e.label is not None)
        names = data.label_names()
        if top >= len(names):
            from harness.config import ConfigError

            raise ConfigError([f"data.labels: {len(names)} names ({names}) but the synthetic {data.synthetic} "
                               f"data has labels 0..{top}"])
    elif not data.train_path:
        from harness.config import ConfigError

        raise ConfigError(["data.train_path: required unless data.synthetic is set"])
    else:
        examples = read_file(data.train_path, data, require_label=True)
    if data.max_rows:
        examples = examples[: data.max_rows]
    if data.label_fixes:
        from harness.data.fixes import apply_label_fixes

        examples = apply_label_fixes(examples, data.label_fixes, data.label_names())
    return examples


def load_task(task: Any) -> list[Example]:
    """The labelled rows of an extra training task (`sft.extra_tasks` entry), read like the experiment's own."""
    return load_rows(task.data)


def load_test(cfg: ExperimentConfig) -> list[Example]:
    return load_file(cfg.data.test_path, cfg, require_label=False) if cfg.data.test_path else []


def group_of(example: Example, key: str) -> str:
    """The fold-grouping key of a row: its dialogue/post group, or itself in 'utterance' mode."""
    if key == "utterance":
        return example.source_id or example.id
    return example.group


def summarize(examples: list[Example], label_names: list[str]) -> dict[str, Any]:
    counts = Counter(e.label for e in examples if e.label is not None)
    n_lab = sum(counts.values())
    turns = [len(e.dialogue) for e in examples]
    return {
        "rows": len(examples),
        "groups": len({e.group for e in examples}),
        "labelled": n_lab,
        "class_counts": {
            f"{i} {name}": {"count": counts.get(i, 0), "pct": round(100 * counts.get(i, 0) / n_lab, 2) if n_lab else 0.0}
            for i, name in enumerate(label_names)
        },
        "turns_per_item": {"min": min(turns), "mean": round(sum(turns) / len(turns), 2), "max": max(turns)},
    }


def labels_of(examples: Iterable[Example]) -> list[int]:
    return [e.label for e in examples]  # type: ignore[misc]
