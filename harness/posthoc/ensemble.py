"""Ensembles across runs: several run directories on identical folds, blended honestly on their OOF rows.

An ensemble directory is a run directory whose blend members are the (run, seed) OOF sets of its member
runs: oof.npz and test.npz stack them on the seed axis, `ensemble.json` names every member, and the
decision layer (`harness decide`, run here) searches the blend weights on the simplex over members
together with δ and τ, with the same cross-fitted estimate of the gain as for one run. `harness predict`
then writes the submission from the blended test probabilities of every member (a new `--test` file is
scored by each member run's own fold models). Runs whose folds differ are refused: their OOF rows were
predicted by models trained on different rows, so no blend fitted on them is honest.

Blended members are temperature-scaled first (harness.posthoc.calibrate), so that an over-confident member does not
weigh more for it. `--stack` replaces the blend by a stacker: a class-weighted logistic regression on the
members' log-probabilities, cross-fitted by fold, whose OOF output is the ensemble's one "seed"; the decision
ladder then runs on it as on any run. combiner.npz holds what `predict` needs to do the same to test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.posthoc.calibrate import crossfit_temperature, scale
from harness.posthoc.compare import load_comparable
from harness.config import ConfigError, ExperimentConfig, apply_overrides
from harness.run.results import oof_metrics
from harness.methods.linear import LinearHead
from harness.run.rundir import COMBINER, EnsembleMember, OofArrays, RunDir, TestArrays


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


STACK_FLOOR = float(np.log(1e-6))  # member log-probabilities below this are one feature value: no -27 outliers


def stack_features(probs: np.ndarray) -> np.ndarray:
    """(M, N, K) member probabilities -> (N, M*K) floored log-probabilities, the stacker's inputs."""
    m, n, k = probs.shape
    logp = np.maximum(np.log(np.clip(probs, 1e-12, None)), STACK_FLOOR)
    return logp.transpose(1, 0, 2).reshape(n, m * k)


@dataclass
class Stacker:
    """A class-weighted multinomial logistic regression on the members' standardised log-probabilities. Its
    coefficients give each member its own scale (a learnt temperature), so members enter it uncalibrated."""
    head: LinearHead
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray, cfg: ExperimentConfig, C: float) -> "Stacker":
        from harness.data.weights import class_weights

        x = stack_features(probs)
        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        k = probs.shape[-1]
        head = LinearHead.fit_logreg((x - mean) / scale, labels, class_weights(labels, k, cfg.loss), k, C,
                                     5000, cfg.decide.seed)
        return cls(head, mean, scale)

    def predict_proba(self, probs: np.ndarray) -> np.ndarray:
        return self.head.predict_proba((stack_features(probs) - self.mean) / self.scale)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"stack_mean": self.mean, "stack_scale": self.scale, **self.head.arrays("stack_")}

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray], where: str = COMBINER) -> "Stacker":
        """The stacker from disk, after checking its arrays are there and finite (scales > 0)."""
        missing = [k for k in ("stack_mean", "stack_scale", "stack_coef", "stack_intercept", "stack_classes",
                                "stack_n_labels") if k not in z]
        if missing:
            raise ConfigError([f"{where}: a stacked ensemble's combiner without {', '.join(missing)}"])
        bad = [k for k, v in z.items() if k.startswith("stack_") and np.issubdtype(np.asarray(v).dtype, np.number)
               and not np.isfinite(v).all()]
        if bad or (np.asarray(z["stack_scale"]) <= 0).any():
            raise ConfigError([f"{where}: stacker arrays {bad or ['stack_scale']} must be finite (scales > 0)"])
        return cls(LinearHead.from_arrays(z, "stack_"), z["stack_mean"], z["stack_scale"])


STACK_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def choose_stack_c(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, cfg: ExperimentConfig) -> float:
    """The stacker's C with the lowest cross-fitted log loss over these rows' folds (a few hundred rows and nine
    classes want far more regularisation than a few thousand rows and two: no one C fits both)."""
    folds = np.unique(fold).tolist()
    if len(folds) < 2:
        return 1.0
    losses = []
    for c in STACK_C_GRID:
        p = _crossfit(probs, labels, fold, cfg, c)
        losses.append(float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean()))
    return STACK_C_GRID[int(np.argmin(losses))]


