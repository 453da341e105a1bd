"""The fold loop end to end on tiny-qwen3: outputs, seeds, --folds, and resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY
from harness.config import ConfigError, load_config
from harness.run.experiment import run_experiment
import harness.run.layout as run_files

FAST = TINY + ["data.synthetic_groups=24", "cv.n_folds=3", "train.epochs=1", "train.batch_size=8",
               "train.learning_rate=1e-3", "train.eval_batch_size=64"]


def cfg_for(run_dir: Path, *extra: str):
    return load_config(None, FAST + [f"run_dir={run_dir}", *extra])


def test_cv_writes_the_run_directory(tmp_path):
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    write_psydefconv(tmp_path / "test.json", make_psydefconv(n_groups=10, seed=5), with_labels=False)
    cfg = cfg_for(tmp_path / "run", "train.seeds=[1,2]", f"data.test_path={tmp_path / 'test.json'}",
                  "augment.enabled=true", "augment.classes=[2,8]", "augment.k=2")
    m = run_experiment(cfg, verbose=False)
    run = tmp_path / "run"
    for f in [run_files.CONFIG, run_files.FOLDS, run_files.OOF, run_files.TEST, run_files.METRICS]:
        assert (run / f).exists(), f
    oof = np.load(run / run_files.OOF)
    n = len(oof["ids"])
    assert oof["probs"].shape == (2, n, 9) and np.allclose(oof["probs"].sum(-1), 1, atol=1e-5)
    assert not np.allclose(oof["probs"][0], oof["probs"][1])  # two seeds, two OOF sets
    test = np.load(run / run_files.TEST)
    assert test["probs"].shape == (2, 3, len(test["ids"]), 9)
    fm = json.loads((run / "folds" / "seed1" / "fold0" / run_files.METRICS).read_text())
    assert fm["augmented_rows"] > 0 and fm["val_rows"] > 0
    assert (run / "folds" / "seed1" / "fold0" / "model" / "adapter_config.json").exists()
    assert set(m["summary"]) >= {"cv/macro_f1", "cv/macro_f1_official", "cv/balanced_accuracy"}
    assert len(m["per_fold"]) == 6


def test_folds_subset_then_rest_completes(tmp_path):
    cfg = cfg_for(tmp_path / "run")
    assert run_experiment(cfg, folds=[0], verbose=False) is None  # not all folds yet: no OOF assembled
    assert not (tmp_path / "run" / run_files.OOF).exists()
    m = run_experiment(cfg, folds=[1, 2], verbose=False)
    assert m is not None and (tmp_path / "run" / run_files.OOF).exists()


def test_run_dir_refuses_another_experiment(tmp_path):
    run_experiment(cfg_for(tmp_path / "run"), folds=[0], verbose=False)
    with pytest.raises(ConfigError, match="lora.r"):
        run_experiment(cfg_for(tmp_path / "run", "lora.r=8"), folds=[1], verbose=False)


def _cli(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "cv", "demo_cpu", *FAST, "train.epochs=2",
            "model.freeze_embeddings=false", "lora.enabled=true", "prompt.layout=decoder",
            "data.synthetic_groups=32", "decide.enabled=false", f"run_dir={run_dir}", *extra]


@pytest.mark.slow
def test_kill_during_fold_2_loses_no_finished_fold(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HARNESS_QUIET": "1"}
    run = tmp_path / "killed"
    log = open(tmp_path / "killed.log", "w")  # a file, not a pipe: an unread pipe can block the child
    proc = subprocess.Popen(_cli(run), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    fold1 = run / "folds" / "seed42" / "fold1" / run_files.FOLD_DONE
    deadline = time.time() + 600
    while not fold1.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert fold1.exists(), (tmp_path / "killed.log").read_text()[-3000:]
    time.sleep(0.5)  # fold 2 is training now
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "folds" / "seed42" / "fold2" / run_files.FOLD_DONE).exists(), "fold 2 finished before the kill"
    stamps = {k: (run / "folds" / "seed42" / f"fold{k}" / run_files.FOLD_DONE).stat().st_mtime_ns for k in (0, 1)}
    again = subprocess.run(_cli(run), cwd=root, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "fold 0: resumed" in again.stdout and "fold 1: resumed" in again.stdout
    assert "fold 2: trained" in again.stdout
    assert stamps == {k: (run / "folds" / "seed42" / f"fold{k}" / run_files.FOLD_DONE).stat().st_mtime_ns for k in (0, 1)}
    # identical to a run that was never interrupted (in this process: the same code, no process boundary needed)
    from harness import cli

    clean = tmp_path / "clean"
    assert cli.main(_cli(clean)[3:]) == 0
    a, b = np.load(run / run_files.OOF), np.load(clean / run_files.OOF)
    assert (a["ids"] == b["ids"]).all()
    np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-5, atol=1e-6)


def test_inner_split_for_checkpoint_choice_never_uses_validation_rows(tmp_path):
    from harness.run.cv import _inner_split
    from harness.data.folds import make_folds
    from harness.data.synthetic import make_psydefconv

    ex = make_psydefconv(n_groups=30)
    folds = make_folds(ex, 3, 0, "dialogue_id")
    train, val = folds.split(ex, 0)
    fit, inner = _inner_split(train, 0.2, 42, "dialogue_id")
    assert inner and fit
    assert not {e.group for e in inner} & {e.group for e in fit}  # inner split is grouped too
    assert not ({e.id for e in inner} | {e.id for e in fit}) & {e.id for e in val}
    cfg = cfg_for(tmp_path / "run", "train.inner_val_fraction=0.25", "train.early_stopping_patience=1",
                  "train.epochs=3")
    run_experiment(cfg, folds=[0], verbose=False)
    fd = tmp_path / "run" / "folds" / "seed42" / "fold0"
    m = json.loads((fd / run_files.METRICS).read_text())
    assert m["inner_rows"] > 0 and any("eval_macro_f1_official" in h for h in m["log_history"])
    from harness.run.rundir import RunDir

    assert fd == RunDir(tmp_path / "run").fold_dir(42, 0)
    assert not RunDir(tmp_path / "run").scratch_dir(42, 0).exists()  # epoch checkpoints removed once the best is loaded
