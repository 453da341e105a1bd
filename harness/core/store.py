"""Atomic writes for everything a run leaves on disk (the run directory is the source of truth)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def cache_dir() -> Path:
    """Where built models and content-keyed caches live (HARNESS_CACHE, default ~/.cache/harness; set but empty:
    the default too, never the current directory). A HARNESS_CACHE that is a file is refused, naming it."""
    chosen = os.environ.get("HARNESS_CACHE", "").strip()
    path = Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "harness"
    if path.exists() and not path.is_dir():
        raise StoreError(f"HARNESS_CACHE={path}: is a file, not a directory; point it at a folder (or unset it)")
    return path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import, before any worker thread exists


def _atomic_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results get the user's umask like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def publish_checkpoint(target: Path, model: Any, tokenizer: Any) -> Path:
    """Save a model and tokenizer into a temp sibling folder, then move it into place in one rename: a
    reader sees the whole checkpoint or none, and when two processes build it at once, the first wins."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_bytes(path, text.encode("utf-8"))


def create_exclusive_text(path: Path, text: str) -> bool:
    """Write `path` whole only if it does not exist yet, atomically among processes: the file is written
    beside it and hard-linked into place (a link fails when the name is taken). False: another was first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_bytes(path, buf.getvalue())


class StoreError(ValueError):
    """A run-directory file that is missing, truncated or not what it should be; the message names it."""


def check_output_file(path: Path, what: str) -> None:
    """Refuse, before any work, an output file path that cannot be written as a file (a directory, a NUL)."""
    path = Path(path)
    if "\x00" in str(path):
        raise StoreError(f"{what}: holds a NUL byte")
    if path.is_dir():
        raise StoreError(f"{what} {path}: is a directory; give a file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise StoreError(f"{what} {path}: {path.parent} is a file, not a directory")


def read_json(path: Path) -> Any:
    """JSON from a run-directory file; an unreadable or truncated file raises StoreError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{path}: unreadable ({type(e).__name__}: {e}); remove it or re-run the step "
                         "that writes it") from None


def load_npz(path: Path, *keys: str) -> Any:
    """Arrays from a run-directory .npz (no pickle); a truncated file or a missing array raises StoreError."""
    import zipfile

    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise StoreError(f"{path}: arrays {missing} missing (has {z.files})")
        return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise StoreError(f"{path}: not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise StoreError(f"{path}: unreadable ({type(e).__name__}: {e}); remove it or re-run the step "
                         "that writes it") from None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