def _crossfit(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, cfg: ExperimentConfig, C: float) -> np.ndarray:
    out = np.zeros(probs.shape[1:], dtype=np.float32)
    for f in np.unique(fold).tolist():
        held = fold == f
        out[held] = Stacker.fit(probs[:, ~held], labels[~held], cfg, C).predict_proba(probs[:, held])
    return out


def crossfit_stack(probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, cfg: ExperimentConfig,
                   C: float | None = None) -> tuple[np.ndarray, list[float]]:
    """(N, K) stacked OOF probabilities, each fold's rows from a stacker fitted on the other folds only, and the C
    each fold's stacker used. C None: chosen per fold by inner cross-fitting on the other folds (nested, so the
    choice never sees the held-out fold either)."""
    out = np.zeros(probs.shape[1:], dtype=np.float32)
    chosen = []
    for f in np.unique(fold).tolist():
        fit, held = fold != f, fold == f
        c = C if C is not None else choose_stack_c(probs[:, fit], labels[fit], fold[fit], cfg)
        chosen.append(c)
        out[held] = Stacker.fit(probs[:, fit], labels[fit], cfg, c).predict_proba(probs[:, held])
    return out, chosen


def combine_test(run: RunDir, member_probs: np.ndarray) -> np.ndarray:
    """Members' test probabilities (M, F, R, K) -> what the ensemble's decision applies to: each member scaled by
    its temperature (a weight blend, (M, F, R, K)), or the stacker's output per fold ((1, F, R, K))."""
    z = run.read_combiner()
    if z is None:
        raise ConfigError([f"{run.path}: an ensemble without its combiner (combiner.npz: member temperatures or the "
                           "stacker); build it again with harness ensemble"])
    return combine_members(z, run.read_combine() or "weights", member_probs, str(run.file(COMBINER)))


def combine_members(z: dict[str, np.ndarray], combine: str, member_probs: np.ndarray, where: str) -> np.ndarray:
    """`combine_test` from the combiner's arrays (an ensemble directory's, or an export's copy)."""
    temps = np.asarray(z["temperatures"], dtype=float)
    if len(temps) != member_probs.shape[0]:
        raise ConfigError([f"{where}: {len(temps)} members in the combiner but {member_probs.shape[0]} scored"])
    if temps.ndim != 1 or not np.isfinite(temps).all() or (temps <= 0).any():
        raise ConfigError([f"{where}: temperatures {temps.tolist()} must be finite and > 0"])
    if combine == "stack":
        stacker = Stacker.from_arrays(z, where)
        return np.stack([stacker.predict_proba(member_probs[:, f]) for f in range(member_probs.shape[1])])[None]
    return np.stack([scale(p, t) for p, t in zip(member_probs, temps)]).astype(np.float32)


