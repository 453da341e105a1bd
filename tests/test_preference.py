"""Preference optimisation (`method: preference`): DPO, KTO and ORPO on the real TRL trainers with SmolLM2.

A small sft run (2 folds, saved adapters) is the start and reference of DPO and KTO. Each algorithm trains a
few steps on one fold's pairs; the chosen-minus-rejected margin must grow, the adapter must change, and the
base weights must not. The chain test runs `harness cv` for a DPO run on top of the sft run and checks that
every fold started from the sft adapter of the same fold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from harness.methods.base import make_method
from harness.config import ConfigError, load_config
from harness.run.experiment import run_experiment
from helpers import fold_context, fold_dir
from harness.run.rundir import RunDir
from harness.data.load import load_train
from harness.data.folds import Folds
from harness.methods.preference.trainer import make_pairs
from harness.data.weights import class_weights
import harness.run.layout as run_files

SMOL = ["model.name_or_path=smollm2", "data.synthetic=dreaddit", "data.synthetic_groups=12", "prompt.max_length=48",
        "lora.r=8", "lora.alpha=16", "lora.dropout=0", "track.backend=none", "cv.n_folds=2", "train.batch_size=4",
        "train.save_adapters=true", "train.inner_val_fraction=0", "train.warmup_ratio=0", "train.precision=fp32",
        "train.group_by_length=false", "train.seeds=[0]"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("pref") / "sft"
    run_experiment(load_config(None, SMOL + ["method=sft", "name=smol-sft", f"run_dir={run}", "train.max_steps=2",
                                     "train.learning_rate=1e-3"]))
    return run


def _pref_cfg(sft_run, algorithm: str, *over: str):
    return load_config(None, SMOL + ["method=preference", f"preference.algorithm={algorithm}",
                                     f"preference.sft_run={sft_run}", "train.max_steps=6",
                                     "train.learning_rate=1e-3", "preference.beta=0.5", *over])


def _margin(method, model, rows) -> float:
    """Mean of log P(gold answer) - log P(other answer) over the rows (binary task), under `model`."""
    from harness.methods.hf.generative import score_rows

    s = score_rows(model, method.lm.prompts, method.lm.prompt_ids(rows), 8)
    y = np.array([e.label for e in rows])
    return float(np.mean(s[np.arange(len(y)), y] - s[np.arange(len(y)), 1 - y]))


def _split(params: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(base weights keyed by their plain name, adapter weights keyed by their saved name)."""
    base, lora = {}, {}
    for name, p in params.items():
        if "lora_" in name:
            lora[name.replace(".default", "")] = p.detach().clone()
        else:
            base[name.replace("base_model.model.", "").replace(".base_layer", "")] = p.detach().clone()
    return base, lora


@pytest.mark.parametrize("algorithm", ["dpo", "kto", "orpo"])
def test_preference_training_widens_the_margin_and_moves_only_the_adapter(sft_run, tmp_path, algorithm):
    from harness.methods.preference.method import PreferenceMethod

    cfg = _pref_cfg(sft_run, algorithm)
    method = make_method(cfg)
    rows = load_train(cfg)
    train, _ = Folds.load(sft_run / run_files.FOLDS).split(rows, 0)
    weights = class_weights([e.label for e in train], 2, cfg.loss)
    start_adapter = fold_dir(sft_run, 0, 0) / "model" / "adapter"
    start = method.lm.adapter_model(start_adapter) if algorithm != "orpo" else method.lm.base_model()
    before = _margin(method, start, train)
    base_before = {k.replace(".base_layer", ""): v.detach().clone() for k, v in start.named_parameters()
                   if "lora_" not in k}
    base_before = {k.replace("base_model.model.", ""): v for k, v in base_before.items()}
    del start

    # fold 0 of a new run directory: the context (not a folder name) says which sft fold to start from
    fitted = method.fit(train, [], fold_context(tmp_path / "run", 0, 0, weights, tmp_path))
    after = _margin(method, fitted.model, train)
    assert after > before + 0.05, (before, after)
    assert "ref" not in fitted.model.peft_config  # the reference copy is dropped, never saved

    base_after, lora_after = _split(dict(fitted.model.named_parameters()))
    assert base_after.keys() == base_before.keys()
    assert all(torch.equal(base_after[k], base_before[k]) for k in base_before)
    if algorithm == "orpo":  # a fresh adapter: LoRA B starts at zero
        assert any(float(v.abs().max()) > 0 for k, v in lora_after.items() if "lora_B" in k)
    else:
        saved = load_file(str(start_adapter / "adapter_model.safetensors"))
        moved = [k for k in saved if not torch.equal(saved[k], lora_after[k])]
        assert moved, "the adapter did not change"
    info = fitted.info()
    assert info["preference_pairs"] > 0 and info["preference_algorithm"] == algorithm
    fitted.close()


