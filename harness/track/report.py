"""A static HTML page comparing run directories side by side, for when there is no W&B server.

Everything is read from the run directories (metrics.json, calibration.json, config.yaml); figures are
inline PNGs so the page is one file that can be mailed or attached to a paper draft.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core import keys
from harness.track.figures import FIG_DPI, confusion_figure, plt_module, reliability_figure, wrap_label
from harness.core.store import StoreError, atomic_write_text


@dataclass
class RunSummary:
    """What the report (and the notebook) shows of one run directory."""

    name: str
    path: Path
    model: str
    label_names: list[str]
    summary: dict[str, float]
    blend: dict[str, Any]
    per_fold: list[dict[str, Any]]
    decision: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    official: bool = True  # data.score_labels differ from all labels: the official score is a metric of its own
    label_fixes: dict[str, Any] | None = None  # data.json's record of the data.label_fixes applied
    curve: dict[str, Any] | None = None  # the experiment's learning curve (`harness curve`: <run_dir>-curve)

    def ci(self, metric: str) -> tuple[float, float] | None:
        c = self.blend.get(f"{metric}_ci")
        return (c[0], c[1]) if c else None

    def per_class_f1(self) -> dict[str, float]:
        return {r["name"]: r["f1"] for r in self.blend["per_class"]}


def load_run(run_dir: str | Path) -> RunSummary:
    """Read one finished run directory; a clear error names what is missing."""
    from harness.config import ConfigError
    from harness.run.rundir import RunDir

    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    path = run.metrics_path
    if not run_dir.is_dir() or not run.has(path.name):
        raise ConfigError([f"{path}: not found; is {run_dir} a finished `harness cv` run directory?"])
    m = run.read_metrics()
    cfg = run.read_config() if run.is_run() else None
    missing = [k for k in ("label_names", "summary", "blend", "per_fold") if not isinstance(m, dict) or k not in m]
    if missing:
        raise StoreError(f"{path}: not a finished run's metrics (missing {missing}); run `harness cv` again")
    score = cfg.data.score_labels if cfg else None
    official = bool(score) and sorted(score) != list(range(len(m["label_names"])))
    return RunSummary(name=cfg.name if cfg else run_dir.name, path=run_dir, model=_model_of(cfg),
                      label_names=m["label_names"], summary=m["summary"], blend=m["blend"], per_fold=m["per_fold"],
                      decision=run.read_calibration(), config=cfg.to_flat_dict() if cfg else {}, official=official,
                      label_fixes=(run.read_fingerprint() or {}).get("label_fixes") if run.is_run() else None,
                      curve=_curve_of(run_dir))


def _model_of(cfg: Any) -> str:
    """The model a run's method read ("" for one that reads none, e.g. TF-IDF; "?" when it cannot be told)."""
    if cfg is None:
        return "?"
    from harness.methods.registry import specs

    spec = specs().get(cfg.method)
    if spec is None:
        return "?"
    settings = cfg.settings() if spec.uses_model else None
    return settings.model_name() if hasattr(settings, "model_name") else ""


def load_runs(run_dirs: Sequence[str | Path]) -> list[RunSummary]:
    runs = [load_run(d) for d in run_dirs]
    names = [r.name for r in runs]
    for r in runs:  # two runs of one recipe: tell them apart by directory
        if names.count(r.name) > 1:
            r.name = f"{r.name} ({r.path.name})"
    return runs


