"""A whole run directory checked against its manifest (`harness verify`), and a legacy one recorded."""

from __future__ import annotations

from harness.core.store import StoreError
from harness.run.layout import (CALIBRATION, COMBINER, CONFIG, CROSSFIT, DATA, ENSEMBLE, FOLD_DONE, FOLD_METRICS,
                                FOLD_ROOT, FOLDS, MANIFEST, METRICS, MODEL, OOF, SCORED_PREFIX, TEST, UPGRADE)
from harness.run.manifest import Manifest, file_digest
from harness.run.rundir import RunDir


def upgrade(run: RunDir) -> list[str]:
    """Record a legacy run directory's files in a new manifest, as they are (after refusing one without
    its data fingerprint: nothing could say which data its results belong to)."""
    if run.store.exists():
        return []
    if not (run.path / DATA).exists() and not (run.path / ENSEMBLE).exists():
        raise StoreError(f"{run.path}: no {DATA} (the data fingerprint); its results cannot be tied to any data: "
                         "start a new run directory (run_dir=...)")
    names = [n for n in (CONFIG, DATA, FOLDS, OOF, TEST, METRICS, CALIBRATION, CROSSFIT, ENSEMBLE, COMBINER)
             if (run.path / n).exists()]
    names += [p.relative_to(run.path).as_posix() for p in sorted((run.path / FOLD_ROOT).glob("seed*/fold*/*"))
              if p.name in (FOLD_DONE, FOLD_METRICS, MODEL)]
    names += [p.name for p in sorted(run.path.glob(f"{SCORED_PREFIX}*.npz"))]
    manifest = Manifest()
    for n in names:
        sha, size = file_digest(run.path / n)
        manifest.files[n] = {"sha256": sha, "size": size, "writer": "upgrade"}
    manifest.history.append({"writer": "upgrade", "files": names, "removed": []})
    from harness.core.store import atomic_write_json

    run.store.lock.acquire(0.0, "harness verify --upgrade")
    try:
        atomic_write_json(run.store.manifest_path, manifest.to_json())
    finally:
        run.store.lock.release()
    return names

def check_all(run: RunDir) -> list[str]:
    """Every problem of the committed state: files whose digest differs, missing or never committed."""
    if not run.store.exists():
        return [f"{run.path}: no {MANIFEST}" + ("; " + UPGRADE.format(path=run.path) if run.is_legacy() else "")]
    run.store.recover()
    manifest = run.store.read()
    problems = []
    for name in manifest.files:
        try:
            run.store.verify(name, manifest)
        except StoreError as e:
            problems.append(str(e))
    for name in (CONFIG, DATA, FOLDS, OOF, TEST, METRICS, CALIBRATION, CROSSFIT, ENSEMBLE, COMBINER):
        if (run.path / name).exists() and name not in manifest.files:
            problems.append(f"{run.path / name}: on disk but not recorded in {MANIFEST}")
    return problems
