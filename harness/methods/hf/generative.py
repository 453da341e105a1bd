"""What the generative methods (prompt, sft, preference) share: the task prompts a model is trained and
scored on, the causal LM loader, and label scoring of rows.

A row's class scores are the summed log-probabilities of each label's whole verbalizer plus the end token after
the prompt (harness.methods.hf.scoring). Instructions, guides and verbalizers come from the data preset
(harness.config.presets) unless the config gives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.config.presets import Preset, named_instructions
from harness.data.schema import Example, Turn
from harness.config import PromptConfig
from harness.methods.hf.settings import HFSettings

if TYPE_CHECKING:
    from harness.methods.base import TaskInfo


CONTENT_FREE = "N/A"
GENERIC_INSTRUCTION = "Read the text and answer with the label that fits it, and nothing else."


def _preset_of(facts: Preset | None, label_names: Sequence[str]) -> Preset | None:
    """The preset's facts apply only when the labels are its labels (a config may relabel a data set)."""
    return facts if facts is not None and list(facts.labels) == list(label_names) else None


def default_verbalizers(label_names: Sequence[str], facts: Preset | None = None) -> list[str]:
    preset = _preset_of(facts, label_names)
    if preset is not None:
        return list(preset.verbalizers)
    return [n.replace("_", " ") for n in label_names]


def instruction_text(name: str, label_names: Sequence[str], facts: Preset | None = None) -> str:
    """auto (the data preset's instruction), a named one (any preset's), or the literal text given."""
    preset = _preset_of(facts, label_names)
    if name == "auto":
        if preset is None:
            return GENERIC_INSTRUCTION + " Labels: " + ", ".join(default_verbalizers(label_names)) + "."
        name = preset.instruction
    return named_instructions().get(name, name)


def example_json(e: Example) -> dict[str, Any]:
    return {"id": e.id, "group": e.group, "target": e.target, "label": e.label,
            "dialogue": [[t.speaker, t.text] for t in e.dialogue]}


def example_from_json(d: dict[str, Any]) -> Example:
    return Example(id=d["id"], group=d["group"], target=d["target"], label=d["label"],
                   dialogue=tuple(Turn(s, t) for s, t in d["dialogue"]))


class TaskPrompts:
    """How one task's rows become token ids: instruction (+ DMRS guide), exemplars, the row within the token budget,
    the chat template (Qwen3's thinking off; a model without a template gets a plain "Answer:" prompt), and each
    label's continuation (verbalizer + end token). Prompting and SFT share it, so a model is trained on exactly
    the sequences it is later scored on."""

    def __init__(self, prompt: PromptConfig, tok: Any, label_names: Sequence[str],
                 verbalizers: Sequence[str] | None = None, instruction: str = "auto", facts: Preset | None = None):
        from dataclasses import replace

        from harness.data.prompt import PromptBuilder

        self.tok, self.label_names = tok, list(label_names)
        self.verbalizers = list(verbalizers or default_verbalizers(label_names, facts))
        self.instruction = instruction_text(instruction, label_names, facts)
        preset = _preset_of(facts, label_names)
        # the preset's label guide goes with its own instruction (a literal instruction says everything itself)
        self.guide = preset.guide if preset is not None and instruction in ("auto", preset.instruction) else ""
        pcfg = replace(prompt, layout="decoder", guide="none", instruction="")
        self.builder = PromptBuilder(pcfg, tok, self.label_names)
        self.chat = bool(getattr(tok, "chat_template", None))
        lead = "" if self.chat else " "  # after "Answer:" a plain prompt's answer starts with a space
        self.continuations = [tok(lead + v, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                              for v in self.verbalizers]

    def body(self, e: Example) -> str:
        """The row as text within the token budget (context turns first to go), without the guide."""
        return self.builder.build(e).text.strip()

    def user_text(self, e: Example, exemplars: Sequence[Example] = ()) -> str:
        parts = [self.instruction] + ([self.guide] if self.guide else [])
        for x in exemplars:
            parts.append(f"Example:\n{self.body(x)}\nAnswer: {self.verbalizers[x.label]}")
        parts.append(("Now classify:\n" if exemplars else "") + self.body(e))
        return "\n\n".join(parts)

    def encode(self, user_text: str) -> list[int]:
        if self.chat:  # the template writes the special tokens itself
            text = self.tok.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                                add_generation_prompt=True, enable_thinking=False)
            return self.tok(text, add_special_tokens=False)["input_ids"]
        return self.tok(user_text + "\nAnswer:", add_special_tokens=True)["input_ids"]

    def prompt_ids(self, e: Example, exemplars: Sequence[Example] = ()) -> list[int]:
        return self.encode(self.user_text(e, exemplars))


def load_causal_lm(cfg: HFSettings, pad_token_id: int | None) -> Any:
    """The generative model of `model.name_or_path` for scoring (4-bit with `quant.load_in_4bit`, bf16 on CUDA),
    padding with the tokenizer's pad token."""
    import torch

    from harness.methods.hf.model import quantization_kwargs, resolve_model_path, use_cuda
    from harness.methods.hf.shape import from_pretrained_or_shape

    kwargs = quantization_kwargs(cfg) if cfg.quant.quantized() else {}
    model = from_pretrained_or_shape("causal", cfg.model.name_or_path, resolve_model_path(cfg.model.name_or_path),
                                     **kwargs)
    if not cfg.quant.quantized() and use_cuda():
        model = model.to("cuda", dtype=torch.bfloat16)
    model.config.pad_token_id = pad_token_id
    return model


def score_rows(model: Any, prompts: TaskPrompts, ids: Sequence[Sequence[int]], batch_size: int,
               progress: str | None = None) -> np.ndarray:
    """(N, K) label log-scores of prompts already encoded by `prompts`."""
    from harness.methods.hf.scoring import label_logprobs

    return label_logprobs(model, ids, prompts.continuations, prompts.tok.pad_token_id, batch_size, progress)


class LabelScorer:
    """A frozen causal LM and the task's prompts: rows in, class log-scores out."""

    def __init__(self, cfg: HFSettings, task: TaskInfo):
        from harness.methods.hf.model import base_key, load_tokenizer

        self.cfg = cfg
        self.tok = load_tokenizer(cfg.model)
        self.prompts = TaskPrompts(task.prompt, self.tok, task.label_names, cfg.generative.verbalizers,
                                   cfg.generative.instruction, task.facts)
        from harness.methods.hf import base_models

        # frozen: shared with any later user of the same base (a tune trial, another run in this process)
        self.model = base_models.shared(base_key("causal", cfg), lambda: load_causal_lm(cfg, self.tok.pad_token_id))

    def scores(self, rows: Sequence[Example], exemplars: Sequence[Example] = (), progress: str | None = None
               ) -> np.ndarray:
        ids = [self.prompts.prompt_ids(e, exemplars) for e in rows]
        return score_rows(self.model, self.prompts, ids, self.cfg.generative.score_batch_size, progress)
