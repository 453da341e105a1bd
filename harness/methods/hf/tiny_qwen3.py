"""tiny-qwen3: a randomly initialised 2-layer Qwen3 with a byte-level BPE tokenizer, for CPU tests.

Written once to the harness cache, then loaded through the same ``from_pretrained`` path
(quantisation included) as Qwen3-8B, so the tests exercise the real code paths.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.store import cache_dir, publish_checkpoint

TINY_VERSION = "v1"


def _tiny_corpus() -> list[str]:
    from harness.config.presets import DMRS_GUIDE
    from harness.data import synthetic

    lines = DMRS_GUIDE.splitlines() + synthetic.SEEKER_FILLER + synthetic.SUPPORTER + synthetic.STRESS + synthetic.CALM
    for cues in synthetic.CUES:
        lines += cues
    lines += ["[seeker] [supporter] >>> TARGET Dialogue: Classify the defense level of the TARGET utterance.",
              "the quick brown fox jumps over the lazy dog 0123456789 , . ! ? ' \" ( ) - : ;"]
    return lines


def ensure_tiny_qwen3() -> Path:
    """Write the tiny random Qwen3 (CausalLM weights + tokenizer) once; later calls reuse it."""
    target = cache_dir() / f"tiny-qwen3-{TINY_VERSION}"
    if (target / "config.json").exists():
        return target
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=640, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  model_max_length=32768)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)  # like the real checkpoint: no pad id in the config, no score head
    return publish_checkpoint(target, model, tok)


