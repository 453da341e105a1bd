"""What an ensemble directory adds to a run directory: its members, how they combine, the combiner's arrays,
the members' provenance; and the cache of scored files. A part of RunDir (harness.run.rundir)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np

from harness.core.store import StoreError, atomic_write_npz, load_npz, read_json
from harness.run.layout import (CALIBRATION, COMBINER, CONFIG, CROSSFIT, ENSEMBLE, METRICS, SCORED_PREFIX,
                                EnsembleMember)
from harness.run.manifest import Manifest, ManifestStore, Transaction


class EnsembleFiles:
    """RunDir's ensemble files (it provides `path`, `store` and the commit and verified-read primitives)."""

    path: Path
    store: ManifestStore
    _write: Callable[[str, Callable[[Path], None]], None]
    _optional: Callable[[str], Path | None]
    recorded: Callable[[str], bool]
    manifest: Callable[[], Manifest]
    writing: Callable[..., ContextManager[Transaction]]

    def _ensemble_json(self) -> dict[str, Any] | None:
        path = self._optional(ENSEMBLE)
        if path is None:
            return None
        data = read_json(path)
        members = data.get("members") if isinstance(data, dict) else None
        if not isinstance(members, list) or not members:
            raise StoreError(f"{path}: no 'members' list")
        return data

    def read_members(self) -> list[EnsembleMember] | None:
        """The members of an ensemble directory; None for a plain run directory."""
        data = self._ensemble_json()
        if data is None:
            return None
        out, problems = [], []
        fields = set(EnsembleMember.__dataclass_fields__)
        for i, m in enumerate(data["members"]):
            missing = sorted(fields - set(m)) if isinstance(m, dict) else sorted(fields)
            if missing:
                problems.append(f"member {i}: missing {', '.join(missing)}")
                continue
            out.append(EnsembleMember(**{k: m[k] for k in fields}))
        if problems:
            raise StoreError(f"{self.path / ENSEMBLE}: " + "; ".join(problems))
        return out

    def write_members(self, members: list[EnsembleMember], combine: str = "weights",
                      member_manifests: dict[str, str] | None = None) -> None:
        """ensemble.json, and in the manifest's provenance each member's manifest digest as it was when fitted."""
        with self.writing("ensemble", exclusive=False) as tx:
            tx.write_json(ENSEMBLE, {"members": [asdict(m) for m in members], "combine": combine})
            if member_manifests is not None:
                tx.provenance["members"] = member_manifests

    def read_combine(self) -> str | None:
        """How an ensemble's members combine: `weights` (a searched blend) or `stack` (a stacker); None: not one."""
        data = self._ensemble_json()
        if data is None:
            return None
        combine = data.get("combine", "weights")
        if combine not in ("weights", "stack"):
            raise StoreError(f"{self.path / ENSEMBLE}: combine {combine!r} is neither 'weights' nor 'stack'")
        return combine

    def write_combiner(self, arrays: dict[str, np.ndarray]) -> None:
        self._write(COMBINER, lambda p: atomic_write_npz(p, **arrays))

    def read_combiner(self) -> dict[str, np.ndarray] | None:
        path = self._optional(COMBINER)
        return load_npz(path, "temperatures") if path is not None else None

    def is_ensemble(self) -> bool:
        return self.recorded(ENSEMBLE) or (self.path / ENSEMBLE).exists()

    def member_provenance(self) -> dict[str, str] | None:
        """Each member run's manifest digest when this ensemble was fitted (None: not recorded)."""
        return self.manifest().provenance.get("members") if self.store.exists() else None

    def results_digest(self) -> str | None:
        """What an ensemble builds on, from the manifest: every committed file but the decision's, the config
        (resume-safe settings may change) and caches. A member re-run with other settings or labels changes it."""
        if not self.store.exists():
            return None
        import hashlib
        import json

        files = {k: v["sha256"] for k, v in self.manifest().files.items()
                 if k not in (CALIBRATION, CROSSFIT, METRICS, CONFIG) and not k.startswith(SCORED_PREFIX)}
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()

    # -- the predict cache -----------------------------------------------------------------
    def read_scored(self, key: str) -> dict[str, np.ndarray] | None:
        name = f"{SCORED_PREFIX}{key}.npz"
        path = self._optional(name)
        return load_npz(path, "probs") if path is not None else None

    def write_scored(self, key: str, **arrays: np.ndarray) -> None:
        with self.writing("predict-cache", exclusive=False) as tx:
            tx.write_npz(f"{SCORED_PREFIX}{key}.npz", **arrays)
