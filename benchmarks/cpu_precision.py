"""bf16 autocast against fp32 on a CPU: time per fold and out-of-fold score, same folds, same seed.

    python benchmarks/cpu_precision.py --results             # seqcls (MiniLM) and setfit, the demo recipe's data
    python benchmarks/cpu_precision.py --methods seqcls --groups 40

Each run is `harness cv` of the demo recipe (synthetic PsyDefConv, grouped 5-fold CV, MiniLM) with
`train.precision` fp32 then bf16; the decision layer is off (the comparison is of the models). It reports the
mean training seconds per fold, the OOF official macro-F1 of each, and the paired bootstrap difference (bf16 -
fp32) with its 95% CI on the same rows. Whether the CPU has avx512_bf16 (or AMX) is printed: without it bf16 is
emulated and slow. `train.precision: auto` should pick bf16 on such a CPU only where it is faster at a score
within the CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from common import machine, publish  # noqa: E402

SETTINGS = {"seqcls": [], "setfit": ["setfit.pairs_per_row=4", "setfit.epochs=1"]}


def cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) or "no bf16 instructions"


def run(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict:
    from harness.config import load_config
    from harness.run.experiment import run_experiment
    from harness.run.rundir import RunDir

    run_dir = work / f"{method}-{precision}"
    cfg = load_config("demo_cpu", [f"method={method}", f"train.precision={precision}", f"run_dir={run_dir}",
                                   f"data.synthetic_groups={args.groups}", "track.backend=none",
                                   "decide.enabled=false", *SETTINGS[method]])
    t0 = time.time()
    metrics = run_experiment(cfg, verbose=False)
    seconds = time.time() - t0
    oof = RunDir(run_dir).read_oof()
    return {"method": method, "precision": precision, "seconds": seconds,
            "fold_seconds": float(np.mean([f["seconds"] for f in metrics["per_fold"]])),
            "score": metrics["summary"]["cv/macro_f1_official"], "labels": oof.labels,
            "pred": oof.probs.mean(0).argmax(-1), "score_labels": cfg.data.score_labels,
            "k": len(cfg.data.label_names())}


def main() -> None:
    from harness.core.metrics import paired_bootstrap

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="seqcls,setfit")
    p.add_argument("--groups", type=int, default=80, help="synthetic dialogues (default 80, the demo's)")
    p.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            fp32, bf16 = (run(method, prec, args, Path(tmp)) for prec in ("fp32", "bf16"))
            b = paired_bootstrap(fp32["labels"], fp32["pred"], bf16["pred"], fp32["k"], "macro_f1_official",
                                 fp32["score_labels"], n_boot=2000)
            rows.append((method, fp32, bf16, b))
            print(f"{method}: fp32 {fp32['fold_seconds']:.1f} s/fold, {fp32['score']:.4f}; bf16 "
                  f"{bf16['fold_seconds']:.1f} s/fold, {bf16['score']:.4f}; difference {b['delta']:+.4f} "
                  f"(95% CI {b['ci_low']:+.4f}..{b['ci_high']:+.4f})", flush=True)
    lines = [f"\n### CPU precision: bf16 autocast against fp32 ({time.strftime('%Y-%m-%d')})\n",
             f"- command: `python benchmarks/cpu_precision.py {' '.join(sys.argv[1:])}`",
             f"- machine: {machine()}; CPU bf16 support: {cpu_flags()}",
             f"- the demo recipe (MiniLM, synthetic PsyDefConv, {args.groups} dialogues, grouped 5-fold CV, 2 epochs;"
             " setfit with 4 pairs per row, 1 epoch), decision layer off; seconds are training + scoring per fold\n",
             "| method | fp32 s/fold | bf16 s/fold | speed-up | fp32 OOF official macro-F1 | bf16 | bf16 - fp32 (95% CI) |",
             "|---|---|---|---|---|---|---|"]
    for method, a, b, d in rows:
        lines.append(f"| {method} | {a['fold_seconds']:.1f} | {b['fold_seconds']:.1f} | "
                     f"{a['fold_seconds'] / b['fold_seconds']:.2f}x | {a['score']:.4f} | {b['score']:.4f} | "
                     f"{d['delta']:+.4f} ({d['ci_low']:+.4f}..{d['ci_high']:+.4f}) |")
    publish(lines, args.results)


if __name__ == "__main__":
    main()
