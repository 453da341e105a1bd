"""A run directory's manifest, its writer lock and its one-step commits.

The manifest lists every file of a run directory that a command builds on (its content digest, size, and the
command that wrote it) and the run's provenance (for an ensemble: each member's manifest digest when it was
fitted). Readers verify each file against it and refuse a mismatch, naming the file; a file on disk that the
manifest does not list was never committed and is not read.

A writer stages its files in a private folder of the run directory (`.stage-<token>/`, same file system),
then commits under the directory's lock: it writes the journal (the new manifest and what moves where) into
the staging folder, moves the staged files into place, removes what the new state drops, and writes the
manifest last. Killed before the journal is written, the old state stays in force (the staging folder of a
dead process is dropped by the next writer); killed after, the next reader or writer rolls the commit
forward from the journal. So a reader sees the old state or the new one, never a mix.

Transient or content-keyed files (caches, the decision study, fold claims, the report page, W&B ids) are
outside the manifest: nothing reads a number from them that a digest would protect.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator

from harness.run.claims import FoldClaim, _pid_alive
from harness.core.store import StoreError, atomic_write_json, atomic_write_npz, atomic_write_text, read_json

FORMAT = 1
STAGE_PREFIX = ".stage-"
JOURNAL = "JOURNAL.json"
OWNER = "OWNER.json"
# fault injection for the crash tests (tests/test_manifest.py): kill -9 this process at a named commit step
KILL_AT_ENV = "HARNESS_TEST_KILL_AT"


class WriterBusy(StoreError):
    """Another live process holds the run directory's writer lock."""


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, or of a folder (every file under it, by relative path)."""
    path = Path(path)
    if path.is_dir():
        h, size = hashlib.sha256(), 0
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            d, s = file_digest(f)
            h.update(f"{f.relative_to(path).as_posix()}\0{d}\0".encode())
            size += s
        return h.hexdigest(), size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), path.stat().st_size


def kill_point(step: str) -> None:
    if os.environ.get(KILL_AT_ENV) == step:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class Manifest:
    """manifest.json of one run directory: files (name -> sha256, size, writer) and provenance."""

    def __init__(self, data: dict[str, Any] | None = None):
        data = data or {}
        self.files: dict[str, dict[str, Any]] = dict(data.get("files", {}))
        self.provenance: dict[str, Any] = dict(data.get("provenance", {}))
        self.history: list[dict[str, Any]] = list(data.get("history", []))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "files": dict(sorted(self.files.items())), "provenance": self.provenance,
                "history": self.history[-50:]}

    def digest(self) -> str:
        """What an ensemble records of a member: this manifest's content, files and provenance."""
        body = json.dumps({"files": {k: v["sha256"] for k, v in sorted(self.files.items())},
                           "provenance": self.provenance}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


class WriterLock:
    """The run directory's writer lock: the fold-claim mechanism on one file (dead owners are taken over)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.claim = FoldClaim(self.path)

    def acquire(self, wait: float, what: str) -> None:
        deadline = time.time() + wait
        self.claim = FoldClaim(self.path, writer=what)  # a fresh heartbeat per hold
        while not self.claim.acquire():
            if time.time() >= deadline:
                h = self.claim.holder() or {}
                raise WriterBusy(f"{self.claim.path.parent}: another harness command is writing it ({h.get('writer', '?')}"
                                 f", host {h.get('host', '?')} pid {h.get('pid', '?')}); {what} waits for no one: "
                                 "run it again when that one has finished")
            time.sleep(0.05)

    def release(self) -> None:
        self.claim.release()


class Transaction:
    """Files staged by one writer, made visible together by `commit` (or dropped by `abort`)."""

    def __init__(self, store: "ManifestStore", writer: str):
        self.store, self.writer = store, writer
        self.staging = store.root / f"{STAGE_PREFIX}{uuid.uuid4().hex[:12]}"
        self.staging.mkdir(parents=True)
        (self.staging / OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                      "writer": writer}))
        self.staged: list[str] = []
        self.removed: set[str] = set()
        self.provenance: dict[str, Any] = {}
        self.done = False

    # -- staging -----------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Where to write `name` (a file or folder) so that commit puts it in place; its parents exist."""
        p = self.staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if name not in self.staged:
            self.staged.append(name)
        self.removed.discard(name)
        return p

    def staged_path(self, name: str) -> Path | None:
        return self.staging / name if name in self.staged and (self.staging / name).exists() else None

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path(name), obj)

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path(name), text)

    def write_npz(self, name: str, **arrays: Any) -> None:
        atomic_write_npz(self.path(name), **arrays)

    def remove(self, name: str) -> None:
        if name in self.staged:
            self.staged.remove(name)
            staged = self.staging / name
            if staged.is_dir():
                shutil.rmtree(staged, ignore_errors=True)
            else:
                staged.unlink(missing_ok=True)
        self.removed.add(name)

    # -- commit ------------------------------------------------------------------
    def commit(self, lock_wait: float = 600.0) -> None:
        """Journal, move into place, manifest last. Takes the lock unless the store already holds it."""
        if self.done:
            return
        moves = [n for n in self.staged if (self.staging / n).exists()]
        digests = {n: file_digest(self.staging / n) for n in moves}  # hashed before the lock: a model is large
        held = self.store.lock_held
        if not held:
            self.store.lock.acquire(lock_wait, self.writer)
        try:
            self.store.recover(locked=True)
            manifest = self.store.read()  # read under the lock: other processes' folds committed meanwhile
            for name, (sha, size) in digests.items():
                manifest.files[name] = {"sha256": sha, "size": size, "writer": self.writer}
            removes = sorted(n for n in self.removed if n not in moves)
            for name in removes:
                manifest.files.pop(name, None)
                for child in [k for k in manifest.files if k.startswith(name + "/")]:
                    manifest.files.pop(child)
            manifest.provenance.update(self.provenance)
            manifest.history.append({"writer": self.writer, "time": round(time.time(), 3),
                                     "files": moves, "removed": removes})
            kill_point("staged")
            atomic_write_json(self.staging / JOURNAL, {"manifest": manifest.to_json(), "moves": moves,
                                                       "removes": removes})
            kill_point("journal")
            self.store.roll_forward(self.staging)
        finally:
            self.done = True
            if not held:
                self.store.lock.release()

    def abort(self) -> None:
        if not self.done:
            self.done = True
            shutil.rmtree(self.staging, ignore_errors=True)


