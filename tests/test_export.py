"""`harness export` and `harness.load`: a run's model in Hugging Face's format, its decision and model card.

Every method family is exported from real (tiny) runs; the export's predictions are compared with
`harness predict` on the run directory, the folded decision with the decision layer, and the HF folders are
loaded with transformers / PEFT / sentence-transformers alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.config import load_config
from harness.core.store import StoreError
from harness.data.load import read_file
from harness.data.synthetic import make_psydefconv, write_psydefconv
from harness.export import files as export_files
from harness.methods.registry import specs
from harness.run.experiment import run_experiment
from harness.run.rundir import RunDir

SECRET = "s3cr3t-pw"
SMALL = ["data.synthetic=psydefconv", "data.synthetic_groups=20", "cv.n_folds=2", "track.backend=none",
         "train.seeds=[1]", "train.save_adapters=true", "decide.enabled=true", "decide.n_trials=40",
         f"tune.storage=postgresql://harness:{SECRET}@db.example:5432/studies"]
FAST = {name: list(spec.test_settings) for name, spec in specs().items()}
MINILM = ["model.name_or_path=minilm", "lora.enabled=false", "prompt.layout=pair", "prompt.guide=none",
          "prompt.max_length=64", "prompt.context_turns=1", "train.epochs=2", "train.batch_size=16",
          "train.learning_rate=1e-4", "train.inner_val_fraction=0.25", "decide.complexity=prior"]


def harness(*args: str) -> None:
    """The CLI in-process: what a user types, without a new interpreter."""
    assert cli.main(list(args)) == 0


def train(root: Path, name: str, method: str, *extra: str) -> Path:
    run = root / name
    run_experiment(load_config(None, SMALL + FAST[method] + [f"method={method}", f"run_dir={run}", *extra]),
                   verbose=False)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished runs of every family (one seed, two folds, a decision), a stacked ensemble, and a new file."""
    root = tmp_path_factory.mktemp("export")
    new = root / "new.json"
    write_psydefconv(new, make_psydefconv(n_groups=5, seed=13), with_labels=False)
    out = {"root": root, "new": new}
    for method in ("tfidf", "embed", "setfit", "sft"):
        out[method] = train(root, method, method)
    out["minilm"] = train(root, "minilm", "seqcls", *MINILM)
    out["stack"] = root / "stack"
    harness("ensemble", str(out["tfidf"]), str(out["embed"]), "--stack", "--out", str(out["stack"]),
            "decide.n_trials=40")
    return out


def predicted(run_or_export: Path, new: Path, out: Path) -> list[int]:
    harness("predict", str(run_or_export), "--test", str(new), "--out", str(out))
    return [r["label"] for r in json.loads(out.read_text())]


@pytest.mark.parametrize("name", ["tfidf", "embed", "setfit", "sft", "stack"])
def test_an_exported_fold_ensemble_predicts_what_harness_predict_does(runs, name, tmp_path):
    import harness as package
    from harness.posthoc.ensemble import combine_test
    from harness.posthoc.predict import member_test_probs, score_file

    run, new = runs[name], runs["new"]
    harness("export", str(run), "--out", str(tmp_path / "exp"), "--quiet")
    model = package.load(tmp_path / "exp")
    rows = read_file(new, model.cfg.data, require_label=False)
    r = RunDir(run)
    want = (combine_test(r, member_test_probs(run, rows, False)) if r.is_ensemble()
            else score_file(run, r.read_config(), rows, verbose=False))
    np.testing.assert_allclose(model.set_probs(rows), want, atol=1e-5)
    assert predicted(tmp_path / "exp", new, tmp_path / "a.json") == predicted(run, new, tmp_path / "b.json")
    assert model.predict_proba(rows).shape == (len(rows), len(model.label_names))
    meta = json.loads((tmp_path / "exp" / export_files.EXPORT).read_text())
    assert meta["source"] == "folds" and not meta["folded"]


