"""Does an ensemble beat its best member? The weight blend and the stacker on finished runs, honestly scored.

    python benchmarks/stacking.py RUN_DIR RUN_DIR [...] [--results]

e.g. the first rungs of the CPU ladder on real Dreaddit (`harness cv experiments/dreaddit_{tfidf,embed,minilm}.yaml`).
Each member run is decided (`harness decide`, the ladder, this checkout's code); then `harness ensemble` (calibrated
members, weights searched) and `harness ensemble --stack` build two ensembles, and `harness compare --use crossfit`
scores every run by its cross-fitted decided predictions: each ensemble against the best member, paired bootstrap
95% CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, help="where the ensemble directories go (default: a temporary folder)")
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from common import machine, publish

    from harness.posthoc.compare import run_compare
    from harness.posthoc.decision import decide_run
    from harness.posthoc.ensemble import build_ensemble
    from harness.run.rundir import RunDir

    t0 = time.time()
    for d in args.run_dirs:  # decided again by this checkout's ladder (seconds; its study resumes)
        decide_run(d, RunDir(d).read_config(), verbose=False)
    members = run_compare(args.run_dirs, reference="first", use="crossfit", track=False, n_boot=200)["runs"]
    metric = "macro_f1_official"
    best = max(members, key=lambda r: r[metric])
    root = args.out or Path(tempfile.mkdtemp(prefix="stacking-"))
    rows = []
    for kind in ("weights", "stack"):
        out = root / f"ensemble-{kind}"
        t1 = time.time()
        build_ensemble(args.run_dirs, out, verbose=False, stack=kind == "stack")
        seconds = time.time() - t1
        r = run_compare([Path(best["path"]), out], reference="first", use="crossfit", track=False,
                        n_boot=2000)["runs"][1]
        lo, hi = r[f"delta_{metric}_ci"]
        rows.append(f"| {kind} | {r[metric]:.4f} | {r[f'delta_{metric}']:+.4f} ({lo:+.4f} to {hi:+.4f}) | "
                    f"{'better' if lo > 0 else 'worse' if hi < 0 else 'no clear difference'} | {seconds:.1f} |")
    cmd = "python benchmarks/stacking.py " + " ".join(str(a) for a in sys.argv[1:])
    publish([f"### stacking: ensembles against their best member ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{cmd.strip()}` ({time.time() - t0:.0f} s)", f"- machine: {machine()}",
             "- members (cross-fitted decided score, official macro-F1): "
             + ", ".join(f"{m['run']} ({m['method']}) {m[metric]:.4f}" for m in members),
             f"- best member: {best['run']}; every score is cross-fitted (the decision of each row, and for the "
             "stacker its combination too, was fitted without that row's fold); paired bootstrap 95% CI, 2000 resamples",
             "", "| ensemble | cross-fitted score | minus the best member (95% CI) | verdict | build + decide s |",
             "|---|---|---|---|---|", *rows], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
