"""`qwen3-8b-shape` and the GPU check: what can be proved without a GPU.

The 8B model itself is only counted (on the meta device: nothing is allocated); the builder that makes it is run
for real on CPU on a tiny Qwen3 shape, 4-bit included, through the ordinary fold loop, so the GPU box runs code
that was already exercised here. `scripts/gpu_check.sh` and `benchmarks/gpu_memory.py` refuse cleanly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.methods.base import TaskInfo
from harness.config import load_config
from harness.run.experiment import run_experiment
from harness.methods.hf import shape
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
TINY = {"vocab_size": 640, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
        "bos_token_id": None, "eos_token_id": None}


def test_qwen3_8b_shape_has_qwen3_8b_parameter_count():
    cfg = shape.shape_config("qwen3-8b-shape")
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.intermediate_size, cfg.vocab_size, cfg.tie_word_embeddings) == (36, 4096, 32, 8, 12288, 151936, False)
    n = shape.parameter_count(cfg)
    assert abs(n - shape.QWEN3_8B_PARAMETERS) / shape.QWEN3_8B_PARAMETERS < 0.01, n
    # the sequence classifier swaps the 151,936-row LM head for a 9-row score head
    seqcls = shape.parameter_count(shape.shape_config("qwen3-8b-shape", num_labels=9), "seqcls")
    assert n - seqcls == 4096 * (151936 - 9)


@pytest.fixture
def tiny_shape(monkeypatch):
    monkeypatch.setitem(shape.SHAPES, "qwen3-tiny-shape", {**shape.QWEN3_8B, **TINY})
    return "qwen3-tiny-shape"


def test_a_shape_model_trains_as_qlora_through_the_fold_loop_and_reloads(tiny_shape, tmp_path):
    """Built on the device with no weights on disk, quantised to NF4 as it is built (the score head kept in full
    precision), trained with LoRA by the fold loop; a rebuild is the same base, so a saved adapter reloads to the
    fold's own probabilities."""
    import bitsandbytes as bnb

    from harness.data.load import load_train
    from harness.data.folds import Folds
    from harness.methods.base import make_method
    from harness.methods.hf.model import build_model, load_tokenizer

    cfg = load_config(None, ["data.synthetic=psydefconv", "data.synthetic_groups=16", "cv.n_folds=2",
                             "track.backend=none", f"model.name_or_path={tiny_shape}", "quant.load_in_4bit=true",
                             "quant.compute_dtype=float32", "prompt.max_length=96", "prompt.context_turns=1",
                             "lora.r=4", "lora.alpha=8", "train.max_steps=2", "train.batch_size=4",
                             "train.learning_rate=1e-3", f"run_dir={tmp_path / 'run'}"])
    model = build_model(cfg.settings(), TaskInfo.of(cfg), load_tokenizer(cfg.model), cfg.train.seeds[0])
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) >= 7 * TINY["num_hidden_layers"]  # every projection of every layer
    assert not any(p.is_meta for p in model.parameters())
    assert not list(shape.ensure_shape_dir(tiny_shape).glob("*.safetensors"))  # no weights written
    run_experiment(cfg, verbose=False)
    rows = load_train(cfg)
    val = Folds.load(tmp_path / "run" / run_files.FOLDS).split(rows, 1)[1]
    again = make_method(cfg).load(tmp_path / "run" / "folds" / "seed42" / "fold1" / "model").predict_proba(val)
    z = np.load(tmp_path / "run" / "folds" / "seed42" / "fold1" / run_files.FOLD_DONE, allow_pickle=False)
    np.testing.assert_allclose(again, z["val_probs"], atol=1e-5)


@pytest.mark.parametrize("cmd", [["bash", "scripts/gpu_check.sh"], [sys.executable, "benchmarks/gpu_memory.py"]],
                         ids=["gpu_check", "gpu_memory"])
def test_gpu_check_refuses_cleanly_without_cuda(cmd):
    """A real process: what a person sees when they run the command on a CPU box."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "needs CUDA" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
