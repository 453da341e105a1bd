"""Instruction fine-tuning (`method: sft`): the class-weighted completion loss, LoRA/QLoRA, multi-task training.

tiny-qwen3 (random weights) checks the arithmetic fast on the real TRL SFTTrainer; the real-learning test
(SmolLM2 on real Dreaddit) is in tests/test_learning.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.methods.base import make_method
from harness.config import ConfigError, load_config
from harness.run.experiment import run_experiment
from helpers import fold_context, fold_dir
from harness.data.load import load_train
from harness.data.folds import Folds
from harness.data.weights import class_weights
import harness.run.layout as run_files
from test_training import GradCapture, assert_same_step

BASE = ["method=sft", "model.name_or_path=tiny-qwen3", "data.synthetic=dreaddit", "data.synthetic_groups=20",
        "prompt.max_length=96", "lora.r=4", "lora.alpha=8", "track.backend=none", "train.group_by_length=false",
        "train.max_grad_norm=1e9", "train.warmup_ratio=0", "lora.dropout=0"]


def _setup(*over: str):
    from harness.methods.sft.method import SftMethod

    cfg = load_config(None, BASE + list(over))
    method = make_method(cfg)
    rows = load_train(cfg)[:8]
    labels = [e.label for e in rows]
    assert len(set(labels)) == 2
    return cfg, method, rows, labels, class_weights(labels, 2, cfg.loss)


def _trainer(cfg, method, cols, out, model=None, callbacks=()):
    from harness.methods.hf.sft_trainer import (LeftPadCollator, WeightedSFTTrainer, peft_config, sft_config,
                                                to_dataset)

    return WeightedSFTTrainer(
        model=model if model is not None else method.lm.build_model(), args=sft_config(cfg, out, 0, False, "fp32"),
        train_dataset=to_dataset(cols), processing_class=method.lm.tok,
        data_collator=LeftPadCollator(method.lm.tok.pad_token_id, 8),
        peft_config=peft_config(cfg) if cfg.lora.enabled else None, callbacks=list(callbacks),
        label_smoothing=cfg.loss.label_smoothing, focal_gamma=cfg.loss.focal_gamma)


def test_sft_loss_equals_a_hand_computation_from_full_sequence_scores(tmp_path):
    """The trainer's loss on a left-padded batch is sum_i w[y_i] * -log P(answer_i | prompt_i) / rows, with
    log P computed independently by scoring each unpadded prompt + answer in one full forward pass."""
    from harness.methods.hf.scoring import label_logprobs_naive
    from harness.methods.hf.sft_trainer import LeftPadCollator

    cfg, method, rows, labels, w = _setup("lora.enabled=false")
    cols = method.training_set(rows, w, with_extra=False)
    assert all(c == -100 for lab, p in zip(cols["labels"], method.lm.prompt_ids(rows)) for c in lab[:len(p)])
    trainer = _trainer(cfg, method, cols, tmp_path / "o")
    model = trainer.model.eval()
    batch = LeftPadCollator(method.lm.tok.pad_token_id, 8)([{k: cols[k][i] for k in cols} for i in range(8)])
    assert len({len(p) for p in method.lm.prompt_ids(rows)}) > 1  # padding really in play
    with torch.no_grad():
        loss = float(trainer.compute_loss(model, dict(batch), num_items_in_batch=8))
    naive = label_logprobs_naive(model, method.lm.prompt_ids(rows), method.lm.prompts.continuations)
    hand = sum(w[y] * -naive[i, y] for i, y in enumerate(labels)) / 8
    assert loss == pytest.approx(hand, rel=1e-4)
    assert w[0] != w[1]  # the class weights really differ


def test_completion_loss_smoothing_and_focal_terms():
    from harness.methods.hf.losses import completion_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 11)
    labels = torch.tensor([[-100, 4, 2], [-100, -100, 7]])
    w = torch.tensor([2.0, 0.5])
    logp = torch.log_softmax(logits, -1)
    nll = [-(logp[0, 1, 4] + logp[0, 2, 2]), -logp[1, 2, 7]]
    smooth = [0.9 * (-logp[0, 1, 4]) - 0.1 * logp[0, 1].mean() + 0.9 * (-logp[0, 2, 2]) - 0.1 * logp[0, 2].mean(),
              0.9 * (-logp[1, 2, 7]) - 0.1 * logp[1, 2].mean()]
    focal = [(1 - torch.exp(-n)) ** 2 for n in nll]
    hand = (2.0 * focal[0] * smooth[0] + 0.5 * focal[1] * smooth[1]) / 5
    got = completion_loss(logits, labels, w, label_smoothing=0.1, focal_gamma=2.0, normalizer=5)
    assert float(got) == pytest.approx(float(hand), rel=1e-5)


def _one_step(tmp_path, batch: int, accum: int):
    cfg, method, rows, labels, w = _setup(f"train.batch_size={batch}", f"train.grad_accum={accum}",
                                          "train.max_steps=1", "loss.label_smoothing=0.05", "loss.focal_gamma=1.0")
    torch.manual_seed(0)
    model = method.lm.build_model()
    cap = GradCapture(model)
    trainer = _trainer(cfg, method, method.training_set(rows, w, with_extra=False), tmp_path / f"o{batch}",
                       model=model, callbacks=[cap])
    cap.model = trainer.model  # the PeftModel TRL wrapped around it
    trainer.train()
    return trainer.state.log_history[-1]["train_loss"], cap.grads


def test_sft_gradient_accumulation_is_exact(tmp_path):
    """batch 2 x accumulation 4 == batch 8 x accumulation 1 (weighted, smoothed, focal completion loss)."""
    a = _one_step(tmp_path, 8, 1)
    assert_same_step(a, _one_step(tmp_path, 2, 4))
    assert all("lora_" in n for n in a[1])  # LoRA only: the base is frozen


@pytest.mark.parametrize("extra", [
    [], ["quant.load_in_4bit=true"], ["train.precision=bf16"], ["lora.variant=dora", "train.optim=adafactor"],
    # bitsandbytes 0.50's LLM.int8 backward fails on CPU (MatMul8bitLt: state.SCB is None); GPU only
    pytest.param(["quant.load_in_8bit=true", "lora.variant=rslora"], marks=pytest.mark.gpu)],
    ids=["lora", "qlora", "lora-bf16-autocast", "dora-adafactor", "8bit-rslora"])
def test_sft_trains_lora_only_and_reloads_identically(tmp_path, extra):
    """LoRA (and QLoRA on a real 4-bit base) weights change, base weights do not; save -> load scores the same
    (after bf16 training too: accelerate's autocast wrapper must not stay on the fold's model)."""
    from harness.methods.sft.method import SftMethod

    four_bit = "quant.load_in_4bit=true" in extra
    eight_bit = "quant.load_in_8bit=true" in extra
    over = ["train.max_steps=3", "train.batch_size=4", "train.learning_rate=1e-2"]
    cfg, method, rows, labels, w = _setup(*over, *extra)
    base_before = {n: p.detach().clone() for n, p in method.lm.build_model().named_parameters()}
    fitted = method.fit(rows, [], fold_context(tmp_path / "run", 0, 0, w, tmp_path))
    params = dict(fitted.model.named_parameters())
    lora_b = [p for n, p in params.items() if "lora_B" in n]
    assert lora_b and all(float(p.detach().abs().sum()) > 0 for p in lora_b)  # B starts at zero: it moved
    if four_bit:
        import bitsandbytes as bnb

        assert any(isinstance(m, bnb.nn.Linear4bit) for m in fitted.model.modules())
    if eight_bit:
        import bitsandbytes as bnb

        assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in fitted.model.modules())
    if "lora.variant=dora" in extra:
        assert any("lora_magnitude_vector" in n for n in params)
    for n, p in params.items():
        if "lora_" not in n:
            key = n.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(p.detach().cpu(), base_before[key].cpu()), n
    probs = fitted.predict_proba(rows)
    fitted.save(tmp_path / "saved")
    again = make_method(cfg).load(tmp_path / "saved").predict_proba(rows)
    assert not hasattr(fitted.model.forward, "__wrapped__")
    np.testing.assert_allclose(probs, again, atol=1e-6)
    assert not (tmp_path / "saved" / "adapter" / "model.safetensors").exists()  # the adapter only


def _task_csv(path, n: int, shift: int = 0) -> None:
    lines = ["id,text,label,post_id"] + [f"t{i},sample post number {i + shift} about my week,{i % 3},p{i}"
                                         for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def test_multi_task_rows_join_every_training_part_never_validation(tmp_path):
    task = tmp_path / "task.csv"
    _task_csv(task, 12)
    extra = {"sft": {"extra_tasks": [{"name": "mood", "weight": 0.5, "verbalizers": ["calm", "sad", "angry"],
                                      "instruction": "Name the mood of the post.",
                                      "data": {"format": "table", "train_path": str(task), "group_column": "post_id",
                                               "labels": ["calm", "sad", "angry"]}}]}}
    cfg_path = tmp_path / "cfg.yaml"
    import yaml

    cfg_path.write_text(yaml.safe_dump(extra))
    over = BASE + ["cv.n_folds=2", "train.max_steps=1", "train.batch_size=4", f"run_dir={tmp_path / 'run'}"]
    cfg = load_config(cfg_path, over)
    from harness.methods.sft.method import SftMethod

    m = make_method(cfg)
    (t, prompts, rows, _), = m.extra_tasks()
    assert len(rows) == 12 and prompts.verbalizers == ["calm", "sad", "angry"]
    assert prompts.prompt_ids(rows[0]) != m.lm.prompts.prompt_ids(rows[0])  # its own instruction
    run_experiment(cfg, verbose=False)
    folds = Folds.load(tmp_path / "run" / run_files.FOLDS)
    for k in range(2):
        metrics = json.loads((fold_dir(tmp_path / "run", 42, k) / run_files.METRICS).read_text())
        assert metrics["sft_train_rows"] == len(folds.split(load_train(cfg), k)[0]) + 12
        ids = set(np.load(fold_dir(tmp_path / "run", 42, k) / run_files.FOLD_DONE, allow_pickle=False)["val_ids"])
        assert ids == folds.val_ids(k)  # OOF rows: the experiment's own, never a task row
    data = json.loads((tmp_path / "run" / run_files.DATA).read_text())
    assert data["task mood"]["rows"] == 12
    _task_csv(task, 12, shift=1)  # the task's data changes: resuming over it is refused, naming the file
    with pytest.raises(ConfigError, match="task.csv"):
        run_experiment(load_config(cfg_path, over), verbose=False)


def test_extra_task_config_errors_are_listed_together():
    from harness.config import from_dict

    with pytest.raises(ConfigError) as e:
        from_dict({"sft": {"extra_tasks": [{"name": "a", "data": {"format": "table", "bogus": 1},
                                            "verbalizers": ["x"], "weight": 0}, {"name": "a"}]}})
    msg = str(e.value)
    for part in ["sft.extra_tasks[0].data.bogus: unknown key", "sft.extra_tasks[0].data.train_path: required",
                 "sft.extra_tasks[0].data.labels: required", "sft.extra_tasks[0].weight: must be > 0",
                 "task names must be distinct"]:
        assert part in msg


@pytest.mark.gpu
def test_psydefconv_sft_recipe_on_qwen3_8b_qlora(tmp_path):
    """The GPU recipe as users run it (Qwen3-8B QLoRA; its real shape unless HARNESS_GPU_MODEL names the hub
    weights), cut to a few steps on synthetic PsyDefConv: every fold trains, is scored on the 9 level names, and
    reloads to the same scores."""
    from conftest import GPU_MODEL
    from pathlib import Path

    from harness.methods.sft.method import SftMethod

    recipe = Path(__file__).resolve().parents[1] / "experiments" / "psydefdetect_sft_qwen3_8b.yaml"
    cfg = load_config(recipe, ["data.synthetic=psydefconv", "data.synthetic_groups=20", "data.test_path=null",
                               "cv.n_folds=2", "train.max_steps=4", "train.inner_val_fraction=0",
                               "train.early_stopping_patience=0", "decide.enabled=false", "track.backend=none",
                               f"model.name_or_path={GPU_MODEL}", f"run_dir={tmp_path / 'run'}"])
    m = run_experiment(cfg, verbose=False)
    assert m["summary"]["cv/macro_f1"] >= 0
    rows = load_train(cfg)
    val = Folds.load(tmp_path / "run" / run_files.FOLDS).split(rows, 0)[1]
    z = np.load(fold_dir(tmp_path / "run", 42, 0) / run_files.FOLD_DONE, allow_pickle=False)
    again = make_method(cfg).load(fold_dir(tmp_path / "run", 42, 0) / "model").predict_proba(val)
    np.testing.assert_allclose(z["val_probs"], again, atol=2e-3)  # bf16 on GPU


def test_sft_chooses_its_epoch_on_the_inner_split(tmp_path):
    """With held-out training groups, every epoch is scored by the weighted completion loss on them and the
    best epoch is kept (checkpoints then removed); the fold's validation rows are never involved."""
    cfg, method, rows, labels, w = _setup("train.epochs=2", "train.batch_size=4", "train.learning_rate=1e-2",
                                          "train.inner_val_fraction=0.2", "train.early_stopping_patience=1")
    inner = load_train(cfg)[8:12]
    ctx = fold_context(tmp_path / "run", 0, 0, w, tmp_path)
    fitted = method.fit(rows, inner, ctx)
    evals = [h for h in fitted.info()["log_history"] if "eval_loss" in h]
    assert len(evals) == 2 and all(np.isfinite(h["eval_loss"]) for h in evals)
    assert not ctx.scratch.exists()  # the epoch checkpoints were written there, and removed
    assert fitted.predict_proba(inner).shape == (4, 2)


def test_an_extra_task_overlapping_the_experiment_data_is_refused(tmp_path):
    """Adding the experiment's own data set as an extra task would leak validation rows into training."""
    import yaml

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({"sft": {"extra_tasks": [{"name": "again", "data": {
        "format": "psydefconv", "synthetic": "dreaddit", "synthetic_groups": 20, "labels": ["no", "yes"]}}]}}))
    cfg = load_config(cfg_path, BASE + ["cv.n_folds=2", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match="same text as the experiment's own rows"):
        run_experiment(cfg, verbose=False)
    assert not list((tmp_path / "run").glob("folds/*/*/probs.npz"))