def summary_rows(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """One row per run: the headline numbers, with CIs and the decision layer's gains."""
    rows = []
    for r in runs:
        s = r.summary
        row: dict[str, Any] = {"run": r.name, "model": r.model or "–", "folds": len(r.per_fold),
                               "macro_f1": s[keys.cv("macro_f1")], "macro_f1_ci": r.ci("macro_f1"),
                               "macro_f1_official": s[keys.cv("macro_f1_official")],
                               "macro_f1_official_ci": r.ci("macro_f1_official"),
                               "balanced_accuracy": s[keys.cv("balanced_accuracy")],
                               "fold_sd": s.get(keys.CV_FOLD_SD),
                               "majority_baseline": s.get(keys.BASELINE_MAJORITY_OFFICIAL)}
        d = r.decision
        if d:
            row["decide_metric"] = d["metric"]
            row["gain_in_sample"] = d["in_sample"]["gain"]
            if "crossfit" in d:
                row["gain_crossfit"] = d["crossfit"]["pooled_gain"]
                row["gain_crossfit_ci"] = tuple(d["crossfit"]["pooled_gain_ci"])
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------
# figures (matplotlib, returned as Figure objects so the notebook shows the same ones)
# ----------------------------------------------------------------------------

def per_class_heatmap(runs: Sequence[RunSummary]) -> Any:
    """Runs × classes F1: where the rare classes are won or lost."""
    plt = plt_module()
    classes: list[str] = []
    for r in runs:
        classes += [n for n in r.label_names if n not in classes]
    grid = np.full((len(runs), len(classes)), np.nan)
    for i, r in enumerate(runs):
        f1 = r.per_class_f1()
        for j, c in enumerate(classes):
            grid[i, j] = f1.get(c, np.nan)
    fig, ax = plt.subplots(figsize=(3.0 + 0.85 * len(classes), max(3.0, 1.9 + 0.45 * len(runs))), dpi=FIG_DPI)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(len(runs)):
        for j in range(len(classes)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if grid[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(classes)), [wrap_label(c) for c in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(runs)), [r.name[:30] for r in runs], fontsize=8)
    ax.set_title("OOF per-class F1 (argmax of the seed mean)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, aspect=12)  # a bar of readable length even for one run
    fig.tight_layout()
    plt.close(fig)  # the caller shows or saves it; pyplot must not show it a second time
    return fig


def fold_spread(runs: Sequence[RunSummary]) -> Any:
    """Per-fold official macro-F1 of every run: is a difference bigger than the fold noise?"""
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.45 * len(runs)), dpi=FIG_DPI)
    for i, r in enumerate(runs):
        vals = [f["macro_f1_official"] for f in r.per_fold]
        ax.scatter(vals, np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), s=18, color="tab:blue")
        ax.plot([np.mean(vals)] * 2, [i - 0.3, i + 0.3], color="black", lw=2)
    ax.set_yticks(range(len(runs)), [r.name[:30] for r in runs], fontsize=8)
    ax.set_ylim(-0.6, len(runs) - 0.4)
    official = any(r.official for r in runs)  # on data without score labels the official score is macro-F1
    ax.set_xlabel(f"{'official ' if official else ''}macro-F1 per fold (bar = mean)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plt.close(fig)  # the caller shows or saves it; pyplot must not show it a second time
    return fig


def decision_gains(runs: Sequence[RunSummary]) -> Any | None:
    """In-sample against cross-fitted gain of the decision layer: the honest number is the second."""
    plt = plt_module()
    with_d = [r for r in runs if r.decision]
    if not with_d:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.5 * len(with_d)), dpi=FIG_DPI)
    y = np.arange(len(with_d))
    ins = [r.decision["in_sample"]["gain"] for r in with_d]
    ax.barh(y + 0.18, ins, height=0.35, color="tab:gray", label="in-sample (optimistic)")
    cf = [r.decision.get("crossfit") for r in with_d]
    vals = [c["pooled_gain"] if c else np.nan for c in cf]
    err = np.array([[c["pooled_gain"] - c["pooled_gain_ci"][0], c["pooled_gain_ci"][1] - c["pooled_gain"]]
                    if c else [0, 0] for c in cf]).T
    ax.barh(y - 0.18, vals, height=0.35, color="tab:green", xerr=err, capsize=3, label="cross-fitted, 95% CI")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, [r.name[:30] for r in with_d], fontsize=8)
    ax.set_xlabel(f"gain over argmax ({with_d[0].decision['metric']})")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    plt.close(fig)  # the caller shows or saves it; pyplot must not show it a second time
    return fig


def confusion_pair(run: RunSummary) -> Any:
    """OOF confusion before and after the decision layer, row-normalised."""

    plt = plt_module()
    figs = [confusion_figure(run.blend["confusion"], run.label_names, "before: argmax")]
    if run.decision:
        figs.append(confusion_figure(run.decision["after"]["confusion"], run.label_names, "after: decision layer"))
    # stitch side by side as one image
    imgs = []
    for f in figs:
        f.canvas.draw()
        imgs.append(np.asarray(f.canvas.buffer_rgba()))
        plt.close(f)
    h = max(i.shape[0] for i in imgs)
    padded = [np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0)), constant_values=255) for i in imgs]
    fig = plt.figure(figsize=(sum(i.shape[1] for i in padded) / FIG_DPI, h / FIG_DPI), dpi=FIG_DPI)
    fig.figimage(np.concatenate(padded, axis=1), 0, 0)
    plt.close(fig)
    return fig


