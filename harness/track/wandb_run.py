"""The W&B tracker: an experiment run and a run per fold, offline when there is no login; charts and tables."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import warnings
from pathlib import Path
from typing import Any, Callable

from harness.core import keys
from harness.config import ExperimentConfig
from harness.track.figures import confusion_figure
from harness.run.rundir import RESULT_FILES, RunDir
from harness.core.store import atomic_write_json, read_json
from harness.track.base import Tracker, _drop, expand_confusion, flat_config, masked_argv


def logged_in() -> bool:
    """True when W&B credentials exist (env or netrc); never prompts."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        from wandb.sdk.lib.wbauth.wbnetrc import read_netrc_auth

        return bool(read_netrc_auth(host=os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")))
    except Exception:
        return False

def resolve_mode(mode: str) -> str:
    """track.mode → W&B mode. `auto`: WANDB_MODE if set, else online when logged in, else offline."""
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").lower()
    if env:
        return {"dryrun": "offline", "run": "online"}.get(env, env)
    return "online" if logged_in() else "offline"

def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    """A W&B failure (outage, full disk, bad key) is reported once, then the tracker goes quiet."""

    @functools.wraps(method)
    def wrapper(self: "WandbTracker", *a: Any, **kw: Any) -> Any:
        if self.broken:
            return _drop if method.__name__ == "fold_logger" else None
        try:
            return method(self, *a, **kw)
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            self.broken = True
            warnings.warn(f"W&B logging failed in {method.__name__} ({type(e).__name__}: {e}); training continues "
                          f"and everything is still written to the run directory", stacklevel=2)
            for run in (self.fold_run, self.exp_run):
                with contextlib.suppress(Exception):
                    if run is not None:
                        run.finish(exit_code=1)
            self.fold_run = self.exp_run = None
            return _drop if method.__name__ == "fold_logger" else None

    return wrapper

class WandbTracker(Tracker):
    """One experiment run (job_type=cv) plus one run per trained fold (job_type=fold), tied by `group`.

    Inside a W&B sweep (an agent or sweep-local) wandb allows one run per process and ignores other run
    ids, so the fold runs are folded into the sweep run: one history row per fold carrying that fold's
    per-class table, confusion matrix and training log, and nothing else, so the sweep's step = fold.
    """

    said_offline = False

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, mode: str, extra_config: dict[str, Any] | None = None):
        self.cfg, self.run_dir, self.mode = cfg, Path(run_dir), mode
        self.extra = extra_config or {}
        self.exp_run: Any = None
        self.fold_run: Any = None
        self.broken = False
        self.ids_path = RunDir(self.run_dir).track_path
        self.in_sweep = bool(os.environ.get("WANDB_SWEEP_ID"))
        self.fold_log: list[dict[str, float]] = []  # in a sweep: the fold's trainer log, logged at its end

    def _ids(self) -> dict[str, Any]:
        return read_json(self.ids_path) if self.ids_path.exists() else {}

    def _init(self, console: str = "auto", **kw: Any) -> Any:
        import wandb

        t = self.cfg.track
        # dir: WANDB_DIR as it is now (wandb's process-wide settings keep the value from its first run)
        with masked_argv():  # wandb records the command line in the run's metadata
            return wandb.init(project=t.project, entity=t.entity, tags=list(t.tags) or None, mode=self.mode,
                              reinit="create_new", resume="allow", dir=os.environ.get("WANDB_DIR"),
                              settings=wandb.Settings(init_timeout=t.init_timeout, console=console,
                                                      silent=not t.verbose, quiet=not t.verbose), **kw)

    @_guard
    def start_experiment(self, cfg: ExperimentConfig) -> None:

        ids = self._ids()
        in_sweep = self.in_sweep
        run_id = os.environ.get("WANDB_RUN_ID") if in_sweep else ids.get("experiment_run_id")
        run_id = run_id or secrets.token_hex(4)
        group = cfg.track.group or ids.get("group") or f"{cfg.name}-{run_id}"
        self.exp_run = self._init(id=run_id, name=None if in_sweep else cfg.name, group=group, job_type="cv",
                                  config=flat_config(cfg, {"run_dir": str(self.run_dir), **self.extra}))
        atomic_write_json(self.ids_path, {**ids, "experiment_run_id": self.exp_run.id, "group": group,
                                          "project": cfg.track.project, "mode": self.mode})
        for key in (f"{p}/*" for p in keys.PREFIXES):
            self.exp_run.define_metric(key, summary="last")
        if self.mode == "offline" and not WandbTracker.said_offline:
            WandbTracker.said_offline = True
            where = Path(self.exp_run.dir).parent.parent
            print(f"W&B: not logged in (or WANDB_MODE=offline), so runs are logged offline under {where}; "
                  f"upload them later with `wandb sync {where}/offline-run-*`", flush=True)

    @_guard
    def start_fold(self, seed: int, fold: int) -> None:
        self.fold_log = []
        if not self.cfg.track.fold_runs or self.exp_run is None or self.in_sweep:
            return
        self.fold_run = self._init(id=f"{self.exp_run.id}-s{seed}-f{fold}", name=f"{self.cfg.name}-s{seed}-f{fold}",
                                   group=self.exp_run.group, job_type="fold",
                                   config=flat_config(self.cfg, {"seed": seed, "fold": fold,
                                                                 "experiment_run_id": self.exp_run.id, **self.extra}),
                                   console="off")

    @_guard
    def fold_logger(self) -> Callable[[dict[str, float], int], None]:
        if self.in_sweep and self.exp_run is not None:
            return lambda logs, step: self.fold_log.append({"step": step, **logs})
        if self.fold_run is None:
            return _drop
        run = self.fold_run

        def sink(logs: dict[str, float], step: int) -> None:
            if not self.broken:
                try:
                    run.log({f"train/{k}": v for k, v in logs.items()}, step=step)
                except Exception as e:  # noqa: BLE001
                    self.broken = True
                    warnings.warn(f"W&B logging failed ({e}); training continues", stacklevel=2)

        return sink

    @_guard
    def end_fold(self, seed: int, fold: int, metrics: dict[str, Any], progress: dict[str, float]) -> None:
        names = self.cfg.data.label_names()
        if self.exp_run is not None:  # the experiment's history: one row per finished fold (hyperband reads it)
            row = {**progress, "fold/seed": seed, "fold/index": fold, "fold/macro_f1": metrics["macro_f1"],
                   "fold/macro_f1_official": metrics["macro_f1_official"]}
            if self.in_sweep and "confusion" in metrics:
                key = f"fold/s{seed}_f{fold}"
                row.update({f"{key}/per_class": per_class_table(metrics["per_class"]),
                            f"{key}/confusion_matrix": confusion_chart(metrics["confusion"], names,
                                                                       f"seed {seed} fold {fold}")})
                if self.fold_log:
                    cols = sorted({k for r in self.fold_log for k in r})
                    import wandb

                    row[f"{key}/train_log"] = wandb.Table(columns=cols,
                                                          data=[[r.get(c) for c in cols] for r in self.fold_log])
            self.exp_run.log(row)
        run, self.fold_run = self.fold_run, None
        if run is None:
            return
        run.summary.update({f"fold/{k}": metrics[k] for k in ("macro_f1", "macro_f1_official", "accuracy",
                                                               "balanced_accuracy", "weighted_f1", "seconds")})
        run.log({"fold/per_class": per_class_table(metrics["per_class"]),
                 "fold/confusion_matrix": confusion_chart(metrics["confusion"], names, f"seed {seed} fold {fold}"),
                 "fold/confusion_heatmap": confusion_image(metrics["confusion"], names,
                                                           f"seed {seed} fold {fold} (row-normalised)")})
        run.finish()

    @_guard
    def end_experiment(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        import wandb

        run = self.exp_run
        if run is None:
            return
        names = metrics["label_names"]
        blend = metrics["blend"]
        summary = dict(metrics["summary"])
        summary.update({keys.per_class_f1("cv", r["name"]): r["f1"] for r in blend["per_class"]})
        for m in ("macro_f1", "macro_f1_official"):
            if f"{m}_ci" in blend:
                summary[keys.ci(keys.cv(m), "low")], summary[keys.ci(keys.cv(m), "high")] = blend[f"{m}_ci"]
        logs: dict[str, Any] = {
            "cv/per_fold": wandb.Table(columns=list(metrics["per_fold"][0]),
                                       data=[list(r.values()) for r in metrics["per_fold"]]),
            "cv/per_class": per_class_table(blend["per_class"]),
            "cv/confusion_matrix": confusion_chart(blend["confusion"], names, "OOF, argmax of the seed mean"),
            keys.CV_CONFUSION_HEATMAP: confusion_image(blend["confusion"], names, "OOF before the decision layer"),
        }
        d = RunDir(run_dir).read_calibration()
        if d is not None:
            logs["decide/confusion_matrix"] = confusion_chart(d["after"]["confusion"], names,
                                                              "OOF after the decision layer (in-sample)")
            logs[keys.DECIDE_CONFUSION_HEATMAP] = confusion_image(d["after"]["confusion"], names,
                                                               "OOF after the decision layer (in-sample)")
            logs["decide/per_class"] = per_class_table(d["after"]["per_class"])
            summary.update({keys.per_class_f1("decide", r["name"]): r["f1"] for r in d["after"]["per_class"]})
            summary.update({keys.DECIDE_TAU: d["tau"], keys.DECIDE_GATE_CLASS: d["gate_class"] if d["tau"] is not None
                            else None, keys.DECIDE_TRIALS: d["trials_total"]})
            summary.update({keys.seed_weight(s): float(w) for s, w in zip(d["seeds"], d["weights"])})
            logs["decide/decision"] = wandb.Table(
                columns=["class", "name", "delta"], data=[[i, n, float(x)] for i, (n, x) in enumerate(zip(names, d["delta"]))])
            if "crossfit" in d:
                logs["decide/crossfit_confusion_matrix"] = confusion_chart(
                    d["crossfit"]["after_report"]["confusion"], names, "OOF after the decision layer (cross-fitted)")
        run.log(logs)
        run.summary.update(summary)
        self._log_artifact(run_dir)

    def _log_artifact(self, run_dir: Path) -> None:
        import wandb

        art = wandb.Artifact(f"{self.exp_run.group}-results".replace("/", "-"), type="cv-results",
                             description=f"harness run directory {run_dir}: OOF/test probabilities, folds, decision")
        run = RunDir(run_dir)
        for name in RESULT_FILES:
            if run.has(name):
                art.add_file(str(run.file(name)), name=name)
        if self.cfg.track.log_adapters:
            for adapter in run.model_dirs():
                art.add_dir(str(adapter), name=str(adapter.relative_to(run_dir)))
        self.exp_run.log_artifact(art)

    @_guard
    def log_comparison(self, name: str, columns: list[str], rows: list[list[Any]],
                       per_class: tuple[list[str], list[list[Any]]]) -> None:
        import wandb

        run = self._init(name=name, job_type="compare", group=self.cfg.track.group or "compare",
                         config={"runs": [r[0] for r in rows]})
        run.log({"compare/runs": wandb.Table(columns=columns, data=rows),
                 "compare/per_class_f1_delta": wandb.Table(columns=per_class[0], data=per_class[1])})
        run.finish()

    def finish(self) -> None:
        for run in (self.fold_run, self.exp_run):
            if run is not None:
                with contextlib.suppress(Exception):
                    run.finish()
        self.fold_run = self.exp_run = None

def per_class_table(rows: list[dict[str, Any]]) -> Any:
    import wandb

    cols = ["label", "name", "precision", "recall", "f1", "support"]
    return wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in rows])

