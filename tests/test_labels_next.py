"""What to label next: learning curves (`harness curve`), annotation selection (`harness select`) and label fixes
applied reproducibly (`data.label_fixes`, `harness audit --fixes-template`)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.config import ConfigError, load_config
from harness.data.load import DataError, load_train
from harness.data.synthetic import make_psydefconv, write_psydefconv
from harness.run.experiment import run_experiment
from harness.run.rundir import CURVE, CURVE_POINTS, RunDir
from helpers import run_cli

TFIDF = ["method=tfidf", "data.synthetic=psydefconv", "data.synthetic_groups=40", "cv.n_folds=3",
         "track.backend=none", "decide.enabled=false", "train.seeds=[1]"]


def tfidf(tmp_path: Path, *extra: str):
    return load_config(None, TFIDF + [f"run_dir={tmp_path / 'run'}", *extra])


# -- learning curves ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def curve(tmp_path_factory):
    from harness.search.curve import run_curve

    root = tmp_path_factory.mktemp("curve")
    cfg = load_config(None, TFIDF + [f"run_dir={root / 'run'}"])
    return cfg, run_curve(cfg, [0.2, 0.4, 0.6, 1.0], draws=2, verbose=False), root


def test_a_curve_learns_scores_every_point_on_the_same_rows_and_forecasts(curve):
    cfg, result, root = curve
    s = result["summary"]
    assert [p["fraction"] for p in s] == [0.2, 0.4, 0.6, 1.0]
    assert [p["draws"] for p in s] == [2, 2, 2, 1]
    assert s[-1]["macro_f1_official"]["mean"] > s[0]["macro_f1_official"]["mean"] + 0.05  # more labels, better
    assert s[0]["train_rows"] < s[1]["train_rows"] < s[2]["train_rows"] < s[3]["train_rows"]
    ids = {tuple(RunDir(p["run_dir"]).read_oof().ids) for p in result["points"]}
    assert len(ids) == 1  # every point scored the same OOF rows
    full = RunDir(result["points"][-1]["run_dir"]).read_oof()
    run_experiment(cfg, verbose=False)  # the experiment itself, as `harness cv` runs it
    assert np.array_equal(full.probs, RunDir(cfg.resolved_run_dir()).read_oof().probs)  # the 1.0 point is it
    assert "Learning curve" in RunDir(cfg.resolved_run_dir()).report_path.read_text()  # its report shows the curve
    f = result["fit"]["overall"]["macro_f1_official"]
    assert f["fit"] is not None and f["bootstrap_fits"] > 200
    for x in f["forecast"]:
        assert x["lo"] <= x["score"] <= x["hi"]
    assert set(result["fit"]["per_class"]) == set(cfg.data.label_names())
    on_disk = json.loads(RunDir(Path(f"{cfg.resolved_run_dir()}-curve")).verified(CURVE).read_text())
    assert on_disk["summary"] == json.loads(json.dumps(s))


def test_fractions_outside_zero_one_are_refused(tmp_path):
    from harness.search.curve import parse_fractions

    assert parse_fractions("1,0.5,0.25,0.5") == [0.25, 0.5, 1.0]
    for bad in ("0,0.5", "0.5,1.5", "-0.1", "a,b", ""):
        with pytest.raises(ConfigError, match="--fractions"):
            parse_fractions(bad)
    r = run_cli("curve", "demo_cpu", *TFIDF, f"run_dir={tmp_path / 'run'}", "--fractions", "0,1", ok=False)
    assert r.returncode != 0 and "outside (0, 1]" in r.stderr + r.stdout
    assert not (tmp_path / "run-curve").exists()


def test_a_fraction_too_small_for_every_class_keeps_one_group_per_class_and_says_so(tmp_path, capsys):
    from harness.data.folds import subsample_groups
    from harness.search.curve import run_curve

    rows = load_train(tfidf(tmp_path))
    kept = subsample_groups(rows, 0.01, 0, "group")
    assert {e.label for e in kept} == {e.label for e in rows}
    assert len({e.group for e in kept}) <= len({e.label for e in rows})
    result = run_curve(tfidf(tmp_path), [0.01, 1.0], draws=1, verbose=True)
    assert "so that every class keeps a group" in result["points"][0]["note"]
    assert "note: fraction 0.01 kept" in capsys.readouterr().out


def test_a_curve_killed_mid_way_resumes_without_training_a_finished_point_again(tmp_path):
    """kill -9 in a real process right after the first point is committed; the next call resumes."""
    over = TFIDF + [f"run_dir={tmp_path / 'run'}"]
    env = {**os.environ, "HARNESS_TEST_KILL_AT": "curve-point"}
    p = subprocess.run([sys.executable, "-m", "harness.cli", "curve", "demo_cpu", *over, "--fractions", "0.5,1",
                        "--draws", "1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    first = RunDir(tmp_path / "run-curve" / CURVE_POINTS / "f0.5-d0")
    assert first.is_finished() and not (tmp_path / "run-curve" / CURVE).exists()
    folds = sorted(first.path.glob("folds/seed*/fold*/probs.npz"))
    stamps = [f.stat().st_mtime_ns for f in folds]
    r = run_cli("curve", "demo_cpu", *over, "--fractions", "0.5,1", "--draws", "1")
    assert len(folds) == 3 and [f.stat().st_mtime_ns for f in folds] == stamps  # resumed, not trained again
    assert RunDir(tmp_path / "run-curve").verified(CURVE).exists() and "needs points at three or more" in r.stdout


# -- selection ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """A finished tfidf run with fold models, and an unlabelled pool of new dialogues (ids of their own)."""
    root = tmp_path_factory.mktemp("select")
    run_experiment(load_config(None, TFIDF + [f"run_dir={root / 'run'}", "train.save_adapters=true"]), verbose=False)
    pool = [e for e in make_psydefconv(n_groups=12, seed=5)]
    write_psydefconv(root / "pool.json", pool, with_labels=False)
    data = json.loads((root / "pool.json").read_text())
    for row in data:
        row["id"] = "pool-" + row["id"]
    (root / "pool.json").write_text(json.dumps(data))
    return root


def test_entropy_picks_the_rows_the_fold_models_are_least_sure_of(selected, tmp_path):
    from scipy.stats import entropy

    from harness.posthoc.select import committee, select_rows
    from harness.data.load import read_file

    run = selected / "run"
    got = select_rows([run], selected / "pool.json", 10, tmp_path / "a.csv", "entropy", verbose=False)
    rows = read_file(selected / "pool.json", RunDir(run).read_config().data, require_label=False)
    mean = committee([run], rows, False).mean(1)
    want = [rows[i].id for i in np.argsort(-entropy(mean, axis=1), kind="stable")[:10]]
    assert got["ids"] == want and got["committee"] == 3
    with open(tmp_path / "a.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == want and all(r["label"] == "" for r in table)
    assert {r["predicted"] for r in table} <= set(RunDir(run).read_config().data.label_names())


def test_balance_spreads_the_picks_over_predicted_classes_rarest_first(selected, tmp_path):
    from harness.posthoc.select import pick

    score = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1.0])
    predicted = np.array([0, 0, 0, 0, 1, 1, 2, 0, 2])
    assert pick(score, predicted, 4, None).tolist() == [0, 1, 2, 3]
    assert pick(score, predicted, 5, [2, 1, 0]).tolist() == [6, 4, 0, 8, 5]  # rarest first, then round-robin
    r = run_cli("select", str(selected / "run"), "--pool", str(selected / "pool.json"), "--n", "9", "--balance",
                "--out", str(tmp_path / "b.csv"))
    with open(tmp_path / "b.csv", newline="") as f:
        predicted_names = [row["predicted"] for row in csv.DictReader(f)]
    assert len(predicted_names) == 9 and len(set(predicted_names)) >= 3 and "picked" in r.stdout


def test_selection_refuses_bad_pools_and_runs_and_overwrites_nothing(selected, tmp_path):
    from harness.posthoc.select import select_rows

    run, out = selected / "run", tmp_path / "out.csv"
    train_like = tmp_path / "train_like.json"
    write_psydefconv(train_like, make_psydefconv(n_groups=3, seed=0), with_labels=False)  # the run's own ids
    with pytest.raises(ConfigError, match="training rows of the run"):
        select_rows([run], train_like, 2, out, verbose=False)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(DataError, match="no rows"):
        select_rows([run], empty, 2, out, verbose=False)
    with pytest.raises(ConfigError, match="ask for at most"):
        select_rows([run], selected / "pool.json", 100000, out, verbose=False)
    no_models = tmp_path / "no_models"
    run_experiment(load_config(None, TFIDF + [f"run_dir={no_models}", "train.save_adapters=false"]), verbose=False)
    with pytest.raises(ConfigError, match="fold model"):
        select_rows([no_models], selected / "pool.json", 2, out, verbose=False)
    assert not out.exists()
    out.write_text("rank,id,label\n1,x,stress\n")
    with pytest.raises(ConfigError, match="exists"):
        select_rows([run], selected / "pool.json", 2, out, verbose=False)
    assert out.read_text() == "rank,id,label\n1,x,stress\n"


# -- label fixes -------------------------------------------------------------------------------------------------

def write_fixes(path: Path, rows: list[list[str]], header=("id", "label", "note", "accept")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_a_fixes_file_with_bad_ids_labels_or_duplicates_is_refused_naming_each_line(tmp_path):
    ids = [e.id for e in load_train(tfidf(tmp_path))]
    bad = write_fixes(tmp_path / "bad.csv", [[ids[0], "Action", "", "yes"], ["nope", "Action", "", "yes"],
                                            [ids[1], "Banana", "", "yes"], [ids[0], "Action", "", "yes"],
                                            [ids[2], "Action", "", "maybe"]])
    with pytest.raises(DataError) as e:
        load_train(tfidf(tmp_path, f"data.label_fixes={bad}"))
    text = str(e.value)
    for line, key in (("line 3", "is not a training row"), ("line 4", "Banana"), ("line 5", "duplicate id"),
                      ("line 6", "write yes or no")):
        assert line in text and key in text, (line, text)


def test_label_fixes_change_the_fingerprint_and_the_report_lists_them(tmp_path):
    rows = load_train(tfidf(tmp_path))
    target = next(e for e in rows if e.label == 7)
    fixes = write_fixes(tmp_path / "fixes.csv", [[target.id, "Action", "annotator 2 agrees", "yes"],
                                                 [rows[1].id, "Neurotic", "not accepted", "no"]])
    fixed = load_train(tfidf(tmp_path, f"data.label_fixes={fixes}"))
    assert next(e for e in fixed if e.id == target.id).label == 1
    assert next(e for e in fixed if e.id == rows[1].id).label == rows[1].label  # accept=no: left as it was
    run_experiment(tfidf(tmp_path, f"data.label_fixes={fixes}"), verbose=False)
    run = RunDir(tmp_path / "run")
    record = run.read_fingerprint()["label_fixes"]
    assert record["applied"] == [{"id": target.id, "from": 7, "to": 1, "note": "annotator 2 agrees"}]
    html = run.report_path.read_text()
    assert "label fixes: 1 applied" in html and "annotator 2 agrees" in html
    write_fixes(fixes, [[target.id, "Neurotic", "changed my mind", "yes"]])
    with pytest.raises(ConfigError, match="label_fixes data changed"):
        run_experiment(tfidf(tmp_path, f"data.label_fixes={fixes}"), verbose=False)


def test_an_audit_writes_a_fixes_template_that_becomes_the_fixes_file(selected, tmp_path):
    r = run_cli("audit", str(selected / "run"), "--top", "5", "--fixes-template", "--out", str(tmp_path / "audit"))
    with open(tmp_path / "audit" / "label_fixes.csv", newline="") as f:
        template = list(csv.DictReader(f))
    issues = json.loads((tmp_path / "audit" / "label_issues.json").read_text())["issues"]
    assert [t["id"] for t in template] == [i["id"] for i in issues] and all(t["accept"] == "" for t in template)
    assert "fixes to review" in r.stdout
    cfg = RunDir(selected / "run").read_config()
    fixes = tmp_path / "audit" / "label_fixes.csv"
    rows = load_train(load_config(None, TFIDF + [f"data.label_fixes={fixes}"]))
    assert [e.label for e in rows] == [e.label for e in load_train(cfg)]  # nothing accepted: nothing changes
    template[0]["accept"] = "yes"  # the reviewer accepts the first suggestion
    write_fixes(fixes, [[t[c] for c in ("id", "label", "note", "accept")] for t in template])
    fixed = {e.id: e.label for e in load_train(load_config(None, TFIDF + [f"data.label_fixes={fixes}"]))}
    assert fixed[issues[0]["id"]] == issues[0]["suggested"] != issues[0]["given"]
    assert all(fixed[i["id"]] == i["given"] for i in issues[1:])


def test_a_curve_is_logged_to_wandb(tmp_path, monkeypatch):
    """The W&B server is what cannot exist here: the run is logged offline and read back from disk."""
    from harness.search.curve import run_curve
    from harness.track import offline_runs, read_offline_run
    from helpers import wandb_env

    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    cfg = load_config(None, TFIDF + [f"run_dir={tmp_path / 'run'}", "track.backend=wandb", "track.mode=offline"])
    result = run_curve(cfg, [0.3, 0.6, 1.0], draws=1, verbose=False)
    run = next(r for r in (read_offline_run(p) for p in offline_runs(wdir)) if r["job_type"] == "curve")
    points = run["tables"]["curve/points"]
    assert [row[0] for row in points["data"]] == [0.3, 0.6, 1.0]
    assert [row[2] for row in points["data"]] == pytest.approx(
        [p["macro_f1_official"]["mean"] for p in result["summary"]])
    assert run["summary"]["curve/forecast_2x"] == pytest.approx(
        result["fit"]["overall"]["macro_f1_official"]["forecast"][-1]["score"])
