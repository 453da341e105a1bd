"""`harness audit`: labels planted wrong rank at the top; errors.html shows every misclassified row, escaped."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli
from harness.config import load_config
from harness.run.experiment import run_experiment
from harness.data.synthetic import make_psydefconv, write_psydefconv

FLIPPED = 12


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Synthetic PsyDefConv (the target's cue phrases carry the label) with 12 labels flipped to another level,
    and a TF-IDF run on it."""
    root = tmp_path_factory.mktemp("audit")
    rows = make_psydefconv(60, 3)
    rng = np.random.default_rng(0)
    flip = rng.choice(len(rows), FLIPPED, replace=False)
    for i in flip:
        rows[i] = replace(rows[i], label=int((rows[i].label + 1 + rng.integers(0, 8)) % 9))
    j = int(flip[0])
    rows[j] = replace(rows[j].with_target(rows[j].target + " <script>x</script>", rows[j].id), source_id=None)
    data = root / "train.json"
    write_psydefconv(data, rows)
    run = root / "run"
    run_experiment(load_config(None, ["method=tfidf", f"data.train_path={data}", "data.synthetic=none", "cv.n_folds=4",
                              "track.backend=none", f"run_dir={run}"]), verbose=False)
    return root, run, {rows[i].id for i in flip}, data


def test_flipped_labels_rank_at_the_top(planted, tmp_path):
    """The synthetic rows are themselves ambiguous at times (TF-IDF's OOF macro-F1 there is ~0.8), so "the top" is
    the top tenth of all rows by suspicion: chance would put 1 of the 12 there."""
    root, run, flipped, _ = planted
    r = run_cli("audit", str(run), "--out", str(tmp_path / "a"), "--top", "1000")
    assert "labels look wrong" in r.stdout
    found = json.loads((tmp_path / "a" / "label_issues.json").read_text())
    issues = found["issues"]
    tenth = {x["id"] for x in issues[:found["rows"] // 10]}
    assert len(tenth & flipped) >= 9, (len(tenth & flipped), FLIPPED)
    scores = [x["score"] for x in issues]
    assert scores == sorted(scores)  # most suspicious (least self-confident) first
    first = issues[0]
    assert {"id", "given", "suggested", "score", "text", "context"} <= set(first) and first["given"] != first["suggested"]
    short = run_cli("audit", str(run), "--out", str(tmp_path / "b"), "--top", "5")
    assert [x["id"] for x in json.loads((tmp_path / "b" / "label_issues.json").read_text())["issues"]] == \
        [x["id"] for x in issues[:5]] and short.stdout.count("looks like") == 5


def test_errors_page_lists_every_misclassified_row_escaped(planted, tmp_path):
    root, run, flipped, _ = planted
    from harness.run.rundir import RunDir

    oof = RunDir(run).read_oof()
    wrong = int((oof.probs.mean(0).argmax(1) != oof.labels).sum())
    run_cli("audit", str(run), "--out", str(tmp_path / "b"))
    page = (tmp_path / "b" / "errors.html").read_text()
    assert page.count("<tr data-pair=") == wrong and wrong >= 1
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<details><summary>" in page  # context turns folded


def test_audit_refuses_data_that_changed_since_the_run(planted, tmp_path):
    root, run, _, data = planted
    import shutil

    from harness.run.rundir import RunDir

    copy = Path(shutil.copytree(run, tmp_path / "run"))
    changed = tmp_path / "changed.json"
    items = json.loads(data.read_text())
    items[0]["current_text"] = items[0]["dialogue"][-1]["text"] = "an edited utterance"
    changed.write_text(json.dumps(items))
    from harness.config import apply_overrides

    rd = RunDir(copy)  # the run's config committed to point at the edited copy of its data
    rd.write_config(apply_overrides(rd.read_config(), {"data.train_path": str(changed)}))
    r = run_cli("audit", str(copy), "--out", str(tmp_path / "c"), ok=False)
    assert r.returncode == 2 and "rows changed since" in r.stderr and str(changed) in r.stderr
    assert not (tmp_path / "c").exists()
