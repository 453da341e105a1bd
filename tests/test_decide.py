import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import PSY_TEST, needs
from harness.config import load_config
from harness.posthoc.decision import (Decision, DecisionInputError, Evaluator, batch_scores, decide_run, decode, decode_batch,
                            load_oof, make_space, random_search, search)
from harness.posthoc.predict import write_submission
from harness.core.metrics import score
from harness.run.rundir import OofArrays, RunDir, TestArrays
from harness.testing.oof import make_oof_probs
import harness.run.layout as run_files

SCORE = list(range(1, 9))


def make_run(tmp_path: Path, probs=None, y=None, fold=None, seeds=(42, 7), *extra: str, n_test: int = 30) -> tuple[Path, object]:
    if probs is None:
        probs, y, fold = make_oof_probs(n_rows=600, n_seeds=len(seeds), seed=1, majority_bias=2.0)
    run = tmp_path / "run"
    cfg = load_config(None, ["data.synthetic=psydefconv", f"train.seeds={list(seeds)}", "cv.n_folds=5",
                             "data.score_labels=[1,2,3,4,5,6,7,8]", "decide.n_trials=130", f"run_dir={run}", *extra])
    rd = RunDir(run)
    tp, _, _ = make_oof_probs(n_rows=n_test, n_seeds=len(seeds) * 5, seed=2)
    with rd.writing("test"):  # committed like a `harness cv` run (manifest included)
        rd.write_config(cfg)
        rd.write_oof(OofArrays(ids=np.array([f"r{i}" for i in range(len(y))]), labels=y, fold=fold,
                               seeds=np.array(seeds), probs=probs))
        rd.write_test(TestArrays(ids=np.array([f"t{i}" for i in range(n_test)]), seeds=np.array(seeds),
                                 probs=tp.reshape(len(seeds), 5, n_test, 9)))
    return run, cfg


@pytest.mark.parametrize("seed", range(4))
def test_batched_decode_equals_reference(seed):
    rng = np.random.default_rng(seed)
    probs, y, _ = make_oof_probs(n_rows=200, n_seeds=2, seed=seed)
    b = 16
    delta = rng.normal(size=(b, 9))
    tau = rng.uniform(0.3, 1.0, size=b)
    tau[::3] = np.nan  # gate off for some candidates
    w = rng.dirichlet([1, 1], size=b)
    p = np.einsum("bs,snk->bnk", w, probs)
    pred = decode_batch(np.log(p + 1e-12), p[..., 7], delta, tau, 7)
    for i in range(b):
        t = None if np.isnan(tau[i]) else tau[i]
        ref = decode(probs, Decision(delta[i], t, 7 if t is not None else None, w[i]))
        assert (pred[i] == ref).all()
        # and the plainest reading of the rule, row by row
        for r in range(0, 200, 37):
            if t is not None and p[i, r, 7] >= t:
                assert ref[r] == 7
            else:
                assert ref[r] == int(np.argmax(np.log(p[i, r] + 1e-12) + delta[i]))
    scores = batch_scores(y, pred, 9, "macro_f1_official", SCORE)
    assert scores[3] == pytest.approx(score(y, pred[3], 9, "macro_f1_official", SCORE))


def test_search_beats_argmax_and_random_baseline_is_reproducible(tmp_path):
    run, cfg = make_run(tmp_path)
    oof = load_oof(run, cfg)
    space = make_space(cfg.decide, oof)
    ev = Evaluator(oof.probs, oof.labels, space, "macro_f1_official", SCORE)
    decision, best, study = search(ev, cfg.decide, n_trials=400)
    assert best > ev.argmax_score() + 0.02
    assert best == pytest.approx(score(oof.labels, decode(oof.probs, decision), 9, "macro_f1_official", SCORE))
    assert random_search(ev, 2000, 0)[0] == random_search(ev, 2000, 0)[0]


