"""Generative classifiers on real Dreaddit: SmolLM2-135M-Instruct zero-shot against the same model instruction-tuned.

    python benchmarks/generative.py                  # every row, 5 grouped folds (about 2 h on 2 CPU cores)
    python benchmarks/generative.py --rows 600       # a quick look
    python benchmarks/generative.py --results        # append the table to benchmarks/RESULTS.md

Both runs use the recipes as shipped (experiments/dreaddit_zeroshot.yaml, experiments/dreaddit_sft.yaml:
same instruction, verbalizers and prompt budget; SFT trains `train.max_steps` LoRA steps per fold), with the
decision layer off, so the figures are plain argmax of label scores. The two runs share their folds, so
the difference is paired (harness.posthoc.compare): the same bootstrap resamples of the same OOF rows score both.
Issue 11's bar: SFT beats zero-shot by at least 0.10 balanced accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))
DREADDIT = SHARED / "data" / "dreaddit" / "dreaddit-train.csv"
RECIPES = {"zero-shot": "dreaddit_zeroshot.yaml", "sft": "dreaddit_sft.yaml"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="use the first N rows (default: all 2,838)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-generative"), help="parent of the run directories")
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    ap.add_argument("overrides", nargs="*", default=[], help="section.key=value for the SFT run (e.g. train.max_steps=80)")
    args = ap.parse_args()
    if not DREADDIT.exists():
        sys.exit(f"{DREADDIT} not found: this benchmark uses the real Dreaddit training file")
    os.environ.setdefault("HARNESS_QUIET", "1")
    from harness.posthoc.compare import compare_runs, format_comparison, load_comparable
    from harness.config import load_config
    from harness.run.experiment import run_experiment

    common = [f"data.train_path={DREADDIT}", "decide.enabled=false", "track.backend=none", f"cv.n_folds={args.folds}"]
    if args.rows:
        common.append(f"data.max_rows={args.rows}")
    dirs, seconds = {}, {}
    for name, recipe in RECIPES.items():
        run_dir = Path(args.out) / f"{name}-{args.rows or 'all'}-{args.folds}"
        extra = list(args.overrides) if name == "sft" else []
        cfg = load_config(ROOT / "experiments" / recipe, common + extra + [f"run_dir={run_dir}"])
        t0 = time.time()
        run_experiment(cfg, verbose=True)  # resumes finished folds (kill it and run again)
        seconds[name], dirs[name] = time.time() - t0, run_dir
    result = compare_runs(load_comparable([dirs["zero-shot"], dirs["sft"]]), "previous")
    print("\n" + format_comparison(result, "balanced_accuracy"))
    zs, sft = result["runs"]
    lo, hi = sft["delta_balanced_accuracy_ci"]
    cmd = "python benchmarks/generative.py " + " ".join(sys.argv[1:])
    lines = [f"### generative ({time.strftime('%Y-%m-%d')})", "", f"- command: `{cmd.strip()}`",
             f"- machine: {machine()}",
             f"- real Dreaddit, {result['rows_scored']} rows, {args.folds} folds grouped by post_id, one seed, decision "
             "layer off (argmax of the label scores); SmolLM2-135M-Instruct; wall seconds include resumed folds "
             "only as their loading time", "",
             "| run | balanced acc (95% CI) | macro-F1 (95% CI) | wall s |", "|---|---|---|---|"]
    for r, name in ((zs, "zero-shot"), (sft, "sft")):
        bl, bh = r["balanced_accuracy_ci"]
        ml, mh = r["macro_f1_ci"]
        lines.append(f"| {name} | {r['balanced_accuracy']:.4f} ({bl:.3f}-{bh:.3f}) | {r['macro_f1']:.4f} "
                     f"({ml:.3f}-{mh:.3f}) | {seconds[name]:.0f} |")
    lines += ["", f"- paired difference SFT - zero-shot, balanced accuracy: **{sft['delta_balanced_accuracy']:+.4f}** "
              f"(95% CI {lo:+.3f} to {hi:+.3f}); issue 11's bar is +0.10: "
              f"{'met' if sft['delta_balanced_accuracy'] >= 0.10 else 'NOT met'}"]
    publish(lines, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
