"""Every CPU method on the same grouped folds: real Dreaddit and synthetic PsyDefConv.

    python benchmarks/methods.py                       # all methods, both data sets (about 40 min on 2 cores)
    python benchmarks/methods.py --methods tfidf embed # a subset
    python benchmarks/methods.py --results             # append the table to benchmarks/RESULTS.md

Each row is one `harness cv` (in-process, decision layer off, no tracking) in runs/bench-methods/.
Dreaddit: ../shared/data/dreaddit/dreaddit-train.csv (2,838 rows, 5 folds grouped by post_id), on the
settings of experiments/dreaddit_minilm.yaml. Synthetic PsyDefConv: the demo recipe (100 dialogues,
official class mix, 5 folds grouped by dialogue). Figures are OOF (argmax of the seed mean).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))  # as in tests/conftest.py
DREADDIT = SHARED / "data" / "dreaddit" / "dreaddit-train.csv"

# name -> overrides on top of the data set's base config
METHODS: dict[str, list[str]] = {
    "tfidf": ["method=tfidf"],
    "tfidf-svm": ["method=tfidf", "tfidf.classifier=svm"],
    "embed": ["method=embed", "model.name_or_path=minilm", "embed.C=0.1"],
    "seqcls": ["method=seqcls", "model.name_or_path=minilm"],
}
DATASETS: dict[str, tuple[str, list[str]]] = {
    "dreaddit": (str(ROOT / "experiments" / "dreaddit_minilm.yaml"), [f"data.train_path={DREADDIT}"]),
    "psydefconv-synthetic": ("demo_cpu", ["prompt.context_turns=2", "prompt.max_length=96"]),
}


def run(dataset: str, method: str, out: Path) -> dict[str, float | str]:
    from harness.config import load_config
    from harness.run.experiment import run_experiment

    base, extra = DATASETS[dataset]
    run_dir = out / f"{dataset}-{method}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = load_config(base, extra + METHODS[method] + [f"run_dir={run_dir}", "decide.enabled=false",
                                                       "track.backend=none", "data.test_path=null"])
    t0 = time.time()
    m = run_experiment(cfg, verbose=False)
    wall = time.time() - t0
    s = m["summary"]
    folds = m["per_fold"]
    return {"dataset": dataset, "method": method, "macro_f1": s["cv/macro_f1"],
            "official": s["cv/macro_f1_official"], "balanced_accuracy": s["cv/balanced_accuracy"],
            "ci": m["blend"]["macro_f1_ci"], "majority": s["baseline/majority_macro_f1"],
            "fold_seconds": sum(f["seconds"] for f in folds) / len(folds), "wall": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-methods"), help="parent of the run directories")
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_QUIET", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    if "dreaddit" in args.datasets and not DREADDIT.exists():
        sys.exit(f"{DREADDIT} not found (run with --datasets psydefconv-synthetic without ../shared)")
    rows = []
    for dataset in args.datasets:
        for method in args.methods:
            r = run(dataset, method, Path(args.out))
            print(f"{dataset:>22} {method:>9}: macro-F1 {r['macro_f1']:.4f} balanced acc "
                  f"{r['balanced_accuracy']:.4f} ({r['fold_seconds']:.1f}s/fold, {r['wall']:.0f}s)", flush=True)
            rows.append(r)
    cmd = "python benchmarks/methods.py " + " ".join(sys.argv[1:])
    lines = [f"### methods ({time.strftime('%Y-%m-%d')})", "", f"- command: `{cmd.strip()}`",
             f"- machine: {machine()}",
             "- OOF over 5 grouped folds, one seed, decision layer off; time per fold = fit + predict "
             "(after one-off work such as the embedding pass, which `wall` includes)", "",
             "| data | method | macro-F1 (95% CI) | official macro-F1 | balanced acc | majority macro-F1 | "
             "s/fold | wall s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci"]
        lines.append(f"| {r['dataset']} | {r['method']} | {r['macro_f1']:.4f} ({lo:.3f}-{hi:.3f}) | "
                     f"{r['official']:.4f} | {r['balanced_accuracy']:.4f} | {r['majority']:.4f} | "
                     f"{r['fold_seconds']:.1f} | {r['wall']:.0f} |")
    publish(lines, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
