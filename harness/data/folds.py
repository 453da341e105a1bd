"""Grouped stratified folds, saved as folds.json, with a leakage audit.

Rows are assigned by group (dialogue, post, or the row itself in 'utterance'
mode); augmented rows follow the fold of their `source_id`, so a variant of a
validation row can never be trained on.
"""

from __future__ import annotations

import warnings

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError
from harness.data.load import Example, group_of
from harness.core.store import StoreError, atomic_write_json, read_json


@dataclass
class Folds:
    n_folds: int
    seed: int
    group_key: str
    fold_of: dict[str, int]  # row id -> validation fold
    group: dict[str, str]  # row id -> group

    def val_ids(self, k: int) -> set[str]:
        return {i for i, f in self.fold_of.items() if f == k}

    def fold_of_example(self, ex: Example) -> int:
        """Validation fold of a row; an augmented variant takes its source row's fold."""
        return self.fold_of[ex.source_id or ex.id]

    def split(self, examples: Sequence[Example], k: int) -> tuple[list[Example], list[Example]]:
        train = [e for e in examples if self.fold_of_example(e) != k]
        val = [e for e in examples if self.fold_of_example(e) == k]
        return train, val

    def to_json(self) -> dict[str, Any]:
        return {"n_folds": self.n_folds, "seed": self.seed, "group_key": self.group_key,
                "fold_of": self.fold_of, "group": self.group}

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> "Folds":
        d = read_json(path)
        try:
            return cls(int(d["n_folds"]), int(d["seed"]), str(d["group_key"]), dict(d["fold_of"]), dict(d["group"]))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{path}: not a folds file ({type(e).__name__}: {e}); remove it to rebuild the folds "
                             "(only before any fold was trained)") from None


