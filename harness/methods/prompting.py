"""`method: prompt`: zero- or few-shot prompting of a generative LLM, scored on the label texts.

No training: `fit` only draws the few-shot exemplars (k per class, `generative.shots_per_class`)
from the fold's *training part*, deterministically from the seed, so no validation row ever appears
in its own prompt. A row's class probabilities are the softmax over classes of each label's whole
verbalizer (plus the end token) scored after the prompt (harness.methods.hf.scoring), with
optional contextual calibration: the scores of a content-free input are subtracted in log space.
Prompts use the model's chat template (Qwen3's thinking turned off); a model without one gets a
plain "Answer:" prompt.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import DMRS_LABELS
from harness.methods.base import Fitted, LogSink, Method, no_log
from harness.schema import Example, Turn
from harness.store import atomic_write_text, read_json

INSTRUCTIONS = {
    "dmrs": "You rate psychological defense levels (DMRS) in support conversations. Read the dialogue and "
            "name the defense level of the TARGET utterance. Answer with the level name only.",
    "stress": "Read the post and decide whether its author is under stress. Answer 'stressed' or "
              "'not stressed' only.",
    "stress_expert": "You are a clinical psychologist screening social-media posts for signs of stress. "
                     "Read the post and answer 'stressed' or 'not stressed' only.",
}
CONTENT_FREE = "N/A"


def default_verbalizers(label_names: Sequence[str]) -> list[str]:
    if list(label_names) == DMRS_LABELS:
        return list(DMRS_LABELS)
    if len(label_names) == 2:
        return ["not stressed", "stressed"]
    return [n.replace("_", " ") for n in label_names]


def instruction_text(name: str, label_names: Sequence[str]) -> str:
    """A named instruction (auto, dmrs, stress, stress_expert) or the literal text given."""
    if name == "auto":
        name = "dmrs" if list(label_names) == DMRS_LABELS else "stress"
    return INSTRUCTIONS.get(name, name)


def _row(e: Example) -> dict[str, Any]:
    return {"id": e.id, "group": e.group, "target": e.target, "label": e.label,
            "dialogue": [[t.speaker, t.text] for t in e.dialogue]}


def _example(d: dict[str, Any]) -> Example:
    return Example(id=d["id"], group=d["group"], target=d["target"], label=d["label"],
                   dialogue=tuple(Turn(s, t) for s, t in d["dialogue"]))


class TaskPrompts:
    """How one task's rows become token ids: instruction (+ DMRS guide), exemplars, the row within the token budget,
    the chat template (Qwen3's thinking off; a model without a template gets a plain "Answer:" prompt), and each
    label's continuation (verbalizer + end token). Prompting and SFT share it, so a model is trained on exactly
    the sequences it is later scored on."""

    def __init__(self, cfg: Any, tok: Any, label_names: Sequence[str], verbalizers: Sequence[str] | None = None,
                 instruction: str = "auto"):
        from dataclasses import replace

        from harness.prompt import PromptBuilder

        self.tok, self.label_names = tok, list(label_names)
        self.verbalizers = list(verbalizers or default_verbalizers(label_names))
        self.instruction = instruction_text(instruction, label_names)
        self.guide = ""
        if instruction in ("auto", "dmrs") and self.label_names == DMRS_LABELS:
            from harness.prompt import DMRS_GUIDE

            self.guide = DMRS_GUIDE
        pcfg = replace(cfg.prompt, layout="decoder", guide="none", instruction="")
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


def load_causal_lm(cfg: Any) -> Any:
    """The generative model of `model.name_or_path` for scoring (4-bit with `quant.load_in_4bit`, bf16 on CUDA)."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.methods.hf.model import quantization_kwargs, resolve_model_path, use_cuda

    kwargs = quantization_kwargs(cfg) if cfg.quant.quantized() else {}
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg.model.name_or_path), **kwargs)
    if not cfg.quant.quantized() and use_cuda():
        model = model.to("cuda", dtype=torch.bfloat16)
    return model


