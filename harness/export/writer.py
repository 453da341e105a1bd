"""`harness export`: a run's final model as one folder other tools load, with its decision and model card.

The folder is built in a hidden stage beside `--out` and renamed into place in one step, so `--out` is either
absent or complete: an export killed half-way leaves only a stage, which the next export removes (its owner
being dead). Everything read from the run directory is checked against its manifest first.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import ConfigError, ExperimentConfig, apply_overrides
from harness.core.store import StoreError, atomic_write_text
from harness.export import files
from harness.export.card import decision_record, foldable, render
from harness.run.claims import _pid_alive
from harness.run.manifest import kill_point
from harness.run.rundir import RunDir

STAGE_MARK = ".partial-"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harness")
    except PackageNotFoundError:
        return "unknown"


def _finished_run(run: RunDir, what: str) -> ExperimentConfig:
    """The run's config, when the run is finished (every fold assembled); a clear error otherwise."""
    if not run.path.is_dir() or not (run.is_run() or run.is_ensemble()):
        raise ConfigError([f"{run.path}: not a run directory (no config.yaml): give the folder `harness cv` or "
                           "`harness ensemble` wrote"])
    if run.is_legacy():
        raise StoreError(f"{run.path}: written by an older harness without a manifest, so nothing can be checked; "
                         f"`harness verify {run.path} --upgrade` records its files (after you check them)")
    cfg = run.read_config()
    if not run.is_finished():
        raise ConfigError([f"{run.path}: unfinished: oof.npz is missing (not every fold of every seed is trained); "
                           f"finish it with `harness cv` first, then {what}"])
    return cfg


def _stage(out: Path) -> Path:
    """A fresh stage beside `out`, after removing stages of exports to `out` whose process is gone."""
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f".{out.name}{STAGE_MARK}*"):
        host, _, pid = old.name.rsplit(STAGE_MARK, 1)[1].rpartition("-")
        if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    stage = parent / f".{out.name}{STAGE_MARK}{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    return stage


def _model_entry(method: Any, saved: Path, stage: Path, rel: str, seed: int, fold: int | None, merge: bool,
                 fold_decision: tuple[np.ndarray, float] | None) -> dict[str, Any]:
    from harness.methods.base import ExportOptions

    options = ExportOptions(merge=merge, fold_delta=None if fold_decision is None else fold_decision[0],
                            fold_temperature=1.0 if fold_decision is None else fold_decision[1])
    target = stage / rel if rel else stage / ".model"
    said = method.export_model(saved, target, options)
    if not rel:  # a single model: its files at the top of the folder, where transformers and PEFT look
        (target / files.CARD).unlink(missing_ok=True)  # PEFT's stub card: the export's card replaces it
        clash = [p.name for p in target.iterdir() if p.name in files.OWN_FILES]
        if clash:
            raise StoreError(f"{saved}: holds {clash}, which the export's own files are named; export with --from folds")
        for p in list(target.iterdir()):
            p.rename(stage / p.name)
        target.rmdir()
    return {"path": rel or ".", "seed": seed, "fold": fold, **said}


