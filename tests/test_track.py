"""Tracking: offline W&B runs read back from disk, secrets kept out, outages survived, the HTML report
rendered in headless Chromium, the W&B report object, and the comparison notebook executed."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness.config import load_config
from harness.run.experiment import run_experiment
from harness.core.store import read_json
from harness.track import WandbTracker, offline_runs, read_offline_run, resolve_mode
import harness.run.layout as run_files
from helpers import TINY, run_cli, wandb_env

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cretpw"
FAST = TINY + ["data.synthetic_groups=24", "cv.n_folds=2", "train.epochs=1", "train.batch_size=8",
               "train.learning_rate=1e-3", "train.eval_batch_size=64", "decide.enabled=true", "decide.n_trials=60",
               "track.backend=wandb", "track.mode=auto", "name=tracked",
               f"tune.storage=postgresql://harness:{SECRET}@db.example:5432/studies"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One tiny tracked experiment (2 folds + decision layer), logged offline to W&B."""
    root = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as mp:
        wdir = wandb_env(mp, root / "wandb")
        cfg = load_config(None, FAST + [f"run_dir={root / 'run'}"])
        metrics = run_experiment(cfg, verbose=False)
    runs = [read_offline_run(p) for p in offline_runs(wdir)]
    return {"run_dir": root / "run", "metrics": metrics, "runs": runs, "wandb_dir": wdir}


def test_experiment_and_fold_runs_share_a_group(tracked):
    runs = tracked["runs"]
    exp = [r for r in runs if r["job_type"] == "cv"]
    folds = [r for r in runs if r["job_type"] == "fold"]
    assert len(exp) == 1 and len(folds) == 2
    ids = read_json(tracked["run_dir"] / run_files.TRACK)
    assert exp[0]["id"] == ids["experiment_run_id"]
    assert {r["group"] for r in runs} == {ids["group"]}
    assert sorted(r["config"]["fold"] for r in folds) == [0, 1]
    assert all(r["state"] == "finished" for r in runs)
    assert all(r["id"].startswith(exp[0]["id"] + "-s42-f") for r in folds)  # fold runs never overwrite each other


def test_experiment_run_holds_the_run_directory_numbers(tracked):
    exp = next(r for r in tracked["runs"] if r["job_type"] == "cv")
    on_disk = read_json(tracked["run_dir"] / run_files.METRICS)
    s = exp["summary"]
    for key in ("cv/macro_f1", "cv/macro_f1_official", "cv/balanced_accuracy", "cv/macro_f1_official_fold_sd",
                "decide/macro_f1_official", "decide/gain_in_sample", "decide/gain_crossfit"):
        assert s[key] == pytest.approx(on_disk["summary"][key]), key
    blend = on_disk["blend"]
    assert s["cv/macro_f1_ci_low"] == pytest.approx(blend["macro_f1_ci"][0])
    # per-class table = the run directory's per-class report
    table = exp["tables"]["cv/per_class"]
    assert table["columns"] == ["label", "name", "precision", "recall", "f1", "support"]
    for row, want in zip(table["data"], blend["per_class"]):
        assert row[1] == want["name"] and row[4] == pytest.approx(want["f1"]) and row[5] == want["support"]
    # confusion matrix chart table: counts per (true, predicted) pair equal the OOF confusion
    names = on_disk["label_names"]
    cm = np.zeros((len(names), len(names)))
    for true, pred, n in exp["tables"]["cv/confusion_matrix_table"]["data"]:
        cm[names.index(true), names.index(pred)] = n
    assert np.array_equal(cm, np.array(blend["confusion"]))
    cal = read_json(tracked["run_dir"] / run_files.CALIBRATION)
    if cal["tau"] is not None:
        assert s["decide/tau"] == pytest.approx(cal["tau"]) and s["decide/gate_class"] == cal["gate_class"]
    assert s["decide/seed_weight/42"] == pytest.approx(cal["weights"][0])
    assert [r[2] for r in exp["tables"]["decide/decision"]["data"]] == pytest.approx(cal["delta"])
    after = cal["after"]["confusion"]
    cm_after = np.zeros_like(cm)
    for true, pred, n in exp["tables"]["decide/confusion_matrix_table"]["data"]:
        cm_after[names.index(true), names.index(pred)] = n
    assert np.array_equal(cm_after, np.array(after))
    # one history row per fold with the running CV score (what hyperband and pruners read)
    rows = [h for h in exp["history"] if "cv/folds_done" in h]
    assert [h["cv/folds_done"] for h in rows] == [1, 2]
    art = next(a for a in exp["artifacts"] if a["type"] == "cv-results")
    assert {run_files.OOF, run_files.TEST, run_files.FOLDS, run_files.CALIBRATION, run_files.CONFIG} <= set(art["files"])