def score_rows(model: Any, prompts: TaskPrompts, ids: Sequence[Sequence[int]], batch_size: int,
               progress: str | None = None) -> np.ndarray:
    """(N, K) label log-scores of prompts already encoded by `prompts`."""
    from harness.methods.hf.scoring import label_logprobs

    return label_logprobs(model, ids, prompts.continuations, prompts.tok.pad_token_id, batch_size, progress)


class LabelScorer:
    """A frozen causal LM and the experiment's task prompts: rows in, class log-scores out."""

    def __init__(self, cfg: Any):
        from harness.methods.hf.model import load_tokenizer

        self.cfg = cfg
        self.tok = load_tokenizer(cfg.model)
        self.prompts = TaskPrompts(cfg, self.tok, cfg.data.label_names(), cfg.generative.verbalizers,
                                   cfg.generative.instruction)
        self.model = load_causal_lm(cfg)

    def scores(self, rows: Sequence[Example], exemplars: Sequence[Example] = (), progress: str | None = None
               ) -> np.ndarray:
        ids = [self.prompts.prompt_ids(e, exemplars) for e in rows]
        return score_rows(self.model, self.prompts, ids, self.cfg.generative.score_batch_size, progress)


class PromptFitted(Fitted):
    def __init__(self, method: "PromptMethod", exemplars: list[Example], content_free: np.ndarray | None):
        self.method, self.exemplars, self.content_free = method, exemplars, content_free

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        from harness.methods.hf.scoring import softmax_rows

        k = len(self.method.label_names)
        if not rows:
            return np.zeros((0, k), dtype=np.float32)
        s = self.method.scorer().scores(rows, self.exemplars)
        if self.content_free is not None:
            s = s - self.content_free
        return softmax_rows(s)

    def save(self, out: Path) -> None:
        cf = None if self.content_free is None else self.content_free.tolist()
        atomic_write_text(out / "prompt.json", json.dumps({"exemplars": [_row(e) for e in self.exemplars],
                                                           "content_free": cf}, ensure_ascii=False))

    def info(self) -> dict[str, Any]:
        return {"exemplar_ids": [e.id for e in self.exemplars]}


class PromptMethod(Method):
    name = "prompt"

    def __init__(self, cfg: Any, cache: Path | None = None):
        super().__init__(cfg, cache)
        self._scorer: LabelScorer | None = None

    def scorer(self) -> LabelScorer:
        if self._scorer is None:  # one model for every fold and seed: prompting trains nothing
            self._scorer = LabelScorer(self.cfg)
        return self._scorer

    def draw_exemplars(self, train: Sequence[Example], seed: int) -> list[Example]:
        """k rows per class from the training part (original rows, not augmented variants), seeded."""
        k = self.cfg.generative.shots_per_class
        if not k:
            return []
        rng = random.Random(seed)
        picked: list[Example] = []
        for c in range(len(self.label_names)):
            pool = sorted((e for e in train if e.label == c and e.source_id is None), key=lambda e: e.id)
            picked += rng.sample(pool, min(k, len(pool)))
        rng.shuffle(picked)  # classes interleaved, so the last exemplar's label is no cue
        return picked

    def fit(self, train: Sequence[Example], inner: Sequence[Example], *, seed: int, class_weights: np.ndarray,
            out: Path, log: LogSink = no_log) -> Fitted:
        exemplars = self.draw_exemplars(list(train) + list(inner), seed)
        cf = None
        if self.cfg.generative.calibration == "contextual":
            blank = Example(id="content-free", group="-", target=CONTENT_FREE,
                            dialogue=(Turn("seeker", CONTENT_FREE),))
            cf = self.scorer().scores([blank], exemplars)[0]
        log({"train/exemplars": float(len(exemplars))}, 0)
        return PromptFitted(self, exemplars, cf)

    def load(self, out: Path) -> Fitted:
        d = read_json(out / "prompt.json")
        cf = None if d["content_free"] is None else np.array(d["content_free"], dtype=np.float64)
        return PromptFitted(self, [_example(x) for x in d["exemplars"]], cf)
