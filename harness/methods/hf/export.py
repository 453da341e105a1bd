"""Fold models in Hugging Face's own formats (`harness export`), still readable by the method's `load`.

- `seqcls`: the PEFT adapter folder (its score head included) or the full model, plus `config.json` with the
  task's `id2label`/`label2id` and pad token, the tokenizer, and `prompt.json` (how a row becomes the text the
  model reads). `merge`: the adapter merged into the base's weights (a plain transformers model). The decision
  (biases δ, temperature T) is folded into the head's weights and bias in the safetensors files themselves.
- label-scored causal LMs (`sft`, `preference`, `prompt`): the adapter (or full model) and tokenizer, plus
  `label_scoring.json`: each label's answer text and a rendered prompt, so the scoring can be reproduced.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.store import atomic_write_text
from harness.data.schema import Example, Turn
from harness.methods.base import ExportOptions, TaskInfo
from harness.methods.hf.settings import HFSettings

PROMPT_FILE = "prompt.json"
LABEL_SCORING_FILE = "label_scoring.json"
HEAD_NAMES = ("score", "classifier", "out_proj")
# PEFT builds the base from the base's own config (2 labels for a hub model): the task's labels come from the
# export's config.json (add quantization_config=BitsAndBytesConfig(...) for the 4-bit base it trained on)
ADAPTER_LOAD = ("from peft import AutoPeftModelForSequenceClassification; from transformers import AutoConfig; "
                "c = AutoConfig.from_pretrained(DIR); "
                "AutoPeftModelForSequenceClassification.from_pretrained(DIR, num_labels=c.num_labels, "
                "id2label=c.id2label, label2id=c.label2id, pad_token_id=c.pad_token_id)")
EXAMPLE_ROW = Example(id="example", group="example", target="I guess it doesn't matter anyway.",
                      dialogue=(Turn("supporter", "How did the meeting go?"),
                                Turn("seeker", "I guess it doesn't matter anyway.")))


def prompt_file(builder: Any, task: TaskInfo) -> dict[str, Any]:
    """How a row becomes model text: the layout settings, the resolved guide and instruction, and one rendered
    example (`text`, and `text_pair` in the pair layout: the pipeline's `{"text": ..., "text_pair": ...}`)."""
    shown = builder.build(EXAMPLE_ROW)
    return {"layout": asdict(task.prompt), "guide": builder.guide, "instruction": builder.instruction,
            "example_row": {"context": [[t.speaker, t.text] for t in EXAMPLE_ROW.context],
                            "target": EXAMPLE_ROW.target},
            "example_input": {"text": shown.text, "text_pair": shown.text_pair}}


def _head_keys(shapes: dict[str, tuple[int, ...]], n_labels: int) -> tuple[str, str | None] | None:
    """The classification head's output weight (K, H) and bias (K,) keys among a file's tensor shapes, or None
    when no single such layer is there (then nothing is folded)."""
    found = [k for k, shape in shapes.items() if k.endswith(".weight") and len(shape) == 2
             and shape[0] == n_labels and k.split(".")[-2] in HEAD_NAMES]
    if len(found) != 1:
        return None
    bias = found[0].removesuffix(".weight") + ".bias"
    return found[0], bias if bias in shapes else None


def fold_into_head(folder: Path, n_labels: int, delta: np.ndarray, temperature: float) -> bool:
    """Scores (z + δ) / T written into the head in the folder's safetensors files: weight / T, (bias + δ) / T.
    argmax of the new scores is argmax(log p + δ), the decision's rule without a gate. False (nothing changed)
    when the head has no bias and δ is not one constant (a shift of every class changes no argmax). Only the
    file holding the head is read whole (a merged 8B model's other shards are only listed)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    delta = np.asarray(delta, dtype=np.float64)
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            keys = _head_keys({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, n_labels)
        if keys is None:
            continue
        weight, bias = keys
        if bias is None and np.ptp(delta) > 1e-12:
            return False
        tensors = load_file(str(path))
        w = tensors[weight]
        tensors[weight] = (w.double() / temperature).to(w.dtype).contiguous()
        if bias is not None:
            b = tensors[bias]
            tensors[bias] = ((b.double() + torch.from_numpy(delta)) / temperature).to(b.dtype).contiguous()
        save_file(tensors, str(path), metadata={"format": "pt"})
        return True
    return False


def task_config(settings: HFSettings, task: TaskInfo, tokenizer: Any) -> Any:
    """The base model's config with the task's labels and the pad token (what the fold's model was built with)."""
    from transformers import AutoConfig

    from harness.methods.hf.model import resolve_model_path

    names = list(task.label_names)
    config = AutoConfig.from_pretrained(resolve_model_path(settings.model.name_or_path), num_labels=len(names),
                                        id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    config.pad_token_id = tokenizer.pad_token_id
    if hasattr(config, "quantization_config"):  # the export's base is loaded as the user chooses
        delattr(config, "quantization_config")
    return config


def _merged(settings: HFSettings, task: TaskInfo, tokenizer: Any, saved: Path) -> Any:
    """The fold's adapter merged into the base loaded at its checkpoint's precision (not quantised)."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from harness.methods.hf.model import resolve_model_path

    config = task_config(settings, task, tokenizer)
    base = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(settings.model.name_or_path),
                                                              config=config, dtype="auto")
    return PeftModel.from_pretrained(base, str(saved)).merge_and_unload()


def export_seqcls(settings: HFSettings, task: TaskInfo, tokenizer: Any, builder: Any, saved: Path, out: Path,
                  options: ExportOptions) -> dict[str, Any]:
    """A seqcls fold model as transformers / PEFT load it (see the module docstring)."""
    merge = options.merge and settings.lora.enabled
    if merge:
        _merged(settings, task, tokenizer, saved).save_pretrained(out)
    else:
        shutil.copytree(saved, out)
        if settings.lora.enabled:  # an adapter folder: the labelled config beside it, for the base it names
            task_config(settings, task, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    atomic_write_text(out / PROMPT_FILE, json.dumps(prompt_file(builder, task), indent=1) + "\n")
    folded = options.fold_delta is not None and fold_into_head(out, len(task.label_names), options.fold_delta,
                                                               options.fold_temperature)
    adapter = settings.lora.enabled and not merge
    loads_with = (ADAPTER_LOAD if adapter else
                  'from transformers import pipeline; pipeline("text-classification", model=DIR)')
    return {"format": "peft-adapter" if adapter else "transformers", "loads_with": loads_with, "folded": folded,
            "settings": {"lora.enabled": False, "quant.load_in_4bit": False, "quant.load_in_8bit": False}
            if merge else {}}


def export_label_scored(tokenizer: Any, verbalizers: list[str], rendered: str, saved: Path, out: Path
                        ) -> dict[str, Any]:
    """A label-scored causal LM: its saved folder, the tokenizer, and what scores a row (each label's answer
    text after the rendered prompt; probabilities are the softmax of the answers' summed log-probabilities)."""
    shutil.copytree(saved, out)
    tokenizer.save_pretrained(out)
    atomic_write_text(out / LABEL_SCORING_FILE, json.dumps({
        "verbalizers": verbalizers, "example_prompt": rendered,
        "rule": "p(label) = softmax over labels of the summed log-probabilities of the label's answer tokens "
                "after the prompt"}, indent=1) + "\n")
    return {"format": "peft-adapter+label-scoring", "loads_with": "harness.load(DIR)", "folded": False,
            "settings": {}}
