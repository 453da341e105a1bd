"""A run directory is one verified, transactional artifact (issue 29): a manifest of every file's digest, a writer
lock, one-step commits, checked numbers. Each BAD case of the hostile probe is here with its hostile input and the
one-line refusal or correct result; kill -9 of each writer at each commit step leaves the old state or the new."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.config import ConfigError, load_config
from harness.run.experiment import run_experiment
from harness.posthoc.decision import DecisionInputError
from harness.run.manifest import KILL_AT_ENV
from harness.run.rundir import RunDir
from harness.run.verify import check_all
from harness.core.store import StoreError
import harness.run.layout as run_files
from helpers import run_cli

TFIDF = ["method=tfidf", "data.synthetic=psydefconv", "data.synthetic_groups=20", "cv.n_folds=3",
         "track.backend=none", "decide.enabled=false", "decide.n_trials=40"]
CRASH_STEPS = ("staged", "journal", "moved-one", "moved")


def _test_file(path: Path) -> Path:
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    write_psydefconv(path, make_psydefconv(n_groups=4, seed=5), with_labels=False)
    return path


def _cv(run: Path, *extra: str):
    return run_experiment(load_config(None, [*TFIDF, f"run_dir={run}", *extra]), verbose=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tfidf runs on the same folds and test file, fold models kept (read-only: tests copy them)."""
    root = tmp_path_factory.mktemp("manifest")
    test = _test_file(root / "test.json")
    for name, c in (("a", "1.0"), ("b", "0.3")):
        assert _cv(root / name, f"tfidf.C={c}", f"data.test_path={test}", "train.save_adapters=true")
    return root


