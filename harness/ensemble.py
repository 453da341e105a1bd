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

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.compare import load_comparable
from harness.config import ConfigError, ExperimentConfig, apply_overrides
from harness.cv import oof_metrics
from harness.rundir import EnsembleMember, OofArrays, RunDir, TestArrays


def members_of(run_dir: Path) -> list[EnsembleMember] | None:
    """The members of an ensemble directory; None for a plain run directory."""
    return RunDir(run_dir).read_members()


def _test_probs(run_dirs: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Every member run's test.npz stacked on the member axis, after checking they scored the same rows."""
    ids, probs, problems = None, [], []
    runs = [RunDir(d) for d in run_dirs]

    def test_digest(run: RunDir) -> str | None:
        return ((run.read_fingerprint() or {}).get("test") or {}).get("sha256")

    for run in runs:
        z = run.read_test()
        if ids is None:
            ids = z.ids
        elif len(z.ids) != len(ids) or (z.ids != ids).any():
            problems.append(f"{run.test_path}: its test rows differ from {runs[0].test_path}'s")
        elif test_digest(run) != test_digest(runs[0]):  # same ids, other texts: a blend would mix two files
            problems.append(f"{run.path}: its test data differ in content from {runs[0].path}'s (same ids, "
                            f"content digest {str(test_digest(run))[:12]} vs {str(test_digest(runs[0]))[:12]})")
        probs.append(z.probs)
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
    target = RunDir(out)
    seen: dict[Path, str] = {}
    for d in run_dirs:
        if Path(d).resolve() in seen:
            raise ConfigError([f"{d}: given twice (as {seen[Path(d).resolve()]}); an ensemble's members are "
                               "distinct runs"])
        seen[Path(d).resolve()] = str(d)
    runs = load_comparable(run_dirs)
    members: list[EnsembleMember] = []
    for r in runs:
        for seed in r.oof.seeds:
            members.append(EnsembleMember(member=len(members), run_dir=str(r.run.path.resolve()), name=r.run.name,
                                          method=r.cfg.method, seed=int(seed)))
    old = target.read_members()
    if old is not None and old != members:
        raise ConfigError([f"{out}: is an ensemble of other runs; choose a new --out"])
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
    probs = np.concatenate([r.oof.probs for r in runs], 0)
    o = first.oof
    test_ids, test_probs = _test_probs([r.run.path for r in runs])  # checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    target.write_oof(OofArrays(ids=o.ids, labels=o.labels, fold=o.fold, seeds=np.arange(len(members)), probs=probs))
    target.write_test(TestArrays(ids=test_ids, seeds=np.arange(len(members)), probs=test_probs))
    target.copy_identity_from(RunDir(first.run.path))
    target.write_members(members)
    target.write_config(cfg)
    per_fold = _per_fold(cfg, o.labels, o.fold, probs)
    target.write_metrics(oof_metrics(cfg, target, o.labels, probs, cfg.train.seeds, per_fold))
    if verbose:
        listed = ", ".join(m.label() for m in members)
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
        rows.append({"members": "all", "fold": f, **{key: float(s[key]) for key in (
            "macro_f1", "macro_f1_official", "accuracy", "balanced_accuracy", "weighted_f1")},
            "val_rows": int(m.sum()), "seconds": 0.0})
    return rows
