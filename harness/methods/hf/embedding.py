"""Rows as sentence embeddings, and a standardised logistic head on them: what `embed` and `setfit` share, by
composition.

- `Embedder`: text -> vector with one model (frozen, or a fold's tuned body), cached by content in memory and
  optionally in a folder of npz chunks, so a resumed run or `predict --test` does not embed a row twice.
- `RowFeatures`: a row's features as the prompt layout says: with `prompt.layout: pair` and context turns, the
  target's embedding then its context's (embedded separately, so the target's signal is not averaged away);
  otherwise the whole prompt's.
- `StandardHead`: a class-weighted logistic regression on standardised features (one C suits any model's scale).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from harness.core.store import atomic_write_npz
from harness.data.schema import Example, content_digest
from harness.methods.hf.settings import EmbeddingSettings
from harness.methods.linear import LinearHead

if TYPE_CHECKING:
    from harness.methods.base import TaskInfo


class Embedder:
    """Text -> vector with one frozen model, cached by content (memory + optional folder of npz chunks)."""

    def __init__(self, settings: EmbeddingSettings, max_length: int, cache: Path | None):
        self.settings = settings  # `embed:` (or `setfit:`) keys and the shared model/quant sections
        self.max_length = max_length
        self.model: Any = None
        self.tok: Any = None
        self.memo: dict[str, np.ndarray] = {}
        self.settings_key = content_digest([settings.model.name_or_path, settings.pooling, max_length,
                                            settings.quant.load_in_4bit, settings.quant.load_in_8bit])[:16]
        self.folder = cache / "embed" / self.settings_key if cache else None
        if self.folder and self.folder.exists():
            for chunk in sorted(self.folder.glob("*.npz")):
                try:
                    z = np.load(chunk, allow_pickle=False)
                    self.memo.update(zip([str(k) for k in z["keys"]], z["vectors"]))
                except (OSError, ValueError, KeyError):  # a torn or foreign file: recompute those rows
                    continue

    @classmethod
    def on_body(cls, settings: EmbeddingSettings, max_length: int, model: Any, tokenizer: Any) -> Embedder:
        """An Embedder over a model already in memory (setfit's fold-tuned body), with no disk cache: its vectors
        belong to that body only."""
        emb = cls(settings, max_length, None)
        emb.model, emb.tok, emb.decoder = model.eval(), tokenizer, False
        emb.tok.padding_side = "right"
        return emb

    def tokenizer(self) -> Any:
        if self.tok is None:
            from harness.methods.hf.model import load_tokenizer

            self.tok = load_tokenizer(self.settings.model)
            self.tok.padding_side = "right"  # last-token pooling reads position (length - 1)
        return self.tok

    def _load(self) -> None:
        from transformers import AutoConfig

        from harness.methods.hf import base_models
        from harness.methods.hf.model import base_key, resolve_model_path

        path = resolve_model_path(self.settings.model.name_or_path)
        archs = getattr(AutoConfig.from_pretrained(path), "architectures", None) or []
        self.decoder = any(a.endswith("ForCausalLM") for a in archs)
        # frozen: one load serves every run and tune trial of this process with the same model settings
        self.model = base_models.shared(base_key("embed", self.settings), lambda: self._load_frozen(path))

    def _load_frozen(self, path: str) -> Any:
        import torch

        from harness.methods.hf.model import quantization_kwargs, use_cuda
        from harness.methods.hf.shape import from_pretrained_or_shape

        kwargs = quantization_kwargs(self.settings) if self.settings.quant.quantized() else {}
        model = from_pretrained_or_shape("base", self.settings.model.name_or_path, path, **kwargs)
        if not self.settings.quant.quantized() and use_cuda():
            model = model.to("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
        return model.eval()

    def pooling(self) -> str:
        if self.model is None:
            self._load()
        if self.settings.pooling != "auto":
            return self.settings.pooling
        return "last" if self.decoder else "mean"

    def key(self, text: str) -> str:
        return content_digest([self.settings_key, text])

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), D) float32; only texts not seen before run through the model."""
        keys = [self.key(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.memo}.items())
        if todo:
            vecs = self._forward([t for _, t in todo], progress)
            fresh = dict(zip([k for k, _ in todo], vecs))
            self.memo.update(fresh)
            if self.folder:
                atomic_write_npz(self.folder / f"{uuid.uuid4().hex}.npz", keys=np.array(list(fresh)),
                                 vectors=np.stack(list(fresh.values())))
        return np.stack([self.memo[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def _forward(self, texts: list[str], progress: bool) -> np.ndarray:
        import torch

        from harness.core.progress import progress_bar

        pooling = self.pooling()
        tok = self.tokenizer()
        device = next(self.model.parameters()).device
        enc = tok(texts, add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in enc], kind="stable")[::-1]  # length-sorted batches: little padding
        out: np.ndarray | None = None
        bs = self.settings.batch_size
        with torch.no_grad():
            for s in progress_bar(range(0, len(order), bs), desc="embed", enable=progress):
                idx = order[s:s + bs]
                batch = tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
                mask = batch["attention_mask"].to(device)
                h = self.model(input_ids=batch["input_ids"].to(device), attention_mask=mask).last_hidden_state.float()
                if pooling == "mean":
                    v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                elif pooling == "last":
                    v = h[torch.arange(len(idx), device=device), mask.sum(1) - 1]
                else:
                    v = h[:, 0]
                if self.settings.normalize:
                    v = torch.nn.functional.normalize(v, dim=-1)
                v = v.cpu().numpy().astype(np.float32)
                if out is None:
                    out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
                out[idx] = v
        assert out is not None
        return out

    def close(self) -> None:
        self.model = None


class RowFeatures:
    """The texts a row is embedded as, and its feature vector, under the task's prompt layout."""

    def __init__(self, task: TaskInfo, tokenizer: Callable[[], Any]):
        self.task, self._tokenizer = task, tokenizer
        self._builder: Any = None

    def builder(self) -> Any:
        if self._builder is None:
            from harness.data.prompt import PromptBuilder

            self._builder = PromptBuilder(self.task.prompt, self._tokenizer(), list(self.task.label_names),
                                          self.task.facts)
        return self._builder

    def texts(self, rows: Sequence[Example]) -> tuple[list[str], list[str] | None]:
        """Per row: the text to embed, and (pair layout with context) the context text."""
        prompts = [self.builder().build(e) for e in rows]
        if self.task.prompt.layout != "pair" or not self.task.prompt.context_turns:
            return [p.text for p in prompts], None
        return [p.text for p in prompts], [p.text_pair or "" for p in prompts]

    def features(self, rows: Sequence[Example], embedder: Embedder, progress: bool = False) -> np.ndarray:
        """(rows, D) features: the target's (or whole prompt's) embedding, then the context's (pair layout)."""
        texts, contexts = self.texts(rows)
        x = embedder.embed(texts, progress)
        if contexts is None:
            return x
        present = [c for c in contexts if c]
        ctx = np.zeros_like(x)
        if present:
            ctx[[i for i, c in enumerate(contexts) if c]] = embedder.embed(present, progress)
        return np.concatenate([x, ctx], 1)


class StandardHead:
    """Standardised features (mean and scale of the fitting rows) into a class-weighted logistic regression."""

    def __init__(self, head: LinearHead, mean: np.ndarray, scale: np.ndarray):
        self.head, self.mean, self.scale = head, mean, scale

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, class_weights: np.ndarray, n_labels: int, C: float, max_iter: int,
            seed: int) -> StandardHead:
        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        return cls(LinearHead.fit_logreg((x - mean) / scale, y, class_weights, n_labels, C, max_iter, seed), mean,
                   scale)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.head.predict_proba((x - self.mean) / self.scale)

    def save(self, path: Path) -> None:
        atomic_write_npz(path, mean=self.mean, scale=self.scale, **self.head.arrays("head_"))

    @classmethod
    def load(cls, path: Path) -> StandardHead:
        z = np.load(path, allow_pickle=False)
        return cls(LinearHead.from_arrays(z, "head_"), z["mean"], z["scale"])
