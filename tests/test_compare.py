"""`harness compare` (paired differences on identical folds) and `harness ensemble` (blends across runs).

TF-IDF runs on synthetic Dreaddit keep this fast; the arithmetic is the same for every method.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import wandb_env
from harness import cli
from harness.config import ConfigError, load_config
from harness.cv import run_cv
from harness.data import load_train

ROOT = Path(__file__).resolve().parents[1]
BASE = ["method=tfidf", "data.format=table", "data.synthetic=dreaddit", "data.synthetic_groups=60", "cv.n_folds=3",
        "track.backend=none", "decide.n_trials=60"]


def _test_csv(path: Path, seed: int = 7, n: int | None = None) -> Path:
    rows = load_train(load_config(None, BASE + [f"data.synthetic_seed={seed}"]))[:n]
    lines = ["id,text"] + [f"x{e.id},\"{e.target.replace(chr(34), chr(39))}\"" for e in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(root: Path, name: str, *extra: str) -> Path:
    run_cv(load_config(None, BASE + [f"run_dir={root / name}", *extra]), verbose=False)
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    test = _test_csv(root / "test.csv")
    logreg = _run(root, "logreg", f"data.test_path={test}", "decide.enabled=true")
    svm = _run(root, "svm", "tfidf.classifier=svm", f"data.test_path={test}")
    words = _run(root, "words", "tfidf.char_ngrams=null", "loss.class_weights=none", f"data.test_path={test}")
    other = _run(root, "other_folds", "cv.seed=7")
    return root, logreg, svm, words, other, test


def test_compare_pairs_runs_row_by_row(runs, tmp_path, monkeypatch):
    from harness.compare import load_comparable, run_compare
    from harness.metrics import score
    from harness.track import offline_runs, read_offline_run

    root, logreg, svm, words, _, _ = runs
    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    # the first run's config decides tracking: turn W&B on for this comparison, on a copy (the module's runs
    # are shared by the other tests and stay as they were made)
    import shutil

    from harness.rundir import RunDir

    logreg = Path(shutil.copytree(logreg, tmp_path / "logreg"))
    cfg_path = RunDir(logreg).config_path
    cfg_path.write_text(cfg_path.read_text().replace("backend: none", "backend: wandb"))
    result = run_compare([logreg, svm, words], "previous", tmp_path / "cmp.html", n_boot=500)
    r = {x["run"]: x for x in result["runs"]}
    a, b, c = (r[n] for n in ("experiment (logreg)", "experiment (svm)", "experiment (words)"))
    assert "reference" not in a and b["reference"] == a["run"] and c["reference"] == b["run"]  # a ladder
    loaded = load_comparable([logreg, svm])
    y = loaded[0].oof.labels
    for m in ("macro_f1", "balanced_accuracy"):
        expect = score(y, loaded[1].pred, 2, m) - score(y, loaded[0].pred, 2, m)
        assert b[f"delta_{m}"] == pytest.approx(expect)
        lo, hi = b[f"delta_{m}_ci"]
        assert lo <= b[f"delta_{m}"] <= hi and lo < hi
    assert set(b["delta_per_class_f1"]) == {"not_stress", "stress"}
    page = (tmp_path / "cmp.html").read_text()
    assert "Paired differences" in page and "experiment (svm)" in page
    assert json.loads((tmp_path / "cmp.json").read_text())["runs"][1]["delta_macro_f1"] == pytest.approx(
        b["delta_macro_f1"])
    logged = [read_offline_run(p) for p in offline_runs(wdir)]
    (cmp,) = [x for x in logged if x["job_type"] == "compare"]
    assert {"compare/runs", "compare/per_class_f1_delta"} <= set(cmp["tables"])
    # against itself: exactly no difference, and an interval of zero width
    self_cmp = run_compare([svm, svm], "first", None, track=False, n_boot=200)["runs"][1]
    assert self_cmp["delta_macro_f1"] == 0 and tuple(self_cmp["delta_macro_f1_ci"]) == (0, 0)


def test_runs_with_different_folds_are_refused(runs):
    from harness.compare import run_compare
    from harness.ensemble import build_ensemble

    root, logreg, _, _, other, _ = runs
    with pytest.raises(ConfigError, match="fold assignment differs") as e:
        run_compare([logreg, other], track=False)
    assert str(other) in str(e.value)
    with pytest.raises(ConfigError, match="identical folds"):
        build_ensemble([logreg, other], root / "never", verbose=False)
    assert not (root / "never").exists()


def test_ensemble_blends_runs_with_a_crossfitted_gain_and_predicts(runs, tmp_path):
    root, logreg, svm, words, _, test = runs
    ens = tmp_path / "ens"
    assert cli.main(["ensemble", str(logreg), str(svm), str(words), "--out", str(ens), "decide.n_trials=80"]) == 0
    cal = json.loads((ens / "calibration.json").read_text())
    assert len(cal["weights"]) == 3 and sum(cal["weights"]) == pytest.approx(1, abs=1e-6)  # one weight per member
    lo, hi = cal["crossfit"]["pooled_gain_ci"]
    assert lo <= cal["crossfit"]["pooled_gain"] <= hi
    members = json.loads((ens / "ensemble.json").read_text())["members"]
    assert [Path(m["run_dir"]).name for m in members] == ["logreg", "svm", "words"]
    # submission from the members' stacked test probabilities
    assert cli.main(["predict", str(ens), "--out", str(tmp_path / "s.json")]) == 0
    items = json.loads((tmp_path / "s.json").read_text())
    assert len(items) == len(test.read_text().splitlines()) - 1
    from harness.decide import apply_to_test, load_decision
    from harness.store import load_npz

    stacked = np.concatenate([load_npz(d / "test.npz", "probs")["probs"] for d in (logreg, svm, words)], 0)
    assert [i["label"] for i in items] == apply_to_test(stacked, load_decision(ens)).tolist()
    # a new file: every member run's fold models score it
    new = _test_csv(tmp_path / "new.csv", seed=11, n=15)
    assert cli.main(["predict", str(ens), "--test", str(new), "--out", str(tmp_path / "s2.json")]) == 0
    assert len(json.loads((tmp_path / "s2.json").read_text())) == 15
    # the ensemble is a run directory like any other: compare and report read it
    from harness.compare import run_compare

    out = run_compare([logreg, ens], use="crossfit", track=False, n_boot=200)
    assert out["runs"][1]["method"] == "ensemble" and out["runs"][1]["scored_as"] == "crossfit"


def test_ensemble_settings_are_checked_before_anything_is_written(runs, tmp_path):
    from harness.ensemble import build_ensemble

    root, logreg, svm, _, _, _ = runs
    with pytest.raises(ConfigError, match="only decide"):
        build_ensemble([logreg, svm], tmp_path / "e1", ["lora.r=4"], verbose=False)
    with pytest.raises(ConfigError, match="decide.weights: 3 weights for 2 seeds"):
        build_ensemble([logreg, svm], tmp_path / "e2", ["decide.blend=fixed", "decide.weights=[0.2,0.3,0.5]"],
                       verbose=False)
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