def test_a_setfit_body_and_an_sft_adapter_load_without_the_harness(runs, tmp_path):
    from peft import AutoPeftModelForCausalLM
    from sentence_transformers import SentenceTransformer

    harness("export", str(runs["setfit"]), "--out", str(tmp_path / "setfit"), "--quiet")
    body = SentenceTransformer(str(tmp_path / "setfit" / export_files.fold_folder(1, 0) / "body"), device="cpu")
    assert body.encode(["a sentence"]).shape[0] == 1
    harness("export", str(runs["sft"]), "--out", str(tmp_path / "sft"), "--quiet")
    fold = tmp_path / "sft" / export_files.fold_folder(1, 1)
    scoring = json.loads((fold / "label_scoring.json").read_text())
    from harness.methods.base import make_method

    method = make_method(RunDir(runs["sft"]).read_config())
    assert scoring["verbalizers"] == method.lm.prompts.verbalizers and "I guess it doesn't matter" in \
        scoring["example_prompt"]
    lm = AutoPeftModelForCausalLM.from_pretrained(str(fold / "adapter"))
    assert lm.peft_config["default"].r == 4


def test_a_refit_minilm_with_the_folded_decision_is_a_plain_pipeline(runs, tmp_path):
    """The refit trains the median steps its folds kept on every row; δ and T are folded into the head's bias and
    weights, so `pipeline` gives the decided labels, and harness.load gives the unfolded probabilities back."""
    import harness as package
    from transformers import pipeline

    from harness.methods.base import make_method
    from harness.posthoc.decision import apply_to_test, load_decision

    run = RunDir(runs["minilm"])
    cal = run.read_calibration()
    assert cal["tau"] is None and np.ptp(cal["delta"]) > 0  # a decision that moves labels, and no gate
    harness("export", str(run.path), "--out", str(tmp_path / "exp"), "--from", "refit", "--quiet")
    metrics, refit_model = run.read_refit(1)
    steps = [run.read_fold(1, k).metrics["chosen_step"] for k in range(2)]
    assert metrics["steps"] == int(np.median(steps)) and metrics["train_rows"] == len(run.read_oof().ids)
    model = package.load(tmp_path / "exp")
    assert model.meta["folded"]
    rows = read_file(runs["new"], model.cfg.data, require_label=False)
    raw = make_method(run.read_config()).load(refit_model).predict_proba(rows)
    np.testing.assert_allclose(model.predict_proba(rows), raw, atol=1e-4)
    decided = apply_to_test(raw[None, None], load_decision(run.path, 9, 1))
    assert (model.predict(rows) == decided).all()
    pipe = pipeline("text-classification", model=str(tmp_path / "exp"), device="cpu")
    built = [model.sets["."].method.builder.build(e) for e in rows]  # the pair layout: target, then context
    inputs = [{"text": b.text, "text_pair": b.text_pair} if b.text_pair else b.text for b in built]
    labels = [int(pipe.model.config.label2id[o["label"]]) for o in pipe(inputs)]
    assert labels == decided.tolist()
    assert (decided != raw.argmax(1)).any()  # the decision moves labels here: the folded head is what agrees
    # the next export reuses the committed refit
    harness("export", str(run.path), "--out", str(tmp_path / "again"), "--from", "refit", "--quiet")
    assert run.read_refit(1)[0]["seconds"] == metrics["seconds"]


@pytest.fixture(scope="module")
def qlora(tmp_path_factory):
    """tiny-qwen3 in 4-bit with LoRA: a seqcls run."""
    root = tmp_path_factory.mktemp("qlora")
    return train(root, "run", "seqcls", "quant.load_in_4bit=true", "train.max_steps=2", "train.epochs=1")


