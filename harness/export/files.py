"""An export folder's own files, and the check that they are what `harness export` wrote.

    README.md        the model card (Hugging Face's format: YAML metadata, then the text)
    export.json      what the folder holds: the method, labels, the models and their seeds and folds, the
                     decision, where it came from, and the digest of every other file (checked on load)
    decision.json    the locked decision (rung, δ, τ gate, seed/member weights, temperature) and its gains
    config.yaml      the run's config (secrets masked): `harness.load` rebuilds the method from it
    <model files>    a single model (`--from refit`, `--fold K`): its files at the top, as transformers / PEFT
                     / sentence-transformers expect them
    folds/seed<S>-fold<K>/    a fold ensemble: each fold's model, each loadable on its own
    seeds/seed<S>/            a refit of several seeds: each seed's model, each loadable on its own
    members/<i>-<name>/       an ensemble: each member run's config.yaml and folds/
    combiner.npz     an ensemble: member temperatures, or the stacker's coefficients
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.core.store import StoreError, read_json
from harness.run.layout import COMBINER, CONFIG  # the run's own config and combiner, under their run names
from harness.run.manifest import file_digest

CARD = "README.md"
EXPORT = "export.json"
DECISION = "decision.json"
FOLDS = "folds"
MEMBERS = "members"
SEEDS = "seeds"
FORMAT = "harness-export"
VERSION = 1
OWN_FILES = (CARD, EXPORT, DECISION, CONFIG, FOLDS, MEMBERS, SEEDS, COMBINER)


def is_export(path: str | Path) -> bool:
    return (Path(path) / EXPORT).is_file()


def fold_folder(seed: int, fold: int) -> str:
    return f"{FOLDS}/seed{seed}-fold{fold}"


def seed_folder(seed: int) -> str:
    """A refit of several seeds: each seed's model (trained on every row)."""
    return f"{SEEDS}/seed{seed}"


def digests(root: Path) -> dict[str, list[Any]]:
    """sha256 and size of every file under `root` except export.json (which holds them)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel != EXPORT:
                out[rel] = list(file_digest(path))
    return dict(sorted(out.items()))


def read_export(root: str | Path, verify: bool = True) -> dict[str, Any]:
    """export.json, after checking every file it lists is there with its digest and no other file was added
    (a damaged copy or a hand edit is named, not loaded); StoreError lists every problem."""
    root = Path(root)
    if not is_export(root):
        raise StoreError(f"{root}: no {EXPORT}: not a folder written by `harness export`")
    meta = read_json(root / EXPORT)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StoreError(f"{root / EXPORT}: not a harness export (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise StoreError(f"{root / EXPORT}: export version {meta.get('version')!r}; this harness reads {VERSION}")
    if verify:
        want, have = meta.get("files") or {}, digests(root)
        problems = [f"{root / n}: missing" for n in want if n not in have]
        problems += [f"{root / n}: changed since export (sha256 {have[n][0][:12]}, recorded {want[n][0][:12]})"
                     for n in want if n in have and have[n] != want[n]]
        problems += [f"{root / n}: not written by the export" for n in have if n not in want]
        if problems:
            raise StoreError("; ".join(problems) + "; export the run again (`harness export RUN --out NEW`)")
    return meta
