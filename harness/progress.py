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
