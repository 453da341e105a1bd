"""One base model per process: the per-fold cost of loading the base, before (a fresh load per fold) and after
(the base borrowed and given back), with the OOF probabilities of both runs compared.

    python benchmarks/base_reuse.py            # print the table
    python benchmarks/base_reuse.py --results  # ... and append it to benchmarks/RESULTS.md

Each setup is one `harness cv` (in-process) on synthetic PsyDefConv rows, `--folds` folds x `--seeds` seeds,
with `train.max_steps` kept small so that the load, not the training, is what differs. "Before" is the same
code with `HARNESS_RELOAD_BASE=1`, which turns reuse off. Load seconds are the time spent inside the model
loader (`from_pretrained`, quantisation included); wall seconds are the whole run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, publish  # benchmarks/common.py

SETUPS = {
    "seqcls smollm2 4-bit LoRA": ["method=seqcls", "model.name_or_path=smollm2", "quant.load_in_4bit=true",
                                  "prompt.max_length=128", "train.batch_size=4"],
    "sft smollm2 4-bit LoRA": ["method=sft", "model.name_or_path=smollm2", "quant.load_in_4bit=true",
                               "prompt.max_length=128", "train.batch_size=4", "train.inner_val_fraction=0"],
    "seqcls MiniLM full fine-tuning": ["method=seqcls", "model.name_or_path=minilm", "lora.enabled=false",
                                       "prompt.layout=pair", "prompt.guide=none", "prompt.max_length=48",
                                       "train.batch_size=16"],
}


def run_once(over: list[str], reuse: bool, out: Path) -> tuple[float, float, int, np.ndarray]:
    """(wall s, s inside the model loader, loads, OOF probabilities) of one cv run."""
    from harness.config import load_config
    from harness.methods.hf import base_models, shape
    from harness.run.experiment import run_experiment

    os.environ["HARNESS_RELOAD_BASE"] = "0" if reuse else "1"
    base_models.release()
    real, spent = shape.from_pretrained_or_shape, []

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            spent.append(time.perf_counter() - t)

    shape.from_pretrained_or_shape = timed
    try:
        t0 = time.perf_counter()
        run_experiment(load_config(None, over + [f"run_dir={out}"]), verbose=False)
        wall = time.perf_counter() - t0
    finally:
        shape.from_pretrained_or_shape = real
        base_models.release()
    return wall, sum(spent), len(spent), np.load(out / "oof.npz")["probs"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="train.max_steps per fold (default 2)")
    ap.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_QUIET", "1")
    seeds = "[" + ",".join(str(s) for s in range(1, args.seeds + 1)) + "]"
    common = ["data.synthetic=psydefconv", "data.synthetic_groups=40", "track.backend=none", "lora.r=8",
              f"cv.n_folds={args.folds}", f"train.seeds={seeds}", f"train.max_steps={args.steps}",
              "train.save_adapters=false", "decide.enabled=false"]
    n_models = args.folds * args.seeds
    lines = [f"### base_reuse ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/base_reuse.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- synthetic PsyDefConv (40 groups), {args.folds} folds x {args.seeds} seeds = {n_models} fold models, "
             f"{args.steps} optimiser steps each; before = `HARNESS_RELOAD_BASE=1` (a load per fold), same code", "",
             "| setup | loads before / after | load s per fold, before | after | wall s before | after | "
             "largest OOF difference |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups:
            over = common + SETUPS[name]
            before = run_once(over, False, Path(tmp) / "before")
            after = run_once(over, True, Path(tmp) / "after")
            diff = float(np.abs(before[3] - after[3]).max())
            lines.append(f"| {name} | {before[2]} / {after[2]} | {before[1] / n_models:.2f} | "
                         f"{after[1] / n_models:.2f} | {before[0]:.1f} | {after[0]:.1f} | {diff:.1e} |")
            print(lines[-1], flush=True)
            for d in ("before", "after"):
                shutil.rmtree(Path(tmp) / d, ignore_errors=True)
    publish(lines + [""], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
