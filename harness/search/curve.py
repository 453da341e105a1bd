"""`harness curve`: how much would more labels help, overall and per class?

Each point trains the experiment on its own folds with a fraction of every fold's training groups
(`cv.train_fraction`, drawn per class so every class keeps a group where it can; `cv.fraction_draw` picks the
draw) and scores the whole held-out fold, so every point is scored on the same OOF rows and points compare
paired. A point is an ordinary run directory under `<run_dir>-curve/points/`: its folds are claimed, committed
and resumed like any run's (kill -9 loses at most the fold in training). The curve directory shares one
method cache (embeddings are computed once for every point).

The saturating power law score(n) = a - b n^-c is fitted to the points (harness.search.curve_fit) and
forecasts the score at 1.5x and 2x the labels, overall and per class, with bootstrap intervals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError, ExperimentConfig, apply_overrides
from harness.run.manifest import kill_point
from harness.run.rundir import CURVE, CURVE_FIGURE, CURVE_POINTS, RunDir
from harness.search.curve_fit import CurveData, forecast

MULTIPLES = (1.5, 2.0)


def parse_fractions(text: str) -> list[float]:
    """`0.1,0.25,0.5,1` → sorted distinct fractions, each in (0, 1]; a clear error otherwise."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError([f"--fractions: {text!r} is not a comma-separated list of numbers"]) from None
    bad = [v for v in values if not 0 < v <= 1]
    if bad or not values:
        raise ConfigError([f"--fractions: {bad or text!r} outside (0, 1]: a fraction of each fold's training "
                           "groups (1 = all of them)"])
    return sorted(set(values))


def curve_dir(cfg: ExperimentConfig) -> Path:
    return Path(f"{cfg.resolved_run_dir()}-curve")


def point_config(cfg: ExperimentConfig, root: Path, fraction: float, draw: int) -> ExperimentConfig:
    return apply_overrides(cfg, {"cv.train_fraction": fraction, "cv.fraction_draw": draw, "decide.enabled": False,
                                 "track.backend": "none", "run_dir": str(root / CURVE_POINTS / f"f{fraction:g}-d{draw}")})


def train_points(cfg: ExperimentConfig, fractions: Sequence[float], draws: int, verbose: bool
                 ) -> list[dict[str, Any]]:
    """Every point trained (or resumed); each point's fraction, draw, run directory and mean training rows."""
    from harness.core.progress import progress_bar
    from harness.run.cv import CVRun, config_changes
    from harness.track.base import Tracker

    root = curve_dir(cfg)
    run = RunDir(root)
    run.check_usable()
    changes = config_changes(run, cfg)  # one experiment per curve directory, as per run directory
    if changes:
        raise ConfigError(changes + ["a curve directory holds one experiment's curve: set run_dir (or name) for "
                                     "another"])
    if run.committed_config() is None:
        run.write_config(cfg)
    jobs = [(f, d) for f in fractions for d in range(draws if f < 1 else 1)]
    points = []
    for f, d in progress_bar(jobs, desc="curve points", enable=verbose):
        pcfg = point_config(cfg, root, f, d)
        metrics = CVRun(pcfg, Tracker(), verbose=False, cache=run.cache)()
        if metrics is None:
            raise ConfigError([f"{pcfg.resolved_run_dir()}: folds are being trained by another process; run "
                               "`harness curve` again when they finish"])
        point = {"fraction": f, "draw": d, "run_dir": str(pcfg.resolved_run_dir())}
        points.append({**point, "train_rows": _train_rows(point)})
        kill_point("curve-point")
    full = _full_rows(points)
    for p in points:  # a fraction too small for every class: more groups were kept, and the point says so
        asked = p["fraction"] * full
        if p["fraction"] < 1 and p["train_rows"] > 1.25 * asked + 1:
            p["note"] = (f"fraction {p['fraction']:g} kept {p['train_rows']:.0f} rows per fold (asked about "
                         f"{asked:.0f}) so that every class keeps a group")
            if verbose:
                print(f"note: {p['note']}")
    return points