def _models(run: RunDir, cfg: ExperimentConfig, stage: Path, source: str, fold: int | None, merge: bool,
            decision: dict[str, Any] | None, verbose: bool, refit_seeds: list[int] | None = None
            ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every model of the export written into the stage; the settings the exported models differ in."""
    from harness.methods.base import make_method
    from harness.posthoc.predict import fold_models

    method = make_method(cfg, run.cache)
    single = fold is not None or (source == "refit" and len(refit_seeds or cfg.train.seeds) == 1)
    to_fold = foldable(decision) if single else None
    if source == "refit":
        from harness.export.refit import refit

        refits = refit(run, cfg, verbose, refit_seeds)
        entries = [_model_entry(method, saved, stage, "" if single else files.seed_folder(m["seed"]), m["seed"], None,
                                merge, to_fold) for m, saved in refits]
    else:
        saved_dirs = fold_models(run, cfg)  # every fold model checked against the manifest first
        picked = [(s, k) for s, k in saved_dirs if fold is None or (k == fold and s == cfg.train.seeds[0])]
        entries = []
        for s, k in picked:
            if verbose:
                print(f"exporting seed {s} fold {k} ({cfg.method})", flush=True)
            rel = "" if single else files.fold_folder(s, k)
            entries.append(_model_entry(method, saved_dirs[(s, k)], stage, rel, s, k, merge, to_fold))
            kill_point("export-model")
    return entries, dict(entries[0].get("settings") or {}) if entries else {}


def _members(run: RunDir, stage: Path, merge: bool, verbose: bool) -> list[dict[str, Any]]:
    """An ensemble's member runs, each a sub-export (config and fold models), and its combiner; refused when a
    member's results changed since the ensemble was fitted."""
    from harness.posthoc.ensemble import check_members_unchanged

    check_members_unchanged(run)
    members = run.read_members() or []
    out, done = [], {}
    for m in members:
        if m.run_dir not in done:
            member = RunDir(m.run_dir)
            cfg = _finished_run(member, "export the ensemble")
            rel = f"{files.MEMBERS}/{len(done)}-{member.name}"
            (stage / rel).mkdir(parents=True)
            entries, changed = _models(member, cfg, stage / rel, "folds", None, merge, None, verbose)
            _write_config(stage / rel, cfg, changed)
            done[m.run_dir] = {"path": rel, "method": cfg.method, "seeds": list(cfg.train.seeds),
                               "n_folds": cfg.cv.n_folds, "models": entries}
        out.append({**done[m.run_dir], "seed": m.seed, "name": m.name})
    combiner = run.read_combiner()
    np.savez(stage / files.COMBINER, **combiner)
    return out


def _write_config(folder: Path, cfg: ExperimentConfig, changed: dict[str, Any]) -> None:
    (apply_overrides(cfg, changed) if changed else cfg).save(folder / files.CONFIG)


def export_run(run_dir: str | Path, out: str | Path, source: str = "folds", fold: int | None = None,
               merge: bool = False, verbose: bool = True, command: str | None = None,
               refit_seeds: list[int] | None = None) -> dict[str, Any]:
    """Write the export folder `out` from a finished run (see the module docstring); export.json's content."""
    out, run = Path(out), RunDir(run_dir)
    if out.exists():
        raise ConfigError([f"--out {out}: exists; an export never overwrites: choose a new folder"])
    cfg = _finished_run(run, "export")
    if run.is_ensemble() and (source == "refit" or fold is not None):
        raise ConfigError([f"{run.path}: an ensemble exports as a whole (--from folds, no --fold): its combiner "
                           "needs every member's fold models"])
    if fold is not None and not 0 <= fold < cfg.cv.n_folds:
        raise ConfigError([f"--fold: {fold} outside 0..{cfg.cv.n_folds - 1} (the run's cv.n_folds={cfg.cv.n_folds})"])
    decision = decision_record(run)
    stage = _stage(out)
    try:
        meta = _fill(run, cfg, stage, source, fold, merge, decision, verbose, command, refit_seeds)
        kill_point("export-before-rename")
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if verbose:
        print(f"exported {run.path} to {out} ({len(meta['models']) or len(meta['members'])} model(s); "
              f"decision {'folded into the head' if meta['folded'] else 'applied by harness.load'})")
    return meta


def _fill(run: RunDir, cfg: ExperimentConfig, stage: Path, source: str, fold: int | None, merge: bool,
          decision: dict[str, Any] | None, verbose: bool, command: str | None, refit_seeds: list[int] | None
          ) -> dict[str, Any]:
    if run.is_ensemble():
        models, members, changed = [], _members(run, stage, merge, verbose), {}
    else:
        (models, changed), members = _models(run, cfg, stage, source, fold, merge, decision, verbose, refit_seeds), []
    folded = len(models) == 1 and models[0]["folded"]
    meta = {"format": files.FORMAT, "version": files.VERSION, "name": cfg.name, "method": cfg.method,
            "label_names": cfg.data.label_names(), "source": source, "merged": merge, "folded": folded,
            "seeds": list(dict.fromkeys(m["seed"] for m in models)) if models else list(cfg.train.seeds),
            "n_folds": cfg.cv.n_folds if source == "folds" and fold is None else 1, "models": models,
            "members": members,
            "combine": run.read_combine(), "run": {"path": str(run.path.resolve()), "manifest":
                                                   run.manifest().digest()},
            "harness_version": _version(),
            "command": command or "harness export"}
    _write_config(stage, cfg, changed)
    atomic_write_text(stage / files.DECISION, json.dumps(decision, indent=1) + "\n")
    reproduce = (f"harness cv {run.config_path}\nharness decide {run.path}\n"
                 f"{meta['command']}")
    atomic_write_text(stage / files.CARD, render(run, cfg, meta, decision, reproduce))
    meta["files"] = files.digests(stage)
    atomic_write_text(stage / files.EXPORT, json.dumps(meta, indent=1) + "\n")
    return meta