def test_decide_run_resumes_study_and_cross_fits(tmp_path):
    run, cfg = make_run(tmp_path, None, None, None, (42, 7), "decide.n_trials=260", "decide.random_baseline=1000",
                        "decide.complexity=full")  # the searched rung: its study resumes
    first = decide_run(run, cfg, verbose=False)
    assert first["trials_total"] >= 260 and first["trials_added"] == first["trials_total"]
    again = decide_run(run, cfg, verbose=False)
    assert again["trials_total"] == first["trials_total"] + 260  # the same study, extended
    assert again["in_sample"]["after"] >= first["in_sample"]["after"]
    cal = json.loads((run / run_files.CALIBRATION).read_text())
    for key in ("delta", "tau", "weights", "sampler", "seed", "trials_total", "in_sample", "crossfit", "before", "after"):
        assert key in cal
    cf = cal["crossfit"]
    assert len(cf["per_fold_gain"]) == 5 and cf["pooled_gain_ci"][0] <= cf["pooled_gain"] <= cf["pooled_gain_ci"][1]
    assert cf["pooled_gain"] > 0  # this OOF really benefits from the bias
    assert cal["in_sample"]["gain"] >= cf["pooled_gain"] - 0.02  # in-sample is the optimistic one
    assert abs(sum(cal["weights"]) - 1) < 1e-6