def test_dpo_folds_start_from_the_same_fold_of_the_sft_run(sft_run, tmp_path):
    """Every fold's DPO model starts from (and is referenced to) the sft adapter of its own fold; its scores
    are reproduced by the saved adapter; an sft run on other folds is refused, naming the difference."""
    from harness.methods.preference.method import PreferenceMethod, file_digest

    run = tmp_path / "dpo"
    cfg = _pref_cfg(sft_run, "dpo", f"run_dir={run}", "train.max_steps=2")
    run_experiment(cfg)
    digests = []
    for k in range(2):
        m = __import__("json").loads((fold_dir(run, 0, k) / run_files.METRICS).read_text())
        start = fold_dir(sft_run, 0, k) / "model" / "adapter"
        assert m["started_from"] == str(start)
        assert m["reference_sha256"] == file_digest(start / "adapter_model.safetensors")
        digests.append(m["reference_sha256"])
        assert not RunDir(run).scratch_dir(0, k).exists()  # TRL's output_dir is not left behind
    assert digests[0] != digests[1]
    # the saved adapter (without the reference copy) gives the fold's own validation probabilities
    rows = load_train(cfg)
    _, val = Folds.load(run / run_files.FOLDS).split(rows, 1)
    method = make_method(cfg)
    reloaded = method.load(fold_dir(run, 0, 1) / "model").predict_proba(val)
    z = np.load(fold_dir(run, 0, 1) / run_files.FOLD_DONE)
    np.testing.assert_allclose(reloaded, z["val_probs"], atol=1e-5)

    with pytest.raises(ConfigError) as err:
        run_experiment(_pref_cfg(sft_run, "dpo", f"run_dir={tmp_path / 'other'}", "cv.seed=7", "prompt.max_length=40"))
    msg = str(err.value)
    assert "cv.seed" in msg and "prompt.max_length" in msg and "folds differ" in msg and str(sft_run) in msg
    assert not (tmp_path / "other").exists()  # refused before the directory was claimed


def test_pairs_hard_negatives_and_rebalancing():
    y = [0, 0, 0, 0, 0, 0, 1, 2]
    scores = np.array([[0, 5, 1]] * 6 + [[3, 0, 9], [1, 4, 0]], dtype=float)
    rows, chosen, rejected = make_pairs(y, scores, 3, "hard", "none", np.ones(3), 0)
    hard = dict(zip(rows.tolist(), rejected.tolist()))
    assert hard == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 1}  # the best-scoring wrong label
    rows, chosen, rejected = make_pairs(y, scores, 3, "hard", "pairs", np.ones(3), 0)
    assert np.bincount(chosen).tolist() == [3, 3, 3]  # equal pairs per gold class
    assert len(set(rows[chosen == 0].tolist())) == 3  # majority rows subsampled without repeats
    rows, chosen, rejected = make_pairs(y, None, 3, "all", "none", np.ones(3), 0)
    assert len(rows) == 16 and not np.any(chosen == rejected)
    w = np.array([0.1, 1.0, 1.0])
    _, chosen, _ = make_pairs(y * 50, None, 3, "all", "weights", w, 0)
    share = np.bincount(chosen, minlength=3) / len(chosen)
    assert 0.15 < share[0] < 0.32  # class 0 holds 75% of the pairs, but weight 0.1 draws it 60/260 of the time


