"""Ensembles across runs: several run directories on identical folds, blended honestly on their OOF rows.

An ensemble directory is a run directory whose blend members are the (run, seed) OOF sets of its member
runs: oof.npz and test.npz stack them on the seed axis, `ensemble.json` names every member, and the
decision layer (`harness decide`, run here) searches the blend weights on the simplex over members
together with δ and τ, with the same cross-fitted estimate of the gain as for one run. `harness predict`
then writes the submission from the blended test probabilities of every member (a new `--test` file is
scored by each member run's own fold models). Runs whose folds differ are refused: their OOF rows were
predicted by models trained on different rows, so no blend fitted on them is honest.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.compare import ENSEMBLE_MEMBERS, load_comparable
from harness.config import ConfigError, ExperimentConfig, apply_overrides
from harness.cv import DATA_FINGERPRINT, oof_metrics
from harness.store import atomic_write_json, atomic_write_npz, load_npz, read_json

MEMBERS = ENSEMBLE_MEMBERS  # ensemble.json


def members_of(run_dir: Path) -> list[dict[str, Any]] | None:
    """The member list of an ensemble directory; None for a plain run directory."""
    path = Path(run_dir) / MEMBERS
    return read_json(path)["members"] if path.exists() else None


def _test_probs(run_dirs: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Every member run's test.npz stacked on the seed axis, after checking they scored the same rows."""
    ids, probs, problems = None, [], []
    for d in run_dirs:
        z = load_npz(d / "test.npz", "ids", "probs")
        if ids is None:
            ids = z["ids"]
        elif len(z["ids"]) != len(ids) or (z["ids"] != ids).any():
            problems.append(f"{d / 'test.npz'}: its test rows differ from {run_dirs[0] / 'test.npz'}'s")
        probs.append(z["probs"])
    if problems:
        raise ConfigError(problems + ["ensemble members must score the same data.test_path"])
    if len({p.shape[1] for p in probs}) > 1:
        raise ConfigError([f"members have different fold counts in test.npz: {[p.shape[1] for p in probs]}"])
    return ids, np.concatenate(probs, 0)


def build_ensemble(run_dirs: Sequence[str | Path], out: str | Path, overrides: Sequence[str] = (),
                   verbose: bool = True) -> dict[str, Any]:
    """Write the ensemble directory and run the decision layer on it; returns the decision."""
    from harness.config import parse_overrides
    from harness.decide import decide_run

    out = Path(out)
    runs = load_comparable(run_dirs)
    members: list[dict[str, Any]] = []
    for r in runs:
        for seed in r.oof.seeds:
            members.append({"member": len(members), "run_dir": str(r.run.path.resolve()), "name": r.run.name,
                            "method": r.cfg.method, "seed": int(seed)})
    old = members_of(out)
    if old is not None and old != members:
        raise ConfigError([f"{out / MEMBERS}: {out} is an ensemble of other runs; choose a new --out"])
    if old is None and out.exists() and any(out.iterdir()):
        raise ConfigError([f"{out}: exists and is not an ensemble directory; choose a new --out"])
    first = runs[0]
    over = parse_overrides(list(overrides))
    unknown = [k for k in over if k != "decide"]
    if unknown:
        raise ConfigError([f"{k}: only decide.* settings apply to an ensemble" for k in unknown])
    # the members are the blend's "seeds"; their weights are searched unless the command line says otherwise
    # (a member run's own decide.blend was about its seeds, not about these members). Validated before any write.
    cfg = apply_overrides(first.cfg, {"name": f"ensemble-{out.name}", "run_dir": str(out),
                                      "train.seeds": list(range(len(members))), "decide.enabled": True,
                                      "decide.blend": "search", "decide.weights": None, **over})
    out.mkdir(parents=True, exist_ok=True)
    probs = np.concatenate([r.oof.probs for r in runs], 0)
    o = first.oof
    atomic_write_npz(out / "oof.npz", ids=o.ids, labels=o.labels, fold=o.fold, seeds=np.arange(len(members)),
                     probs=probs)
    test_ids, test_probs = _test_probs([r.run.path for r in runs])
    atomic_write_npz(out / "test.npz", ids=test_ids, seeds=np.arange(len(members)), probs=test_probs)
    for name in ("folds.json", DATA_FINGERPRINT):
        shutil.copyfile(first.run.path / name, out / name)
    atomic_write_json(out / MEMBERS, {"members": members})
    cfg.save(out / "config.yaml")
    per_fold = _per_fold(cfg, o.labels, o.fold, probs)
    atomic_write_json(out / "metrics.json", oof_metrics(cfg, out, o.labels, probs, cfg.train.seeds, per_fold))
    if verbose:
        listed = ", ".join(f"{m['name']}/seed {m['seed']}" for m in members)
        print(f"ensemble of {len(members)} members ({listed}) in {out}")
    return decide_run(out, cfg, verbose=verbose)  # also adds its decide/* keys to metrics.json


def _per_fold(cfg: ExperimentConfig, y: np.ndarray, fold: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
    from harness.metrics import confusion, scores_from_confusion

    k = probs.shape[-1]
    pred = probs.mean(0).argmax(1)
    rows = []
    for f in range(cfg.cv.n_folds):
        m = fold == f
        s = scores_from_confusion(confusion(y[m], pred[m], k), cfg.data.score_labels)
        rows.append({"seed": -1, "fold": f, **{key: float(s[key]) for key in (
            "macro_f1", "macro_f1_official", "accuracy", "balanced_accuracy", "weighted_f1")},
            "val_rows": int(m.sum()), "seconds": 0.0})
    return rows