def test_fold_runs_hold_curves_per_class_and_confusion(tracked):
    for r in (r for r in tracked["runs"] if r["job_type"] == "fold"):
        fold = r["config"]["fold"]
        m = read_json(tracked["run_dir"] / "folds" / "seed42" / f"fold{fold}" / run_files.METRICS)
        assert r["summary"]["fold/macro_f1_official"] == pytest.approx(m["macro_f1_official"])
        assert any(k.startswith("train/") for h in r["history"] for k in h), "training curves missing"
        counts = sum(n for _, _, n in r["tables"]["fold/confusion_matrix_table"]["data"])
        assert counts == m["val_rows"]
        assert [row[4] for row in r["tables"]["fold/per_class"]["data"]] == pytest.approx(
            [c["f1"] for c in m["per_class"]])
        assert list((r["dir"] / "files" / "media" / "images" / "fold").glob("confusion_heatmap_*.png"))


def test_no_secret_reaches_wandb_files(tracked):
    exp = next(r for r in tracked["runs"] if r["job_type"] == "cv")
    assert exp["config"]["tune.storage"] == "postgresql://harness:***@db.example:5432/studies"
    for path in tracked["wandb_dir"].rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_mode_auto(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") == "disabled"
    assert resolve_mode("offline") == "offline"


def test_a_wandb_server_outage_never_stops_training(monkeypatch, tmp_path):
    """A real outage: online mode with a key, pointed at a closed port. Training completes, with one warning."""
    wandb_env(monkeypatch, tmp_path / "wandb", mode="online")
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    cfg = load_config(None, FAST + [f"run_dir={tmp_path / 'run'}", "decide.enabled=false", "track.init_timeout=5",
                                    "data.synthetic_groups=16"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = run_experiment(cfg, verbose=False)
    assert metrics is not None and (tmp_path / "run" / run_files.OOF).exists()
    failures = [w for w in caught if "W&B logging failed" in str(w.message)]
    assert len(failures) == 1, [str(w.message) for w in caught]


def test_a_failure_mid_run_is_reported_once_and_tracking_stops(monkeypatch, tmp_path):
    """The server disappearing after init (run.log raising) is simulated: it cannot be made to happen here."""
    wandb_env(monkeypatch, tmp_path / "wandb")
    cfg = load_config(None, FAST + [f"run_dir={tmp_path / 'run'}"])
    tr = WandbTracker(cfg, tmp_path / "run", "offline")
    (tmp_path / "run").mkdir()
    tr.start_experiment(cfg)

    def down(*a, **k):
        raise ConnectionError("server went away")

    monkeypatch.setattr(tr.exp_run, "log", down)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr.end_fold(42, 0, {"macro_f1": 0.1, "macro_f1_official": 0.1}, {"cv/macro_f1": 0.1})
        tr.end_fold(42, 1, {"macro_f1": 0.1, "macro_f1_official": 0.1}, {"cv/macro_f1": 0.1})
        tr.start_fold(42, 2)
        tr.fold_logger()({"loss": 1.0}, 1)  # a broken tracker's sink drops the values, silently
        tr.finish()
    assert tr.broken and sum("server went away" in str(w.message) for w in caught) == 1


# ----------------------------------------------------------------------------
# comparing runs
# ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'chromium-profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/system-deps installs it)")
def test_report_renders_in_chromium(tracked, tmp_path):
    import matplotlib.image as mpimg

    second = tmp_path / "second"
    shutil.copytree(tracked["run_dir"], second)
    out = tmp_path / run_files.REPORT
    run_cli("report", str(tracked["run_dir"]), str(second), "--out", str(out))
    page = out.read_text()
    m = tracked["metrics"]["summary"]
    assert f"{m['cv/macro_f1_official']:.4f}" in page and "tracked (second)" in page
    for heading in ("Per-class F1", "Fold spread", "in-sample against cross-fitted", "Summary"):
        assert heading in page
    shot = tmp_path / "shot.png"
    res = chromium("--window-size=1280,2400", f"--screenshot={shot}", out.as_uri(), tmp=tmp_path)
    assert shot.exists(), res.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 2000 and img.std() > 0.05, "screenshot is blank"
    assert (img.mean(-1) < 0.5).mean() > 0.005, "no dark text or figure pixels"
    dom = chromium("--dump-dom", out.as_uri(), tmp=tmp_path).stdout
    # heatmap, folds, gains + per run: its confusion pair and its reliability diagram
    assert dom.count("<img") == 3 + 2 * 2 and "harness report" in dom and dom.count("alt=\"reliability diagram") == 2
    images = [line for line in dom.split("<img")[1:]]
    assert all("data:image/png;base64," in x for x in images)


def test_report_names_a_missing_run_directory(tmp_path):
    r = run_cli("report", str(tmp_path / "nope"), ok=False)
    assert r.returncode == 2 and "nope/metrics.json: not found" in r.stderr


def test_wandb_report_object(tracked, tmp_path):
    """No server here: check the report object `harness dashboard --save` would save."""
    out = tmp_path / "dash.json"
    run_cli("dashboard", "--run", str(tracked["run_dir"]), "--out", str(out))
    spec = out.read_text()
    group = read_json(tracked["run_dir"] / run_files.TRACK)["group"]
    assert group in spec and "cv/macro_f1_official" in spec and "decide/gain_crossfit" in spec
    names = tracked["metrics"]["label_names"]
    assert all(f"cv/per_class_f1/{n}" in spec for n in names)
    exp = next(x for x in tracked["runs"] if x["job_type"] == "cv")
    assert all(f"cv/per_class_f1/{n}" in exp["summary"] for n in names)  # the panels target logged keys

    from harness.track.dashboard import build_report

    rep = build_report("harness", None, group=group, label_names=names)
    grids = [b for b in rep.blocks if type(b).__name__ == "PanelGrid"]
    assert [g.runsets[0].filters for g in grids] == [f"JobType = 'cv' and Group = '{group}'"] * 2 + \
        [f"JobType = 'fold' and Group = '{group}'"]
    panel_types = {type(p).__name__ for g in grids for p in g.panels}
    assert {"BarPlot", "ParallelCoordinatesPlot", "MediaBrowser", "LinePlot"} <= panel_types
    # every parallel-coordinates column is a config key the experiment run really logs (loss.weighting was not)
    from harness.track.dashboard import SEARCHED

    assert set(SEARCHED) <= set(exp["config"]), sorted(set(SEARCHED) - set(exp["config"]))


def test_notebook_executes_on_run_outputs(tracked, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def " not in code and "class " not in code, "the notebook holds no logic of its own"
    monkeypatch.setenv("HARNESS_RUNS", str(tracked["run_dir"]))
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o.get("data", {}).get("text/html", o.get("text", "")) for o in outputs])
    assert "tracked" in text and sum("image/png" in o.get("data", {}) for o in outputs) >= 3


def test_an_export_is_logged_as_a_wandb_model_artifact(tracked, monkeypatch, tmp_path):
    """`harness export` of a W&B-tracked run: a job_type=export run of the experiment's group logs the folder as a
    `model` artifact (aliases: the run's name, latest). The W&B server is what cannot exist here: offline, read
    back from disk; a Registry link needs a server, so offline it is a warning naming the artifact."""
    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    with pytest.warns(UserWarning, match="Registry from online runs only"):
        r = run_cli("export", str(tracked["run_dir"]), "--out", str(tmp_path / "exp"), "--quiet",
                    "track.registry=psydef-classifiers")
    assert r.returncode == 0
    runs = [read_offline_run(p) for p in offline_runs(wdir)]
    export = next(r for r in runs if r["job_type"] == "export")
    ids = read_json(tracked["run_dir"] / run_files.TRACK)
    assert export["group"] == ids["group"] and export["state"] == "finished"
    art = next(a for a in export["artifacts"] if a["type"] == "model")
    assert art["name"] == "tracked-model"
    assert {"README.md", "export.json", "decision.json", run_files.CONFIG} <= set(art["files"])
    assert {"tracked", "latest"} <= set(art["aliases"])
    for f in Path(export["dir"]).rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
