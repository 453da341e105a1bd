"""Where a run directory keeps each file: one place, read by the fold loop and by methods that continue
another run's folds (a preference run starts each fold from the same fold of an sft run)."""

from __future__ import annotations

from pathlib import Path

DATA_FINGERPRINT = "data.json"  # rows and content digest of the training and test data
MODEL_DIR = "model"  # folds/seed<S>/fold<K>/model/: what Method.load reads (train.save_adapters)


def fold_dir(run_dir: Path, seed: int, fold: int) -> Path:
    return run_dir / "folds" / f"seed{seed}" / f"fold{fold}"


def parse_fold_dir(out: Path) -> tuple[Path, int, int]:
    """(run directory, seed, fold) of a `fold_dir` path: how a method learns which fold it is training."""
    out = Path(out)
    if out.parent.parent.name != "folds" or not out.name.startswith("fold") or not out.parent.name.startswith("seed"):
        raise ValueError(f"{out} is not a fold directory (<run>/folds/seed<S>/fold<K>)")
    return out.parents[2], int(out.parent.name[4:]), int(out.name[4:])