def _full_rows(points: list[dict[str, Any]]) -> float:
    """Mean training rows per fold with every group (what fraction 1 trains on): the folds all points share."""
    f = RunDir(points[0]["run_dir"]).read_folds()
    return float(np.mean([len(f.fold_of) - len(f.val_ids(k)) for k in range(f.n_folds)]))


def _train_rows(point: dict[str, Any]) -> float:
    """Mean rows a fold trained on at this point (from its folds' metrics)."""
    run = RunDir(point["run_dir"])
    cfg = run.read_config()
    rows = [run.read_fold(s, k).metrics["train_rows"] for s in cfg.train.seeds for k in range(cfg.cv.n_folds)]
    return float(np.mean(rows))


def curve_data(cfg: ExperimentConfig, points: list[dict[str, Any]]) -> tuple[CurveData, list[float]]:
    """The points' OOF predictions (argmax of the seed mean) on the same rows, grouped by fraction."""
    fractions = sorted({p["fraction"] for p in points})
    labels, preds, sizes = None, [], []
    for f in fractions:
        mine = [p for p in points if p["fraction"] == f]
        per_draw = []
        for p in mine:
            oof = RunDir(p["run_dir"]).read_oof()
            if labels is None:
                labels, ids = oof.labels, oof.ids
            assert (oof.ids == ids).all()  # every point scores the same rows: the folds are the experiment's
            per_draw.append(oof.probs.mean(0).argmax(-1))
        preds.append(np.stack(per_draw))
        sizes.append(float(np.mean([p["train_rows"] for p in mine])))
    data = CurveData(labels=labels, sizes=np.array(sizes), preds=preds, n_labels=len(cfg.data.label_names()),
                     score_labels=cfg.data.score_labels)
    return data, fractions