def test_warns_when_cross_fitted_gain_is_not_positive(tmp_path):
    """On pure noise a decision pinned richer than argmax gains in sample and not out of it: the user is told.
    Where argmax is already perfect, the pinned rule gains nothing even in sample, so there is nothing that "does
    not carry over" to warn about; left to the ladder, argmax is locked and nothing is said either."""
    import warnings

    rng = np.random.default_rng(0)
    n = 100
    y = rng.integers(0, 9, n)
    fold = np.arange(n) % 5
    noise = rng.dirichlet(np.ones(9), size=n)[None].astype(np.float32)
    run, cfg = make_run(tmp_path / "noise", noise, y, fold, (42,), "decide.n_trials=130",
                        "decide.complexity=delta_gate")
    with pytest.warns(UserWarning, match="cross-fitted gain of the decision layer is not positive"):
        out = decide_run(run, cfg, verbose=False)
    assert out["crossfit"]["pooled_gain"] <= 0 < out["in_sample"]["gain"]
    probs = (0.2 * rng.dirichlet(np.ones(9), size=n) + 0.8 * np.eye(9)[y])[None].astype(np.float32)
    run, cfg = make_run(tmp_path / "perfect", probs, y, fold, (42,), "decide.n_trials=130",
                        "decide.complexity=delta_gate")
    for complexity in ("delta_gate", "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning at all
            out = decide_run(run, load_config(run / run_files.CONFIG, [f"decide.complexity={complexity}"]), verbose=False)
        assert out["in_sample"]["gain"] == 0
    assert out["complexity"]["chosen"] == "argmax"


@pytest.mark.parametrize("sampler", ["random", "qmc", "cmaes", "tpe"])
def test_every_sampler_searches_and_improves(tmp_path, sampler):
    """Each sampler really proposes its own candidates and finds a rule better than argmax (the first candidate);
    the batched ones record one study trial per batch, standing for every candidate it scored."""
    from dataclasses import replace

    from harness.posthoc.decision import batched_search

    run, cfg = make_run(tmp_path)
    oof = load_oof(run, cfg)
    ev = Evaluator(oof.probs, oof.labels, make_space(cfg.decide, oof), "macro_f1_official", SCORE)
    d = replace(cfg.decide, sampler=sampler)
    decision, best, study = search(ev, d, n_trials=400 if sampler == "cmaes" else 130)
    assert best > ev.argmax_score() + 0.005
    assert best == pytest.approx(score(oof.labels, decode(oof.probs, decision), 9, "macro_f1_official", SCORE))
    if sampler == "tpe":
        assert type(study.sampler).__name__ == "TPESampler" and len(study.trials) == 130
        return
    x, v = batched_search(ev, d, 130, seed=0)
    assert len(v) == 130 and len({round(float(a), 6) for a in x[:, 0]}) > 100  # candidates really differ
    assert v[0] == pytest.approx(ev.argmax_score())  # plain argmax is always a candidate
    assert sum(t.user_attrs["candidates"] for t in study.trials) == 400 if sampler == "cmaes" else 130


def test_cmaes_refines_beyond_its_warm_start(tmp_path):
    """The CMA-ES generations improve on the best of the Sobol warm start they begin from."""
    from dataclasses import replace

    from harness.posthoc.decision import batched_search

    run, cfg = make_run(tmp_path)
    oof = load_oof(run, cfg)
    ev = Evaluator(oof.probs, oof.labels, make_space(cfg.decide, oof), "macro_f1_official", SCORE)
    x, v = batched_search(ev, replace(cfg.decide, sampler="cmaes"), 1000, seed=0)
    warm = 1 + max(64, 999 // 4)
    assert v[warm:].max() > v[:warm].max()


def _bad(tmp_path, mutate, *extra, logits=False):
    probs, y, fold = make_oof_probs(n_rows=100, n_seeds=2, seed=3)
    probs, y, fold = mutate(probs.astype(np.float64), y, fold)
    run, cfg = make_run(tmp_path, probs, y, fold, (42, 7), *extra)
    return decide_run, run, cfg, logits


@pytest.mark.parametrize("mutate,needle", [
    (lambda p, y, f: (np.where(np.arange(9) == 0, np.nan, p), y, f), "NaN/inf"),
    (lambda p, y, f: (np.where(np.arange(9) == 0, np.inf, p), y, f), "NaN/inf"),
    (lambda p, y, f: (p * np.where(np.arange(9) == 1, -1, 1), y, f), "negative probabilities"),
    (lambda p, y, f: (p * 2, y, f), "do not sum to 1"),
    (lambda p, y, f: (p, y[:-3], f[:-3]), "100 probability rows but 97 labels"),
    (lambda p, y, f: (p, y, np.where(f == 4, 3, f)), "no rows for folds [4]"),
    (lambda p, y, f: (p[:1], y, f), "seeds listed but 1 OOF sets"),
])
def test_bad_inputs_get_clear_errors(tmp_path, mutate, needle):
    probs, y, fold = make_oof_probs(n_rows=100, n_seeds=2, seed=3)
    p2, y2, f2 = mutate(probs.astype(np.float64), y, fold)
    seeds = (42, 7)
    run, cfg = make_run(tmp_path, p2, y2, f2, seeds)
    if p2.shape[0] == 1:  # the file says two seeds but holds one OOF set
        RunDir(run).write_oof(OofArrays(ids=np.arange(len(y2)), labels=y2, fold=f2, seeds=np.array(seeds), probs=p2))
    with pytest.raises(DecisionInputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        decide_run(run, cfg, verbose=False)


def test_logits_accepted_with_the_flag(tmp_path):
    probs, y, fold = make_oof_probs(n_rows=100, n_seeds=2, seed=3)
    run, cfg = make_run(tmp_path, np.log(probs) + 3.0, y, fold, (42, 7), "decide.n_trials=130", "decide.crossfit=false")
    with pytest.raises(DecisionInputError, match="logits=True"):
        decide_run(run, cfg, verbose=False)
    out = decide_run(run, cfg, verbose=False, logits=True)  # softmax of the logits: the same argmax as probs
    assert out["in_sample"]["before"] == pytest.approx(
        score(y, probs.mean(0).argmax(-1), 9, "macro_f1_official", SCORE))


def test_missing_seed_gate_outside_labels_and_empty_space(tmp_path):
    run, cfg = make_run(tmp_path, None, None, None, (42, 7), "train.seeds=[42,7,9]")
    with pytest.raises(DecisionInputError, match=r"seeds \[9\] of the config have no OOF set"):
        decide_run(run, cfg, verbose=False)
    run, cfg = make_run(tmp_path, None, None, None, (42, 7))
    cfg.decide.gate = "11"
    with pytest.raises(DecisionInputError, match="gate: class 11 is outside"):
        decide_run(run, cfg, verbose=False)
    probs, y, fold = make_oof_probs(n_rows=100, n_seeds=1, seed=3)
    run, cfg = make_run(tmp_path, probs, y, fold, (42,), "decide.delta_range=[0,0]", "decide.gate=off")
    with pytest.raises(DecisionInputError, match="empty search space"):
        decide_run(run, cfg, verbose=False)


def test_predict_writes_submission_with_locked_decision(tmp_path):
    run, cfg = make_run(tmp_path, None, None, None, (42, 7), "decide.n_trials=130", "decide.crossfit=false")
    out = tmp_path / "sub.json"
    write_submission(run, cfg, out, verbose=False)
    plain = json.loads(out.read_text())
    decide_run(run, cfg, verbose=False)
    write_submission(run, cfg, out, verbose=False)
    decided = json.loads(out.read_text())
    assert [r["id"] for r in decided] == [f"t{i}" for i in range(30)]
    assert all(0 <= r["label"] <= 8 for r in decided)
    z = np.load(run / run_files.TEST)
    cal = Decision.from_json(json.loads((run / run_files.CALIBRATION).read_text()))
    assert [r["label"] for r in decided] == decode(z["probs"].mean(1), cal).tolist()
    assert [r["label"] for r in plain] == z["probs"].mean(1).mean(0).argmax(-1).tolist()


@pytest.mark.parametrize("blend_mode", ["search", "equal"])
def test_fused_kernel_equals_numpy_path(blend_mode, monkeypatch):
    import harness.posthoc.decision.space as D
    from harness.config import DecideConfig
    from harness.posthoc.decision import OOF, random_candidates

    if not D.HAVE_NUMBA:
        pytest.skip("numba not installed: only the numpy path exists")
    probs, y, fold = make_oof_probs(n_rows=500, n_seeds=2, seed=11)
    space = make_space(DecideConfig(gate="7", blend=blend_mode), OOF(np.arange(500), y, fold, [0, 1], probs))
    delta, tau, w = random_candidates(space, 300, np.random.default_rng(0))
    tau[::4] = np.nan
    for metric in ("macro_f1_official", "macro_f1", "balanced_accuracy", "weighted_f1", "accuracy"):
        ev = Evaluator(probs, y, space, metric, SCORE)
        fused = ev.score(delta, tau, w)
        monkeypatch.setattr(D, "HAVE_NUMBA", False)
        plain = ev.score(delta, tau, w)
        monkeypatch.setattr(D, "HAVE_NUMBA", True)
        if blend_mode == "equal":
            np.testing.assert_allclose(fused, plain, rtol=0, atol=1e-12)
        else:  # the kernel compares p*exp(delta) instead of log(p)+delta: only float near-ties may differ
            assert np.mean(fused != plain) <= 0.01 and np.abs(fused - plain).max() < 1e-3


def test_candidate_vectors_decode_like_their_params(tmp_path):
    from harness.posthoc.decision.searches import _arrays, _box, _params

    run, cfg = make_run(tmp_path)
    oof = load_oof(run, cfg)
    from harness.posthoc.decision import candidates_from_params

    space = make_space(cfg.decide, oof)
    box = _box(space)
    x = box[:, 0] + np.random.default_rng(0).uniform(size=(50, len(box))) * (box[:, 1] - box[:, 0])
    for a, b in zip(_arrays(space, x), candidates_from_params(space, _params(space, x))):
        np.testing.assert_allclose(a, b)


def _ladder_oof(seed: int, planted: bool, n: int = 400, k: int = 5):
    from harness.posthoc.decision import OOF

    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[.5, .2, .15, .1, .05])
    if planted:  # informative scores, with the majority class over-predicted by a fixed logit shift
        logit = rng.normal(size=(n, k))
        logit[np.arange(n), y] += 2.0
        logit[:, 0] += 2.5
        p = np.exp(logit) / np.exp(logit).sum(1, keepdims=True)
    else:  # pure noise: the scores know nothing of the labels
        p = rng.dirichlet(np.ones(k), size=n)
    return OOF(np.arange(n).astype(str), y, np.arange(n) % 5, [0], p[None].astype(np.float32))


@pytest.mark.parametrize("seed", range(4))
def test_the_ladder_picks_argmax_on_noise_and_a_bias_on_a_planted_prior_shift(seed):
    from harness.config import DecideConfig
    from harness.posthoc.decision import choose_rung

    d = DecideConfig(metric="macro_f1")
    noise = _ladder_oof(seed, planted=False)
    rung, scores = choose_rung(noise.probs, noise.labels, noise.fold, make_space(d, noise), d, None)
    assert rung.name == "argmax", scores
    shifted = _ladder_oof(seed, planted=True)
    rung, scores = choose_rung(shifted.probs, shifted.labels, shifted.fold, make_space(d, shifted), d, None)
    assert rung.name in ("prior", "delta"), scores
    assert scores[rung.label()] > scores["argmax"] + 0.05


def test_a_pinned_rung_is_the_one_locked(tmp_path):
    run, cfg = make_run(tmp_path, None, None, None, (42, 7), "decide.complexity=delta", "decide.n_trials=200")
    out = decide_run(run, cfg, verbose=False)
    assert out["complexity"]["chosen"] == "delta" and not out["gate_on"]
    assert out["weights"] == [0.5, 0.5] and set(out["crossfit"]["rung_per_fold"]) <= {"delta", "delta (shrinkage 0.02)"}


def test_the_rung_margin_trades_parsimony_for_fit():
    """decide.rung_margin 0 locks the rung with the best cross-fitted score; a margin no gain can clear locks argmax."""
    from harness.config import DecideConfig
    from harness.posthoc.decision import choose_rung

    shifted = _ladder_oof(0, planted=True)
    picked = {}
    for margin in (0.0, 1e6):
        d = DecideConfig(metric="macro_f1", rung_margin=margin)
        picked[margin] = choose_rung(shifted.probs, shifted.labels, shifted.fold, make_space(d, shifted), d, None)
    rung, scores = picked[0.0]
    assert scores[rung.label()] == max(scores.values()) and rung.name != "argmax", scores
    assert picked[1e6][0].name == "argmax"
    assert DecideConfig(rung_margin=-1).check() == ["decide.rung_margin: must be >= 0"]


def test_a_noisy_rung_worse_than_a_simpler_one_is_never_picked():
    """Seen on a stacked ensemble: argmax trails the best rung on every fold (a small SE), a richer rung trails it
    by more but so noisily that it was 'within two SEs'. The simpler, better argmax must win over it."""
    from harness.posthoc.decision import pick_rung, rung_named

    rungs = [rung_named("argmax"), rung_named("delta"), rung_named("delta_gate")]
    per_fold = {"argmax": np.array([0.70, 0.69, 0.70, 0.69, 0.71]),
                "delta": np.array([0.60, 0.78, 0.62, 0.75, 0.66]),
                "delta_gate": np.array([0.71, 0.70, 0.71, 0.70, 0.73])}
    pooled = {k: float(v.mean()) for k, v in per_fold.items()}
    assert pooled["delta"] < pooled["argmax"] < pooled["delta_gate"]
    assert pick_rung(rungs, pooled, per_fold, 2.0).name == "delta_gate"  # argmax is significantly worse
    assert pick_rung(rungs, pooled, per_fold, 100.0).name == "argmax"
    noisy_best = dict(per_fold, delta_gate=np.array([0.60, 0.80, 0.62, 0.80, 0.74]))
    assert pick_rung(rungs, {k: float(v.mean()) for k, v in noisy_best.items()}, noisy_best, 2.0).name == "argmax"


@pytest.mark.parametrize("seed", range(3))
def test_the_blend_rung_leans_on_the_member_that_knows(seed):
    """An ensemble of an informative member and a pure-noise one: equal weights (argmax) halve the signal, so the
    ladder locks the blend rung, its weights on the simplex grid, most of them on the informative member."""
    from harness.config import DecideConfig
    from harness.posthoc.decision import OOF, choose_rung, simplex_grid

    rng = np.random.default_rng(seed)
    n, k = 400, 3
    y = rng.integers(0, k, size=n)
    logit = rng.normal(size=(n, k))
    logit[np.arange(n), y] += 1.5
    good = np.exp(logit) / np.exp(logit).sum(1, keepdims=True)
    noise = rng.dirichlet(np.ones(k) * 0.3, size=n)  # confident and wrong as often as right
    oof = OOF(np.arange(n).astype(str), y, np.arange(n) % 5, [0, 1], np.stack([good, noise]).astype(np.float32))
    d = DecideConfig(metric="macro_f1", delta_range=[0.0, 0.0], gate="off")  # weights are all there is to decide
    space = make_space(d, oof)
    rung, scores = choose_rung(oof.probs, oof.labels, oof.fold, space, d, None)
    assert rung.name == "blend" and scores["blend"] > scores["argmax"], scores
    weights = rung.fit(oof.probs, oof.labels, space, d, 0, None, 0).weights
    assert weights[0] >= 0.75 and any(np.allclose(weights, g) for g in simplex_grid(2, 4)), weights