def _png(fig: Any) -> str:
    plt = plt_module()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------

def _fmt(x: Any, ci: Any = None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    s = f"{x:+.4f}" if signed else f"{x:.4f}"
    if ci:
        s += f" <span class=ci>[{ci[0]:+.3f}, {ci[1]:+.3f}]</span>" if signed else \
             f" <span class=ci>[{ci[0]:.3f}, {ci[1]:.3f}]</span>"
    return s


def summary_html(runs: Sequence[RunSummary]) -> str:
    """The summary table as HTML (the report's first section; the notebook shows it too)."""
    e = html.escape
    rows = summary_rows(runs)
    official = any(r.official for r in runs)  # a column of its own only where score labels differ from all labels
    head = ("<tr><th>run</th><th>model</th><th>folds</th><th>macro-F1 [95% CI]</th>"
            + ("<th>official macro-F1 [95% CI]</th>" if official else "") +
            "<th>balanced acc</th><th>fold sd</th><th>majority baseline</th><th>decision gain in-sample</th>"
            "<th>decision gain cross-fitted [95% CI]</th></tr>")
    body = "".join(
        f"<tr><td>{e(r['run'])}</td><td>{e(r['model'])}</td><td>{r['folds']}</td>"
        f"<td>{_fmt(r['macro_f1'], r['macro_f1_ci'])}</td>"
        + (f"<td>{_fmt(r['macro_f1_official'], r['macro_f1_official_ci'])}</td>" if official else "") +
        f"<td>{_fmt(r['balanced_accuracy'])}</td><td>{_fmt(r['fold_sd'])}</td><td>{_fmt(r['majority_baseline'])}</td>"
        f"<td>{_fmt(r.get('gain_in_sample'), signed=True)}</td>"
        f"<td>{_fmt(r.get('gain_crossfit'), r.get('gain_crossfit_ci'), signed=True)}</td></tr>" for r in rows)
    return f"<table class=summary>{head}{body}</table>"


def _curve_of(run_dir: Path) -> dict[str, Any] | None:
    """The sibling learning-curve directory's curve.json and figure, when `harness curve` wrote one."""
    from harness.run.rundir import CURVE, CURVE_FIGURE, RunDir

    curve = RunDir(Path(f"{run_dir}-curve"))
    if not curve.path.is_dir() or not curve.has(CURVE):
        return None
    data = json.loads(curve.verified(CURVE).read_text())
    data["png"] = base64.b64encode(curve.verified(CURVE_FIGURE).read_bytes()).decode() if curve.has(CURVE_FIGURE) else ""
    return data


def _curve_html(r: RunSummary) -> str:
    """The learning curve's figure and forecasts, per class largest gain first."""
    c = r.curve
    if not c:
        return ""
    e, f = html.escape, c["fit"]["overall"]["macro_f1_official"]["forecast"]
    rows = "".join(f"<tr><td>{x['n']:.0f}</td><td>{x['score']:.4f}</td><td>{x['lo']:.4f} to {x['hi']:.4f}</td></tr>"
                   for x in f if x["score"] is not None and x["lo"] is not None)
    gains = sorted(((v["forecast"][-1]["score"] - v["points"][-1], k) for k, v in c["fit"]["per_class"].items()
                    if v["forecast"][-1]["score"] is not None), reverse=True)
    per = ", ".join(f"{e(k)} {g:+.3f}" for g, k in gains)
    return (f"<h3>Learning curve</h3><img alt='learning curve' src='data:image/png;base64,{c['png']}'>"
            "<table><tr><th>training rows per fold</th><th>official macro-F1 forecast</th><th>95% interval</th></tr>"
            f"{rows}</table><p>forecast F1 gain per class at 2x the labels: {per}</p>")


def _fixes_html(r: RunSummary) -> str:
    """The label fixes the run's training data went through (data.label_fixes), one row each."""
    f = r.label_fixes
    if not f:
        return ""
    e, names = html.escape, r.label_names
    rows = "".join(f"<tr><td>{e(str(a['id']))}</td><td>{e(names[a['from']])}</td><td>{e(names[a['to']])}</td>"
                   f"<td>{e(a['note'])}</td></tr>" for a in f["applied"])
    return (f"<p>label fixes: {f['rows']} applied from {e(f['source'])} (sha256 {e(f['sha256'][:12])})</p>"
            "<table class=fixes><tr><th>id</th><th>label was</th><th>fixed to</th><th>note</th></tr>"
            f"{rows}</table>")


def render_html(runs: Sequence[RunSummary], sections: Sequence[tuple[str, str]] = (),
                title: str = "harness report") -> str:
    """The page; `sections` are extra (title, HTML) parts shown after the summary (e.g. paired differences)."""
    e = html.escape
    parts = [f"<h2>Summary</h2>{summary_html(runs)}", *(f"<h2>{e(t)}</h2>{body}" for t, body in sections),
             "<h2>Per-class F1</h2>", f"<img alt='per-class F1 heatmap' src='data:image/png;base64,{_png(per_class_heatmap(runs))}'>",
             "<h2>Fold spread</h2>", f"<img alt='fold spread' src='data:image/png;base64,{_png(fold_spread(runs))}'>"]
    gains = decision_gains(runs)
    if gains is not None:
        parts += ["<h2>Decision layer: in-sample against cross-fitted gain</h2>",
                  f"<img alt='decision gains' src='data:image/png;base64,{_png(gains)}'>"]
    for r in runs:
        pc = "".join(f"<tr><td>{c['label']}</td><td>{e(c['name'])}</td><td>{c['precision']:.3f}</td>"
                     f"<td>{c['recall']:.3f}</td><td>{c['f1']:.3f}</td><td>{c['support']}</td></tr>"
                     for c in r.blend["per_class"])
        dec = ""
        if r.decision:
            d = r.decision
            rung = d.get("complexity", {}).get("chosen")
            searched = f"; {d['trials_total']} candidates searched ({d['sampler']})" if d.get("trials_total") else ""
            dec = (f"<p>decision{f' ({e(rung)} rung of the ladder)' if rung else ''}: "
                   f"δ = [{', '.join(f'{x:+.2f}' for x in d['delta'])}], "
                   f"τ = {format(d['tau'], '.3f') if d['tau'] is not None else 'off'}, "
                   f"weights = [{', '.join(f'{w:.2f}' for w in d['weights'])}]{searched}</p>")
        parts += [f"<section class=run><h2>{e(r.name)}</h2><p class=path>{e(str(r.path))}</p>{dec}{_fixes_html(r)}",
                  f"<img alt='confusion matrices of {e(r.name)}' src='data:image/png;base64,{_png(confusion_pair(r))}'>"]
        if r.decision and "temperature" in r.decision:
            parts.append(f"<img alt='reliability diagram of {e(r.name)}' src='data:image/png;base64,"
                         f"{_png(reliability_figure(r.decision['temperature'], 'reliability (OOF, seed mean)'))}'>")
        parts += ["<table class=perclass><tr><th>label</th><th>name</th><th>precision</th><th>recall</th><th>F1</th>"
                  f"<th>support</th></tr>{pc}</table>{_curve_html(r)}</section>"]
    style = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
             "td:first-child,td:nth-child(2){text-align:left}.ci{color:#777;font-size:11px}.path{color:#777}"
             "img{max-width:100%;display:block;margin:8px 0}section.run{border-top:2px solid #ddd;margin-top:24px}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{e(title)}: {len(runs)} run(s)</title>"
            f"<style>{style}</style></head><body><h1>{e(title)}</h1>"
            f"<p>{len(runs)} run(s), written {time.strftime('%Y-%m-%d %H:%M:%S')}. Scores are out-of-fold over the "
            "training set; CIs are bootstrap over rows.</p>" + "".join(parts) + "</body></html>")


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None,
                 sections: Sequence[tuple[str, str]] = (), title: str = "harness report") -> Path:
    """Compare run directories in one static HTML file (atomically written). `out` None: where the runs are
    (one run: its own report.html; several: report.html beside the first), never the current directory."""
    from harness.core.store import check_output_file

    from harness.run.rundir import REPORT

    out = Path(out) if out is not None else default_output(run_dirs, REPORT, inside_one=True)
    check_output_file(out, "--out")
    atomic_write_text(out, render_html(load_runs(run_dirs), sections, title))
    return out


def default_output(run_dirs: Sequence[str | Path], name: str, inside_one: bool = False) -> Path:
    """Where a command's output over runs lands by default: beside the first run (in the runs' output folder), or
    inside it when there is one run and `inside_one`."""
    first = Path(run_dirs[0])
    return first / name if inside_one and len(run_dirs) == 1 else first.parent / name
