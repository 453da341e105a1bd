"""Trainer, loss and model tests on tiny-qwen3 (random init, CPU)."""

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from helpers import tiny_config
from harness.methods.base import TaskInfo
from harness.config import LossConfig
from harness.methods.hf.losses import imbalance_loss
from harness.data.weights import class_weights
from harness.methods.hf.model import build_model, load_tokenizer, load_trained
from harness.data.prompt import PromptBuilder
from harness.data.synthetic import make_psydefconv
from harness.methods.hf.trainer import ImbalanceTrainer, make_collator, predict_proba, to_features, training_arguments


def test_class_weight_schemes():
    labels = [0] * 90 + [1] * 9 + [2] * 1
    counts = np.array([90, 9, 1])
    for scheme, expect in [("none", np.ones(3)), ("inverse", 1 / counts), ("inverse_sqrt", 1 / np.sqrt(counts))]:
        w = class_weights(labels, 3, LossConfig(class_weights=scheme))
        assert np.allclose(w / w[0], expect / expect[0])
        assert (w * counts).sum() / counts.sum() == pytest.approx(1.0)  # mean weight per training row is 1
    eff = class_weights(labels, 3, LossConfig(class_weights="effective_number", effective_beta=0.99))
    assert eff[2] > eff[1] > eff[0]


def test_loss_matches_torch_reference():
    torch.manual_seed(0)
    logits, y = torch.randn(7, 5), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 1.0])
    # weighted + smoothed: each row's smoothed CE times the weight of its true class, averaged over the rows
    smoothed = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")
    both = imbalance_loss(logits, y, w, label_smoothing=0.1)
    assert both == pytest.approx((w[y] * smoothed).mean().item(), rel=1e-6)
    # torch's own weight= weights the smoothing term per class (and divides by the weight sum): not what we mean
    torch_weighted = torch.nn.functional.cross_entropy(logits, y, weight=w, label_smoothing=0.1, reduction="none")
    assert both != pytest.approx(torch_weighted.mean().item(), rel=1e-3)
    ours = imbalance_loss(logits, y, None, label_smoothing=0.1)
    assert ours == pytest.approx(torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1).item(), rel=1e-6)
    plain = imbalance_loss(logits, y, w)
    assert plain * 7 == pytest.approx((w[y] * torch.nn.functional.cross_entropy(logits, y, reduction="none")).sum().item(), rel=1e-6)
    p = torch.softmax(logits, -1)[range(7), y]
    focal = imbalance_loss(logits, y, None, focal_gamma=2.0)
    assert focal == pytest.approx(((1 - p) ** 2 * -torch.log(p)).mean().item(), rel=1e-5)


class GradCapture(TrainerCallback):
    """Grab gradients right before the first optimiser step."""

    def __init__(self, model):
        self.model, self.grads = model, None

    def on_pre_optimizer_step(self, args, state, control, **kw):
        if self.grads is None:
            self.grads = {n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}


def _one_step(tmp_path, batch: int, accum: int):
    cfg = tiny_config(tmp_path, f"train.batch_size={batch}", f"train.grad_accum={accum}", "train.max_steps=1",
                      "train.max_grad_norm=1e9", "train.group_by_length=false", "loss.label_smoothing=0.05",
                      "loss.focal_gamma=1.0")
    ex = make_psydefconv(n_groups=12)[:8]
    tok = load_tokenizer(cfg.model)
    ids, _ = PromptBuilder(cfg.prompt, tok, cfg.data.label_names()).encode(ex)
    torch.manual_seed(0)
    model = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
    weights = class_weights([e.label for e in ex], 9, cfg.loss)
    cap = GradCapture(model)
    tr = ImbalanceTrainer(model=model, args=training_arguments(cfg, tmp_path / f"o{batch}", 0, False, "fp32"),
                          train_dataset=to_features(ids, [e.label for e in ex]),
                          data_collator=make_collator(tok, 8), callbacks=[cap], class_weights=weights,
                          label_smoothing=0.05, focal_gamma=1.0)
    tr.train()
    return tr.state.log_history[-1]["train_loss"], cap.grads


def assert_same_step(a: tuple, b: tuple) -> None:
    """Two (loss, gradients) of one optimiser step are equal: what exact gradient accumulation means."""
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    assert loss_a == pytest.approx(loss_b, rel=1e-4)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for n in grads_a:
        assert torch.allclose(grads_a[n], grads_b[n], rtol=1e-3, atol=1e-7), n


def test_gradient_accumulation_is_exact(tmp_path):
    """batch 2 x accumulation 4 == batch 8 x accumulation 1, weighted + smoothed + focal loss."""
    assert_same_step(_one_step(tmp_path, 8, 1), _one_step(tmp_path, 2, 4))


def _lora_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _qlora_setup(tmp_path, fix: bool):
    cfg = tiny_config(tmp_path, "quant.load_in_4bit=true", "train.max_steps=3", "train.batch_size=4",
                      "train.learning_rate=1e-2", "train.warmup_ratio=0")
    tok = load_tokenizer(cfg.model)
    ex = make_psydefconv(n_groups=12)[:24]
    ids, _ = PromptBuilder(cfg.prompt, tok, cfg.data.label_names()).encode(ex)
    model = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers, "the base must really be 4-bit"
    if not fix:
        for m in layers:
            m.support_avx512bf16_for_cpu = True
    feats = to_features(ids, [e.label for e in ex])
    tr = ImbalanceTrainer(model=model, args=training_arguments(cfg, tmp_path / "o", 0, False, "fp32"),
                          train_dataset=feats, data_collator=make_collator(tok, 8))
    return tr, model, ids, make_collator(tok, 8)


