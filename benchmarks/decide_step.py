"""The whole decision step (search + cross-fitting), old against new: CPU seconds and what it reaches.

    python benchmarks/decide_step.py                          # this checkout's decide, default settings
    python benchmarks/decide_step.py --src /tmp/old --label old   # another checkout (e.g. `git worktree add`)
    python benchmarks/decide_step.py ... --results            # append the table to benchmarks/RESULTS.md

OOF sets: synthetic imbalanced 9-class OOF (harness.testing.oof, majority bias 2.0), 376 rows x 1 seed (the
size of the real PsyDefConv-style set) and 1864 rows x 2 seeds, 5 folds. For each: CPU seconds of
`decide_run` (process time: the ladder, the search, the cross-fitting, the study), the in-sample score of the
locked decision, the cross-fitted gain with its CI, and (new code) the rung it locked. `--pin-full` runs the
new code with the old decision's complexity (delta + gate + blend, no shrinkage): the fair comparison of
in-sample optima.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES = [(376, 1), (1864, 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", help="a harness checkout to import instead of this one")
    ap.add_argument("--label", default="new", help="the row label (default new)")
    ap.add_argument("--pin-full", action="store_true", help="decide.complexity=full, decide.shrinkage=[0]")
    ap.add_argument("--extra", nargs="*", default=[], help="more decide.* overrides")
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    sys.path.insert(1, str(HERE))
    from common import machine, publish

    from harness.config import load_config
    from harness.posthoc.decision import decide_run
    from harness.run.rundir import OofArrays, RunDir
    from harness.testing.oof import make_oof_probs

    extra = list(args.extra) + (["decide.complexity=full", "decide.shrinkage=[0]"] if args.pin_full else [])
    rows = []
    for n, s in SIZES:
        probs, y, fold = make_oof_probs(n_rows=n, n_seeds=s, seed=1, majority_bias=2.0)
        seeds = [42, 7][:s]
        run = Path(tempfile.mkdtemp()) / "run"
        run.mkdir()
        cfg = load_config(None, ["data.synthetic=psydefconv", f"train.seeds={seeds}", "cv.n_folds=5",
                                 "data.score_labels=[1,2,3,4,5,6,7,8]", f"run_dir={run}", *extra])
        with RunDir(run).writing("cv") as _:  # a verified run directory, as `harness cv` commits one
            RunDir(run).write_config(cfg)
            RunDir(run).write_oof(OofArrays(ids=np.array([f"r{i}" for i in range(n)]), labels=y, fold=fold,
                                            seeds=np.array(seeds), probs=probs))
        t0, w0 = time.process_time(), time.perf_counter()
        out = decide_run(run, cfg, verbose=False)
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        cf = out.get("crossfit", {})
        rung = out.get("complexity", {}).get("chosen", "delta_gate + blend (no ladder)")
        rows.append(f"| {args.label} | {n} x 9 x {s} | {cfg.decide.sampler} | {rung} | {cpu:.1f} | {wall:.1f} | "
                    f"{out['in_sample']['before']:.4f} -> {out['in_sample']['after']:.4f} | "
                    f"{cf.get('pooled_gain', float('nan')):+.4f} ({cf.get('pooled_gain_ci', [np.nan, np.nan])[0]:+.4f}.."
                    f"{cf.get('pooled_gain_ci', [np.nan, np.nan])[1]:+.4f}) |")
        print(rows[-1], flush=True)
    cmd = "python benchmarks/decide_step.py " + " ".join(sys.argv[1:])
    publish([f"### decide step, {args.label} ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{cmd.strip()}`", f"- machine: {machine()}",
             f"- settings: decide defaults of that code, decide.n_trials={cfg.decide.n_trials}"
             + (f", {' '.join(extra)}" if extra else ""), "",
             "| code | OOF (rows x classes x seeds) | sampler | locked rung | CPU s | wall s | in-sample argmax -> "
             "decided | cross-fitted gain (95% CI) |", "|---|---|---|---|---|---|---|---|", *rows], args.results)


if __name__ == "__main__":
    main()
