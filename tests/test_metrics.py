import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from harness.core.metrics import bootstrap_ci, paired_bootstrap, report, score


@pytest.mark.parametrize("seed", range(6))
def test_against_sklearn_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(20, 400), 9
    p = rng.dirichlet(np.ones(k) * 0.3)
    y = rng.choice(k, size=n, p=p)
    yhat = np.where(rng.random(n) < 0.5, y, rng.choice(k, size=n))
    names = [f"c{i}" for i in range(k)]
    rep = report(y, yhat, names, score_labels=list(range(1, 9)), n_boot=0)
    labels = list(range(k))
    assert rep["macro_f1"] == pytest.approx(f1_score(y, yhat, average="macro", labels=labels, zero_division=0))
    assert rep["macro_f1_official"] == pytest.approx(
        f1_score(y, yhat, average="macro", labels=list(range(1, 9)), zero_division=0))
    assert rep["weighted_f1"] == pytest.approx(f1_score(y, yhat, average="weighted", labels=labels, zero_division=0))
    assert rep["accuracy"] == pytest.approx(np.mean(y == yhat))
    assert rep["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, yhat))
    pr, rc, f1, sup = precision_recall_fscore_support(y, yhat, labels=labels, zero_division=0)
    for i, row in enumerate(rep["per_class"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((pr[i], rc[i], f1[i], sup[i]))
    assert rep["confusion"] == confusion_matrix(y, yhat, labels=labels).tolist()
    norm = np.array(rep["confusion_normalized"])
    assert np.allclose(norm.sum(1)[sup > 0], 1, atol=1e-3)


def test_bootstrap_ci_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    yhat = np.where(rng.random(500) < 0.7, y, rng.integers(0, 3, 500))
    lo, hi = bootstrap_ci(y, yhat, 3, "macro_f1", n_boot=500)
    est = score(y, yhat, 3, "macro_f1")
    assert lo < est < hi and hi - lo < 0.15


def test_paired_bootstrap_detects_a_better_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 800)
    weak = np.where(rng.random(800) < 0.5, y, rng.integers(0, 4, 800))
    strong = np.where(rng.random(800) < 0.8, y, rng.integers(0, 4, 800))
    out = paired_bootstrap(y, weak, strong, 4)
    assert out["delta"] > 0.1 and out["ci_low"] > 0 and out["p_b_not_better"] < 0.01
    same = paired_bootstrap(y, weak, weak, 4)
    assert same["delta"] == 0 and same["p_b_not_better"] == 1.0