def confusion_chart(cm: list[list[int]], names: list[str], title: str) -> Any:
    import wandb

    y, p = expand_confusion(cm)
    return wandb.plot.confusion_matrix(y_true=y, preds=p, class_names=list(names), title=title)

def confusion_image(cm: list[list[int]], names: list[str], title: str) -> Any:
    import matplotlib.pyplot as plt
    import wandb

    fig = confusion_figure(cm, names, title)
    img = wandb.Image(fig)
    plt.close(fig)
    return img


def registry_target(registry: str) -> str:
    """A W&B Registry path: 'wandb-registry-<registry>/<collection>'; a bare collection is the model registry's."""
    return registry if registry.startswith("wandb-registry-") else f"wandb-registry-model/{registry}"


def log_export(cfg: ExperimentConfig, run_dir: Path, out: Path, meta: dict[str, Any]) -> str | None:
    """The export folder as a W&B `model` artifact (aliases: the run's name and `latest`) logged by a run of the
    experiment's group (job_type=export), linked to `track.registry` when set; the artifact's name, or None when
    W&B failed (reported once; the export on disk is complete either way)."""
    import wandb

    tracker = WandbTracker(cfg, run_dir, resolve_mode(cfg.track.mode))
    ids = tracker._ids()
    name = f"{cfg.name}-model".replace("/", "-")
    try:
        run = tracker._init(name=f"{cfg.name}-export", job_type="export", group=cfg.track.group or ids.get("group"),
                            config={"export_dir": str(out), "source": meta["source"], "run_dir": str(run_dir)})
        art = wandb.Artifact(name, type="model", description=f"harness export of {run_dir} ({meta['source']})",
                             metadata={k: meta[k] for k in ("method", "label_names", "source", "merged", "folded",
                                                            "seeds", "n_folds", "harness_version")})
        art.add_dir(str(out))
        run.log_artifact(art, aliases=[cfg.name, "latest"])
        if cfg.track.registry:
            if tracker.mode == "offline":
                warnings.warn(f"track.registry={cfg.track.registry}: W&B links to its Registry from online runs only; "
                              f"after `wandb sync`, link the artifact {name} in the W&B app", stacklevel=2)
            else:
                run.link_artifact(art, registry_target(cfg.track.registry))
        run.finish()
    except Exception as e:  # noqa: BLE001 - the export itself is on disk; tracking never undoes it
        warnings.warn(f"W&B: logging the export failed ({type(e).__name__}: {e}); {out} is complete", stacklevel=2)
        return None
    return name


