"""Training throughput: the harness's batching against naive pad-to-max_length, and its per-fold overhead.

    python benchmarks/train_throughput.py                      # CPU, tiny-qwen3, real PsyDefConv lengths
    python benchmarks/train_throughput.py --device cuda --model Qwen/Qwen3-8B --4bit   # on a GPU box

Prompts are built from the real dialogues of ../shared/data/psydefconv/test_unlabeled.json
(472 items, 1-54 turns) with labels drawn from the official class mix, so lengths are real.
Prints measured figures and, with --results, appends them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "psydefconv" / "test_unlabeled.json"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--model", default="tiny-qwen3")
    ap.add_argument("--4bit", dest="four_bit", action="store_true")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rows", type=int, default=472, help="rows per epoch (default: all 472)")
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark uses the real dialogue lengths")
    os.environ.setdefault("HARNESS_QUIET", "1")

    import torch
    from transformers import PrinterCallback, Trainer, set_seed

    from harness.config import load_config
    from harness.methods.base import TaskInfo
    from harness.methods.hf.model import quiet_transformers
    from harness.data.load import load_file
    from harness.data.weights import class_weights
    from harness.methods.hf.model import build_model, load_tokenizer
    from harness.data.prompt import PromptBuilder
    from harness.data.synthetic import OFFICIAL_COUNTS
    from harness.methods.hf.trainer import (ImbalanceTrainer, make_collator, predict_proba, to_features,
                                 training_arguments)

    quiet_transformers()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    cfg = load_config(None, {"model.name_or_path": args.model, "data.synthetic": "psydefconv",
                             "prompt.max_length": args.max_length, "quant.load_in_4bit": args.four_bit,
                             "train.batch_size": args.batch_size, "train.epochs": 1, "train.warmup_ratio": 0,
                             "lora.r": 8, "lora.alpha": 16, "train.eval_batch_size": 32})
    names = cfg.data.label_names()
    rows = load_file(DATA, cfg, require_label=False)[: args.rows]
    rng = random.Random(0)
    labels = rng.choices(range(9), weights=OFFICIAL_COUNTS, k=len(rows))
    tok = load_tokenizer(cfg.model)
    ids, stats = PromptBuilder(cfg.prompt, tok, names).encode(rows)
    lens = np.array(stats.lengths)
    feats = to_features(ids, labels)
    out = ROOT / "runs" / "bench_tmp"

    def pad_fraction(batches: list[list[int]], pad_to: int | None) -> float:
        real = padded = 0
        for b in batches:
            width = pad_to or int(-(-max(lens[b]) // 8) * 8)
            real += int(lens[b].sum())
            padded += width * len(b)
        return 1 - real / padded

    # 1) padded-token fraction of the training batches
    set_seed(0)
    model = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
    tr = ImbalanceTrainer(model=model, args=training_arguments(cfg, out, 0, False, "fp32"), train_dataset=feats,
                          data_collator=make_collator(tok, 8), class_weights=class_weights(labels, 9, cfg.loss))
    grouped = list(tr._get_train_sampler())  # noqa: SLF001  the sampler Trainer really uses
    grouped_batches = [grouped[i:i + args.batch_size] for i in range(0, len(grouped), args.batch_size)]
    random_order = list(np.random.default_rng(0).permutation(len(ids)))
    random_batches = [random_order[i:i + args.batch_size] for i in range(0, len(ids), args.batch_size)]
    frac = {"harness (length-grouped, pad to longest, x8)": pad_fraction(grouped_batches, None),
            "random order, pad to longest": pad_fraction(random_batches, None),
            f"naive pad to max_length={args.max_length}": pad_fraction(random_batches, args.max_length)}

    # 2) wall time per epoch: harness batching vs naive pad-to-max_length
    def epoch(collator, sampling: str) -> tuple[float, int]:
        set_seed(0)
        m = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
        targs = training_arguments(cfg, out, 0, False, "fp32")
        targs.train_sampling_strategy = sampling
        t = ImbalanceTrainer(model=m, args=targs, train_dataset=feats, data_collator=collator)
        t.remove_callback(PrinterCallback)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        t.train()
        return time.perf_counter() - t0, (torch.cuda.max_memory_allocated() if args.device == "cuda" else 0)

    from transformers import DataCollatorWithPadding

    naive = DataCollatorWithPadding(tok, padding="max_length", max_length=args.max_length)
    t_harness, mem = epoch(make_collator(tok, 8), "group_by_length")
    t_naive, mem_naive = epoch(naive, "random")

    # 3) per-fold overhead against a bare Trainer on the same data and steps
    def fold(bare: bool) -> float:
        set_seed(0)
        t0 = time.perf_counter()
        m = build_model(cfg.settings(), TaskInfo.of(cfg), tok, cfg.train.seeds[0])
        targs = training_arguments(cfg, out, 0, False, "fp32")
        if bare:
            t = Trainer(model=m, args=targs, train_dataset=feats, data_collator=make_collator(tok, 8))
            t.train()
            t.predict(to_features(ids))
        else:
            t = ImbalanceTrainer(model=m, args=targs, train_dataset=feats, data_collator=make_collator(tok, 8),
                                 class_weights=class_weights(labels, 9, cfg.loss))
            t.train()
            predict_proba(m, ids, make_collator(tok, 8), cfg.train.eval_batch_size)
        return time.perf_counter() - t0

    t_bare, t_ours = fold(True), fold(False)
    tokens = int(lens.sum())
    lines = [
        f"### train_throughput ({time.strftime('%Y-%m-%d')})",
        "",
        f"- command: `python benchmarks/train_throughput.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- machine: {machine()}",
        f"- data: {len(rows)} real PsyDefConv prompts, model {args.model}{' 4-bit' if args.four_bit else ''}, "
        f"budget {args.max_length}, batch {args.batch_size}; prompt tokens p50 {int(np.median(lens))}, "
        f"p95 {int(np.percentile(lens, 95))}, max {lens.max()}",
        "",
        "| batching | padded-token fraction |",
        "|---|---|",
        *[f"| {k} | {v:.1%} |" for k, v in frac.items()],
        "",
        "| one epoch | seconds | real tokens/s |" + (" peak GPU memory |" if args.device == "cuda" else ""),
        "|---|---|---|" + ("---|" if args.device == "cuda" else ""),
        f"| harness batching | {t_harness:.1f} | {tokens / t_harness:,.0f} |"
        + (f" {mem / 2**30:.1f} GiB |" if args.device == "cuda" else ""),
        f"| naive pad to {args.max_length} | {t_naive:.1f} | {tokens / t_naive:,.0f} |"
        + (f" {mem_naive / 2**30:.1f} GiB |" if args.device == "cuda" else ""),
        "",
        f"speed-up of the harness batching: {t_naive / t_harness:.2f}x",
        "",
        f"per-fold (build + 1 epoch + predict): harness {t_ours:.1f}s, bare Trainer {t_bare:.1f}s, "
        f"ratio {t_ours / t_bare:.2f}",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.results:
        res = ROOT / "benchmarks" / "RESULTS.md"
        prev = res.read_text() if res.exists() else "# Benchmark results\n\nEach section names the command and the machine.\n\n"
        res.write_text(prev + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