def test_a_qlora_fold_loads_with_peft_and_merged_with_a_pipeline(qlora, tmp_path):
    import harness as package
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoConfig, BitsAndBytesConfig, pipeline

    harness("export", str(qlora), "--out", str(tmp_path / "fold"), "--fold", "0", "--quiet")
    model = package.load(tmp_path / "fold")
    rows = make_psydefconv(n_groups=3, seed=5)[:6]
    texts = [model.sets["."].method.builder.build(e).text for e in rows]
    c = AutoConfig.from_pretrained(tmp_path / "fold")
    assert c.id2label[3] == model.label_names[3] and c.pad_token_id is not None
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    peft_model = AutoPeftModelForSequenceClassification.from_pretrained(
        str(tmp_path / "fold"), num_labels=c.num_labels, id2label=c.id2label, label2id=c.label2id,
        pad_token_id=c.pad_token_id, quantization_config=q)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "fold")
    with torch.no_grad():
        logits = torch.cat([peft_model(**tok(t, return_tensors="pt")).logits for t in texts]).float()
    probs = torch.softmax(logits, -1).numpy()
    np.testing.assert_allclose(probs, model.set_probs(rows)[0, 0], atol=2e-2)
    harness("export", str(qlora), "--out", str(tmp_path / "merged"), "--fold", "0", "--merge", "--quiet")
    merged = package.load(tmp_path / "merged")
    assert merged.meta["merged"] and not (tmp_path / "merged" / "adapter_config.json").exists()
    pipe = pipeline("text-classification", model=str(tmp_path / "merged"), device="cpu", top_k=None)
    scores = pipe(texts)
    got = np.array([[next(s["score"] for s in row if s["label"] == n) for n in merged.label_names] for row in scores])
    np.testing.assert_allclose(got, merged.set_probs(rows)[0, 0], atol=1e-4)


