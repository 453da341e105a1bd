"""The decision step of a run: choose the rung, search it on every OOF row (a resumable study), cross-fit the
gain, and commit calibration.json, crossfit.npz and the decide/* keys in one step."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core import keys
from harness.posthoc.calibrate import calibration_report
from harness.config import ExperimentConfig

from harness.data.schema import content_digest
from harness.core.metrics import paired_bootstrap, report
from harness.run.rundir import RunDir
from harness.posthoc.decision.inputs import DecisionInputError, OOF, load_oof
from harness.posthoc.decision.rule import batch_scores, decode
from harness.posthoc.decision.space import Evaluator, Space, make_space
from harness.posthoc.decision.searches import decide_sampler, random_search, search
from harness.posthoc.decision.ladder import Rung, choose_rung


def crossfit(oof: OOF, cfg: ExperimentConfig, space: Space) -> dict[str, Any]:
    """Fit on K−1 folds' OOF rows, score the held-out fold; the honest estimate of the gain."""
    d = cfg.decide
    k = oof.n_labels
    folds = sorted(np.unique(oof.fold).tolist())
    pooled_after = np.empty(len(oof.labels), dtype=np.int64)
    pooled_before = oof.probs.mean(0).argmax(-1)
    gains = []
    chosen = []
    for f in folds:
        fit, held = oof.fold != f, oof.fold == f
        # nested: the rung is chosen by cross-fitting on the other folds only, then fitted on all of them
        rung, _ = choose_rung(oof.probs[:, fit], oof.labels[fit], oof.fold[fit], space, d, cfg.data.score_labels)
        decision = rung.fit(oof.probs[:, fit], oof.labels[fit], space, d, d.n_trials, cfg.data.score_labels, d.seed)
        chosen.append(rung.label())
        pooled_after[held] = decode(oof.probs[:, held], decision)
        ev_held = Evaluator(oof.probs[:, held], oof.labels[held], space, d.metric, cfg.data.score_labels)
        after = float(batch_scores(oof.labels[held], pooled_after[held][None], k, d.metric, cfg.data.score_labels)[0])
        gains.append(after - ev_held.argmax_score())
    boot = paired_bootstrap(oof.labels, pooled_before, pooled_after, k, d.metric, cfg.data.score_labels)
    return {"per_fold_gain": gains, "gain_mean": float(np.mean(gains)), "gain_sd": float(np.std(gains, ddof=1))
            if len(gains) > 1 else 0.0, "pooled_before": float(batch_scores(oof.labels, pooled_before[None], k,
                                                                            d.metric, cfg.data.score_labels)[0]),
            "pooled_after": float(batch_scores(oof.labels, pooled_after[None], k, d.metric, cfg.data.score_labels)[0]),
            "pooled_gain": boot["delta"], "pooled_gain_ci": [boot["ci_low"], boot["ci_high"]],
            "p_not_better": boot["p_b_not_better"], "rung_per_fold": chosen, "predictions": pooled_after}