def test_dpo_on_a_4bit_sft_run_reloads_to_the_same_scores(tmp_path):
    """QLoRA: DPO continues a 4-bit sft run's adapter (TRL trains it in bf16; it is upcast after training, as
    PEFT reloads it in fp32), so the fold's probabilities equal its reloaded adapter's (tiny-qwen3, real
    bitsandbytes 4-bit layers)."""
    from harness.methods.preference.method import PreferenceMethod

    tiny = ["model.name_or_path=tiny-qwen3", "data.synthetic=dreaddit", "data.synthetic_groups=10",
            "prompt.max_length=48", "lora.r=4", "lora.alpha=8", "track.backend=none", "cv.n_folds=2",
            "train.batch_size=4", "train.max_steps=2", "train.inner_val_fraction=0", "train.seeds=[0]",
            "quant.load_in_4bit=true", "train.learning_rate=1e-2"]
    run_experiment(load_config(None, tiny + ["method=sft", "name=q-sft", f"run_dir={tmp_path / 'sft'}"]))
    cfg = load_config(None, tiny + ["method=preference", f"preference.sft_run={tmp_path / 'sft'}",
                                    f"run_dir={tmp_path / 'dpo'}"])
    run_experiment(cfg)
    rows = load_train(cfg)
    _, val = Folds.load(tmp_path / "dpo" / run_files.FOLDS).split(rows, 0)
    fitted = make_method(cfg).load(fold_dir(tmp_path / "dpo", 0, 0) / "model")
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in fitted.model.modules())
    np.testing.assert_allclose(fitted.predict_proba(val), np.load(fold_dir(tmp_path / "dpo", 0, 0) / run_files.FOLD_DONE)
                               ["val_probs"], atol=1e-5)


@pytest.mark.gpu
def test_psydefdetect_ladder_dpo_recipe_on_qwen3_8b(tmp_path):
    """The GPU ladder's sft and dpo recipes as users run them (Qwen3-8B QLoRA; its real shape unless
    HARNESS_GPU_MODEL names the hub weights), cut to a few steps on synthetic PsyDefConv: every dpo fold starts
    from the sft adapter of its own fold."""
    from pathlib import Path

    from conftest import GPU_MODEL

    root = Path(__file__).resolve().parents[1] / "experiments"
    cut = ["data.synthetic=psydefconv", "data.synthetic_groups=20", "data.test_path=null", "cv.n_folds=2",
           "train.max_steps=4", "train.inner_val_fraction=0", "train.early_stopping_patience=0",
           "decide.enabled=false", "track.backend=none", f"model.name_or_path={GPU_MODEL}"]
    run_experiment(load_config(root / "psydefdetect_sft_qwen3_8b.yaml", cut + [f"run_dir={tmp_path / 'sft'}"]))
    run_experiment(load_config(root / "psydefdetect_dpo_qwen3_8b.yaml",
                       cut + [f"run_dir={tmp_path / 'dpo'}", f"preference.sft_run={tmp_path / 'sft'}"]))
    for k in range(2):
        m = __import__("json").loads((fold_dir(tmp_path / "dpo", 42, k) / run_files.METRICS).read_text())
        assert m["started_from"] == str(fold_dir(tmp_path / "sft", 42, k) / "model" / "adapter")


def test_an_sft_run_with_another_preset_or_prompt_is_named_key_by_key():
    """What the sft adapter and the preference pairs must share is compared setting by setting, so a refusal names
    each key: the preset (its instruction and answer texts shape every prompt) and each prompt key."""
    from dataclasses import replace

    from harness.config import PromptConfig
    from harness.config.presets import PRESETS
    from harness.methods.base import TaskInfo
    from harness.methods.preference.config import PreferenceConfig
    from harness.methods.preference.method import _settings_view

    preset = PRESETS["psydefdetect"]
    mine = TaskInfo(label_names=preset.labels, prompt=PromptConfig(max_length=64), facts=preset)
    theirs = replace(mine, prompt=PromptConfig(max_length=40), facts=replace(preset, name="psydefdetect-v2"))
    a, b = _settings_view(PreferenceConfig(), mine), _settings_view(PreferenceConfig(), theirs)
    assert sorted(k for k in a if a[k] != b[k]) == ["data.preset", "prompt.max_length"]