class ManifestStore:
    """The manifest, lock and commits of one run directory (RunDir owns one; it names the files)."""

    def __init__(self, root: Path, manifest_name: str, lock_name: str):
        self.root = Path(root)
        self.manifest_path = self.root / manifest_name
        self.lock = WriterLock(self.root / lock_name)
        self.lock_held = False
        self._verified: dict[str, tuple[int, int, str]] = {}

    def exists(self) -> bool:
        """A committed state exists (a journalled commit of a killed writer is finished first: the very first
        commit of a directory has no manifest until it is rolled forward)."""
        self.recover(locked=self.lock_held)
        return self.manifest_path.exists()

    # -- commits -------------------------------------------------------------------
    @property
    def active(self) -> Transaction | None:
        """The commit this process has open on this directory (every handle on the same folder joins it)."""
        return _ACTIVE.get(str(self.root.resolve()))

    @contextlib.contextmanager
    def transaction(self, writer: str, exclusive: bool = True, wait: float = 0.0) -> Iterator[Transaction]:
        """Stage every write of the block; commit them in one step at its end, or none on an error.
        `exclusive`: hold the lock for the whole block (a second writer is refused at once, or after `wait` s);
        else only the commit takes it (folds that several processes share). Nested: joins the open commit."""
        if self.active is not None:
            yield self.active
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if exclusive:
            self.lock.acquire(wait, f"harness {writer}")
            self.lock_held = True
        tx = Transaction(self, writer)
        key = str(self.root.resolve())
        _ACTIVE[key] = tx
        try:
            if exclusive:
                self.recover(locked=True)
            yield tx
            tx.commit()
        finally:
            _ACTIVE.pop(key, None)
            tx.abort()
            if exclusive:
                self.lock_held = False
                self.lock.release()

    # -- reads ---------------------------------------------------------------------
    def recorded(self, name: str) -> bool | None:
        """`name` is part of the committed state (staged in this process's open commit counts); None: there is no
        manifest, the caller decides (a legacy directory)."""
        tx = self.active
        if tx is not None:
            if name in tx.removed:
                return False
            if tx.staged_path(name) is not None:
                return True
        if not self.exists():
            return None
        self.recover()
        return name in self.read().files

    def checked(self, name: str) -> Path:
        """Where to read `name` from, after checking it is what its writer committed (StoreError if not)."""
        tx = self.active
        staged = tx.staged_path(name) if tx is not None else None
        if staged is not None:
            return staged
        self.recover()
        try:
            self.verify(name)
        except StoreError:
            if not self.pending():
                raise
            self.recover()  # a commit of another process was mid-way: read what it committed
            self.verify(name)
        return self.root / name

    def read(self) -> Manifest:
        if not self.manifest_path.exists():
            return Manifest()
        data = read_json(self.manifest_path)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise StoreError(f"{self.manifest_path}: not a harness manifest (no 'files' table)")
        return Manifest(data)

    # -- recovery ----------------------------------------------------------------
    def pending(self) -> list[Path]:
        return sorted(p for p in self.root.glob(f"{STAGE_PREFIX}*") if p.is_dir())

    def recover(self, locked: bool = False) -> None:
        """Finish commits whose journal was written; drop staging folders of processes that died before."""
        stages = self.pending()
        if not stages:
            return
        if not locked:
            if not any((s / JOURNAL).exists() for s in stages):
                return  # only uncommitted staging: harmless to readers, dropped by the next writer
            self.lock.acquire(60.0, "reading")
        try:
            for stage in self.pending():
                if (stage / JOURNAL).exists():
                    self.roll_forward(stage)
                elif not _owner_alive(stage):
                    shutil.rmtree(stage, ignore_errors=True)
        finally:
            if not locked:
                self.lock.release()

    def roll_forward(self, stage: Path) -> None:
        """Apply a journal (idempotent: a move already done is skipped), write the manifest, drop the stage."""
        journal = read_json(stage / JOURNAL)
        for i, name in enumerate(journal["moves"]):
            src, dst = stage / name, self.root / name
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.is_dir() and not dst.is_symlink():
                    shutil.rmtree(dst)
                os.replace(src, dst)
            if i == 0:
                kill_point("moved-one")
        for name in journal["removes"]:
            target = self.root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        kill_point("moved")
        atomic_write_json(self.manifest_path, journal["manifest"])
        self._verified.clear()
        shutil.rmtree(stage, ignore_errors=True)

    # -- verification -------------------------------------------------------------
    def verify(self, name: str, manifest: Manifest | None = None) -> None:
        """Refuse a file whose content is not what the manifest recorded (or that it does not list)."""
        path = self.root / name
        manifest = manifest or self.read()
        entry = manifest.files.get(name)
        if entry is None:
            raise StoreError(f"{path}: not recorded in {self.manifest_path.name}: written by a command that did not "
                             "finish, or by hand; re-run the step that writes it")
        if not path.exists():
            raise StoreError(f"{path}: missing, though {self.manifest_path.name} records it (written by "
                             f"{entry.get('writer')}); re-run that step")
        st = path.stat()
        seen = self._verified.get(name)
        if seen and seen[:2] == (st.st_mtime_ns, st.st_size) and seen[2] == entry["sha256"]:
            return
        sha, size = file_digest(path)
        if sha != entry["sha256"]:
            raise StoreError(f"{path}: changed since {entry.get('writer')} wrote it (content digest {sha[:12]}, "
                             f"recorded {entry['sha256'][:12]}; {size} bytes, recorded {entry.get('size')}): edited "
                             "by hand or damaged; re-run the step that writes it")
        self._verified[name] = (st.st_mtime_ns, st.st_size, sha)


def _owner_alive(stage: Path) -> bool:
    try:
        owner = json.loads((stage / OWNER).read_text())
    except (OSError, ValueError):
        return time.time() - stage.stat().st_mtime < 600  # no owner yet: a stage being created right now
    return owner.get("host") != socket.gethostname() or _pid_alive(int(owner.get("pid", 0)))


_ACTIVE: dict[str, Transaction] = {}  # open commits of this process, by resolved directory
_warned: set[str] = set()


def warn_unverified(root: Path, how_to_upgrade: str) -> None:
    """One warning per process and directory: a run written before manifests is read as it is."""
    key = str(Path(root).resolve())
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"{root}: written before run directories had a manifest, so its files are read unverified; "
                      f"{how_to_upgrade}", stacklevel=3)
