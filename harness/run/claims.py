"""Fold claims: several `harness cv` processes on one run directory split its folds instead of each training all.

A process that is about to train a fold creates `claim.json` in the fold's folder exclusively
(O_CREAT | O_EXCL, which shared file systems honour too) with its host, pid and a token, and a
heartbeat thread touches it while the fold trains. Another process skips a fold whose claim is
alive. A claim is dead when its heartbeat is older than `stale_after` seconds, or at once when its
owner is a process of this host that no longer exists (kill -9); a dead claim is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HEARTBEAT_SECONDS = 20.0
STALE_AFTER_SECONDS = 120.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class FoldClaim:
    def __init__(self, path: Path, stale_after: float = STALE_AFTER_SECONDS, heartbeat: float = HEARTBEAT_SECONDS,
                 **about: Any):
        self.path = Path(path)  # the claim file (RunDir.claim_path, or a run directory's writer lock)
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex, **about}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        """Who holds the claim now (None: nobody, or an unreadable half-written file)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _dead(self) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age > self.stale_after:
            return True
        h = self.holder()
        return bool(h and h.get("host") == self.owner["host"] and not _pid_alive(int(h.get("pid", 0))))

    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({**self.owner, "since": time.time()}, f)
        return True

    def acquire(self) -> bool:
        """True: this process now trains the fold. False: a live process does."""
        if not self._create():
            if not self._dead():
                return False
            stale = self.path.with_name(f".claim.dead-{uuid.uuid4().hex}")
            try:  # only one taker succeeds in moving the dead claim away
                os.replace(self.path, stale)
                stale.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            if not self._create():
                return False
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat {self.path}", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        h = self.holder()
        if h and h.get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "FoldClaim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
