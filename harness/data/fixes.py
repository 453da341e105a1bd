"""Label fixes (`data.label_fixes`): corrections applied to the training rows at load time, never by editing the
data file, so a relabelling is a reviewed file with a note per row, part of the data fingerprint (a run
resumed over other fixes is refused like one over other data) and listed in the report.

The file is a CSV with `id`, `label` (a name or an id) and optional `note` and `accept` columns. With `accept`
(as `harness audit --fixes-template` writes it), only rows marked yes are applied; the others are reviewed
suggestions left out. Unknown ids, unknown labels and ids listed twice are errors naming their line, all at once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from harness.data.issues import DataError, Issue, parse_label
from harness.data.schema import Example

FIX_COLUMNS = ("id", "label", "note", "accept")
YES = {"yes", "y", "true", "1", "x"}
NO = {"", "no", "n", "false", "0"}


@dataclass(frozen=True)
class LabelFix:
    id: str
    label: int
    note: str


def read_label_fixes(path: str | Path, names: Sequence[str], ids: set[str]) -> list[LabelFix]:
    """The accepted fixes of a fixes file, checked against the label names and the training ids."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows, header = list(reader), set(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError([Issue(str(path), "file", "-", f"cannot read the label fixes: {e}")]) from None
    missing = [c for c in ("id", "label") if c not in header]
    if missing:
        raise DataError([Issue(str(path), "header", c, f"column missing (columns: {', '.join(sorted(header))}; "
                               f"expected {', '.join(FIX_COLUMNS)})") for c in missing])
    issues, fixes, seen = [], [], {}
    for i, row in enumerate(rows):
        line, rid, before = i + 2, (row.get("id") or "").strip(), len(issues)
        accept = (row.get("accept") or "").strip().lower() if "accept" in header else "yes"
        if accept not in YES | NO:
            issues.append(Issue(str(path), f"line {line}", "accept", f"{accept!r}: write yes or no"))
            continue
        label, why = parse_label((row.get("label") or "").strip(), list(names))
        if not rid:
            issues.append(Issue(str(path), f"line {line}", "id", "missing id"))
        elif rid in seen:
            issues.append(Issue(str(path), f"line {line}", "id", f"duplicate id {rid!r} (first at line {seen[rid]})"))
        elif rid not in ids:
            issues.append(Issue(str(path), f"line {line}", "id", f"id {rid!r} is not a training row"))
        if rid:
            seen.setdefault(rid, line)
        if why or label is None:
            issues.append(Issue(str(path), f"line {line}", "label", why or "missing label"))
        if accept in YES and len(issues) == before:
            fixes.append(LabelFix(rid, int(label), (row.get("note") or "").strip()))
    if issues:
        raise DataError(issues)
    return fixes


def apply_label_fixes(examples: list[Example], path: str | Path, names: Sequence[str]) -> list[Example]:
    """The rows with the accepted fixes applied; each fixed row remembers its label before (meta `label_fix`)."""
    fixes = {f.id: f for f in read_label_fixes(path, names, {e.id for e in examples})}
    out = []
    for e in examples:
        fix = fixes.get(e.id)
        if fix is None:
            out.append(e)
        else:
            out.append(replace(e, label=fix.label, meta={**e.meta, "label_fix": {"from": e.label, "note": fix.note}}))
    return out


def fixes_record(path: str | Path, examples: Sequence[Example]) -> dict[str, Any]:
    """What data.json records of the fixes: the file, its digest, and every row it changed (from, to, note)."""
    import hashlib

    applied = [{"id": e.id, "from": e.meta["label_fix"]["from"], "to": e.label, "note": e.meta["label_fix"]["note"]}
               for e in examples if "label_fix" in e.meta]
    return {"source": str(path), "rows": len(applied), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "applied": applied}


def fixes_template(issues: Sequence[dict[str, Any]], out: Path) -> None:
    """A fixes file from an audit's label issues: each suggested label with a note and an empty `accept`."""
    import io

    from harness.core.store import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIX_COLUMNS)
    for it in issues:
        w.writerow([it["id"], it["suggested_name"], f"audit: given {it['given_name']} (p {it['p_given']:.2f}), "
                    f"suggested {it['suggested_name']} (p {it['p_suggested']:.2f})", ""])
    atomic_write_text(out, buf.getvalue())
