"""A data problem (file, row or id, field, message), the error that lists every one of them, and label cells read
as class ids: shared by the data loaders and the label-fixes reader."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Issue:
    file: str
    where: str  # "row 12" or "id test_00004"
    field: str
    message: str

    def __str__(self) -> str:
        if self.where == "file":  # about the whole file: no row, no field
            return f"{self.file}: {self.message}"
        return f"{self.file}: {self.where}: {self.field}: {self.message}"


class DataError(ValueError):
    """Every problem of a data file; the same problem on many rows is one line (its first rows and a count),
    so 400 bad lines fit a screen."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        groups: dict[tuple[str, str, str], list[Issue]] = {}
        for i in issues:  # one kind of problem: same file, field and message once its quoted values and numbers go
            kind = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "#", i.message)
            groups.setdefault((i.file, i.field, kind), []).append(i)
        lines = []
        for same in groups.values():
            if len(same) < 4:
                lines += [str(i) for i in same]
            else:
                first = same[0]
                wheres = ", ".join(i.where for i in same[:3])
                alike = "" if all(i.message == first.message for i in same) else " (and alike)"
                lines.append(f"{first.file}: {wheres} and {len(same) - 3} more: {first.field}: {first.message}{alike}")
        shown = lines[:200] + ([f"... and {len(lines) - 200} more"] if len(lines) > 200 else [])
        super().__init__(f"{len(issues)} data problem(s):\n" + "\n".join("  - " + ln for ln in shown))

    def to_json(self) -> list[dict[str, str]]:
        return [vars(i) for i in self.issues]


def parse_label(raw: Any, names: list[str]) -> tuple[int | None, str | None]:
    """A label cell as a class id: a label name of data.labels (or the preset), or the id itself; else why not."""
    text = str(raw).strip()
    if text in names:
        return names.index(text), None
    try:
        label = int(text)
    except ValueError:
        label = None
    if label is None or text != str(label):
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        return None, f"{raw!r} is neither a label name ({shown}) nor a class id 0..{len(names) - 1}"
    if not 0 <= label < len(names):
        return None, f"{label} is outside the label set 0..{len(names) - 1}"
    return label, None
