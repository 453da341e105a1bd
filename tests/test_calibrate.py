"""Temperature scaling fitted out of sample (harness.posthoc.calibrate), as `harness decide` records it and the report draws it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.posthoc.calibrate import calibration_report, crossfit_temperature, ece, fit_temperature, reliability, scale


def _overconfident(seed: int = 0, n: int = 3000, k: int = 5, temperature: float = 0.4):
    """Rows whose labels are drawn from known probabilities p, reported as p^(1/0.4) renormalised: calibrated by
    construction at T = 1/0.4 = 2.5."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random(n)[:, None]).argmax(1)
    return scale(p, temperature), p, y, rng.integers(0, 5, n)


def test_temperature_recovers_planted_overconfidence():
    reported, true, y, fold = _overconfident()
    assert fit_temperature(reported, y) == pytest.approx(2.5, rel=0.12)
    assert fit_temperature(true, y) == pytest.approx(1.0, rel=0.12)
    r = calibration_report(reported, y, fold)
    assert r["ece_before"] > 0.1 and r["ece_after_crossfit"] < r["ece_before"] / 3
    assert r["nll_after_crossfit"] < r["nll_before"]
    assert np.array_equal(scale(reported, r["temperature"]).argmax(1), reported.argmax(1))  # argmax never moves


def test_each_folds_temperature_is_fitted_without_its_rows():
    reported, _, y, fold = _overconfident(seed=1, n=1000)
    c = crossfit_temperature(reported, y, fold)
    other = y.copy()
    other[fold == 3] = (other[fold == 3] + 1) % 5  # other labels on fold 3 only
    d = crossfit_temperature(reported, other, fold)
    assert d.fold_temperatures[3] == c.fold_temperatures[3]
    np.testing.assert_array_equal(d.oof[fold == 3], c.oof[fold == 3])
    assert d.fold_temperatures[0] != c.fold_temperatures[0]


def test_reliability_bins_and_ece_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    y = np.array([0, 1, 0, 1])
    r = reliability(probs, y, n_bins=10)
    assert r["count"][9] == 2 and r["accuracy"][9] == 0.5 and r["confidence"][9] == pytest.approx(0.95)
    assert r["count"][5] == 2 and r["accuracy"][5] == 1.0 and r["confidence"][5] == pytest.approx(0.55)
    assert ece(probs, y, n_bins=10) == pytest.approx((2 * 0.45 + 2 * 0.45) / 4)


def test_decide_records_calibration_and_the_report_draws_it(tmp_path):
    from harness.config import load_config
    from harness.run.experiment import run_experiment
    from harness.track.report import write_report
    from harness.run.rundir import RunDir

    run = tmp_path / "run"
    run_experiment(load_config(None, ["method=tfidf", "data.format=table", "data.synthetic=dreaddit", "data.synthetic_groups=60",
                              "cv.n_folds=3", "track.backend=none", "decide.enabled=true", "decide.n_trials=60",
                              f"run_dir={run}"]), verbose=False)
    rd = RunDir(run)
    t = rd.read_calibration()["temperature"]
    oof = rd.read_oof()
    expect = calibration_report(oof.probs.mean(0), oof.labels, oof.fold)
    assert t["temperature"] == pytest.approx(expect["temperature"]) and t["ece_before"] == pytest.approx(
        expect["ece_before"])
    assert sum(t["reliability_after"]["count"]) == len(oof.labels)
    assert rd.read_metrics()["summary"]["calibration/ece_after_crossfit"] == pytest.approx(t["ece_after_crossfit"])
    page = write_report([run], tmp_path / "r.html").read_text()
    assert "alt='reliability diagram of" in page