def decide_run(run_dir: Path, cfg: ExperimentConfig, verbose: bool = True, logits: bool = False,
               wait: float = 0.0) -> dict[str, Any]:
    """Search δ, τ and weights on a run's OOF rows (resuming its study), cross-fit the gain, write calibration.json.

    Holds the run directory's writer lock throughout and commits calibration.json, crossfit.npz and the decide/*
    keys of metrics.json in one step: an error anywhere leaves the decision in force as it was. Another writer
    holding the lock: refused, or waited for up to `wait` s (`harness cv` processes that finish together)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise DecisionInputError([f"{run.path}: not found (was the run directory moved or deleted?)"])
    with run.writing("decide", wait=wait):
        out = _decide(run, cfg, verbose, logits)
    rung = out["complexity"]["chosen"]
    if verbose:
        print(format_decision(out, cfg.data.label_names()))
    if "crossfit" in out and out["crossfit"]["pooled_gain"] <= 0 < out["in_sample"]["gain"] and rung != "argmax":
        msg = (f"WARNING: the cross-fitted gain of the decision layer is not positive "
               f"({out['crossfit']['pooled_gain']:+.4f}); its in-sample gain ({out['in_sample']['gain']:+.4f}) "
               "does not carry over to rows it was not fitted to. Consider decide.complexity=argmax.")
        if verbose:  # said once: on screen for a person, as a warning for code calling quietly
            print("\n" + "!" * 78 + "\n" + msg + "\n" + "!" * 78)
        else:
            warnings.warn(msg, stacklevel=2)
    return out


def _decide(run: RunDir, cfg: ExperimentConfig, verbose: bool, logits: bool) -> dict[str, Any]:
    d = cfg.decide
    oof = load_oof(run.path, cfg, logits)
    space = make_space(d, oof)
    names = cfg.data.label_names()
    t0 = time.time()
    rung, inner = choose_rung(oof.probs, oof.labels, oof.fold, space, d, cfg.data.score_labels)
    decision, search_info = _fit_chosen(run, oof, space, rung, cfg, verbose)
    before_rep = report(oof.labels, oof.probs.mean(0).argmax(-1), names, cfg.data.score_labels)
    after_rep = report(oof.labels, decode(oof.probs, decision), names, cfg.data.score_labels)
    out: dict[str, Any] = {
        **decision.to_json(), "gate_on": decision.tau is not None, "sampler": d.sampler, "seed": d.seed,
        "metric": d.metric, **search_info, "storage": run.decide_storage(),
        "complexity": {"setting": d.complexity, "chosen": rung.name, "shrinkage": rung.shrink,
                       "cross_fitted_scores": inner, "why": _why(rung, inner, d)},
        "search_seconds": round(time.time() - t0, 2), "seeds": oof.seeds,
        "in_sample": {"before": before_rep[d.metric], "after": after_rep[d.metric],
                      "gain": after_rep[d.metric] - before_rep[d.metric]},
        "before": before_rep, "after": after_rep,
    }
    out["temperature"] = calibration_report(oof.probs.mean(0), oof.labels, oof.fold)
    members = run.read_members()
    if members is not None and run.read_combine() == "stack":  # one OOF set: the stacker's, over these members
        out["stacked"] = [m.label() for m in members]
    elif members is not None:  # an ensemble: the blend's axis is its members (run/seed), not seeds of one run
        out["members"] = [m.label() for m in members]
    if d.random_baseline:
        ev = Evaluator(oof.probs, oof.labels, space, d.metric, cfg.data.score_labels)
        out["random_baseline"] = {"candidates": d.random_baseline, "best": random_search(ev, d.random_baseline,
                                                                                          d.seed)[0]}
    cf_pred = None
    if d.crossfit:
        cf = crossfit(oof, cfg, space)
        cf_pred = cf.pop("predictions")  # the honest decided predictions, for `harness compare --use crossfit`
        out["crossfit"] = {**cf, "after_report": report(oof.labels, cf_pred, names, cfg.data.score_labels)}
    run.write_calibration(out, oof.ids, cf_pred)  # without cross-fitting, an older crossfit.npz is removed
    run.replace_summary_keys(keys.decide(""), decide_summary(out))
    return out


def _fit_chosen(run: RunDir, oof: OOF, space: Space, rung: Rung, cfg: ExperimentConfig, verbose: bool
                ) -> tuple[Any, dict[str, Any]]:
    """The chosen rung fitted on every OOF row with the full budget: enumerated (argmax, prior, blend), or searched
    in a study of the run's decide.db (resumable; one study per search space, so a narrower delta_range or other
    delta_classes never reuse trials sampled from another space)."""
    import optuna

    d = cfg.decide
    if not rung.searched:
        decision = rung.fit(oof.probs, oof.labels, space, d, d.n_trials, cfg.data.score_labels, d.seed)
        return decision, {"study": None, "trials_total": 0, "trials_added": 0}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space_key = content_digest([d.delta_range, d.delta_classes, d.gate, d.tau_range, d.blend, d.weights,
                                oof.seeds, cfg.data.score_labels, rung.name, rung.shrink])[:10]
    study_name = f"decide-{d.metric}-{d.sampler}-{d.seed}-{rung.name}-{space_key}"
    try:
        study = optuna.create_study(direction="maximize", sampler=decide_sampler(d), storage=run.decide_storage(),
                                    study_name=study_name, load_if_exists=True)
        ev = Evaluator(oof.probs, oof.labels, rung.space(space), d.metric, cfg.data.score_labels)
        ev.shrink = rung.shrink
        decision, _, study, added = search(ev, d, study, progress=verbose, counted=True)
        complete = sum(int(t.user_attrs.get("candidates", 1))  # a recorded trial stands for its batch
                       for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    except Exception as e:  # noqa: BLE001 - a read-only run, a full disk, a torn decide.db: one line, no traceback
        from harness.core.store import StoreError

        if type(e).__module__.split(".")[0] not in ("sqlalchemy", "sqlite3", "optuna") and not isinstance(e, OSError):
            raise
        raise StoreError(f"{run.decide_storage()}: the decision study cannot be opened or written "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); check the run directory is "
                         "writable with free space, or remove a damaged decide.db to search afresh") from None
    # finished trials only (a killed search's never ran)
    return decision, {"study": study_name, "trials_total": complete, "trials_added": added}


def _why(rung: Rung, inner: dict[str, float], d: Any) -> str:
    """Why this rung is the decision, in a sentence."""
    if inner:
        return (f"{rung.label()}: the simplest rung whose cross-fitted {d.metric} over the OOF folds "
                f"({inner[rung.label()]:.4f}) is within {d.rung_margin:g} paired standard errors of the best "
                f"({max(inner.values()):.4f}), richer rungs that score no better than a simpler one passed over")
    if rung.name == d.complexity:
        return f"pinned by decide.complexity={d.complexity}"
    return (f"decide.complexity={d.complexity} pinned, but that rung has nothing to search here (one blended set, "
            f"no gate, or no class that can move): {rung.name}, the richest rung below it, is locked")


def decide_summary(out: dict[str, Any]) -> dict[str, float]:
    """Stable decide/* keys (README) that sweeps, studies and dashboards target."""
    m = out["metric"]
    found = {keys.decide(k): out["after"][k] for k in keys.DECIDE_SCORES}
    found.update({keys.decide(m): out["in_sample"]["after"], keys.GAIN_IN_SAMPLE: out["in_sample"]["gain"]})
    if "temperature" in out:
        t = out["temperature"]
        found.update({keys.TEMPERATURE: t["temperature"], keys.ECE_BEFORE: t["ece_before"],
                      keys.ECE_AFTER: t["ece_after_crossfit"]})
    if "crossfit" in out:
        cf = out["crossfit"]
        found.update({keys.crossfit(m): cf["pooled_after"], keys.GAIN_CROSSFIT: cf["pooled_gain"],
                      keys.ci(keys.GAIN_CROSSFIT, "low"): cf["pooled_gain_ci"][0],
                      keys.ci(keys.GAIN_CROSSFIT, "high"): cf["pooled_gain_ci"][1]})
    return {k: float(v) for k, v in found.items()}


def format_decision(out: dict[str, Any], names: Sequence[str]) -> str:
    """The decision for a person: what was chosen and why, what it does, and what it is worth out of sample."""
    m = out["metric"]
    c = out.get("complexity", {})
    ladder_scores = ", ".join(f"{k} {v:.4f}" for k, v in c.get("cross_fitted_scores", {}).items())
    lines = [f"decision layer: {c.get('chosen', 'delta_gate')}"
             + (f" (shrinkage {c['shrinkage']:g})" if c.get("shrinkage") else "")
             + (f", chosen by cross-fitted {m} on the OOF folds: {ladder_scores}" if len(c.get(
                 "cross_fitted_scores", {})) > 1 else f" ({c.get('why', 'pinned by decide.complexity')})")]
    shifted = [f"{names[i] if i < len(names) else i} {v:+.2f}" for i, v in enumerate(out["delta"]) if abs(v) > 1e-9]
    if shifted:
        lines.append("  class biases: " + ", ".join(shifted))
    if out["gate_on"]:
        gate = names[out["gate_class"]] if out["gate_class"] < len(names) else out["gate_class"]
        lines.append(f"  gate: predict {gate} whenever its probability is at least {out['tau']:.3f}")
    if "stacked" in out:
        lines.append("  on a stacker of: " + ", ".join(out["stacked"]))
    if "members" in out:
        lines.append("  member weights: " + ", ".join(f"{x} {w:.2f}" for x, w in zip(out["members"], out["weights"])))
    elif len(out["weights"]) > 1:
        lines.append("  seed weights: " + ", ".join(f"{s} {w:.2f}" for s, w in zip(out["seeds"], out["weights"])))
    argmax_kept = c.get("chosen") == "argmax"
    if argmax_kept:  # the locked rule is argmax: it changes no prediction, so there is no gain to speak of
        lines.append(f"  {m}: {out['in_sample']['before']:.4f}, the plain argmax of the seed mean (no richer rule "
                     "earned its place)")
    else:
        lines.append(f"  {m}: argmax {out['in_sample']['before']:.4f} -> decided {out['in_sample']['after']:.4f} on "
                     f"the rows it was fitted to (gain {out['in_sample']['gain']:+.4f}, optimistic)")
    if "crossfit" in out and not argmax_kept:
        cf = out["crossfit"]
        lines.append(f"  out of sample (cross-fitted): {cf['pooled_before']:.4f} -> {cf['pooled_after']:.4f}, "
                     f"gain {cf['pooled_gain']:+.4f} (95% CI {cf['pooled_gain_ci'][0]:+.4f}..{cf['pooled_gain_ci'][1]:+.4f})")
        others = sorted({r.split(" (")[0] for r in cf.get("rung_per_fold", [])} - {c.get("chosen")})
        if others:  # the estimate is of the whole procedure, the rung chosen again without each fold
            lines.append(f"    (of the ladder as a procedure: without each fold's rows it chose "
                         f"{', '.join(cf['rung_per_fold'])} on the folds)")
    if "temperature" in out:
        t = out["temperature"]
        lines.append(f"  calibration: temperature {t['temperature']:.2f}; expected calibration error "
                     f"{t['ece_before']:.3f} -> {t['ece_after_crossfit']:.3f} out of sample (cross-fitted), "
                     f"log loss {t['nll_before']:.3f} -> {t['nll_after_crossfit']:.3f}")
    if out.get("study"):
        lines.append(f"  search: {out['trials_added']} candidates now ({out['sampler']}), {out['trials_total']} in all "
                     f"in its study ({out['storage'].rsplit('/', 1)[-1]})")
    if "random_baseline" in out:
        rb = out["random_baseline"]
        lines.append(f"  random search of {rb['candidates']} candidates: best {rb['best']:.4f}")
    return "\n".join(lines)