def test_the_model_card_parses_states_the_runs_figures_and_holds_no_secret(runs, tmp_path):
    from huggingface_hub import ModelCard

    harness("export", str(runs["minilm"]), "--out", str(tmp_path / "exp"), "--quiet")
    card = ModelCard.load(tmp_path / "exp" / export_files.CARD)
    run = RunDir(runs["minilm"])
    metrics = run.read_metrics()
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    results = {m["name"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert results["macro-F1 (OOF)"] == round(metrics["summary"]["cv/macro_f1"], 4)
    assert results["official macro-F1 after the decision (cross-fitted)"] == round(
        metrics["summary"]["decide/macro_f1_official_crossfit"], 4)
    for c in metrics["blend"]["per_class"]:
        assert f"| {c['name']} | {c['f1']:.3f} |" in card.text
    cf = run.read_calibration()["crossfit"]
    assert f"{cf['pooled_gain']:+.4f}" in card.text
    assert run.read_fingerprint()["train"]["sha256"] in card.text
    assert "not a diagnostic tool" in card.text
    for path in (tmp_path / "exp").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_export_refuses_bad_input_and_loses_nothing(runs, tmp_path):
    run = runs["tfidf"]
    harness("export", str(run), "--out", str(tmp_path / "exp"), "--quiet")
    before = export_files.digests(tmp_path / "exp")
    code = cli.main(["export", str(run), "--out", str(tmp_path / "exp")])
    assert code != 0 and export_files.digests(tmp_path / "exp") == before  # an --out that exists is never touched
    # an unfinished run; a run that kept no fold models
    unfinished = train(tmp_path, "unfinished", "tfidf", "cv.folds=[0]")
    assert not RunDir(unfinished).is_finished()
    from harness.export.writer import export_run

    with pytest.raises(Exception, match="unfinished"):
        export_run(unfinished, tmp_path / "x", verbose=False)
    no_models = train(tmp_path, "no_models", "tfidf", "train.save_adapters=false")
    with pytest.raises(Exception, match="fold model"):
        export_run(no_models, tmp_path / "y", verbose=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert not list(tmp_path.glob(".x.partial-*")) and not list(tmp_path.glob(".y.partial-*"))


def test_an_export_of_a_run_whose_files_fail_their_digests_is_refused(runs, tmp_path):
    import shutil

    from harness.export.writer import export_run

    copy = tmp_path / "run"
    shutil.copytree(runs["tfidf"], copy)
    model = RunDir(copy).model_dir(1, 1)
    victim = next(p for p in sorted(model.rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.raises(StoreError, match=str(model.name)):
        export_run(copy, tmp_path / "exp", verbose=False)
    assert not (tmp_path / "exp").exists()
    # and a damaged export is named by harness.load
    import harness as package

    export_run(runs["tfidf"], tmp_path / "good", verbose=False)
    (tmp_path / "good" / export_files.DECISION).write_text("null\n")
    with pytest.raises(StoreError, match="decision.json: changed"):
        package.load(tmp_path / "good")


def test_an_export_killed_mid_way_leaves_no_folder_and_the_next_one_completes(runs, tmp_path):
    """kill -9 in a real process after the first fold model is written into the stage; then export again."""
    out = tmp_path / "exp"
    env = {**os.environ, "HARNESS_TEST_KILL_AT": "export-model"}
    p = subprocess.run([sys.executable, "-m", "harness.cli", "export", str(runs["tfidf"]), "--out", str(out),
                        "--quiet"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL
    assert not out.exists() and len(list(tmp_path.glob(".exp.partial-*"))) == 1
    harness("export", str(runs["tfidf"]), "--out", str(out), "--quiet")
    assert not list(tmp_path.glob(".exp.partial-*"))
    export_files.read_export(out)  # every file as export.json lists it


def test_a_refit_is_claimed_like_a_fold_and_a_damaged_one_is_trained_again(runs, tmp_path):
    import shutil
    import socket

    from harness.export.writer import export_run

    copy = tmp_path / "run"
    shutil.copytree(runs["tfidf"], copy)
    run = RunDir(copy)
    claim = run.refit_claim_path(1)
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "token": "other"}))
    with pytest.raises(Exception, match="being refitted by"):
        export_run(copy, tmp_path / "a", source="refit", verbose=False)
    assert not run.refit_done(1) and not (tmp_path / "a").exists()
    claim.unlink()
    export_run(copy, tmp_path / "b", source="refit", verbose=False)
    metrics, model = run.read_refit(1)
    assert metrics["train_rows"] == len(run.read_oof().ids) and metrics["steps"] is None  # tfidf: no checkpoint
    victim = next(p for p in sorted(model.rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.warns(UserWarning, match="trained again"):
        export_run(copy, tmp_path / "c", source="refit", verbose=False)
    assert run.read_refit(1) is not None  # committed afresh, and it passes its check


def test_a_refit_of_several_seeds_is_their_average(runs, tmp_path):
    import shutil

    import harness as package
    from harness.methods.base import make_method

    copy = tmp_path / "run"
    shutil.copytree(runs["setfit"], copy)  # its contrastive pairs are drawn from the seed
    harness("export", str(copy), "--out", str(tmp_path / "exp"), "--from", "refit", "--seeds", "1,2", "--quiet")
    model = package.load(tmp_path / "exp")
    assert [m["path"] for m in model.meta["models"]] == [export_files.seed_folder(1), export_files.seed_folder(2)]
    assert not model.meta["folded"] and model.meta["n_folds"] == 1
    run = RunDir(copy)
    rows = read_file(runs["new"], model.cfg.data, require_label=False)
    method = make_method(run.read_config())
    each = [method.load(run.read_refit(s)[1]).predict_proba(rows) for s in (1, 2)]
    assert np.abs(each[0] - each[1]).max() > 1e-4  # two different models, so the average is a real test
    np.testing.assert_allclose(model.predict_proba(rows), np.mean(each, 0), atol=1e-6)
    code = cli.main(["export", str(copy), "--out", str(tmp_path / "bad"), "--seeds", "1,2"])
    assert code != 0 and not (tmp_path / "bad").exists()  # --seeds belongs to --from refit
