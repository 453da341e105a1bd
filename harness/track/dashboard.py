"""A W&B report comparing experiment runs, built with wandb-workspaces (saved only when a server is reachable)."""

from __future__ import annotations

from typing import Any, Sequence

from harness.core import keys

HEADLINE = list(keys.HEADLINE)
# config keys a search typically varies (parallel coordinates); every one is a real key (tests/test_track.py)
SEARCHED = ["method", "lora.r", "train.learning_rate", "loss.class_weights", "loss.label_smoothing",
            "loss.focal_gamma"]


def run_filter(group: str | None = None, job_type: str = "cv", sweep: str | None = None) -> str:
    """The runset filter as a W&B filter expression: experiment runs only, optionally one group or sweep."""
    parts = [f"JobType = '{job_type}'"]
    if group:
        parts.append(f"Group = '{group}'")
    if sweep:
        parts.append(f"Sweep = '{sweep}'")
    return " and ".join(parts)


def build_report(project: str, entity: str | None = None, group: str | None = None, sweep: str | None = None,
                 label_names: Sequence[str] = (), searched: Sequence[str] = SEARCHED,
                 title: str | None = None) -> Any:
    """Headline bars, per-class F1, fold spread and a parallel-coordinates view of searched settings."""
    import wandb_workspaces.reports.v2 as wr

    experiments = wr.Runset(entity=entity or "", project=project, name="experiments",
                            filters=run_filter(group, "cv", sweep))
    folds = wr.Runset(entity=entity or "", project=project, name="folds", filters=run_filter(group, "fold", sweep),
                      groupby=["group"])
    per_class = [keys.per_class_f1("cv", n) for n in label_names]
    what = f"group {group}" if group else f"sweep {sweep}" if sweep else f"project {project}"
    blocks = [
        wr.H1(title or f"harness: {what}"),
        wr.P("Out-of-fold scores of every experiment run (job_type=cv). The decision layer's honest gain is "
             "decide/gain_crossfit, not the in-sample one."),
        wr.PanelGrid(runsets=[experiments], panels=[
            wr.BarPlot(title="official macro-F1 (OOF)", metrics=[keys.cv("macro_f1_official")], orientation="h",
                       layout=wr.Layout(x=0, y=0, w=8, h=8)),
            wr.BarPlot(title="after the decision layer", metrics=[keys.decide("macro_f1_official"), keys.GAIN_CROSSFIT],
                       orientation="h", layout=wr.Layout(x=8, y=0, w=8, h=8)),
            wr.BarPlot(title="fold spread (sd of official macro-F1)", metrics=[keys.CV_FOLD_SD],
                       orientation="h", layout=wr.Layout(x=16, y=0, w=8, h=8)),
            wr.ParallelCoordinatesPlot(
                title="searched settings → official macro-F1",
                columns=[wr.ParallelCoordinatesPlotColumn(metric=wr.Config(k)) for k in searched]
                + [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(keys.cv("macro_f1_official")))],
                layout=wr.Layout(x=0, y=8, w=24, h=9)),
            wr.RunComparer(diff_only="split", layout=wr.Layout(x=0, y=17, w=24, h=10)),
        ]),
        wr.H2("Per-class F1: where the rare classes are won or lost"),
        wr.PanelGrid(runsets=[experiments], panels=[
            wr.BarPlot(title="per-class F1 (OOF)", metrics=per_class or [keys.cv("macro_f1")], orientation="v",
                       layout=wr.Layout(x=0, y=0, w=24, h=10)),
            wr.MediaBrowser(title="OOF confusion, before and after the decision layer",
                            media_keys=[keys.CV_CONFUSION_HEATMAP, keys.DECIDE_CONFUSION_HEATMAP],
                            layout=wr.Layout(x=0, y=10, w=24, h=10)),
        ]),
        wr.H2("Folds"),
        wr.PanelGrid(runsets=[folds], panels=[
            wr.LinePlot(title="training loss per fold", x="Step", y=["train/loss"], groupby="group",
                        layout=wr.Layout(x=0, y=0, w=12, h=8)),
            wr.BarPlot(title="official macro-F1 per fold", metrics=["fold/macro_f1_official"], groupby="group",
                       groupby_aggfunc="mean", groupby_rangefunc="minmax", layout=wr.Layout(x=12, y=0, w=12, h=8)),
        ]),
    ]
    return wr.Report(project=project, entity=entity or "", title=title or f"harness: {what}",
                     description="built by `harness dashboard`", blocks=blocks, width="fluid")
