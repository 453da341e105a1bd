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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.methods.base import ExportOptions, Fitted, FoldContext, Method, TaskInfo
from harness.methods.hf.generative import CONTENT_FREE, LabelScorer, example_from_json, example_json
from harness.data.schema import Example, Turn
from harness.core.store import atomic_write_text, read_json

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
        atomic_write_text(out / "prompt.json", json.dumps({"exemplars": [example_json(e) for e in self.exemplars],
                                                           "content_free": cf}, ensure_ascii=False))

    def info(self) -> dict[str, Any]:
        return {"exemplar_ids": [e.id for e in self.exemplars]}


class PromptMethod(Method):
    name = "prompt"

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self._scorer: LabelScorer | None = None

    def scorer(self) -> LabelScorer:
        if self._scorer is None:  # one model for every fold and seed: prompting trains nothing
            self._scorer = LabelScorer(self.settings, self.task)
        return self._scorer

    def draw_exemplars(self, train: Sequence[Example], seed: int) -> list[Example]:
        """k rows per class from the training part (original rows, not augmented variants), seeded."""
        k = self.settings.generative.shots_per_class
        if not k:
            return []
        rng = random.Random(seed)
        picked: list[Example] = []
        for c in range(len(self.label_names)):
            pool = sorted((e for e in train if e.label == c and e.source_id is None), key=lambda e: e.id)
            picked += rng.sample(pool, min(k, len(pool)))
        rng.shuffle(picked)  # classes interleaved, so the last exemplar's label is no cue
        return picked

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        exemplars = self.draw_exemplars(list(train) + list(inner), ctx.seed)
        cf = None
        if self.settings.generative.calibration == "contextual":
            blank = Example(id="content-free", group="-", target=CONTENT_FREE,
                            dialogue=(Turn("seeker", CONTENT_FREE),))
            cf = self.scorer().scores([blank], exemplars)[0]
        ctx.log({"train/exemplars": float(len(exemplars))}, 0)
        return PromptFitted(self, exemplars, cf)

    def export_model(self, saved: Path, out: Path, options: ExportOptions) -> dict[str, Any]:
        """The fold's exemplars, the tokenizer and the label scoring (the model is the untouched base)."""
        from harness.methods.hf.export import EXAMPLE_ROW, export_label_scored
        from harness.methods.hf.generative import TaskPrompts
        from harness.methods.hf.model import load_tokenizer

        g, tok = self.settings.generative, load_tokenizer(self.settings.model)
        prompts = TaskPrompts(self.task.prompt, tok, self.label_names, g.verbalizers, g.instruction, self.task.facts)
        exemplars = [example_from_json(x) for x in read_json(saved / "prompt.json")["exemplars"]]
        return export_label_scored(tok, prompts.verbalizers, prompts.user_text(EXAMPLE_ROW, exemplars), saved, out)

    def load(self, out: Path) -> Fitted:
        d = read_json(out / "prompt.json")
        cf = None if d["content_free"] is None else np.array(d["content_free"], dtype=np.float64)
        return PromptFitted(self, [example_from_json(x) for x in d["exemplars"]], cf)
