"""`method: embed`: frozen embeddings from any HF encoder or decoder + a class-weighted logistic regression.

The encoder runs once per distinct row text for the whole experiment (every fold and seed reuses
it): embeddings are cached by content, in memory and under the run directory's `cache/`, so a
resumed run or `predict --test` on a file that shares rows does not embed them again.

Input follows the prompt settings: with `prompt.layout: pair` the target and its recent context
(`prompt.context_turns`, budgeted to `prompt.max_length` tokens) are embedded separately and
concatenated, which keeps the target's signal from being averaged away by the context; with
`decoder` the whole prompt is one text. Pooling: mean for encoders, last real token for decoders.
Qwen3-8B in 4 bits works through the same `quant.*` keys as `seqcls` (GPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.rundir import RunDir

import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.methods.base import Fitted, FoldContext, Method, TaskInfo
from harness.methods.embed.config import EmbedConfig
from harness.methods.linear import LinearHead
from harness.data.schema import Example, content_digest
from harness.core.store import atomic_write_npz


class Embedder:
    """Text -> vector with one frozen model, cached by content (memory + optional folder of npz chunks)."""

    def __init__(self, settings: EmbedConfig, max_length: int, cache: Path | None):
        self.settings = self.opts = settings  # `embed:` (or `setfit:`) keys and the shared model/quant sections
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

    def tokenizer(self) -> Any:
        if self.tok is None:
            from harness.methods.hf.model import load_tokenizer

            self.tok = load_tokenizer(self.settings.model)
            self.tok.padding_side = "right"  # last-token pooling reads position (length - 1)
        return self.tok

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig

        from harness.methods.hf.model import quantization_kwargs, resolve_model_path, use_cuda
        from harness.methods.hf.shape import from_pretrained_or_shape

        path = resolve_model_path(self.settings.model.name_or_path)
        archs = getattr(AutoConfig.from_pretrained(path), "architectures", None) or []
        self.decoder = any(a.endswith("ForCausalLM") for a in archs)
        kwargs = quantization_kwargs(self.settings) if self.settings.quant.quantized() else {}
        self.model = from_pretrained_or_shape("base", self.settings.model.name_or_path, path, **kwargs)
        if not self.settings.quant.quantized() and use_cuda():
            self.model = self.model.to("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
        self.model.eval()

    def pooling(self) -> str:
        if self.model is None:
            self._load()
        if self.opts.pooling != "auto":
            return self.opts.pooling
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
        bs = self.opts.batch_size
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
                if self.opts.normalize:
                    v = torch.nn.functional.normalize(v, dim=-1)
                v = v.cpu().numpy().astype(np.float32)
                if out is None:
                    out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
                out[idx] = v
        assert out is not None
        return out

    def close(self) -> None:
        self.model = None


class EmbedFitted(Fitted):
    def __init__(self, method: "EmbedMethod", head: LinearHead, mean: np.ndarray, scale: np.ndarray,
                 info: dict[str, Any]):
        self.method, self.head, self.mean, self.scale, self._info = method, head, mean, scale, info

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        return self.head.predict_proba((self.method.features(rows) - self.mean) / self.scale)

    def save(self, out: Path) -> None:
        atomic_write_npz(out / "head.npz", mean=self.mean, scale=self.scale, **self.head.arrays("head_"))

    def info(self) -> dict[str, Any]:
        return self._info


class EmbedMethod(Method):
    name = "embed"

    def check_run(self, run: "RunDir") -> None:
        """The model must be one this machine can hold (before the run directory is claimed)."""
        from harness.methods.hf.model import check_model_here

        check_model_here(self.settings.model.name_or_path, load_config=True)

    def __init__(self, settings: Any, task: TaskInfo, cache: Path | None = None):
        super().__init__(settings, task, cache)
        self.embedder = Embedder(settings, task.prompt.max_length, cache)
        self._builder: Any = None

    def builder(self) -> Any:
        if self._builder is None:
            from harness.data.prompt import PromptBuilder

            self._builder = PromptBuilder(self.task.prompt, self.embedder.tokenizer(), self.label_names,
                                          self.task.facts)
        return self._builder

    def _texts(self, rows: Sequence[Example]) -> tuple[list[str], list[str] | None]:
        """Per row: the text to embed, and (pair layout with context) the context text."""
        prompts = [self.builder().build(e) for e in rows]
        if self.task.prompt.layout != "pair":
            return [p.text for p in prompts], None
        if not self.task.prompt.context_turns:
            return [p.text for p in prompts], None
        return [p.text for p in prompts], [p.text_pair or "" for p in prompts]

    def features(self, rows: Sequence[Example], progress: bool = False, embedder: Embedder | None = None) -> np.ndarray:
        """(rows, D) features: the target's (or whole prompt's) embedding, then the context's (pair layout).
        `embedder`: another body than the method's frozen one (setfit's fold-tuned body)."""
        embedder = embedder or self.embedder
        texts, contexts = self._texts(rows)
        x = embedder.embed(texts, progress)
        if contexts is None:
            return x
        present = [c for c in contexts if c]
        ctx = np.zeros_like(x)
        if present:
            vec = embedder.embed(present, progress)
            ctx[[i for i, c in enumerate(contexts) if c]] = vec
        return np.concatenate([x, ctx], 1)

    def prepare(self, rows: Sequence[Example], progress: bool = False) -> str:
        t0 = time.time()
        before = len(self.embedder.memo)
        x = self.features(rows, progress)
        return (f"embed: {x.shape[1]}-d features ({self.embedder.pooling()} pooling) for {len(rows)} rows; "
                f"{len(self.embedder.memo) - before} texts embedded in {time.time() - t0:.1f}s, rest from the cache")

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        rows = list(train) + list(inner)  # no checkpoint to choose: the inner rows are training data here
        t0 = time.time()
        x = self.features(rows)
        y = np.array([e.label for e in rows], dtype=np.int64)
        mean = x.mean(0)
        scale = np.maximum(x.std(0), 1e-6)  # standardised features: one C suits any model's embedding scale
        e = self.settings
        head = LinearHead.fit_logreg((x - mean) / scale, y, ctx.class_weights, len(self.label_names), e.C,
                                     e.max_iter, ctx.seed)
        info = {"features": int(x.shape[1]), "fit_seconds": round(time.time() - t0, 3)}
        ctx.log({"train/features": float(x.shape[1]), "train/fit_seconds": info["fit_seconds"]}, 0)
        return EmbedFitted(self, head, mean, scale, info)

    def load(self, out: Path) -> Fitted:
        z = np.load(out / "head.npz", allow_pickle=False)
        return EmbedFitted(self, LinearHead.from_arrays(z, "head_"), z["mean"], z["scale"], {})