def class_problems(examples: Sequence[Example], label_names: Sequence[str], n_folds: int, source: str,
                   group_key: str | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of these labelled rows for cross-validation: a single class cannot make a classifier;
    a class with fewer rows than folds can (every method copes with a training part that lacks it) but some
    validation folds will hold none of it, which a user should know."""
    counts = np.bincount([e.label for e in examples if e.label is not None], minlength=len(label_names))
    n_groups = len({group_of(e, group_key) for e in examples}) if group_key else n_folds
    if n_groups < n_folds:
        return [f"cv.n_folds: {n_folds} folds but the data has only {n_groups} group(s) by {group_key!r}; every "
                "fold needs at least one group"], []
    present = [i for i, c in enumerate(counts) if c]
    empty = [f"{i} {label_names[i]}" for i, c in enumerate(counts) if not c]
    if len(present) >= 2 and empty:
        return [f"{source}: no labelled row of class(es) {', '.join(empty)} (of the {len(label_names)} in "
                "data.labels or the data preset); macro-F1 would average them in as 0 and dilute every score: "
                "give data.labels the classes this data has (or the preset that fits it)"], []
    if len(present) < 2:
        only = ", ".join(f"{i} {label_names[i]}" for i in present) or "none"
        return [f"{source}: every labelled row has the same class ({only}); a classifier needs two"], []
    few = [f"{i} {label_names[i]} ({c} rows)" for i, c in enumerate(counts) if 0 < c < n_folds]
    if few:
        return [], [f"note: {source}: classes with fewer rows than cv.n_folds={n_folds}: {', '.join(few)}; some "
                    "validation folds hold none of them (their per-fold scores ignore those classes)"]
    return [], []


def make_folds(examples: Sequence[Example], n_folds: int, seed: int, group_key: str) -> Folds:
    """StratifiedGroupKFold on the group key, deterministic by seed."""
    from sklearn.model_selection import StratifiedGroupKFold

    ids = [e.id for e in examples]
    groups = [group_of(e, group_key) for e in examples]
    y = np.array([e.label for e in examples])
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise ConfigError([f"cv.n_folds: {n_folds} folds but the data has only {n_groups} group(s) by "
                           f"{group_key!r}; every fold needs at least one group"])
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of: dict[str, int] = {}
    with warnings.catch_warnings():  # "least populated class" is said once, by class_problems, in our words
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    for k, (_, val_idx) in enumerate(splits):
        for i in val_idx:
            fold_of[ids[i]] = k
    return Folds(n_folds, seed, group_key, fold_of, dict(zip(ids, groups)))


def audit(folds: Folds, examples: Sequence[Example], label_names: Sequence[str]) -> dict[str, Any]:
    """Prove: no group in two folds, every row in exactly one validation fold; report class counts per fold."""
    group_folds: dict[str, set[int]] = defaultdict(set)
    for rid, k in folds.fold_of.items():
        group_folds[folds.group[rid]].add(k)
    leaked = sorted(g for g, ks in group_folds.items() if len(ks) > 1)
    row_ids = [e.id for e in examples]
    missing = [i for i in row_ids if i not in folds.fold_of]
    counts = Counter(row_ids)
    dup = [i for i, c in counts.items() if c > 1]
    extra = sorted(set(folds.fold_of) - set(row_ids))
    per_fold = []
    for k in range(folds.n_folds):
        labs = Counter(e.label for e in examples if folds.fold_of.get(e.id) == k)
        per_fold.append({"fold": k, "rows": sum(labs.values()),
                         "groups": len({folds.group[e.id] for e in examples if folds.fold_of.get(e.id) == k}),
                         "class_counts": [labs.get(c, 0) for c in range(len(label_names))]})
    ok = not leaked and not missing and not dup and not extra
    return {"ok": ok, "group_key": folds.group_key, "n_folds": folds.n_folds, "seed": folds.seed,
            "rows": len(row_ids), "groups": len(group_folds), "leaked_groups": leaked,
            "rows_without_fold": missing, "duplicate_rows": dup, "unknown_rows": extra, "per_fold": per_fold}


def format_audit(report: dict[str, Any], label_names: Sequence[str]) -> str:
    lines = [f"folds: {report['n_folds']} grouped by {report['group_key']!r} (seed {report['seed']}), "
             f"{report['rows']} rows in {report['groups']} groups",
             f"leaked groups: {len(report['leaked_groups'])}   rows without a fold: {len(report['rows_without_fold'])}"
             f"   duplicate rows: {len(report['duplicate_rows'])}   -> {'OK' if report['ok'] else 'FAILED'}",
             "", "fold  rows groups  " + " ".join(f"{c:>5}" for c in range(len(label_names)))]
    for f in report["per_fold"]:
        lines.append(f"{f['fold']:>4} {f['rows']:>5} {f['groups']:>6}  " + " ".join(f"{c:>5}" for c in f["class_counts"]))
    lines.append("classes: " + ", ".join(f"{i}={n}" for i, n in enumerate(label_names)))
    return "\n".join(lines)


def subsample_groups(rows: Sequence[Example], fraction: float, seed: int, group_key: str) -> list[Example]:
    """A fraction of the rows' groups (a learning curve's smaller training part), drawn so every class present in
    `rows` keeps at least one group that holds it, then filled at random to round(fraction x groups); whole
    groups only, so a dialogue is never split. fraction 1 gives the rows back unchanged."""
    if fraction >= 1:
        return list(rows)
    rng = np.random.default_rng(seed)
    groups: dict[str, list[Example]] = {}
    for e in rows:
        groups.setdefault(group_of(e, group_key), []).append(e)
    names = sorted(groups)
    n_keep = max(1, round(fraction * len(names)))
    order = [names[i] for i in rng.permutation(len(names))]
    keep: list[str] = []
    labels = sorted({e.label for e in rows if e.label is not None})
    for c in [labels[i] for i in rng.permutation(len(labels))]:
        if not any(e.label == c for g in keep for e in groups[g]):
            keep.append(next(g for g in order if g not in keep and any(e.label == c for e in groups[g])))
    keep += [g for g in order if g not in keep][: max(0, n_keep - len(keep))]
    chosen = set(keep)
    return [e for e in rows if group_of(e, group_key) in chosen]
