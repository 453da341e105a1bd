"""The row every loader returns and every method reads: a leaf module (imports nothing of the harness)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

SEEKER = "seeker"


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


@dataclass(frozen=True)
class Example:
    """One row to classify. `dialogue` ends with the target turn (empty for plain text rows)."""

    id: str
    group: str
    target: str
    dialogue: tuple[Turn, ...] = ()
    label: int | None = None
    source_id: str | None = None  # set on augmented variants: the row they were made from
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def context(self) -> tuple[Turn, ...]:
        """Turns before the target."""
        return self.dialogue[:-1] if self.dialogue else ()

    def with_target(self, text: str, new_id: str) -> "Example":
        """A variant whose target (and last turn) is `text`; it remembers its source row."""
        turns = self.dialogue[:-1] + (Turn(self.dialogue[-1].speaker, text),) if self.dialogue else ()
        return replace(self, id=new_id, target=text, dialogue=turns, source_id=self.source_id or self.id)

    def content_key(self) -> str:
        """A digest of everything a method may read of this row (target and every turn), for content caches."""
        return content_digest([self.target, [[t.speaker, t.text] for t in self.dialogue]])


def content_digest(obj: Any) -> str:
    """sha256 of a JSON-serialisable object (stable key order)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def rows_digest(rows: Iterable[Example]) -> str:
    """One digest of many rows: ids, labels and full content, in order (data fingerprints, score caches)."""
    h = hashlib.sha256()
    for e in rows:
        h.update(json.dumps([e.id, e.label, e.group, e.content_key()]).encode("utf-8"))
    return h.hexdigest()
