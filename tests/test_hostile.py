"""Hostile cases (issue 21): nothing merged, nothing stale. Each case is the hostile input and the one-line error
or correct result it gets; nothing already written is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ConfigError, load_config
from harness.run.experiment import run_experiment
from harness.run.rundir import RunDir
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
TFIDF = ["method=tfidf", "data.synthetic=psydefconv", "data.synthetic_groups=20", "cv.n_folds=3",
         "track.backend=none", "decide.enabled=false"]


def test_a_rival_experiment_that_claims_the_directory_first_stops_this_one(tmp_path, monkeypatch):
    """Two `harness cv` with different settings on one empty run_dir: the one that finds the directory claimed
    between its check and its claim stops, naming the setting, before it writes a fold."""
    import harness.run.cv as cv

    run = tmp_path / "run"
    rival = load_config(None, [*TFIDF, "tfidf.C=0.01", f"run_dir={run}"])
    real = cv.load_train

    def load_then_lose_the_race(cfg):
        rows = real(cfg)
        with RunDir(run).writing("cv"):  # the rival commits the directory while this one loads its data
            RunDir(run).write_config(rival)
        return rows

    monkeypatch.setattr(cv, "load_train", load_then_lose_the_race)
    with pytest.raises(ConfigError, match=r"tfidf\.C: 0\.01 in .*config\.yaml but 1\.0 now"):
        run_experiment(load_config(None, [*TFIDF, f"run_dir={run}"]), verbose=False)
    assert RunDir(run).read_config().tfidf.C == 0.01  # the rival's claim stands
    assert not any(RunDir(run).fold_done(42, k) for k in range(3)) and not RunDir(run).folds_path().exists()


def test_two_processes_with_different_settings_never_share_a_run_directory(tmp_path):
    run = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "cv", "demo_cpu", *TFIDF, f"tfidf.C={c}",
                               f"run_dir={run}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in (1.0, 0.01)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = next(o for p, o in zip(procs, outs) if p.returncode == 2)
    assert "tfidf.C" in loser[1] and "a run directory holds one experiment" in loser[1]
    winner_c = RunDir(run).read_config().tfidf.C
    metrics = [RunDir(run).read_fold(42, k).metrics for k in range(3)]
    assert winner_c in (1.0, 0.01) and len(metrics) == 3 and RunDir(run).is_finished()


def _test_file(path: Path, marker: str) -> Path:
    import json

    from harness.data.synthetic import make_psydefconv, write_psydefconv

    write_psydefconv(path, make_psydefconv(n_groups=4, seed=5), with_labels=False)
    items = json.loads(path.read_text())
    for it in items:  # same ids, other words
        it["current_text"] = f"{marker} {it['current_text']}"
        it["dialogue"][-1]["text"] = it["current_text"]
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    a = run_experiment(load_config(None, [*TFIDF, f"run_dir={root / 'a'}",
                                  f"data.test_path={_test_file(root / 'ta.json', 'calm')}"]), verbose=False)
    b = run_experiment(load_config(None, [*TFIDF, f"run_dir={root / 'b'}", "tfidf.C=0.5",
                                  f"data.test_path={_test_file(root / 'tb.json', 'angry')}"]), verbose=False)
    assert a and b
    return root


def test_an_ensemble_of_runs_whose_test_texts_differ_under_the_same_ids_is_refused(two_runs, tmp_path):
    from harness.posthoc.ensemble import build_ensemble

    out = tmp_path / "ens"
    with pytest.raises(ConfigError, match=r"test data differ in content .* \(same ids"):
        build_ensemble([two_runs / "a", two_runs / "b"], out, verbose=False)
    assert not out.exists()  # every member checked before anything is written


def test_an_ensemble_of_one_run_twice_is_refused(two_runs, tmp_path):
    from harness.posthoc.ensemble import build_ensemble

    with pytest.raises(ConfigError, match="given twice"):
        build_ensemble([two_runs / "a", two_runs / "a"], tmp_path / "ens", verbose=False)
    assert not (tmp_path / "ens").exists()


def test_a_decision_without_crossfitting_removes_the_old_crossfit_predictions(two_runs, tmp_path):
    import shutil

    from harness.posthoc.compare import load_comparable
    from harness.posthoc.decision import decide_run

    run = Path(shutil.copytree(two_runs / "a", tmp_path / "a"))
    cfg = RunDir(run).read_config()
    decide_run(run, load_config(RunDir(run).config_path, ["decide.n_trials=30"]), verbose=False)
    assert RunDir(run).read_crossfit() is not None
    decide_run(run, load_config(RunDir(run).config_path, ["decide.n_trials=30", "decide.crossfit=false",
                                                          "decide.gate=off"]), verbose=False)
    assert RunDir(run).read_crossfit() is None and "crossfit" not in RunDir(run).read_calibration()
    (r,) = load_comparable([run], use="crossfit")
    assert r.scored_as == "argmax" and cfg.method == "tfidf"  # no gain of a decision no longer in force


def test_a_study_resumed_under_another_metric_or_space_is_refused(tmp_path):
    from harness.search.tune import run_study

    storage = f"sqlite:///{tmp_path / 's.db'}"
    base = [*TFIDF, f"output_dir={tmp_path / 'runs'}", "tune.pruner=none", "tune.seed=0",
            "tune.space={tfidf.C: {type: float, low: 0.1, high: 10.0, log: true}}"]
    run_study("demo_cpu", base, "s", storage, n_trials=1, verbose=False)
    with pytest.raises(ConfigError, match=r"tune\.metric: 'cv/macro_f1_official' in study 's' but 'cv/accuracy'"):
        run_study("demo_cpu", [*base, "tune.metric=cv/accuracy"], "s", storage, n_trials=2, verbose=False)
    with pytest.raises(ConfigError, match=r"tune\.space: .* in study 's' but"):
        run_study("demo_cpu", [*base, "tune.space={tfidf.C: {type: float, low: 0.5, high: 2.0}}"], "s", storage,
                  n_trials=2, verbose=False)
    import optuna

    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1  # nothing added under either
    run_study("demo_cpu", base, "s", storage, n_trials=2, verbose=False)  # the same study resumes
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2


def test_control_characters_in_ids_are_printed_escaped(tmp_path):
    """An id holding ANSI escapes (clear the screen, a fake green OK) must reach the terminal as text."""
    from helpers import run_cli

    evil = "\x1b[2J\x1b[32mOK\x1b[0m\r"
    rows = "id,text,label,post_id\n" + "".join(f"{evil}{i},some text {i},{i % 2},p{i}\n" for i in range(6))
    rows += f"{evil}0,a duplicate id,1,p9\n"
    (tmp_path / "t.csv").write_text(rows)
    over = ["data.format=table", "data.group_column=post_id", "data.labels=[a,b]", "data.score_labels=null"]
    r = run_cli("validate", str(tmp_path / "t.csv"), "--config", "demo_cpu", *over, "--labelled", ok=False)
    said = r.stdout + r.stderr
    assert r.returncode == 1 and "\\x1b[2J" in said, said
    assert "\x1b" not in said and "\r" not in said
    ok = run_cli("validate", str(tmp_path / "t.csv"), "--config", "demo_cpu", *over, ok=False)
    assert "\x1b" not in ok.stdout + ok.stderr


def test_an_interrupted_decision_search_leaves_no_running_trial_and_counts_only_finished_ones(two_runs, tmp_path,
                                                                                          monkeypatch):
    import shutil

    import optuna

    import harness.posthoc.decision as decide

    run = Path(shutil.copytree(two_runs / "a", tmp_path / "a"))
    # the per-trial engine (tpe) on a searched rung: the one that asks trials before it scores them
    cfg = load_config(RunDir(run).config_path, ["decide.n_trials=140", "decide.crossfit=false",
                                                "decide.complexity=full", "decide.shrinkage=[0]", "decide.sampler=tpe"])
    real, calls = decide.Evaluator.score, []

    def interrupted(self, *a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a)

    monkeypatch.setattr(decide.Evaluator, "score", interrupted)
    with pytest.raises(KeyboardInterrupt):
        decide.decide_run(run, cfg, verbose=False)
    monkeypatch.setattr(decide.Evaluator, "score", real)
    (summary,) = optuna.get_all_study_summaries(RunDir(run).decide_storage())
    study = optuna.load_study(study_name=summary.study_name, storage=RunDir(run).decide_storage())
    states = {t.state.name for t in study.trials}
    assert "RUNNING" not in states and "FAIL" in states
    complete = sum(t.state.name == "COMPLETE" for t in study.trials)
    out = decide.decide_run(run, cfg, verbose=False)
    assert out["trials_added"] == 140 and out["trials_total"] == complete + 140


def test_a_damaged_decision_study_is_one_line(two_runs, tmp_path):
    import shutil

    from helpers import run_cli

    run = Path(shutil.copytree(two_runs / "a", tmp_path / "a"))
    Path(RunDir(run).decide_storage().removeprefix("sqlite:///")).write_bytes(b"not a database" * 100)
    r = run_cli("decide", str(run), "decide.n_trials=20", "decide.complexity=full", ok=False)
    assert r.returncode == 2 and "decide.db: the decision study cannot be opened" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_interrupted_tune_trial_is_rerun_keeping_its_finished_folds(tmp_path, monkeypatch, capsys):
    import optuna

    import harness.run.experiment as experiment
    from harness.search.tune import run_study

    storage = f"sqlite:///{tmp_path / 's.db'}"
    over = [*TFIDF, f"output_dir={tmp_path / 'runs'}", "tune.pruner=none", "tune.seed=0",
            "tune.space={tfidf.C: {type: float, low: 0.1, high: 10.0, log: true}}"]
    real = experiment.run_experiment

    def interrupted_after_two_folds(cfg, **kw):
        on_fold = kw.pop("on_fold")

        def stop(r):
            on_fold(r)
            if r.fold == 1:
                raise KeyboardInterrupt

        return real(cfg, on_fold=stop, **kw)

    monkeypatch.setattr(experiment, "run_experiment", interrupted_after_two_folds)
    with pytest.raises(KeyboardInterrupt):
        run_study("demo_cpu", over, "s", storage, n_trials=1, verbose=False)
    assert "Traceback" not in capsys.readouterr().err  # Optuna's own report of the failed trial stays quiet
    monkeypatch.setattr(experiment, "run_experiment", real)
    first = RunDir(tmp_path / "runs" / "studies" / "s" / "trial-0000")
    stamps = {k: first.fold_dir(42, k).joinpath(run_files.FOLD_DONE).stat().st_mtime_ns for k in (0, 1)}
    run_study("demo_cpu", over, "s", storage, n_trials=1, verbose=False)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].params == trials[0].params and trials[1].user_attrs["run_dir"] == str(first.path)
    assert stamps == {k: first.fold_dir(42, k).joinpath(run_files.FOLD_DONE).stat().st_mtime_ns for k in (0, 1)}
    assert first.is_finished()


def test_a_trial_whose_local_worker_died_is_failed_and_rerun_at_once(tmp_path, capsys):
    import socket

    import optuna

    from harness.search.tune import open_study, run_study

    storage = f"sqlite:///{tmp_path / 's.db'}"
    over = [*TFIDF, f"output_dir={tmp_path / 'runs'}", "tune.pruner=none", "tune.grace_period=3600",
            "tune.space={tfidf.C: {type: float, low: 0.1, high: 10.0, log: true}}"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    study = open_study(load_config("demo_cpu", over), "s", storage)
    orphan = study.ask({"tfidf.C": optuna.distributions.FloatDistribution(0.1, 10.0, log=True)})
    orphan.set_user_attr("harness/host", socket.gethostname())
    orphan.set_user_attr("harness/pid", int(dead.stdout))
    run_study("demo_cpu", over, "s", storage, n_trials=1, verbose=True)  # no waiting out the hour of grace
    assert f"trial 0: its worker (pid {int(dead.stdout)} on this host) is gone" in capsys.readouterr().out
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == orphan.params


def test_search_space_values_the_config_refuses_are_named_before_the_study(tmp_path):
    from harness.search.tune import run_study

    storage = f"sqlite:///{tmp_path / 's.db'}"
    over = [*TFIDF, f"output_dir={tmp_path / 'runs'}", "tune.pruner=none",
            "tune.space={tfidf.C: {type: float, low: 0.0, high: 1.0}, tfidf.min_df: {type: int, low: 0, high: 3}}"]
    with pytest.raises(ConfigError) as e:
        run_study("demo_cpu", over, "s", storage, n_trials=1, verbose=False)
    assert "tune.space.tfidf.C: 0.0 gives tfidf.C: must be > 0" in str(e.value)
    assert "tune.space.tfidf.min_df: 0 gives tfidf.min_df: must be >= 1" in str(e.value)
    assert not (tmp_path / "s.db").exists()  # no study, so no failed trial in one


@pytest.mark.parametrize("case, rows, over, expect", [
    ("one class", [("a", "x one", 0, "g1"), ("b", "x two", 0, "g2"), ("c", "x three", 0, "g3")], [],
     "every labelled row has the same class"),
    ("id 0 and group 0 are values", [(0, "text zero", 0, 0), (1, "text one", 1, 1)] * 1, [], None),
    ("blank id", [("  ", "text", 0, "g")], [], "missing id"),
    ("NUL in an id", [("a\x00b", "text", 0, "g")], [], "holds control characters"),
])
def test_hostile_rows(tmp_path, case, rows, over, expect):
    import json

    from harness.data.load import DataError, load_file

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, "label": y, "post_id": g}) + "\n" for i, t, y, g in rows))
    cfg = load_config(None, ["data.format=table", "data.group_column=post_id", "data.labels=[a,b]",
                             "data.score_labels=null", "data.synthetic=none", f"data.train_path={path}", *over])
    if case == "one class":
        with pytest.raises(ConfigError, match=expect):
            run_experiment(load_config(None, [*TFIDF, "data.format=table", "data.group_column=post_id", "data.labels=[a,b]",
                                      "data.score_labels=null", "data.synthetic=none", f"data.train_path={path}",
                                      f"run_dir={tmp_path / 'run'}"]), verbose=False)
        assert not (tmp_path / "run").exists()  # refused before the directory became anything
    elif expect is None:
        assert [(e.id, e.group) for e in load_file(path, cfg, True)] == [("0", "0"), ("1", "1")]
    else:
        with pytest.raises(DataError, match=expect):
            load_file(path, cfg, True)


def test_duplicate_label_names_and_a_test_file_that_is_the_training_file(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.labels: label names must be distinct"):
        load_config(None, ["data.format=table", "data.labels=[a,a]", "data.score_labels=null"])
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    write_psydefconv(tmp_path / "train.json", make_psydefconv(n_groups=20, seed=1))
    over = [*TFIDF, "data.synthetic=none", f"data.train_path={tmp_path / 'train.json'}",
            f"data.test_path={tmp_path / 'train.json'}", f"run_dir={tmp_path / 'run'}"]
    with pytest.warns(UserWarning, match="data.test_path is the training file"):
        run_experiment(load_config(None, over), verbose=False)


def test_a_rare_class_that_misses_an_inner_calibration_split_still_trains(tmp_path):
    """Fewer rows of a class than folds: a note, and the SVM's grouped calibration copes with an inner part
    that holds none of it (it crashed inside a fold before)."""
    from harness.data.synthetic import make_dreaddit, write_dreaddit_csv

    rows = make_dreaddit(n_groups=30, seed=1)
    rows = [r for r in rows if r.label == 0] + [r for r in rows if r.label == 1][:2]
    write_dreaddit_csv(tmp_path / "t.csv", rows)
    m = run_experiment(load_config(None, ["method=tfidf", "tfidf.classifier=svm", "data.format=table", "data.synthetic=none",
                                  f"data.train_path={tmp_path / 't.csv'}", "data.group_column=post_id",
                                  "data.labels=[a,b]", "data.score_labels=null", "cv.n_folds=5", "track.backend=none",
                                  "decide.enabled=false", f"run_dir={tmp_path / 'run'}"]), verbose=False)
    assert m is not None and RunDir(tmp_path / "run").is_finished()


@pytest.mark.parametrize("args, expect", [
    (["compare", "a", "b", "--n-boot", "0"], "--n-boot: 0 is outside 100..1000000"),
    (["compare", "a", "b", "--n-boot", "1e8"], "--n-boot: '1e8' is not an integer"),
    (["tune", "demo_cpu", "--study", "../../x"], "--study: '../../x' must be one path component"),
    (["tune", "demo_cpu", "--study", "s", "--n-trials", "-1"], "--n-trials: -1 is outside 1..inf"),
    (["tune", "demo_cpu", "--study", "s", "--timeout", "-1"], "--timeout: -1 is outside"),
    (["sweep-local", "sweeps/rank.yaml", "--count", "-1"], "--count: -1 is outside 1..inf"),
    (["synth", "psydefconv", "x.json", "--groups", "100000000"], "--groups: 100000000 is outside 10..100000"),
    (["cv", "demo_cpu", "name=../../x"], "name: '../../x' must be one path component"),
    (["cv", "demo_cpu", "cv.seed=-1"], "cv.seed: -1 is not a seed"),
])
def test_hostile_arguments_get_one_line(args, expect, tmp_path):
    from helpers import run_cli

    r = run_cli(*args, cwd=tmp_path, ok=False)
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_bad_output_paths_are_refused_before_any_work(tmp_path, two_runs):
    from helpers import run_cli

    (tmp_path / "file").write_text("x")
    r = run_cli("cv", "demo_cpu", *TFIDF, f"run_dir={tmp_path / 'file'}", ok=False)
    assert r.returncode == 2 and "is a file, not a directory" in r.stderr
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    r = run_cli("cv", "demo_cpu", *TFIDF, f"run_dir={tmp_path / 'dangling'}", ok=False)
    assert r.returncode == 2 and "is a broken symbolic link" in r.stderr
    (tmp_path / "outdir").mkdir()
    for args in (["predict", str(two_runs / "a"), "--out", str(tmp_path / "outdir")],
                 ["report", str(two_runs / "a"), "--out", str(tmp_path / "outdir")],
                 ["compare", str(two_runs / "a"), str(two_runs / "b"), "--out", str(tmp_path / "outdir")]):
        r = run_cli(*args, ok=False)
        assert r.returncode == 2 and "--out" in r.stderr and "is a directory" in r.stderr, r.stderr
    assert not list((tmp_path / "outdir").iterdir())


def test_small_messages_say_the_right_thing_once(tmp_path, two_runs, capsys):
    from helpers import run_cli

    with pytest.raises(ConfigError, match=r"run_dir: holds a NUL byte"):
        load_config(None, {"run_dir": "a\x00b"})
    with pytest.raises(ConfigError, match=r"tfidf: cannot build the 'word' block .* tfidf\.min_df=1000"):
        run_experiment(load_config(None, [*TFIDF, "tfidf.min_df=1000", f"run_dir={tmp_path / 'r'}"]), verbose=False)
    r = run_cli("cv", "demo_cpu", *TFIDF, "data.synthetic=none", f"data.train_path={tmp_path / 'nope.json'}", ok=False)
    assert f"{tmp_path / 'nope.json'}: cannot read: No such file" in r.stderr and ": -:" not in r.stderr
    out = tmp_path / "my ensemble"  # a path a shell would split
    import shutil

    shutil.copytree(two_runs / "a", tmp_path / "a2")  # the same run under another path: a legal ensemble
    r = run_cli("ensemble", str(two_runs / "a"), str(tmp_path / "a2"), "--out", str(out), "decide.n_trials=20")
    assert f"next: harness predict '{out}'" in r.stdout
    said = r.stdout + r.stderr
    assert said.count("not positive") <= 1  # the cross-fitted warning, if any, is said once