def fit_curve(cfg: ExperimentConfig, data: CurveData, fractions: list[float], fit_upto: float = 1.0,
              n_boot: int = 300) -> dict[str, Any]:
    """Fit on the points with fraction <= fit_upto; forecasts at the largest point's rows and at 1.5x, 2x of it."""
    use = np.array(fractions) <= fit_upto
    top = float(data.sizes.max())
    at = [top] + [top * m for m in MULTIPLES]
    names = cfg.data.label_names()
    metrics = ["macro_f1_official", "macro_f1", "balanced_accuracy"]
    overall = {m: forecast(data, m, at, use, n_boot) for m in metrics}
    per_class = {names[c]: forecast(data, f"f1:{c}", at, use, n_boot // 3) for c in range(len(names))}
    return {"fit_upto": fit_upto, "at": at, "overall": overall, "per_class": per_class}


def point_summary(data: CurveData, fractions: list[float], names: list[str]) -> list[dict[str, Any]]:
    """Per fraction: mean training rows, and each headline metric and per-class F1 as mean and sd over draws."""
    from harness.core.metrics import batched_confusion, per_class_scores, scores_from_confusion

    out = []
    for i, f in enumerate(fractions):
        cms = batched_confusion(data.labels, data.preds[i], data.n_labels)
        head = scores_from_confusion(cms, data.score_labels)
        f1 = per_class_scores(cms)[2]
        out.append({"fraction": f, "train_rows": float(data.sizes[i]), "draws": int(data.preds[i].shape[0]),
                    **{m: {"mean": float(head[m].mean()), "sd": float(head[m].std())}
                       for m in ("macro_f1_official", "macro_f1", "balanced_accuracy")},
                    "per_class_f1": {names[c]: {"mean": float(f1[:, c].mean()), "sd": float(f1[:, c].std())}
                                     for c in range(len(names))}})
    return out


def curve_figure(summary: list[dict[str, Any]], fit: dict[str, Any], metric: str = "macro_f1_official") -> Any:
    """Points (mean ± sd over draws), the fitted power law, and the forecasts with their intervals."""
    from harness.search.curve_fit import power_law
    from harness.track.figures import plt_module

    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    n = np.array([p["train_rows"] for p in summary])
    ax.errorbar(n, [p[metric]["mean"] for p in summary], yerr=[p[metric]["sd"] for p in summary], fmt="o",
                capsize=3, label="points (mean ± sd over draws)")
    f = fit["overall"][metric]
    if f["fit"] is not None:
        grid = np.linspace(n.min(), fit["at"][-1], 200)
        ax.plot(grid, power_law(grid, *f["fit"].values()), "-", label="a - b n^-c")
    fc = [x for x in f["forecast"] if x["lo"] is not None]
    ax.errorbar([x["n"] for x in fc], [x["score"] for x in fc],
                yerr=[[x["score"] - x["lo"] for x in fc], [x["hi"] - x["score"] for x in fc]], fmt="s",
                capsize=4, label="forecast (95% interval)")
    ax.set_xlabel("training rows per fold")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_curve(cfg: ExperimentConfig, fractions: Sequence[float], draws: int = 1, verbose: bool = True
              ) -> dict[str, Any]:
    """Train every point (resumable), fit the curve, write curve.json and curve.png, log to W&B; the result."""
    if draws < 1:
        raise ConfigError([f"--draws: {draws} must be >= 1"])
    points = train_points(cfg, fractions, draws, verbose)
    data, fracs = curve_data(cfg, points)
    names = cfg.data.label_names()
    result = {"experiment": cfg.name, "method": cfg.method, "fractions": fracs, "draws": draws, "points": points,
              "summary": point_summary(data, fracs, names), "fit": fit_curve(cfg, data, fracs)}
    run = RunDir(curve_dir(cfg))
    fig = curve_figure(result["summary"], result["fit"])
    with run.writing("curve") as tx:
        tx.write_json(CURVE, result)
        fig.savefig(tx.path(CURVE_FIGURE), dpi=110)
    if cfg.track.backend == "wandb":
        from harness.track import log_curve

        log_curve(cfg, run.path, result)
    if verbose:
        print(format_curve(result))
        print(f"curve in {run.path / CURVE} and {run.path / CURVE_FIGURE}")
    return result


def format_curve(result: dict[str, Any]) -> str:
    """The points and the forecasts, overall and per class (largest forecast gain first), for the terminal."""
    lines = ["fraction  rows/fold  official macro-F1 (sd)  macro-F1  balanced acc"]
    for p in result["summary"]:
        lines.append(f"{p['fraction']:>8g}  {p['train_rows']:>9.0f}  {p['macro_f1_official']['mean']:.4f} "
                     f"({p['macro_f1_official']['sd']:.4f})        {p['macro_f1']['mean']:.4f}    "
                     f"{p['balanced_accuracy']['mean']:.4f}")
    fit = result["fit"]
    if fit["overall"]["macro_f1_official"]["fit"] is None:
        lines.append("no forecast: the power law needs points at three or more training sizes (give three or more "
                     "fractions, e.g. --fractions 0.25,0.5,0.75,1)")
    for x, m in zip(fit["overall"]["macro_f1_official"]["forecast"][1:], MULTIPLES):
        if x["score"] is not None:
            lines.append(f"forecast at {m:g}x the labels ({x['n']:.0f} rows/fold): official macro-F1 {x['score']:.4f} "
                         f"(95% interval {x['lo']:.4f} to {x['hi']:.4f})")
    gains = []
    for name, f in fit["per_class"].items():
        now, at2 = f["points"][-1], f["forecast"][-1]
        if at2["score"] is not None:
            gains.append((at2["score"] - now, name, now, at2))
    if gains:
        lines.append("per class, F1 now -> forecast at 2x the labels (largest gain first):")
        lines += [f"  {name}: {now:.3f} -> {a['score']:.3f} ({a['lo']:.3f} to {a['hi']:.3f})"
                  for _, name, now, a in sorted(gains, reverse=True)]
    return "\n".join(lines)