def _train_eval_train(tmp_path, fix: bool):
    tr, model, ids, coll = _qlora_setup(tmp_path, fix)
    tr.train()
    predict_proba(model, ids, coll, 8)  # the no-grad eval forward that triggers the repack
    before = _lora_state(model)
    cap = GradCapture(model)
    tr.add_callback(cap)
    tr.train()
    after = _lora_state(model)
    in_4bit = [n for n in before if "lora_A" in n or "lora_B" in n]
    changed = [n for n in in_4bit if not torch.equal(before[n], after[n])]
    grad_norm = sum(float(g.norm()) for n, g in cap.grads.items() if "lora_" in n)
    return changed, in_4bit, grad_norm


def test_qlora_train_evaluate_train_keeps_learning(tmp_path):
    """4-bit tiny-qwen3 on CPU: after an eval pass, LoRA weights in the 4-bit layers still get gradients."""
    changed, lora, grad_norm = _train_eval_train(tmp_path, fix=True)
    assert grad_norm > 0
    assert len(changed) == len(lora), f"frozen after eval: {sorted(set(lora) - set(changed))[:4]}"


def _has_avx512_bf16() -> bool:
    try:
        return "avx512_bf16" in open("/proc/cpuinfo").read()
    except OSError:
        return False


def _grads(model, batch):
    model.train()
    model.zero_grad()
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    torch.nn.functional.cross_entropy(out.logits.float(), batch["labels"]).backward()
    g = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n}
    model.zero_grad()
    return g


@pytest.mark.parametrize("fix", [True, pytest.param(False, marks=pytest.mark.skipif(
    not _has_avx512_bf16(), reason="the trap only exists on AVX512-BF16 CPUs"))])
def test_eval_pass_does_not_change_gradients(tmp_path, fix):
    """Same weights, same batch: the gradients before and after a no-grad eval pass must agree.
    fix=False is the negative control: the bitsandbytes default on this CPU breaks it."""
    tr, model, ids, coll = _qlora_setup(tmp_path, fix)
    batch = coll([{"input_ids": x, "labels": 1} for x in ids[:4]])
    before = _grads(model, batch)
    predict_proba(model, ids, coll, 8)
    after = _grads(model, batch)
    same = all(torch.allclose(before[n], after[n], rtol=1e-3, atol=1e-6) for n in before)
    assert same == fix


def test_lora_changes_base_does_not_and_adapter_reload_is_identical(tmp_path):
    cfg = tiny_config(tmp_path, "train.max_steps=4", "train.batch_size=4", "train.learning_rate=5e-3")
    tok = load_tokenizer(cfg.model)
    ex = make_psydefconv(n_groups=12)[:16]
    ids, _ = PromptBuilder(cfg.prompt, tok, cfg.data.label_names()).encode(ex)
    torch.manual_seed(0)
    model = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
    base0 = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train0 = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in train0), "the head must be trained"
    ImbalanceTrainer(model=model, args=training_arguments(cfg, tmp_path / "o", 0, False, "fp32"),
                     train_dataset=to_features(ids, [e.label for e in ex]), data_collator=make_collator(tok, 8)).train()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert not torch.equal(p, train0[n]) or "lora_A" in n, n
        else:
            assert torch.equal(p, base0[n]), n
    probs, _ = predict_proba(model, ids, make_collator(tok, 8), 8)
    model.save_pretrained(tmp_path / "adapter")
    again = load_trained(cfg.settings(), TaskInfo.of(cfg), tok, tmp_path / "adapter")
    probs2, _ = predict_proba(again, ids, make_collator(tok, 8), 8)
    np.testing.assert_allclose(probs, probs2, rtol=1e-5, atol=1e-6)


def test_length_sorted_inference_pads_little_and_keeps_order(tmp_path):
    cfg = tiny_config(tmp_path)
    tok = load_tokenizer(cfg.model)
    ex = make_psydefconv(n_groups=20)
    ids, _ = PromptBuilder(cfg.prompt, tok, cfg.data.label_names()).encode(ex)
    torch.manual_seed(0)
    model = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
    coll = make_collator(tok, 8)
    sorted_probs, stats = predict_proba(model, ids, coll, 16)
    one_by_one = np.concatenate([predict_proba(model, [x], coll, 1)[0] for x in ids[:10]])
    np.testing.assert_allclose(sorted_probs[:10], one_by_one, rtol=1e-4, atol=1e-5)
    naive = sum(-(-max(map(len, ids[i:i + 16])) // 8) * 8 * len(ids[i:i + 16]) for i in range(0, len(ids), 16))
    real = sum(map(len, ids))
    assert stats.pad_fraction < 1 - real / naive  # sorting beats batching in file order


def test_seqcls_chooses_its_checkpoint_on_the_official_classes(tmp_path, monkeypatch):
    """The inner split's selection metric (train.selection_metric, macro_f1_official by default) is scored over
    the task's score labels, as the run's own official score is: not over every class."""
    from helpers import fold_context
    from harness.methods.base import make_method
    from harness.methods.hf import trainer

    cfg = tiny_config(tmp_path, "data.score_labels=[1,2,3,4,5,6,7,8]", "train.max_steps=1", "train.epochs=1")
    seen = []
    real = trainer.selection_metrics
    monkeypatch.setattr(trainer, "selection_metrics", lambda n, labels: seen.append(labels) or real(n, labels))
    rows = make_psydefconv(n_groups=8, seed=0)
    method = make_method(cfg)
    w = class_weights([e.label for e in rows], 9, cfg.loss)
    method.fit(rows[:40], rows[40:60], fold_context(tmp_path / "run", 0, 0, w, tmp_path)).close()
    assert seen and list(seen[0]) == [1, 2, 3, 4, 5, 6, 7, 8]
