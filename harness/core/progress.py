"""Progress bars that stay quiet off a TTY and under CI."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def interactive() -> bool:
    """Bars only for a person at a terminal: not under CI, not when piped, not with HARNESS_QUIET set."""
    return sys.stderr.isatty() and not os.environ.get("CI") and not os.environ.get("HARNESS_QUIET")


def progress_bar(items: Iterable[T], desc: str, enable: bool = True, total: int | None = None, **kw) -> Iterable[T]:
    if not (enable and interactive()):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False, dynamic_ncols=True, **kw)


def printable(text: str, keep: str = "\n\t") -> str:
    """`text` with every control or format character (ANSI escapes, carriage returns, bidi overrides) written
    as an escape such as \\x1b: an id or a label name from a data file can then never clear the screen, move
    the cursor or fake a line of output."""
    import unicodedata

    if text.isprintable():
        return text
    return "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
                   else c.encode("unicode_escape").decode("ascii") for c in text)


class PrintableStream:
    """A text stream whose writes go through `printable` (what the commands print to stdout)."""

    def __init__(self, stream: object):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
