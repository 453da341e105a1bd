"""Optuna studies over training settings: fold-level pruning, per-trial W&B runs, kill -9 resumption on real
SQLite, and two parallel workers on a real PostgreSQL server that the test starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import PG
from helpers import TINY, run_cli, wandb_env
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
QUICK = TINY + ["data.synthetic_groups=12", "cv.n_folds=2", "train.epochs=1", "train.max_steps=1",
                "train.batch_size=8", "train.eval_batch_size=64", "train.inner_val_fraction=0"]


def study_config(tmp_path: Path, **tune: object) -> Path:
    """An experiment YAML with a small search space; everything else comes from overrides."""
    spec = {"tune": {"space": {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                               "loss.class_weights": {"type": "categorical", "choices": ["none", "inverse_sqrt"]}},
                     "pruner": "none", "heartbeat_interval": 1, "grace_period": 3, **tune},
            "output_dir": str(tmp_path / "runs")}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def tune_cmd(cfg: Path, study: str, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "tune", str(cfg), "--study", study, "--n-trials", str(n), *QUICK,
            *extra]


def test_trials_report_folds_prune_and_log_to_wandb(tmp_path, monkeypatch):
    from harness.track import offline_runs, read_offline_run
    from harness.search.tune import run_study, study_status

    monkeypatch.chdir(tmp_path)  # default storage is sqlite:///studies/<study>.db, relative to here
    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    cfg = study_config(tmp_path, pruner="median", pruner_startup_trials=1, pruner_warmup_folds=1, seed=3)
    study = run_study(cfg, QUICK + ["track.backend=wandb", "track.fold_runs=false", "cv.n_folds=3"], "unit",
                      n_trials=3, verbose=False)
    assert Path("studies/unit.db").exists()
    trials = study.get_trials()
    assert len(trials) == 3 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(len(steps))) and 1 <= len(steps) <= 3
        assert (t.state.name == "PRUNED") == (len(steps) < 3)
        assert Path(t.user_attrs["run_dir"]).name == f"trial-{t.number:04d}"
    best = study.best_trial
    m = yaml.safe_load((Path(best.user_attrs["run_dir"]) / run_files.CONFIG).read_text())
    assert m["train"]["learning_rate"] == pytest.approx(best.params["train.learning_rate"])  # overrides applied
    runs = [read_offline_run(p) for p in offline_runs(wdir)]
    exp = [r for r in runs if r["job_type"] == "cv"]
    assert len(exp) == 3 and {r["group"] for r in runs} == {"unit"}
    assert sorted(r["config"]["optuna/trial"] for r in exp) == [0, 1, 2]
    text = study_status(cfg, QUICK, "unit", None)
    assert f"best: trial {best.number}" in text and "3 trials" in text


def test_bad_space_and_metric_are_named_before_any_training(tmp_path):
    cfg = study_config(tmp_path, metric="cv/nonsense", space={"train.lr": {"type": "float", "low": 1, "high": 0}})
    r = run_cli(*tune_cmd(cfg, "bad", 1)[3:], cwd=tmp_path, ok=False)
    assert r.returncode == 2
    assert "tune.space.train.lr: not a searchable config key" in r.stderr
    assert "needs numbers low < high" in r.stderr and "tune.metric" in r.stderr


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_mid_trial_then_resume_retries_the_stale_trial(tmp_path):
    """SQLite + heartbeat: the killed trial is marked failed and retried once, reusing its finished fold."""
    cfg = study_config(tmp_path, seed=7)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    first = subprocess.Popen(tune_cmd(cfg, "crash", 2), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    fold0 = tmp_path / "runs" / "studies" / "crash" / "trial-0000" / "folds" / "seed42" / "fold0" / run_files.FOLD_DONE
    _wait_for(fold0, first, 300)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    stamp = fold0.stat().st_mtime_ns
    storage = f"sqlite:///{tmp_path / 'studies' / 'crash.db'}"
    assert [t.state.name for t in optuna.load_study(study_name="crash", storage=storage).trials] == ["RUNNING"]
    time.sleep(4)  # > grace_period: the trial's heartbeat is now stale
    second = subprocess.run(tune_cmd(cfg, "crash", 2), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    trials = optuna.load_study(study_name="crash", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    dead, retry, fresh = trials
    # retried at once (its worker's pid on this host is gone), or by the heartbeat callback on another host
    origin = retry.system_attrs.get("failed_trial", retry.user_attrs.get("harness/resume_of"))
    assert origin == dead.number and retry.params == dead.params
    assert fresh.params != dead.params  # no duplicate beyond the one retry
    assert retry.user_attrs["run_dir"] == dead.user_attrs["run_dir"]
    assert fold0.stat().st_mtime_ns == stamp, "the finished fold of the killed trial was retrained"
    assert "study crash: 3 trials" in second.stdout


@pytest.mark.skipif(PG is None, reason="no PostgreSQL binaries (Debian's postgresql; scripts/system-deps.sh installs it)")
@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(tmp_path, postgres):
    cfg = study_config(tmp_path)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    workers = [subprocess.Popen(tune_cmd(cfg, "shared", 4, "--storage", postgres), cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), "\n".join(o[1][-2500:] for o in outs)
    assert all("pw-not-needed" not in o[0] + o[1] for o in outs)  # the password is masked in logs
    trials = optuna.load_study(study_name="shared", storage=postgres).trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == 4
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4
    # both workers did work
    assert all("== trial" in o[0] for o in outs)


@pytest.mark.parametrize("pruner", ["median", "percentile", "halving"])
def test_each_pruner_waits_its_folds_then_prunes_a_trial_far_behind(pruner):
    """tune.pruner maps to Optuna's pruner with fold steps: nothing is pruned before tune.pruner_warmup_folds
    folds; a trial far below the others is pruned right after them; a trial level with the best is not."""
    from harness.config.sections import TuneConfig
    from harness.search.tune import make_pruner

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=make_pruner(TuneConfig(pruner=pruner, pruner_warmup_folds=2,
                                                              pruner_startup_trials=3)))
    for good in (0.60, 0.62, 0.64, 0.66, 0.68, 0.70):  # each asks after every fold, as harness tune does
        t = study.ask()
        for fold in range(5):
            t.report(good, fold)
            assert not t.should_prune()
        study.tell(t, good)

    def pruned_at(value: float) -> int | None:
        t = study.ask()
        for fold in range(5):
            t.report(value, fold)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                return fold
        study.tell(t, value)
        return None

    assert pruned_at(0.10) == 1  # after the second fold, not before
    assert pruned_at(0.71) is None
