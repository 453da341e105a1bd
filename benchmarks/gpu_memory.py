"""GPU memory and speed of the published recipes on Qwen3-8B's real shape (random weights, no hub needed).

    python benchmarks/gpu_memory.py             # print the table (needs CUDA)
    python benchmarks/gpu_memory.py --results   # ... and append it to benchmarks/RESULTS.md with the GPU's name

Three setups, each built by the harness's own model code with `model.name_or_path=qwen3-8b-shape`:

- `seqcls` QLoRA with experiments/psydefdetect_qwen3_8b.yaml's settings: NF4 + double quantisation, LoRA r 128
  on every projection + the score head, gradient checkpointing, bf16;
- `sft` QLoRA with experiments/psydefdetect_sft_qwen3_8b.yaml's settings (causal LM, loss on every position here);
- `embed` 4-bit: frozen Qwen3-8B embeddings, inference only.

Training: `--steps` optimiser steps of batch 2 x 1024 tokens with gradient accumulation 8 (AdamW on the
trainable parameters) after one warm-up step; inference: no-grad forward passes of `--eval-batch` x 1024 tokens.
Reported: the time to build each model (load and quantise) and to build the next fold's model from the same
process's base (`harness.methods.hf.base_models`: adapter unloaded, base reused), peak allocated and reserved GPU memory, tokens/s, and the time a PsyDefConv fold would take at that
speed: the training part of one fold of the 1,864-row official train set (4/5, less the 10% inner split, plus
the recipe's augmentation of 3 variants per row of classes 2,3,4,5,8) for the recipe's 10 epochs, then scoring
the validation fold, the inner split and the 472 test rows, all at `--tokens` tokens a row (1024: an upper bound,
the prompt budget; real prompts are shorter, so real folds are faster). Weights are random: scores mean nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRAIN_ROWS, TEST_ROWS, FOLDS = 1864, 472, 5
AUGMENTED_CLASS_ROWS = 61 + 99 + 84 + 48 + 28  # classes 2,3,4,5,8 of the official train set


def fold_rows(epochs: int) -> tuple[float, float]:
    """(training rows seen in one fold over all epochs, rows scored per fold)."""
    train = TRAIN_ROWS * (FOLDS - 1) / FOLDS * 0.9
    augmented = AUGMENTED_CLASS_ROWS * (FOLDS - 1) / FOLDS * 0.9 * 3
    scored = TRAIN_ROWS / FOLDS + TRAIN_ROWS * (FOLDS - 1) / FOLDS * 0.1 + TEST_ROWS
    return (train + augmented) * epochs, scored


def measure(kind: str, args: argparse.Namespace) -> dict[str, float | str]:
    import torch

    from harness.config import load_config

    recipe = {"seqcls": "psydefdetect_qwen3_8b.yaml", "sft": "psydefdetect_sft_qwen3_8b.yaml",
              "embed": "psydefdetect_qwen3_8b.yaml"}[kind]
    extra = ["model.name_or_path=qwen3-8b-shape", "track.backend=none"]
    if kind == "embed":
        extra += ["method=embed"]
    cfg = load_config(ROOT / "experiments" / recipe, extra)
    from harness.methods.base import TaskInfo

    from peft import get_peft_model

    from harness.methods.base import make_method
    from harness.methods.hf.model import build_model, load_tokenizer
    from harness.methods.hf.sft_trainer import peft_config

    names = cfg.data.label_names()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    if kind == "seqcls":
        model = build_model(cfg.settings(), TaskInfo.of(cfg), load_tokenizer(cfg.model), cfg.train.seeds[0])
    elif kind == "sft":
        model = get_peft_model(make_method(cfg).lm.build_model(), peft_config(cfg.settings()))
    else:
        from harness.methods.hf.embedding import Embedder

        emb = Embedder(cfg.settings(), cfg.prompt.max_length, None)
        emb.pooling()  # loads the model
        model = emb.model
    build_s = time.time() - t0
    device = next(p for p in model.parameters() if p.device.type == "cuda").device
    vocab = 600  # tiny-qwen3's tokenizer ids: valid for any vocabulary
    out: dict[str, float | str] = {"setup": kind, "build_s": build_s,
                                   "trainable_M": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6}
    length = args.tokens
    if kind != "embed":
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)
        model.train()

        def step() -> None:
            for _ in range(cfg.train.grad_accum):
                x = torch.randint(0, vocab, (cfg.train.batch_size, length), device=device)
                labels = torch.randint(0, len(names), (cfg.train.batch_size,), device=device) if kind == "seqcls" else x
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=labels).loss
                (loss / cfg.train.grad_accum).backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()  # warm-up: kernels, allocator, optimiser state
        torch.cuda.synchronize()
        t0 = time.time()
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
        out["train_tok_s"] = args.steps * cfg.train.grad_accum * cfg.train.batch_size * length / (time.time() - t0)
        out["train_peak_alloc_GB"] = torch.cuda.max_memory_allocated() / 2**30
        out["train_peak_reserved_GB"] = torch.cuda.max_memory_reserved() / 2**30
        opt = None
    model.eval()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        x = torch.randint(0, vocab, (args.eval_batch, length), device=device)
        model(input_ids=x, attention_mask=torch.ones_like(x))  # warm-up
        torch.cuda.synchronize()
        t0 = time.time()
        for _ in range(args.eval_steps):
            model(input_ids=x, attention_mask=torch.ones_like(x))
        torch.cuda.synchronize()
    out["infer_tok_s"] = args.eval_steps * args.eval_batch * length / (time.time() - t0)
    out["infer_peak_alloc_GB"] = torch.cuda.max_memory_allocated() / 2**30
    trained, scored = fold_rows(cfg.train.epochs)
    fold_s = scored * args.tokens / out["infer_tok_s"]
    if kind != "embed":
        fold_s += trained * args.tokens / out["train_tok_s"]
    out["fold_min"] = fold_s / 60
    if kind != "embed":  # the next fold's model: the base given back (adapter unloaded) and borrowed again
        from harness.methods.hf import base_models

        base_models.give_back(model)
        t0 = time.time()
        model = (build_model(cfg.settings(), TaskInfo.of(cfg), load_tokenizer(cfg.model), cfg.train.seeds[0])
                 if kind == "seqcls" else get_peft_model(make_method(cfg).lm.build_model(), peft_config(cfg.settings())))
        out["rebuild_s"] = time.time() - t0
        # a 5-fold, 2-seed experiment builds 10 fold models: 9 of them now reuse the base
        out["saved_min"] = 9 * (out["build_s"] - out["rebuild_s"]) / 60
    del model
    torch.cuda.empty_cache()
    base_models_release()
    return out


def base_models_release() -> None:
    from harness.methods.hf import base_models

    base_models.release()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", nargs="*", default=["seqcls", "sft", "embed"], choices=["seqcls", "sft", "embed"])
    ap.add_argument("--steps", type=int, default=2, help="timed optimiser steps per training setup (default 2)")
    ap.add_argument("--tokens", type=int, default=1024, help="tokens a row (default 1024, the recipes' budget)")
    ap.add_argument("--eval-batch", type=int, default=8, help="rows per inference forward pass (default 8)")
    ap.add_argument("--eval-steps", type=int, default=4, help="timed inference passes (default 4)")
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"error: benchmarks/gpu_memory.py needs CUDA; torch {torch.__version__} sees no GPU", file=sys.stderr)
        return 1
    sys.path.insert(0, str(HERE))
    from common import machine, publish

    t0 = time.time()
    rows = []
    for kind in args.setups:
        r = measure(kind, args)
        rows.append(r)
        print(r, flush=True)

    def f(r: dict, key: str, fmt: str = ".1f") -> str:
        return format(r[key], fmt) if key in r else "–"

    cmd = ("python benchmarks/gpu_memory.py " + " ".join(sys.argv[1:])).strip()
    publish([f"### gpu_memory: Qwen3-8B-shaped recipes on {torch.cuda.get_device_name(0)} ({time.strftime('%Y-%m-%d')})",
             "", f"- command: `{cmd}` ({time.time() - t0:.0f} s)", f"- machine: {machine()}",
             f"- batch {2} x {args.tokens} tokens, accumulation 8 (training); {args.eval_batch} x {args.tokens} "
             "(inference); random weights (`qwen3-8b-shape`); a fold: see the script's docstring", "",
             "| setup | trainable (M) | build s | next fold's build s (base reused) | saved per 5x2 experiment (min) "
             "| train peak alloc / reserved (GB) | train tok/s | infer peak (GB) | "
             "infer tok/s | PsyDefConv fold (min, upper bound) |", "|---|---|---|---|---|---|---|---|---|---|",
             *[f"| {r['setup']} | {f(r, 'trainable_M')} | {f(r, 'build_s')} | {f(r, 'rebuild_s', '.2f')} | "
               f"{f(r, 'saved_min')} | {f(r, 'train_peak_alloc_GB', '.2f')} / "
               f"{f(r, 'train_peak_reserved_GB', '.2f')} | {f(r, 'train_tok_s', '.0f')} | {f(r, 'infer_peak_alloc_GB', '.2f')} "
               f"| {f(r, 'infer_tok_s', '.0f')} | {f(r, 'fold_min')} |" for r in rows]], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
