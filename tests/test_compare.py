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
from harness.run.experiment import run_experiment
from harness.data.load import load_train
from harness.run.rundir import RunDir
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
BASE = ["method=tfidf", "data.format=table", "data.synthetic=dreaddit", "data.synthetic_groups=60", "cv.n_folds=3",
        "track.backend=none", "decide.n_trials=60"]


def _test_csv(path: Path, seed: int = 7, n: int | None = None) -> Path:
    rows = load_train(load_config(None, BASE + [f"data.synthetic_seed={seed}"]))[:n]
    lines = ["id,text"] + [f"x{e.id},\"{e.target.replace(chr(34), chr(39))}\"" for e in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(root: Path, name: str, *extra: str) -> Path:
    run_experiment(load_config(None, BASE + [f"run_dir={root / name}", *extra]), verbose=False)
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
    from harness.posthoc.compare import load_comparable, run_compare
    from harness.core.metrics import score
    from harness.track import offline_runs, read_offline_run

    root, logreg, svm, words, _, _ = runs
    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    # the first run's config decides tracking: turn W&B on for this comparison, on a copy (the module's runs
    # are shared by the other tests and stay as they were made)
    import shutil

    from harness.run.rundir import RunDir

    logreg = Path(shutil.copytree(logreg, tmp_path / "logreg"))
    from harness.config import apply_overrides

    rd = RunDir(logreg)  # a committed change of a resume-safe setting (a hand edit would fail its digest)
    rd.write_config(apply_overrides(rd.read_config(), {"track.backend": "wandb"}))
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
    from harness.posthoc.compare import run_compare
    from harness.posthoc.ensemble import build_ensemble

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
    cal = json.loads((ens / run_files.CALIBRATION).read_text())
    assert len(cal["weights"]) == 3 and sum(cal["weights"]) == pytest.approx(1, abs=1e-6)  # one weight per member
    lo, hi = cal["crossfit"]["pooled_gain_ci"]
    assert lo <= cal["crossfit"]["pooled_gain"] <= hi
    members = json.loads((ens / run_files.ENSEMBLE).read_text())["members"]
    assert [Path(m["run_dir"]).name for m in members] == ["logreg", "svm", "words"]
    # submission from the members' stacked test probabilities
    assert cli.main(["predict", str(ens), "--out", str(tmp_path / "s.json")]) == 0
    items = json.loads((tmp_path / "s.json").read_text())
    assert len(items) == len(test.read_text().splitlines()) - 1
    from harness.posthoc.decision import apply_to_test, load_decision
    from harness.core.store import load_npz

    from harness.posthoc.calibrate import scale

    stacked = np.concatenate([load_npz(d / run_files.TEST, "probs")["probs"] for d in (logreg, svm, words)], 0)
    temps = load_npz(ens / run_files.COMBINER, "temperatures")["temperatures"]  # members blend calibrated
    assert len(temps) == 3 and (temps > 0).all() and not np.allclose(temps, 1)
    scaled = np.stack([scale(p, t) for p, t in zip(stacked, temps)])
    assert [i["label"] for i in items] == apply_to_test(scaled, load_decision(ens)).tolist()
    # a new file: every member run's fold models score it
    new = _test_csv(tmp_path / "new.csv", seed=11, n=15)
    assert cli.main(["predict", str(ens), "--test", str(new), "--out", str(tmp_path / "s2.json")]) == 0
    assert len(json.loads((tmp_path / "s2.json").read_text())) == 15
    # the ensemble is a run directory like any other: compare and report read it
    from harness.posthoc.compare import run_compare

    out = run_compare([logreg, ens], use="crossfit", track=False, n_boot=200)
    locked = RunDir(ens).read_calibration()["complexity"]["chosen"]  # argmax in force: scored as argmax
    assert out["runs"][1]["method"] == "ensemble"
    assert out["runs"][1]["scored_as"] == ("argmax" if locked == "argmax" else "crossfit")


def test_ensemble_settings_are_checked_before_anything_is_written(runs, tmp_path):
    from harness.posthoc.ensemble import build_ensemble

    root, logreg, svm, _, _, _ = runs
    with pytest.raises(ConfigError, match="only decide"):
        build_ensemble([logreg, svm], tmp_path / "e1", ["lora.r=4"], verbose=False)
    with pytest.raises(ConfigError, match="decide.weights: 3 weights for 2 seeds"):
        build_ensemble([logreg, svm], tmp_path / "e2", ["decide.blend=fixed", "decide.weights=[0.2,0.3,0.5]"],
                       verbose=False)
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()


def _planted_members(seed: int = 0, n: int = 600, k: int = 4):
    """Two members that each know half the classes (A tells 0 from 1, B tells 2 from 3) and are unsure elsewhere:
    no weighting of the two beats knowing whom to trust for which class, which a stacker learns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    fold = rng.integers(0, 5, n)
    a, b = np.full((n, k), 1.0), np.full((n, k), 1.0)
    low, high = y < 2, y >= 2
    a[low, y[low]] += rng.gamma(4.0, 1.0, low.sum())
    a[low, 1 - y[low]] += rng.gamma(1.0, 1.0, low.sum())
    a[:, 2:] += rng.gamma(2.0, 1.0, (n, 2))  # A: sure of the upper pair as a whole, no better than chance inside it
    b[high, y[high]] += rng.gamma(4.0, 1.0, high.sum())
    b[high, 5 - y[high]] += rng.gamma(1.0, 1.0, high.sum())
    b[:, :2] += rng.gamma(2.0, 1.0, (n, 2))
    probs = np.stack([a / a.sum(1, keepdims=True), b / b.sum(1, keepdims=True)])
    return probs, y, fold


def test_stacking_oof_never_uses_a_rows_own_fold():
    from harness.posthoc.ensemble import crossfit_stack

    cfg = load_config(None, BASE)
    probs, y, fold = _planted_members()
    stacked, chosen = crossfit_stack(probs, y, fold, cfg)  # C chosen per fold, nested: inside the other folds too
    assert stacked.shape == probs.shape[1:] and np.allclose(stacked.sum(1), 1, atol=1e-5) and len(chosen) == 5
    changed = y.copy()
    held = fold == 2
    changed[held] = (changed[held] + 1) % 4  # other gold labels on fold 2 only
    again, _ = crossfit_stack(probs, changed, fold, cfg)
    np.testing.assert_array_equal(again[held], stacked[held])  # fold 2's rows never saw fold 2's labels
    assert not np.allclose(again[~held], stacked[~held])  # ... while every other fold's stacker did


def test_stacking_learns_which_member_to_trust_where():
    from harness.posthoc.decision import blend
    from harness.posthoc.ensemble import crossfit_stack
    from harness.core.metrics import score

    cfg = load_config(None, BASE)
    probs, y, fold = _planted_members(seed=1)
    stacked, _ = crossfit_stack(probs, y, fold, cfg)
    members = [score(y, p.argmax(1), 4, "macro_f1") for p in probs]
    best_blend = max(score(y, blend(probs, np.array([w, 1 - w])).argmax(1), 4, "macro_f1")
                     for w in np.linspace(0, 1, 21))  # every weight, chosen in-sample: generous to the blend
    stack = score(y, stacked.argmax(1), 4, "macro_f1")
    assert stack > best_blend + 0.05 and stack > max(members) + 0.1, (stack, best_blend, members)


def test_stacked_ensemble_round_trips_through_predict(runs, tmp_path):
    from harness.posthoc.decision import apply_to_test, load_decision
    from harness.posthoc.ensemble import Stacker
    from harness.run.rundir import RunDir
    from harness.core.store import load_npz

    root, logreg, svm, words, _, test = runs
    ens = tmp_path / "stack"
    assert cli.main(["ensemble", str(logreg), str(svm), str(words), "--out", str(ens), "--stack",
                     "decide.n_trials=80"]) == 0
    run = RunDir(ens)
    assert run.read_combine() == "stack" and len(run.read_members()) == 3
    cal = json.loads((ens / run_files.CALIBRATION).read_text())
    assert len(cal["weights"]) == 1 and len(cal["stacked"]) == 3  # one OOF set: the stacker's
    assert "complexity" in cal and "crossfit" in cal
    # the saved stacker is the one fitted on every OOF row; applied per fold to the members' test probabilities
    member_test = np.concatenate([load_npz(d / run_files.TEST, "probs")["probs"] for d in (logreg, svm, words)], 0)
    member_oof = np.concatenate([run_oof(d) for d in (logreg, svm, words)], 0)
    saved = Stacker.from_arrays(run.read_combiner())
    refit = Stacker.fit(member_oof, run.read_oof().labels, run.read_config(), float(run.read_combiner()["stack_c"]))
    np.testing.assert_allclose(saved.predict_proba(member_oof), refit.predict_proba(member_oof), atol=1e-6)
    expect = np.stack([saved.predict_proba(member_test[:, f]) for f in range(member_test.shape[1])])[None]
    np.testing.assert_allclose(run.read_test().probs, expect, atol=1e-6)
    assert cli.main(["predict", str(ens), "--out", str(tmp_path / "s.json")]) == 0
    labels = [i["label"] for i in json.loads((tmp_path / "s.json").read_text())]
    assert labels == apply_to_test(expect, load_decision(ens)).tolist()
    # the members' own test file given as a new file goes through the members' fold models and the same stacker
    assert cli.main(["predict", str(ens), "--test", str(test), "--out", str(tmp_path / "s2.json")]) == 0
    assert [i["label"] for i in json.loads((tmp_path / "s2.json").read_text())] == labels
    # a stacked directory is not silently reused as a blend, nor the other way round
    with pytest.raises(ConfigError, match="choose a new --out"):
        from harness.posthoc.ensemble import build_ensemble

        build_ensemble([logreg, svm, words], ens, verbose=False)


def run_oof(run_dir: Path) -> np.ndarray:
    from harness.posthoc.compare import load_comparable

    return load_comparable([run_dir])[0].oof.probs