def build_ensemble(run_dirs: Sequence[str | Path], out: str | Path, overrides: Sequence[str] = (),
                   verbose: bool = True, stack: bool = False, stack_c: float | None = None) -> dict[str, Any]:
    """Write the ensemble directory and run the decision layer on it; returns the decision.

    Weight blend (default): each member's OOF probabilities are temperature-scaled out of sample (every fold by
    the T fitted on the other folds) so that no member weighs by its confidence, then the decision layer searches
    member weights with δ and τ. `stack`: a class-weighted logistic regression on the members' log-probabilities,
    cross-fitted by fold (its OOF rows never come from a stacker that saw their fold), then the same ladder."""
    from harness.posthoc.decision import decide_run

    out = Path(out)
    target = RunDir(out)
    target.check_usable("--out")
    _check_arguments(run_dirs, out, stack_c)
    check_members(run_dirs)
    runs = load_comparable(run_dirs)
    members = [EnsembleMember(member=i, run_dir=str(r.run.path.resolve()), name=r.run.name, method=r.cfg.method,
                              seed=int(seed)) for i, (r, seed) in enumerate((r, s) for r in runs for s in r.oof.seeds)]
    if stack and len(members) < 2:
        raise ConfigError([f"--stack: one member ({members[0].label()}) has nothing to be stacked with; give two or "
                           "more runs (or a run with several seeds)"])
    combine, first = ("stack" if stack else "weights"), runs[0]
    n_sets = 1 if stack else len(members)  # a stacker is one "seed"
    cfg = _ensemble_config(first.cfg, out, overrides, n_sets)
    test_ids, test_raw = _test_probs([r.run.path for r in runs])  # checked before anything is written
    with target.writing("ensemble"):  # the lock: a second ensemble into this --out is refused; one commit
        _check_out(target, members, combine)
        o = first.oof
        probs, combiner = _combined_oof(np.concatenate([r.oof.probs for r in runs], 0), o, cfg, stack, stack_c)
        target.write_combiner(combiner)
        target.write_members(members, combine, {str(r.run.path.resolve()): RunDir(r.run.path).results_digest()
                                                for r in runs})
        target.write_oof(OofArrays(ids=o.ids, labels=o.labels, fold=o.fold, seeds=np.arange(n_sets), probs=probs))
        target.write_test(TestArrays(ids=test_ids, seeds=np.arange(n_sets), probs=combine_test(target, test_raw)))
        target.copy_identity_from(RunDir(first.run.path))
        target.write_config(cfg)
        per_fold = _per_fold(cfg, o.labels, o.fold, probs)
        target.write_metrics(oof_metrics(cfg, target, o.labels, probs, cfg.train.seeds, per_fold))
        if verbose:
            print(f"ensemble of {len(members)} members ({', '.join(m.label() for m in members)}) in {out}: "
                  + _how(combiner, stack, stack_c, cfg))
        return decide_run(out, cfg, verbose=verbose)  # also adds its decide/* keys to metrics.json; same commit


def _check_arguments(run_dirs: Sequence[str | Path], out: Path, stack_c: float | None) -> None:
    """Distinct members, an --out that is none of them, a usable --stack-c."""
    seen: dict[Path, str] = {}
    for d in run_dirs:
        if Path(d).resolve() in seen:
            raise ConfigError([f"{d}: given twice (as {seen[Path(d).resolve()]}); an ensemble's members are "
                               "distinct runs"])
        seen[Path(d).resolve()] = str(d)
    if out.resolve() in seen:
        raise ConfigError([f"--out {out}: is one of the members; choose a new --out"])
    if stack_c is not None and (not stack_c > 0 or not np.isfinite(stack_c)):
        raise ConfigError([f"--stack-c: {stack_c} must be a positive number (or auto)"])


def _ensemble_config(first: ExperimentConfig, out: Path, overrides: Sequence[str], n_sets: int) -> ExperimentConfig:
    """The ensemble's config: the first member's, with the members as the blend's "seeds", whose weights are
    searched unless the command line says otherwise (a member run's own decide.blend was about its seeds, not
    about these members). Only decide.* may be overridden. Validated before any write."""
    from harness.config import parse_overrides

    over = parse_overrides(list(overrides))
    unknown = [k for k in over if k != "decide"]
    if unknown:
        raise ConfigError([f"{k}: only decide.* settings apply to an ensemble" for k in unknown])
    cfg = apply_overrides(first, {"name": f"ensemble-{out.name}", "run_dir": str(out),
                                  "train.seeds": list(range(n_sets)), "decide.enabled": True,
                                  "decide.blend": "search", "decide.weights": None, **over})
    if cfg.decide.weights is not None and len(cfg.decide.weights) != n_sets:
        raise ConfigError([f"decide.weights: {len(cfg.decide.weights)} weights for {n_sets} blended members"])
    return cfg