def log_curve(cfg: ExperimentConfig, curve_dir: Path, result: dict[str, Any]) -> None:
    """A learning curve as a W&B run (job_type=curve, the experiment's group): the points table, a line plot of
    the official macro-F1 against training rows, the per-class forecasts, and the fit in the summary."""
    import wandb

    tracker = WandbTracker(cfg, curve_dir, resolve_mode(cfg.track.mode))
    try:
        run = tracker._init(name=f"{cfg.name}-curve", job_type="curve", group=cfg.track.group,
                            config={"fractions": result["fractions"], "draws": result["draws"],
                                    "curve_dir": str(curve_dir)})
        cols = ["fraction", "train_rows", "macro_f1_official", "sd", "macro_f1", "balanced_accuracy"]
        rows = [[p["fraction"], p["train_rows"], p["macro_f1_official"]["mean"], p["macro_f1_official"]["sd"],
                 p["macro_f1"]["mean"], p["balanced_accuracy"]["mean"]] for p in result["summary"]]
        table = wandb.Table(columns=cols, data=rows)
        per_class = wandb.Table(columns=["class", "f1_now", "forecast_2x", "lo", "hi"], data=[
            [name, f["points"][-1], f["forecast"][-1]["score"], f["forecast"][-1]["lo"], f["forecast"][-1]["hi"]]
            for name, f in result["fit"]["per_class"].items()])
        run.log({"curve/points": table, "curve/per_class_forecast": per_class,
                 "curve/official_macro_f1": wandb.plot.line(table, "train_rows", "macro_f1_official",
                                                            title="learning curve")})
        f = result["fit"]["overall"]["macro_f1_official"]
        run.summary.update({f"curve/forecast_{m}x": x["score"] for m, x in zip(("1", "1.5", "2"), f["forecast"])})
        run.finish()
    except Exception as e:  # noqa: BLE001 - the curve is on disk; tracking never undoes it
        warnings.warn(f"W&B: logging the curve failed ({type(e).__name__}: {e}); {curve_dir} is complete",
                      stacklevel=2)
