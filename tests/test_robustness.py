"""Nothing leaked, nothing stale, every failure named (issue 13).

Most tests use `method: tfidf`, which trains a fold in well under a second, so they exercise the real
commands end to end. Not simulated: a full disk (a write into an unwritable place stands in for it).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PG
from helpers import run_cli, wandb_env
from harness.config import ConfigError, load_config, mask_secrets
from harness.run.experiment import run_experiment
from harness.data.load import load_file
from harness.data.synthetic import make_dreaddit, make_psydefconv, write_dreaddit_csv, write_psydefconv
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
TFIDF = ["method=tfidf", "data.synthetic=psydefconv", "data.synthetic_groups=20", "cv.n_folds=3",
         "track.backend=none", "decide.enabled=false"]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    """`harness ARGS` in this process; with `env`, a real process (what a terminal shows, every log handler)."""
    if env is None:
        return run_cli(*args, cwd=cwd, ok=ok)
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                       env=env)
    if ok:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


# ----------------------------------------------------------------------------
# 1. secrets

PW = "s3cr3tPw"
RAW_AT = "s3cr@t3Pw"  # a raw "@" inside the password: its pieces must not leak either


@pytest.mark.parametrize("url", [
    f"postgresql://harness:{PW}@db.example:5432/studies",
    f"postgresql://:{PW}@db.example/studies",
    f"postgresql://harness@db.example/studies?sslmode=require&password={PW}",
    f"postgresql+psycopg://harness:{RAW_AT}@db.example/studies",
])
def test_mask_secrets_covers_every_url_form(url):
    out = mask_secrets(f"storage: {url} and again '{url}'")
    assert all(piece not in out for piece in (PW, "s3cr@", "t3Pw")), out
    assert "db.example" in out  # the host stays readable


def _files_holding(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{p} holds {n!r}" for n in needles if n.encode() in data]
    return hits


@pytest.mark.skipif(PG is None, reason="no PostgreSQL binaries (scripts/system-deps.sh installs them)")
def test_no_password_reaches_a_file_or_the_output(tmp_path, monkeypatch, postgres):
    """Every URL form, in a tracked experiment (W&B offline: config, recorded command line, artifact) and in
    a study on a real PostgreSQL (trust auth, so any password connects) or a failed connection."""
    port = postgres.rsplit(":", 1)[1].split("/")[0]
    forms = {  # url -> does it connect?
        f"postgresql://postgres:{PW}@127.0.0.1:{port}/optuna": True,
        f"postgresql://postgres@127.0.0.1:{port}/optuna?password={PW}": True,
        f"postgresql://:{PW}@127.0.0.1:{port}/optuna": False,  # no such role: refused
        f"postgresql://postgres:{RAW_AT}@127.0.0.1:{port}/optuna": None,  # the driver may or may not parse it
    }
    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    env = {**os.environ}
    output = []
    for i, url in enumerate(forms):
        run = [*TFIDF, "track.backend=wandb", "track.mode=auto", f"run_dir={tmp_path / f'run{i}'}",
               f"tune.storage={url}"]
        output.append(cli("cv", "demo_cpu", *run, env=env))
        output.append(cli("config", "--config", "demo_cpu", f"tune.storage={url}", env=env))
        output.append(cli("config", "--config", "demo_cpu", "--json", f"tune.storage={url}", env=env))
        r = cli("tune", "demo_cpu", "--study", f"s{i}", "--storage", url, "--n-trials", "1", *TFIDF,
                "tune.space={tfidf.C: {type: float, low: 0.5, high: 2.0}}", "tune.pruner=none",
                f"output_dir={tmp_path / 'runs'}", cwd=tmp_path, env=env, ok=False)
        output.append(r)
        if forms[url] is True:
            assert r.returncode == 0, r.stderr[-2000:]
        elif forms[url] is False:
            assert r.returncode == 2 and "cannot open the Optuna storage" in r.stderr, r.stderr[-2000:]
    needles = [PW, "s3cr@", "t3Pw"]
    hits = _files_holding(tmp_path, needles)
    assert not hits, hits
    said = "".join(o.stdout + o.stderr for o in output)
    assert not [n for n in needles if n in said]
    assert (tmp_path / "run0" / run_files.CONFIG).read_text().count("postgres:***@") == 1
    from harness.track import offline_runs

    assert len(offline_runs(wdir)) >= 4  # the W&B files were there to search


# ----------------------------------------------------------------------------
# 2. data fingerprints, 3. stale caches, 4. decision-layer re-runs

def _csv_run(tmp_path: Path, rows: list, *extra: str) -> list[str]:
    return ["method=tfidf", "data.format=table", "data.synthetic=none", "data.score_labels=null",
            f"data.train_path={tmp_path / 'train.csv'}", "data.group_column=post_id", "decide.enabled=false",
            "data.labels=[calm,stress]", "cv.n_folds=3", "track.backend=none", f"run_dir={tmp_path / 'run'}", *extra]


def test_resume_over_changed_training_labels_is_refused(tmp_path):
    rows = make_dreaddit(n_groups=30, seed=1)
    write_dreaddit_csv(tmp_path / "train.csv", rows)
    over = _csv_run(tmp_path, rows)
    cli("cv", "demo_cpu", *over)
    text = (tmp_path / "train.csv").read_text().splitlines()
    flipped = [text[0]] + [ln[:-len(ln.split(",")[-1]) - 2] + ("1" if ln.split(",")[-2] == "0" else "0") + ","
                           + ln.split(",")[-1] for ln in text[1:]]
    (tmp_path / "train.csv").write_text("\n".join(flipped) + "\n")
    assert [e.label for e in load_file(tmp_path / "train.csv", load_config(None, over), True)] != \
        [e.label for e in rows]
    r = cli("cv", "demo_cpu", *over, ok=False)
    assert r.returncode == 2 and "train.csv: the train data changed" in r.stderr, r.stderr[-2000:]


def test_predict_never_serves_stale_scores_for_a_file_whose_context_changed(tmp_path):
    rows = make_psydefconv(n_groups=6, seed=2)
    write_psydefconv(tmp_path / "a.json", rows, with_labels=False)
    recs = json.loads((tmp_path / "a.json").read_text())
    for r in recs:  # same ids, same targets, other context turns
        r["dialogue"] = [{"speaker": "supporter", "text": "tell me about your job and money worries"}] + \
            r["dialogue"][-1:]
    (tmp_path / "b.json").write_text(json.dumps(recs))
    run = tmp_path / "run"
    run_experiment(load_config("demo_cpu", [*TFIDF, "tfidf.context_turns=2", "train.save_adapters=true", f"run_dir={run}"]),
           verbose=False)
    cli("predict", str(run), "--test", str(tmp_path / "a.json"), "--out", str(tmp_path / "a.out"))
    cli("predict", str(run), "--test", str(tmp_path / "b.json"), "--out", str(tmp_path / "b.out"))
    from harness.posthoc.predict import score_file

    cfg = load_config(run / run_files.CONFIG)
    a = score_file(run, cfg, load_file(tmp_path / "a.json", cfg, False), verbose=False)
    b = score_file(run, cfg, load_file(tmp_path / "b.json", cfg, False), verbose=False)
    assert not np.allclose(a, b), "the context changed but the scores did not"
    assert len(list(run.glob("scored-*.npz"))) == 2


def test_decide_reruns_with_another_space_and_cv_reruns_keep_decide_keys(tmp_path):
    run = tmp_path / "run"
    run_experiment(load_config("demo_cpu", [*TFIDF, f"run_dir={run}"]), verbose=False)
    cli("decide", str(run), "decide.n_trials=80")
    cli("decide", str(run), "decide.n_trials=40", "decide.delta_range=[-0.1,0.1]", "decide.delta_classes=[1,2]")
    cal = json.loads((run / run_files.CALIBRATION).read_text())
    assert max(abs(x) for x in cal["delta"]) <= 0.1 + 1e-9
    assert all(x == 0 for i, x in enumerate(cal["delta"]) if i not in (1, 2))
    cli("decide", str(run), "decide.n_trials=40", "decide.delta_classes=[1,2,3,4]")
    before = json.loads((run / run_files.METRICS).read_text())["summary"]
    run_experiment(load_config("demo_cpu", [*TFIDF, f"run_dir={run}"]), verbose=False)  # every fold resumed
    after = json.loads((run / run_files.METRICS).read_text())["summary"]
    assert {k: v for k, v in after.items() if k.startswith("decide/")} == \
        {k: v for k, v in before.items() if k.startswith("decide/")} and "decide/gain_crossfit" in after


# ----------------------------------------------------------------------------
# 5. loaders: records split the way the formats define them

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40) \
    .filter(lambda t: t.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=6))
def test_table_loaders_round_trip_any_text(tmp_path, texts):
    cfg = load_config(None, ["data.format=table", "data.group_column=post_id", "data.labels=[a,b]"])
    with open(tmp_path / "t.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label", "post_id"])
        w.writerows([[f"r{i}", t, i % 2, f"p{i}"] for i, t in enumerate(texts)])
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"id": f"r{i}", "text": t, "label": i % 2,
                                                          "post_id": f"p{i}"}, ensure_ascii=False) + "\n"
                                              for i, t in enumerate(texts)), encoding="utf-8")
    for name in ("t.csv", "t.jsonl"):
        assert [e.target for e in load_file(tmp_path / name, cfg, True)] == texts, name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_psydefconv_jsonl_round_trips_any_text(tmp_path, texts):
    cfg = load_config(None, [])
    recs = [{"id": f"x{i}", "dialogue_id": "d", "dialogue": [{"speaker": "seeker", "text": t}], "current_text": t,
             "label": 0} for i, t in enumerate(texts)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    assert [e.target for e in load_file(tmp_path / "p.jsonl", cfg, True)] == texts


def test_a_huge_target_is_named_by_validate_and_before_training(tmp_path):
    rows = make_dreaddit(n_groups=12, seed=3)
    write_dreaddit_csv(tmp_path / "train.csv", rows)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    first = lines[1].split(",")
    lines[1] = ",".join([first[0], "x" * 1_000_000, *first[2:]])
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    over = ["data.format=table", "data.group_column=post_id", "data.labels=[a,b]"]
    r = cli("validate", str(tmp_path / "train.csv"), *over, ok=False)
    assert r.returncode == 1 and f"id {first[0]}: target: 1,000,000 characters" in r.stderr
    r = cli("cv", "demo_cpu", *_csv_run(tmp_path, rows), ok=False)
    assert r.returncode == 2 and "data.max_target_chars" in r.stderr


# ----------------------------------------------------------------------------
# 6. YAML, 7. --folds, and config values that used to fail late

def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 3\nmodel:\n  name_or_path: minilm\ntrain:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'train' at lines 1 and 5"):
        load_config(tmp_path / "c.yaml")


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    t0 = time.time()
    r = cli("config", "--config", str(tmp_path / "bomb.yaml"), ok=False)
    assert r.returncode == 2 and "alias" in r.stderr and time.time() - t0 < 30


@pytest.mark.parametrize("args, message", [
    (["--folds", "5", "cv.n_folds=2"], "--folds: [5] outside 0..1"),
    (["--folds", "abc"], "--folds: 'abc' is not a comma-separated list"),
    (["train.learning_rate=nan"], "train.learning_rate: expected float"),
    (["train.weight_decay=-0.1", "train.max_grad_norm=-1"], "train.max_grad_norm: must be >= 0"),
    (["decide.metric=f1"], "decide.metric: 'f1' is not one of"),
    (["train.selection_metric=loss"], "train.selection_metric: 'loss' is not one of"),
    (["cv.group_by=speaker"], "cv.group_by: 'speaker' names no grouping"),
    (["tune.space={loss.class_weights: {type: categorical, choices: [none, sqrt]}}"],
     "tune.space.loss.class_weights: 'sqrt' is not a valid value"),
    (["data.labels=[a,b]", "data.score_labels=null"], "data.labels: 2 names"),
    (["data.synthetic_groups=10", "cv.n_folds=12"], "cv.n_folds: 12 folds but the data has only 10 group(s)"),
])
def test_bad_settings_are_named_before_any_work(tmp_path, args, message):
    r = cli("cv", "demo_cpu", *TFIDF, f"run_dir={tmp_path / 'run'}", *args, ok=False)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "run" / run_files.CONFIG).exists()  # a failed first attempt claims nothing


def test_a_corrected_command_runs_after_a_failed_first_attempt(tmp_path):
    over = [*TFIDF, f"run_dir={tmp_path / 'run'}"]
    r = cli("cv", "demo_cpu", *over, "data.synthetic=none", f"data.train_path={tmp_path / 'nope.json'}", ok=False)
    assert r.returncode == 2 and "nope.json" in r.stderr
    cli("cv", "demo_cpu", *over)


def test_synth_and_storage_mistakes_are_clean_errors(tmp_path):
    r = cli("synth", "psydefconv", str(tmp_path / "x.json"), "--groups", "0", ok=False)
    assert r.returncode == 2 and "--groups: 0" in r.stderr
    r = cli("tune", "demo_cpu", "--study", "s", "--storage", "postgres:/nonsense", *TFIDF, cwd=tmp_path, ok=False)
    assert r.returncode == 2 and "tune.storage: cannot open" in r.stderr and "Traceback" not in r.stderr
    r = cli("synth", "psydefconv", "/proc/harness-cannot-write-here/x.json", ok=False)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------
# corrupt run-directory files

def test_corrupt_files_are_named_and_a_corrupt_fold_is_retrained(tmp_path):
    run = tmp_path / "run"
    over = [*TFIDF, f"run_dir={run}"]
    run_experiment(load_config("demo_cpu", over), verbose=False)
    probs = run / "folds" / "seed42" / "fold1" / run_files.FOLD_DONE
    probs.write_bytes(probs.read_bytes()[:100])  # torn
    with pytest.warns(UserWarning, match="fold1: fold files fail their check"):
        run_experiment(load_config("demo_cpu", over), verbose=False)
    assert np.load(probs)["val_probs"].shape[1] == 9  # trained again, whole
    (run / run_files.OOF).write_bytes(b"")
    r = cli("decide", str(run), ok=False)
    assert r.returncode == 2 and "oof.npz: changed since cv wrote it" in r.stderr  # refused by its digest
    (run / run_files.METRICS).write_text('{"summary": ')
    r = cli("report", str(run), "--out", str(tmp_path / "r.html"), ok=False)
    assert r.returncode == 2 and "metrics.json: changed since cv wrote it" in r.stderr
    (run / run_files.FOLDS).write_text("[]")
    r = cli("cv", "demo_cpu", *over, ok=False)
    assert r.returncode == 2 and "folds.json: changed since cv wrote it" in r.stderr


def test_results_follow_the_umask(tmp_path):
    run_experiment(load_config("demo_cpu", [*TFIDF, f"run_dir={tmp_path / 'run'}"]), verbose=False)
    mode = (tmp_path / "run" / run_files.OOF).stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask


# ----------------------------------------------------------------------------
# two processes on one run directory split its folds

def test_two_processes_split_the_folds_of_one_run(tmp_path):
    over = ["model.name_or_path=tiny-qwen3", "data.synthetic=psydefconv", "data.synthetic_groups=24",
            "cv.n_folds=4", "prompt.max_length=128", "lora.r=4", "train.epochs=2", "train.batch_size=4",
            "track.backend=none", "decide.enabled=false", f"run_dir={tmp_path / 'run'}"]
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "cv", "demo_cpu", *over],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[1][-2000:] for o in outs)
    trained = [ln for o in outs for ln in o[0].splitlines() if ": trained macro-F1" in ln]
    assert len(trained) == 4, "\n".join(o[0] for o in outs)  # every fold trained once, not twice
    assert all(any(": trained" in ln for ln in o[0].splitlines()) for o in outs)  # and both did work
    # whoever wrote the last fold saw every fold's file (each writes before it checks) and assembled the run
    assert (tmp_path / "run" / run_files.OOF).exists(), "\n".join(o[0] for o in outs)
    assembled = [ln for o in outs for ln in o[0].splitlines() if ln.startswith("results in ")]
    assert len(assembled) >= 1


def test_a_dead_owners_claim_is_taken_over(tmp_path):
    from harness.run.claims import FoldClaim

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim_file = tmp_path / run_files.FOLD_CLAIM
    claim_file.write_text(json.dumps({"host": FoldClaim(tmp_path / run_files.FOLD_CLAIM).owner["host"], "pid": int(dead.stdout),
                                      "token": "old"}))
    mine = FoldClaim(tmp_path / run_files.FOLD_CLAIM)
    assert mine.acquire()  # its owner is gone: taken over at once
    other = FoldClaim(tmp_path / run_files.FOLD_CLAIM)
    assert not other.acquire()  # a live claim is respected
    mine.release()
    assert not claim_file.exists() and other.acquire()
    other.release()


# ----------------------------------------------------------------------------
# a newcomer's first run

def test_a_missing_sweeps_engine_is_named_not_an_attribute_error(monkeypatch):
    import types

    from harness.search import sweep

    monkeypatch.setitem(sys.modules, "sweeps", types.ModuleType("sweeps"))  # what the repo's sweeps/ folder gives
    assert sweep.sweeps_engine() is None
    assert any("the `sweeps` package is missing" in p for p in sweep.sweep_problems({"method": "grid"}))


def test_no_bitsandbytes_kernels_notice():
    r = subprocess.run([sys.executable, "-m", "harness.cli", "config", "--keys"], capture_output=True, text=True)
    code = "import harness, peft, bitsandbytes"
    r2 = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r2.returncode == 0
    assert "kernels-community" not in r.stderr + r2.stderr


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    two = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in two.strip().splitlines()]
    assert commands[1] == "bash scripts/test.sh"
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert ci == ["exec bash scripts/test.sh"]


def test_the_test_command_installs_the_locked_versions_which_meet_the_floors():
    """scripts/test.sh installs requirements/lock.txt (a new upstream release cannot turn the suite red); the lock
    pins every dependency pyproject.toml declares, at a version its floor admits."""
    import tomllib

    from packaging.requirements import Requirement

    assert "-c requirements/lock.txt" in (ROOT / "scripts" / "test.sh").read_text()
    pins = dict(ln.split("==", 1) for ln in (ROOT / "requirements" / "lock.txt").read_text().splitlines()
                if ln and not ln.startswith("#"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    for req in map(Requirement, declared):
        name = req.name.lower()
        if name == "torch":  # installed by its own step: the CPU build here, a CUDA build on a GPU box
            continue
        assert name in pins, f"{name} is not in requirements/lock.txt: run bash scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} breaks {req}"


def test_the_checkout_guard_sees_a_new_and_a_changed_file(tmp_path):
    """conftest's guard (every test fails if it wrote into the checkout) notices both kinds of write."""
    from conftest import checkout_changes, checkout_state

    (tmp_path / "kept.txt").write_text("a")
    before = checkout_state(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "new.json").write_text("{}")
    (tmp_path / "kept.txt").write_text("bb")
    assert checkout_changes(before, checkout_state(tmp_path)) == ["kept.txt", "runs/new.json"]
