"""A refit model against the fold ensemble, on labelled rows neither saw (`harness export --from refit`).

For each setup: `harness cv` with the demo recipe (fold models kept), `harness export --from folds` and
`--from refit`, then both exports score held-out labelled synthetic rows (`harness synth` with another seed)
through `harness.load`, with the run's locked decision. Reported: official macro-F1 of each, the paired
bootstrap CI of refit - folds over the held-out rows, and the wall time of the folds and of the refit.

    python benchmarks/refit.py [--results]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, publish  # benchmarks/common.py

SETUPS = {  # overrides of the demo recipe, and the refit's seeds (none: the run's one seed)
    "demo recipe (no inner split: the refit trains the folds' 2 epochs)": ([], None),
    "demo + inner split 0.2 (the refit trains the median steps the folds kept)": (["train.inner_val_fraction=0.2",
                                                                                   "train.epochs=3"], None),
    "demo recipe, refit of 5 seeds averaged (`--seeds 42,43,44,45,46`)": ([], "42,43,44,45,46"),
}


def run_setup(over: list[str], seeds: str | None, tmp: Path, held: Path) -> dict[str, float]:
    import harness
    from harness import cli
    from harness.core.metrics import paired_bootstrap, score
    from harness.data.load import read_file

    run = tmp / "run"
    t0 = time.time()
    assert cli.main(["cv", "demo_cpu", f"run_dir={run}", "train.save_adapters=true", "track.backend=none", *over]) == 0
    t_cv = time.time() - t0
    assert cli.main(["export", str(run), "--out", str(tmp / "folds"), "--quiet"]) == 0
    assert cli.main(["export", str(run), "--out", str(tmp / "fold0"), "--fold", "0", "--quiet"]) == 0
    t0 = time.time()
    assert cli.main(["export", str(run), "--out", str(tmp / "refit"), "--from", "refit", "--quiet",
                     *(["--seeds", seeds] if seeds else [])]) == 0
    t_refit = time.time() - t0
    models = {name: harness.load(tmp / name) for name in ("folds", "refit", "fold0")}
    rows = read_file(held, models["folds"].cfg.data, require_label=True)
    y = np.array([e.label for e in rows])
    labels, k = models["folds"].cfg.data.score_labels, len(models["folds"].label_names)
    decided = {name: m.predict(rows) for name, m in models.items()}
    plain = {name: m.predict_proba(rows).argmax(1) for name, m in models.items()}
    diff = paired_bootstrap(y, decided["folds"], decided["refit"], k, "macro_f1_official", labels, n_boot=2000)
    out = {f"{name} decided": score(y, p, k, "macro_f1_official", labels) for name, p in decided.items()}
    out |= {f"{name} argmax": score(y, p, k, "macro_f1_official", labels) for name, p in plain.items()}
    return {**out, "rows": len(rows), "delta": diff["delta"], "lo": diff["ci_low"], "hi": diff["ci_high"],
            "t_cv": t_cv, "t_refit": t_refit,
            "rung": (models["folds"].decision_json or {}).get("rung")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held-groups", type=int, default=80, help="dialogues in the held-out synthetic file")
    ap.add_argument("--held-seed", type=int, default=1, help="its generator seed (the demo trains on seed 0)")
    ap.add_argument("--setups", type=int, nargs="*", default=None, help="run only these setups (0-based)")
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_QUIET", "1")
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    lines = [f"### refit ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/refit.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- the demo recipe (MiniLM seqcls, 5 folds, seed 42, synthetic PsyDefConv of 80 dialogues, its locked "
             f"decision); held out: `harness synth psydefconv --groups {args.held_groups} --seed {args.held_seed}` "
             "(labelled), scored by `harness.load` of each export", "",
             "Official macro-F1 on the held-out rows; *decided*: with the run's locked decision (rung in the "
             "last column), *argmax*: without it; *one fold*: fold 0's model alone (`--fold 0`).", "",
             "| setup | rows | folds decided | refit decided | refit - folds (95% paired CI) | folds argmax | "
             "refit argmax | one fold decided | one fold argmax | cv s | refit s | rung |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        held = Path(tmp) / "held.json"
        write_psydefconv(held, make_psydefconv(n_groups=args.held_groups, seed=args.held_seed), with_labels=True)
        for i, (name, (over, seeds)) in enumerate(SETUPS.items()):
            if args.setups and i not in args.setups:
                continue
            r = run_setup(over, seeds, Path(tmp) / str(i), held)
            lines.append(f"| {name} | {r['rows']} | {r['folds decided']:.4f} | {r['refit decided']:.4f} | "
                         f"{r['delta']:+.4f} ({r['lo']:+.4f} to {r['hi']:+.4f}) | {r['folds argmax']:.4f} | "
                         f"{r['refit argmax']:.4f} | {r['fold0 decided']:.4f} | {r['fold0 argmax']:.4f} | "
                         f"{r['t_cv']:.0f} | {r['t_refit']:.0f} | {r['rung']} |")
            print(lines[-1], flush=True)
    publish(lines + [""], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
