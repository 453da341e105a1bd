"""`qwen3-8b-shape`: Qwen3-8B's real architecture with random weights, built on the device, never downloaded.

A GPU box lent for minutes, with no hub access, can still answer the questions that decide whether the
published recipe runs there: does QLoRA on 36 layers of hidden 4096 fit, how fast does it train and score.
Memory and speed are those of the real model; scores are not (the weights are random).

The model is built on the meta device (no memory), then materialised one module at a time on the target
device in `dtype`; with a 4-bit `BitsAndBytesConfig` every linear layer outside `llm_int8_skip_modules` is
quantised to NF4/FP4 as it is materialised, so the bf16 copy of all 8B weights never exists (peak: one
layer); LLM.int8 (`load_in_8bit`) likewise. Weights come from a seeded generator on the device, so a rebuild on the same device is identical
(a saved adapter reloads onto the same base). Nothing is written to disk but config.json and a tokenizer
(tiny-qwen3's byte-level BPE: token ids below its 640-entry vocabulary, all valid for this model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.core.store import cache_dir

SHAPE_VERSION = "v1"
# Qwen/Qwen3-8B config.json (architecture only)
QWEN3_8B: dict[str, Any] = {
    "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hidden_act": "silu",
    "attention_bias": False, "bos_token_id": 151643, "eos_token_id": 151645,
}
QWEN3_8B_PARAMETERS = 8.2e9  # the model card's "Number of Parameters: 8.2B" (6.95B non-embedding)
SHAPES = {"qwen3-8b-shape": QWEN3_8B}
INIT_STD = 0.02


def is_shape(name: str) -> bool:
    return name in SHAPES


def shape_config(name: str, **overrides: Any) -> Any:
    from transformers import Qwen3Config

    return Qwen3Config(**{**SHAPES[name], **overrides})


def ensure_shape_dir(name: str) -> Path:
    """config.json + tokenizer for `name` (what AutoConfig and AutoTokenizer read); no weights."""
    from harness.methods.hf.tiny_qwen3 import ensure_tiny_qwen3

    target = cache_dir() / f"{name}-{SHAPE_VERSION}"
    if (target / "config.json").exists():
        return target
    tiny = ensure_tiny_qwen3()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges", "chat_template")):
            shutil.copy(f, tmp / f.name)
    cfg = shape_config(name, architectures=["Qwen3ForCausalLM"])
    (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    try:
        tmp.rename(target)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def parameter_count(config: Any, head: str = "causal") -> int:
    """Parameters of the model `config` describes, counted on the meta device (nothing is allocated)."""
    import torch

    with torch.device("meta"):
        model = _auto_class(head).from_config(config)
    return sum(p.numel() for p in model.parameters())


def _auto_class(head: str) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    return {"causal": AutoModelForCausalLM, "seqcls": AutoModelForSequenceClassification, "base": AutoModel}[head]


def _set_module(model: Any, name: str, module: Any) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def build(config: Any, head: str, device: Any, dtype: Any, bnb: Any = None, seed: int = 0) -> Any:
    """The model on `device`, weights drawn from a seeded generator, linear layers quantised when `bnb` says 4-bit."""
    import torch

    with torch.device("meta"):
        model = _auto_class(head).from_config(config, dtype=dtype)
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    four_bit = bnb is not None and bnb.load_in_4bit
    eight_bit = bnb is not None and bnb.load_in_8bit
    skip = set(bnb.llm_int8_skip_modules or []) if bnb is not None else set()

    def normal(shape: tuple[int, ...], kind: Any) -> Any:
        return torch.empty(shape, device=device, dtype=kind).normal_(0.0, INIT_STD, generator=gen)

    if four_bit or eight_bit:
        import bitsandbytes as bnbl

        for name, module in list(model.named_modules()):
            if not isinstance(module, torch.nn.Linear) or skip & set(name.split(".")):
                continue
            if eight_bit:  # LLM.int8: quantised when the Int8Params move to the GPU
                q = bnbl.nn.Linear8bitLt(module.in_features, module.out_features, bias=module.bias is not None,
                                         has_fp16_weights=False, threshold=bnb.llm_int8_threshold, device="meta")
                weight = normal((module.out_features, module.in_features), dtype)
                q.weight = bnbl.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False).to(device)
                if module.bias is not None:
                    q.bias = torch.nn.Parameter(torch.zeros(module.out_features, device=device, dtype=dtype))
                _set_module(model, name, q)
                del weight
                continue
            q = bnbl.nn.Linear4bit(module.in_features, module.out_features, bias=module.bias is not None,
                                   compute_dtype=bnb.bnb_4bit_compute_dtype, compress_statistics=bnb.bnb_4bit_use_double_quant,
                                   quant_type=bnb.bnb_4bit_quant_type, quant_storage=bnb.bnb_4bit_quant_storage,
                                   device="meta")
            weight = normal((module.out_features, module.in_features), dtype)
            q.weight = bnbl.nn.Params4bit(weight, requires_grad=False, compress_statistics=bnb.bnb_4bit_use_double_quant,
                                          quant_type=bnb.bnb_4bit_quant_type, quant_storage=bnb.bnb_4bit_quant_storage,
                                          module=q).to(device)  # quantised here, the bf16 weight then dropped
            if module.bias is not None:
                q.bias = torch.nn.Parameter(torch.zeros(module.out_features, device=device, dtype=dtype))
            _set_module(model, name, q)
            del weight
    for name, module in list(model.named_modules()):
        if type(module).__name__.endswith("RotaryEmbedding"):  # buffers computed from the config, not drawn
            _set_module(model, name, type(module)(config).to(device))
            continue
        norm = "Norm" in type(module).__name__
        for pname, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                data = torch.ones(p.shape, device=device, dtype=p.dtype) if norm else normal(tuple(p.shape), p.dtype)
                setattr(module, pname, torch.nn.Parameter(data, requires_grad=p.requires_grad))
        for bname, b in list(module.named_buffers(recurse=False)):
            if b.is_meta:
                module.register_buffer(bname, torch.zeros(b.shape, device=device, dtype=b.dtype))
    if four_bit or eight_bit:  # what peft's prepare_model_for_kbit_training and get_peft_model look for
        model.is_loaded_in_4bit, model.is_loaded_in_8bit = four_bit, eight_bit
        model.config.quantization_config = bnb
    return model.eval()


def from_pretrained_or_shape(head: str, name: str, path: str, **kwargs: Any) -> Any:
    """`Auto*.from_pretrained(path, **kwargs)`, or for a shape name the same model built from its config with
    the same arguments (quantization_config, dtype, device_map, num_labels, id2label, label2id)."""
    if not is_shape(name):
        return _auto_class(head).from_pretrained(path, **kwargs)
    import torch

    extra = {k: kwargs[k] for k in ("num_labels", "id2label", "label2id", "attn_implementation") if k in kwargs}
    config = shape_config(name, **extra)
    device_map = kwargs.get("device_map") or {}
    device = f"cuda:{device_map['']}" if "" in device_map else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = kwargs.get("dtype") or (torch.bfloat16 if str(device).startswith("cuda") else torch.float32)
    return build(config, head, device, dtype, kwargs.get("quantization_config"))