def _combined_oof(raw: np.ndarray, o: Any, cfg: ExperimentConfig, stack: bool, stack_c: float | None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ensemble's OOF sets and its combiner's arrays: one stacked set (cross-fitted by fold), or each member
    temperature-scaled out of sample."""
    if stack:
        stacked, fold_c = crossfit_stack(raw, o.labels, o.fold, cfg, stack_c)
        final_c = stack_c if stack_c is not None else choose_stack_c(raw, o.labels, o.fold, cfg)
        final = Stacker.fit(raw, o.labels, cfg, final_c)
        return stacked[None], {"temperatures": np.ones(len(raw)), "stack_c": np.array(final_c),
                               "stack_fold_c": np.array(fold_c), **final.arrays()}
    fitted = [crossfit_temperature(p, o.labels, o.fold) for p in raw]
    return (np.stack([c.oof for c in fitted]).astype(np.float32),
            {"temperatures": np.array([c.temperature for c in fitted])})


def _how(combiner: dict[str, np.ndarray], stack: bool, stack_c: float | None, cfg: ExperimentConfig) -> str:
    if stack:
        return (f"stacked by a logistic regression (C {float(combiner['stack_c']):g}"
                f"{'' if stack_c is not None else ' chosen by inner cross-fitting'}; per fold "
                f"{', '.join(f'{c:g}' for c in combiner['stack_fold_c'])}; cross-fitted by fold)")
    return ("temperature-scaled (T " + ", ".join(f"{t:.2f}" for t in combiner["temperatures"]) + "), " +
            ("weights fixed by decide.weights" if cfg.decide.weights is not None else "weights searched"))


def check_members(run_dirs: Sequence[str | Path]) -> None:
    """Every member a verified, finished run of its own (all problems at once): a manifest, a data fingerprint,
    folds, OOF and test files; an ensemble is no member (its runs would count twice)."""
    from harness.core.store import StoreError

    problems = []
    for d in run_dirs:
        run = RunDir(d)
        if not run.is_run():
            problems.append(f"{d}: not a run directory (no config.yaml)")
        elif run.is_ensemble():
            problems.append(f"{d}: is an ensemble; give its member runs instead (a run must not count twice)")
        elif run.is_legacy():
            problems.append(f"{d}: written without a manifest; harness verify {d} --upgrade records it first")
        else:
            for name, what in ((run.folds_path(), "folds"), (run.oof_path, "OOF"), (run.test_path, "test")):
                if not run.has(name.name):
                    problems.append(f"{name}: missing ({what}); finish `harness cv` on {d} first")
                    continue
                try:
                    run.verified(name.name)
                except StoreError as e:
                    problems.append(str(e))
            try:
                run.require_fingerprint("an ensemble")
            except StoreError as e:
                problems.append(str(e))
    if problems:
        raise ConfigError(problems)


def _check_out(target: RunDir, members: list[EnsembleMember], combine: str) -> None:
    """--out is new, or this same ensemble (re-run); never another ensemble, nor a run's directory."""
    old = target.read_members()
    if old is not None and (old != members or target.read_combine() != combine):
        raise ConfigError([f"{target.path}: is an ensemble of other runs (or combined by {target.read_combine()}); "
                           "choose a new --out"])
    if old is None and (target.committed_config() is not None or target.is_legacy()):
        raise ConfigError([f"{target.path}: holds a run and is not an ensemble directory; choose a new --out"])


def check_members_unchanged(run: RunDir) -> None:
    """Refuse an ensemble whose member runs changed since it was fitted (re-run with other settings or labels):
    its weights or stacker were fitted on the members' old results."""
    recorded = run.member_provenance()
    if recorded is None:
        raise ConfigError([f"{run.path}: records no digests of its members' results (an older ensemble); build it "
                           "again with harness ensemble"])
    problems = []
    for path, digest in recorded.items():
        member = RunDir(path)
        now = member.results_digest() if member.is_run() else None
        if now != digest:
            problems.append(f"{path}: changed since the ensemble {run.path} was fitted on it (results digest "
                            f"{str(digest)[:12]} then, {str(now)[:12]} now)" if now else
                            f"{path}: the member run is gone or unreadable")
    if problems:
        raise ConfigError(problems + ["its weights or stacker describe the old members: build the ensemble again "
                                      "(harness ensemble ... --out NEW_DIR)"])


def _per_fold(cfg: ExperimentConfig, y: np.ndarray, fold: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
    from harness.core.metrics import confusion, scores_from_confusion

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