def _copy(runs: Path, tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        shutil.copytree(runs / n, tmp_path / n)
        out.append(tmp_path / n)
    return out


def _state(run: Path) -> dict[str, str]:
    """The committed state as a reader sees it: every listed file verified, or the problems."""
    problems = check_all(RunDir(run))
    assert not problems, problems
    return {k: v["sha256"] for k, v in RunDir(run).manifest().files.items()}


# ----------------------------------------------------------------------------
# the mechanism
# ----------------------------------------------------------------------------

def test_every_reader_refuses_a_file_whose_digest_does_not_match(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    assert run_cli("verify", str(a)).returncode == 0
    with open(a / run_files.OOF, "r+b") as f:  # one byte flipped in place, same size
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    for args in (["decide", str(a)], ["predict", str(a), "--out", str(tmp_path / "s.json")], ["compare", str(a),
                 "--out", str(tmp_path / "c.html")], ["report", str(a), "--out", str(tmp_path / "r.html")],
                 ["audit", str(a), "--out", str(tmp_path / "au")], ["ensemble", str(a), "--out", str(tmp_path / "e")]):
        r = run_cli(*args, ok=False)
        said = r.stderr + r.stdout
        if args[0] in ("predict", "report"):  # they do not read oof.npz: they must still work
            assert r.returncode == 0, said
            continue
        assert r.returncode == 2 and f"{a / run_files.OOF}: changed since cv wrote it" in said, (args, said)
    v = run_cli("verify", str(a), ok=False)
    assert v.returncode == 1 and "oof.npz: changed since cv wrote it" in v.stdout


def test_a_file_dropped_in_by_hand_is_not_read(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    (a / run_files.CALIBRATION).write_text(json.dumps({"delta": [5.0] + [0.0] * 8, "tau": None, "gate_class": None,
                                                    "weights": [1.0]}))
    r = run_cli("predict", str(a), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and "calibration.json: not recorded in manifest.json" in r.stderr
    assert not (tmp_path / "s.json").exists()


def test_a_run_written_before_manifests_is_read_with_one_warning_or_upgraded(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    (a / run_files.MANIFEST).unlink()
    with pytest.warns(UserWarning, match="written before run directories had a manifest") as caught:
        run_cli("report", str(a), "--out", str(tmp_path / "r.html"))
        run_cli("compare", str(a), "--out", str(tmp_path / "c.html"), "--no-track")
    assert len([w for w in caught if "manifest" in str(w.message)]) == 1  # once per directory and process
    r = run_cli("decide", str(a), ok=False)  # a writer does not add unverified files to it
    assert r.returncode == 2 and "--upgrade" in r.stderr
    up = run_cli("verify", str(a), "--upgrade")
    assert "recorded" in up.stdout and "verified" in up.stdout
    run_cli("decide", str(a))
    assert RunDir(a).read_calibration() is not None


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_kill_9_of_decide_at_each_commit_step_leaves_the_old_decision_or_the_new(runs, tmp_path, step):
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    old = _state(a)
    env = {**os.environ, KILL_AT_ENV: step}
    p = subprocess.run([sys.executable, "-m", "harness.cli", "decide", str(a), "decide.complexity=prior"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    rung = RunDir(a).read_calibration()["complexity"]["chosen"]  # a reader first: it finishes a journalled commit
    now = _state(a)
    if step == "staged":
        assert now == old and rung == "argmax"
    else:  # the journal was written: the commit is rolled forward whole
        assert now != old and rung == "prior"
        assert now[run_files.METRICS] != old[run_files.METRICS]  # its decide/* keys came with it
    run_cli("decide", str(a), "decide.complexity=argmax")  # the next writer is not blocked, and sweeps up
    assert RunDir(a).read_calibration()["complexity"]["chosen"] == "argmax"
    assert not list(a.glob(".stage-*")) and not (a / run_files.LOCK).exists()


@pytest.mark.parametrize("step", ["journal", "moved-one"])
def test_kill_9_of_cv_mid_commit_keeps_the_journalled_commit_and_resumes(tmp_path, step):
    """cv killed after its first commit's journal (the setup: config, data.json, folds.json): a reader rolls that
    commit forward whole, nothing of a fold is half there, and the same command then finishes the run."""
    run = tmp_path / "run"
    env = {**os.environ, KILL_AT_ENV: step}
    cmd = [sys.executable, "-m", "harness.cli", "cv", "demo_cpu", *TFIDF, f"run_dir={run}"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9
    committed = _state(run)  # rolled forward by this reader, every file verified
    assert {run_files.CONFIG, run_files.DATA, run_files.FOLDS} <= set(committed)
    assert not any(k.startswith("folds/") for k in committed) and not RunDir(run).fold_done(42, 0)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _state(run) and RunDir(run).is_finished()


@pytest.mark.parametrize("step", ["staged", "moved-one"])
def test_kill_9_of_ensemble_and_audit_leaves_nothing_half_written(runs, tmp_path, step):
    a, b = _copy(runs, tmp_path, "a", "b")
    env = {**os.environ, KILL_AT_ENV: step}
    for args, out in ((["ensemble", str(a), str(b), "--out", str(tmp_path / "ens"), "decide.n_trials=40"],
                       tmp_path / "ens"), (["audit", str(a), "--out", str(tmp_path / "au")], tmp_path / "au")):
        p = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == -9, p.stderr[-2000:]
        if step == "staged":  # before the journal: nothing of it is visible, and the same command then runs
            assert not RunDir(out).store.exists() and not (out / run_files.OOF).exists() and \
                not (out / "label_issues.json").exists()
        else:  # after the journal: a reader rolls the whole commit forward, every file verified
            names = set(_state(out))
            assert {run_files.OOF, run_files.CALIBRATION, run_files.COMBINER} <= names or names == {"label_issues.json",
                                                                                       "errors.html"}, names
        run_cli(*args)
        assert _state(out)


# ----------------------------------------------------------------------------
# the BAD cases of the probe
# ----------------------------------------------------------------------------

def test_bad1_an_ensemble_whose_member_was_rerun_is_refused_by_predict_test(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "--stack", "decide.n_trials=40")
    test = runs / "test.json"
    ok = run_cli("predict", str(ens), "--test", str(test), "--out", str(tmp_path / "s1.json"))
    assert "wrote" in ok.stdout
    shutil.rmtree(b)  # the member re-run with other settings in the same place
    _cv(b, "tfidf.C=0.05", f"data.test_path={test}", "train.save_adapters=true")
    r = run_cli("predict", str(ens), "--test", str(test), "--out", str(tmp_path / "s2.json"), ok=False)
    assert r.returncode == 2 and f"{b.resolve()}: changed since the ensemble" in r.stderr
    assert not (tmp_path / "s2.json").exists()


def test_bad2_two_ensembles_into_one_out_one_is_refused(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    lock = RunDir(ens)
    ens.mkdir()
    lock.store.lock.acquire(0, "harness ensemble")  # a live ensemble holds the directory
    try:
        r = run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40", ok=False)
    finally:
        lock.store.lock.release()
    assert r.returncode == 2 and "another harness command is writing it" in r.stderr
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "--stack", "decide.n_trials=40")
    r = run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40", ok=False)  # then a blend
    assert r.returncode == 2 and "is an ensemble of other runs (or combined by stack)" in r.stderr
    assert RunDir(ens).read_combine() == "stack"


def test_bad3_a_failed_ensemble_writes_nothing_and_the_corrected_one_runs(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    (b / run_files.FOLDS).unlink()
    r = run_cli("ensemble", str(a), str(b), "--out", str(ens), ok=False)
    assert r.returncode == 2 and run_files.FOLDS in r.stderr
    assert not ens.exists() or not [p for p in ens.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(b)
    shutil.copytree(runs / "b", b)
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40")
    assert _state(ens)


def test_bad4_cv_on_an_ensemble_directory_trains_nothing_there(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "--stack", "decide.n_trials=40")
    before = _state(ens)
    r = run_cli("cv", str(ens / run_files.CONFIG), ok=False)
    assert r.returncode == 2 and "is an ensemble directory" in r.stderr
    assert _state(ens) == before and not (ens / "folds").exists()


def test_bad5_audit_of_a_run_without_its_fingerprint_is_refused(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    (a / run_files.DATA).unlink()
    r = run_cli("audit", str(a), "--out", str(tmp_path / "au"), ok=False)
    assert r.returncode == 2 and "data.json: missing" in r.stderr
    assert not (tmp_path / "au" / "label_issues.json").exists()


def test_bad6_cv_does_not_resume_folds_without_a_fingerprint(tmp_path):
    run = tmp_path / "run"
    cfg = load_config(None, [*TFIDF, f"run_dir={run}"])
    run_experiment(cfg, folds=[0], verbose=False)
    (run / run_files.DATA).unlink()
    with pytest.raises(StoreError, match=r"data\.json: missing"):
        run_experiment(cfg, verbose=False)
    assert not (run / run_files.DATA).exists() and not RunDir(run).fold_done(42, 1)  # nothing blessed, nothing trained
    legacy = tmp_path / "legacy"  # the same without a manifest: an older harness's run
    run_experiment(load_config(None, [*TFIDF, f"run_dir={legacy}"]), folds=[0], verbose=False)
    (legacy / run_files.DATA).unlink()
    (legacy / run_files.MANIFEST).unlink()
    r = run_cli("verify", str(legacy), "--upgrade", ok=False)
    assert r.returncode == 2 and "start a new run directory" in r.stderr


def test_bad7_a_decide_that_fails_changes_nothing(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    old = (a / run_files.CALIBRATION).read_bytes(), (a / run_files.CROSSFIT).read_bytes()
    text = (a / run_files.METRICS).read_text()
    (a / run_files.METRICS).write_text(text[: len(text) // 2])  # truncated
    r = run_cli("decide", str(a), "decide.complexity=prior", ok=False)
    assert r.returncode == 2 and "metrics.json: changed since" in r.stderr
    assert ((a / run_files.CALIBRATION).read_bytes(), (a / run_files.CROSSFIT).read_bytes()) == old
    assert not list(a.glob(".stage-*"))


@pytest.mark.parametrize("edit, needle", [
    ({"delta": [float("nan")] + [0.0] * 8}, r"delta: .* must be finite and within"),
    ({"delta": [1e9] + [0.0] * 8}, r"delta: .* must be finite and within"),
    ({"delta": [0.0] * 3}, r"delta: 3 biases for 9 classes"),
    ({"tau": 1.5, "gate_class": 0}, r"tau: 1\.5 must be a number in \[0, 1\]"),
    ({"tau": 0.9, "gate_class": 12}, r"gate_class: 12 is not a class index 0\.\.8"),
    ({"weights": [-1.0]}, r"weights: \[-1\.0\] must be finite and >= 0"),
    ({"weights": [0.5]}, r"weights: \[0\.5\] do not sum to 1"),
])
def test_bad8_numbers_read_from_calibration_json_are_checked(runs, tmp_path, edit, needle):
    """The numbers of a decision on disk are checked where they are read, whether the file was hand-edited (and
    re-recorded with verify --upgrade, so the digest passes) or came from a setting."""
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    d = json.loads((a / run_files.CALIBRATION).read_text())
    d.update(edit)
    (a / run_files.CALIBRATION).write_text(json.dumps(d))
    (a / run_files.MANIFEST).unlink()
    run_cli("verify", str(a), "--upgrade")
    r = run_cli("predict", str(a), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and run_files.CALIBRATION in r.stderr
    import re

    assert re.search(needle, r.stderr), r.stderr
    assert not (tmp_path / "s.json").exists()


def test_bad8_a_missing_key_of_calibration_json_is_named(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    d = json.loads((a / run_files.CALIBRATION).read_text())
    del d["gate_class"]
    (a / run_files.CALIBRATION).write_text(json.dumps(d))
    (a / run_files.MANIFEST).unlink()
    run_cli("verify", str(a), "--upgrade")
    r = run_cli("predict", str(a), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and "missing key(s) gate_class" in r.stderr


def test_bad9_a_blend_ensemble_without_its_combiner_is_refused(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40")
    (ens / run_files.COMBINER).unlink()
    r = run_cli("predict", str(ens), "--test", str(runs / "test.json"), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and "combiner.npz: missing" in r.stderr


@pytest.mark.parametrize("weights, needle", [("[-1,2]", "[-1.0, 2.0] must be finite and >= 0"),
                                             ("[0,0]", "[0.0, 0.0] are all zero"), ("[1e308,1e308]", None)])
def test_bad10_11_fixed_member_weights_are_checked_and_do_not_overflow(runs, tmp_path, weights, needle):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    args = ["ensemble", str(a), str(b), "--out", str(ens), "decide.blend=fixed", f"decide.weights={weights}",
            "decide.complexity=argmax", "decide.n_trials=40"]
    if needle:
        r = run_cli(*args, ok=False)
        assert r.returncode == 2 and f"decide.weights: {needle}" in r.stderr
        assert not (ens / run_files.CALIBRATION).exists()
        return
    r = run_cli(*args)
    assert "weights fixed by decide.weights" in r.stdout
    w = RunDir(ens).read_calibration()["weights"]
    assert w == pytest.approx([0.5, 0.5])
    out = tmp_path / "s.json"
    run_cli("predict", str(ens), "--out", str(out))
    labels = [x["label"] for x in json.loads(out.read_text())]
    assert len(set(labels)) > 1  # not every row class 0


def test_bad12_the_8b_shape_model_is_refused_on_a_cpu_before_anything_is_written(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for method in ("embed", "prompt", "seqcls"):
        run = tmp_path / method
        r = run_cli("cv", "demo_cpu", f"method={method}", "model.name_or_path=qwen3-8b-shape",
                    "data.synthetic_groups=12", "track.backend=none", f"run_dir={run}", ok=False)
        assert r.returncode == 2 and "this machine has no CUDA device" in r.stderr, r.stderr[-800:]
        assert not run.exists() or not RunDir(run).store.exists()


def test_a_failed_first_attempt_does_not_block_the_corrected_one(tmp_path):
    run = tmp_path / "run"
    r = run_cli("cv", "demo_cpu", "method=embed", "model.name_or_path=/no/such/model", "data.synthetic_groups=12",
                "track.backend=none", "cv.n_folds=3", f"run_dir={run}", ok=False)
    assert r.returncode == 2 and "'/no/such/model' cannot be loaded here" in r.stderr
    assert not RunDir(run).store.exists()
    run_cli("cv", "demo_cpu", *TFIDF, f"run_dir={run}")
    assert RunDir(run).is_finished()


# ----------------------------------------------------------------------------
# POOR families: hand-edited files, decision settings, ensembles, classes without rows, environment, CLI
# ----------------------------------------------------------------------------

def _hand_edit(run: Path, name: str, edit) -> None:
    """Edit a file and re-record its digest in the manifest: what a user who edits and then blesses a file does
    (or a bug of a writer). The numbers must still be checked where they are read."""
    from harness.run.manifest import file_digest

    edit(run / name)
    m = json.loads((run / run_files.MANIFEST).read_text())
    sha, size = file_digest(run / name)
    m["files"][name].update(sha256=sha, size=size)
    (run / run_files.MANIFEST).write_text(json.dumps(m))
    assert run_cli("verify", str(run)).returncode == 0


def _edit_oof(**change):
    def edit(path: Path) -> None:
        z = dict(np.load(path))
        for k, f in change.items():
            z[k] = f(z[k])
        np.savez(path, **z)
    return edit


@pytest.mark.parametrize("change, needle", [
    ({"labels": lambda y: np.where(np.arange(len(y)) == 0, 11, y)}, r"1 labels outside 0\.\.8"),
    ({"labels": lambda y: np.where(np.arange(len(y)) == 0, -1, y)}, r"1 labels outside 0\.\.8"),
    ({"labels": lambda y: y + 0.5}, "labels must be integer class ids"),
    ({"fold": lambda f: np.where(np.arange(len(f)) == 0, 7, f)}, r"fold ids \[7\] outside 0\.\.2"),
    ({"ids": lambda i: np.where(np.arange(len(i)) == 1, i[0], i)}, "ids appear more than once"),
])
def test_a_hand_edited_oof_file_is_checked_where_it_is_read(runs, tmp_path, change, needle):
    (a,) = _copy(runs, tmp_path, "a")
    _hand_edit(a, run_files.OOF, _edit_oof(**change))
    r = run_cli("decide", str(a), ok=False)
    assert r.returncode == 2 and run_files.OOF in r.stderr and "Traceback" not in r.stderr
    import re

    assert re.search(needle, r.stderr), r.stderr


def test_damaged_ensemble_files_are_named(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "--stack", "decide.n_trials=40")
    test = str(runs / "test.json")

    def drop_seed(path: Path) -> None:
        d = json.loads(path.read_text())
        del d["members"][1]["seed"]
        path.write_text(json.dumps(d))

    def drop_coef(path: Path) -> None:
        z = dict(np.load(path))
        del z["stack_coef"]
        np.savez(path, **z)

    for name, edit, needle in ((run_files.ENSEMBLE, drop_seed, "member 1: missing seed"),
                               (run_files.COMBINER, drop_coef, "combiner without stack_coef")):
        e2 = tmp_path / f"e-{name}"
        shutil.copytree(ens, e2)
        _hand_edit(e2, name, edit)
        r = run_cli("predict", str(e2), "--test", test, "--out", str(tmp_path / "s.json"), ok=False)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_crossfit_file_missing_an_id_is_named_by_compare(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=prior")

    def drop_row(path: Path) -> None:
        z = dict(np.load(path))
        np.savez(path, ids=z["ids"][1:], pred=z["pred"][1:])

    _hand_edit(a, run_files.CROSSFIT, drop_row)
    r = run_cli("compare", str(a), "--use", "crossfit", "--no-track", "--out", str(tmp_path / "c.html"), ok=False)
    assert r.returncode == 2 and "crossfit.npz: does not match oof.npz (1 OOF ids missing" in r.stderr


def test_a_truncated_config_is_named_not_misread(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    text = (a / run_files.CONFIG).read_text()
    (a / run_files.CONFIG).write_text(text[: len(text) // 3])
    r = run_cli("decide", str(a), ok=False)
    assert r.returncode == 2 and "config.yaml: changed since cv wrote it" in r.stderr and "no rows for folds" not in r.stderr


@pytest.mark.parametrize("setting, needle", [
    ("decide.random_baseline=-1", "decide.random_baseline: must be >= 0"),
    ("decide.tau_range=[1,1]", "decide.tau_range: [1.0, 1.0] is empty"),
    ("decide.delta_range=[-1e308,1e308]", "decide.delta_range: [-1e+308, 1e+308] beyond ±50"),
    ("decide.timeout=0", "decide.timeout: must be > 0"),
])
def test_decision_settings_that_cannot_work_are_refused_before_the_work(runs, tmp_path, setting, needle):
    (a,) = _copy(runs, tmp_path, "a")
    r = run_cli("decide", str(a), setting, ok=False)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert not (a / run_files.CALIBRATION).exists()


def test_a_pinned_rung_that_does_not_apply_says_what_was_locked_instead(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    r = run_cli("decide", str(a), "decide.complexity=blend")  # one seed: nothing to blend
    assert "decide.complexity=blend pinned, but that rung has nothing to search here" in r.stdout
    assert RunDir(a).read_calibration()["complexity"]["chosen"] == "prior"
    r = run_cli("decide", str(a), "decide.complexity=delta", "decide.delta_range=[0,0]", ok=False)
    assert r.returncode == 2 and "searches class biases, but none can move" in r.stderr
    assert RunDir(a).read_calibration()["complexity"]["chosen"] == "prior"  # the earlier decision stands


def test_a_tiny_budget_is_searched_and_cross_fitted_without_a_crash(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.n_trials=1", "decide.complexity=delta")
    cf = RunDir(a).read_calibration()["crossfit"]
    assert np.isfinite(cf["pooled_gain"])


def test_logits_on_probabilities_are_refused(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    r = run_cli("decide", str(a), "--logits", ok=False)
    assert r.returncode == 2 and "already a probability distribution" in r.stderr
    assert not (a / run_files.CALIBRATION).exists()


def test_ensemble_arguments_that_mislead_are_refused(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    out = tmp_path / "e"
    r = run_cli("ensemble", str(a), str(b), "--out", str(out), "--stack-c", "0.1", ok=False)
    assert r.returncode == 2 and "--stack-c: applies to --stack only" in r.stderr
    r = run_cli("ensemble", str(a), "--out", str(out), "--stack", ok=False)
    assert r.returncode == 2 and "has nothing to be stacked with" in r.stderr
    run_cli("ensemble", str(a), str(b), "--out", str(out), "decide.n_trials=40")
    r = run_cli("ensemble", str(out), str(a), "--out", str(tmp_path / "e2"), ok=False)
    assert r.returncode == 2 and "is an ensemble; give its member runs instead" in r.stderr
    r = run_cli("audit", str(out), str(a), "--out", str(tmp_path / "au"), ok=False)
    assert r.returncode == 2 and "is a member of the ensemble" in r.stderr
    assert not (tmp_path / "e2").exists() and not (tmp_path / "au" / "label_issues.json").exists()


def test_members_with_other_score_labels_are_not_compared(runs, tmp_path):
    test = runs / "test.json"
    b = tmp_path / "b9"
    _cv(b, f"data.test_path={test}", "data.score_labels=[0,1,2]")
    r = run_cli("compare", str(runs / "a"), str(b), "--no-track", "--out", str(tmp_path / "c.html"), ok=False)
    assert r.returncode == 2 and "data.score_labels [0, 1, 2] but" in r.stderr


def test_an_ensemble_member_without_fold_models_is_found_before_any_scoring(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40")
    shutil.rmtree(b / "folds" / "seed42" / "fold1" / "model")
    r = run_cli("predict", str(ens), "--test", str(runs / "test.json"), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and "model: missing" in r.stderr
    assert not list(a.glob("scored-*.npz"))  # the first member scored nothing before the second was found wanting


def test_a_label_list_that_does_not_fit_the_data_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no labelled row of class\(es\) 9 j, 10 k"):
        _cv(tmp_path / "r", "data.labels=[a,b,c,d,e,f,g,h,i,j,k]")
    path = tmp_path / "two.csv"  # a two-class table read with the nine-label PsyDefDetect preset
    path.write_text("id,text,label\n" + "".join(f"r{i},text {i},{i % 2}\n" for i in range(40)))
    r = run_cli("validate", str(path), "data.format=table", "data.preset=psydefdetect", ok=False)
    assert r.returncode == 1 and "no labelled row of class(es) 2" in r.stderr and "VALID" not in r.stdout
    r = run_cli("config", "data.preset=nope", ok=False)
    assert r.returncode == 2 and "data.preset: 'nope' is not one of" in r.stderr and "outside 0..-1" not in r.stderr


def test_environment_values_that_would_write_elsewhere_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_ID", "../../escape")
    monkeypatch.setenv("WANDB_RUN_ID", "r1")
    r = run_cli("cv", "demo_cpu", *TFIDF, f"output_dir={tmp_path / 'runs'}", ok=False)
    assert r.returncode == 2 and "WANDB_SWEEP_ID='../../escape': not a W&B id" in r.stderr
    assert not (tmp_path / "escape").exists()
    monkeypatch.delenv("WANDB_SWEEP_ID")
    from harness.core.store import cache_dir

    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "file"))
    with pytest.raises(StoreError, match="HARNESS_CACHE=.*file: is a file, not a directory"):
        cache_dir()
    monkeypatch.setenv("HARNESS_CACHE", "")
    assert cache_dir() == Path.home() / ".cache" / "harness"
    with pytest.raises(ConfigError, match=r"name: holds invisible or direction-changing characters \(U\+202E\)"):
        load_config(None, ["name=run\u202egpj.exe"])


def test_commands_without_arguments_name_only_what_is_required(capsys):
    for cmd, needed in (("decide", "run_dir"), ("predict", "run_dir"), ("validate", "file")):
        with pytest.raises(SystemExit):
            from harness.cli import parse_args

            parse_args([cmd])
        said = capsys.readouterr().err.splitlines()[-1]
        assert said.endswith(f"the following arguments are required: {needed}"), said


def test_decide_on_a_run_directory_that_is_gone_does_not_recreate_it(tmp_path):
    from harness.posthoc.decision import decide_run

    cfg = load_config(None, [*TFIDF, f"run_dir={tmp_path / 'gone'}"])
    with pytest.raises(DecisionInputError, match="not found"):
        decide_run(tmp_path / "gone", cfg, verbose=False)
    assert not (tmp_path / "gone").exists()


def test_compare_credits_a_cross_fitted_gain_only_to_a_rule_in_force(runs, tmp_path):
    """With argmax locked the predictions in force are argmax: `compare --use crossfit` must not score the run by
    what searched rules did out of sample; with a richer rung locked it does."""
    from harness.posthoc.compare import load_comparable

    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    assert RunDir(a).read_crossfit() is not None
    (r,) = load_comparable([a], use="crossfit")
    assert r.scored_as == "argmax"
    run_cli("decide", str(a), "decide.complexity=prior")
    (r,) = load_comparable([a], use="crossfit")
    assert r.scored_as == "crossfit"


def test_more_readers_refuse_their_damaged_files(runs, tmp_path):
    """predict reads test.npz and calibration.json, report metrics.json: each refuses its own file when damaged."""
    (a,) = _copy(runs, tmp_path, "a")
    run_cli("decide", str(a), "decide.complexity=argmax")
    for name, args in ((run_files.TEST, ["predict", str(a), "--out", str(tmp_path / "s.json")]),
                       (run_files.CALIBRATION, ["predict", str(a), "--out", str(tmp_path / "s.json")]),
                       (run_files.METRICS, ["report", str(a), "--out", str(tmp_path / "r.html")])):
        b = tmp_path / f"copy-{name}"
        shutil.copytree(a, b)
        args = [x.replace(str(a), str(b)) for x in args]
        with open(b / name, "ab") as f:
            f.write(b" ")
        r = run_cli(*args, ok=False)
        assert r.returncode == 2 and f"{name}: changed since" in r.stderr, (name, r.stderr)
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "r.html").exists()


def test_predict_names_an_unwritable_out_before_scoring(runs, tmp_path):
    (a,) = _copy(runs, tmp_path, "a")
    r = run_cli("predict", str(a), "--test", str(runs / "test.json"), "--out", "/proc/self/nope.json", ok=False)
    assert r.returncode == 2 and "--out /proc/self/nope.json: cannot write in" in r.stderr
    assert not list(a.glob("scored-*.npz"))  # nothing was scored


def test_an_interrupted_decide_says_nothing_was_committed(runs, tmp_path, monkeypatch):
    import harness.posthoc.decision.ladder as ladder

    (a,) = _copy(runs, tmp_path, "a")
    before = _state(a)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ladder, "batch_scores", interrupted)
    r = run_cli("decide", str(a), ok=False)
    assert r.returncode == 130 and "nothing it was writing was committed" in r.stderr
    assert "finished folds are kept" not in r.stderr and _state(a) == before


def test_a_setfit_pair_count_that_would_exhaust_memory_is_refused_before_the_directory(tmp_path):
    r = run_cli("cv", "demo_cpu", "method=setfit", "setfit.pairs_per_row=10000000", f"run_dir={tmp_path / 'r'}",
                ok=False)
    assert r.returncode == 2 and "setfit.pairs_per_row: 10000000 is outside 1..1000" in r.stderr
    assert not (tmp_path / "r").exists()


def test_an_ensemble_member_rerun_with_other_seeds_is_named(runs, tmp_path):
    a, b = _copy(runs, tmp_path, "a", "b")
    ens = tmp_path / "ens"
    run_cli("ensemble", str(a), str(b), "--out", str(ens), "decide.n_trials=40")
    shutil.rmtree(b)
    _cv(b, "tfidf.C=0.3", f"data.test_path={runs / 'test.json'}", "train.save_adapters=true", "train.seeds=[7]")
    r = run_cli("predict", str(ens), "--test", str(runs / "test.json"), "--out", str(tmp_path / "s.json"), ok=False)
    assert r.returncode == 2 and "changed since the ensemble" in r.stderr and "Traceback" not in r.stderr
