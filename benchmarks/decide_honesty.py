"""Does the decision layer earn its keep on small data? Cross-fitted gains of the locked decision, many draws.

    python benchmarks/decide_honesty.py             # Dreaddit subsamples (../shared) + synthetic PsyDefConv
    python benchmarks/decide_honesty.py --results   # append the table to benchmarks/RESULTS.md

Data: real Dreaddit subsamples of ~300 and ~600 rows (whole posts drawn at random, 5 draws each) and
synthetic PsyDefConv with 40 dialogues (3 generator seeds); grouped 5-fold CV; methods `tfidf` and `embed`
(frozen MiniLM, pair layout). On each OOF set two decisions are locked and cross-fitted:

- `full`: the old decision layer's complexity (delta + gate + seed blend, no shrinkage), searched with the
  same batched engine (the old per-trial TPE engine took minutes a set; its choices are the same kind);
- `auto`: the ladder (argmax -> prior -> delta -> delta_gate -> full, with shrinkage) chosen by cross-fitting.

The figure of merit is the cross-fitted (out-of-sample) gain over argmax: its mean, worst, and how often the
decision locked was plain argmax.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared")) / "data"
DREADDIT = SHARED / "dreaddit" / "dreaddit-train.csv"
METHODS = {"tfidf": ["method=tfidf"],
           "embed": ["method=embed", "model.name_or_path=minilm", "prompt.layout=pair", "prompt.guide=none",
                     "prompt.context_turns=0", "prompt.max_length=128"]}


def dreaddit_subsample(rows: list[dict[str, str]], n: int, seed: int, out: Path) -> Path:
    """Whole posts (the grouping unit) drawn at random until about `n` rows."""
    by_post: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_post.setdefault(r["post_id"], []).append(r)
    posts = list(by_post)
    np.random.default_rng(seed).shuffle(posts)
    picked: list[dict[str, str]] = []
    for p in posts:
        if len(picked) >= n:
            break
        picked += by_post[p]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "label", "post_id"])
        w.writeheader()
        w.writerows({k: r[k] for k in ("id", "text", "label", "post_id")} for r in picked)
    return out


def data_sets(tmp: Path) -> list[tuple[str, list[str]]]:
    sets = []
    if DREADDIT.exists():
        with open(DREADDIT, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for n in (300, 600):
            for draw in range(5):
                path = dreaddit_subsample(rows, n, draw, tmp / f"dreaddit-{n}-{draw}.csv")
                sets.append((f"Dreaddit ~{n} rows", ["data.format=table", "data.preset=dreaddit",
                                                     "data.synthetic=none", f"data.train_path={path}",
                                                     "data.group_column=post_id", "data.score_labels=null"]))
    else:
        print(f"note: {DREADDIT} absent: Dreaddit subsamples skipped")
    for seed in range(3):
        sets.append(("synthetic PsyDefConv, 40 dialogues", ["data.synthetic=psydefconv", "data.synthetic_groups=40",
                                                            f"data.synthetic_seed={seed}",
                                                            "data.score_labels=[1,2,3,4,5,6,7,8]"]))
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--results", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from common import machine, publish

    from harness.config import load_config
    from harness.cv import run_cv
    from harness.decide import decide_run

    os.environ.setdefault("WANDB_MODE", "disabled")
    tmp = Path(tempfile.mkdtemp())
    gains: dict[tuple[str, str, str], list[float]] = {}
    locked: dict[tuple[str, str], list[str]] = {}
    t0 = time.time()
    for i, (name, data) in enumerate(data_sets(tmp)):
        for method in args.methods:
            run = tmp / f"run-{i}-{method}"
            base = [*data, *METHODS[method], "cv.n_folds=5", "track.backend=none", "decide.enabled=false",
                    f"run_dir={run}"]
            run_cv(load_config(None, base), verbose=False)
            for label, extra in (("full", ["decide.complexity=full", "decide.shrinkage=[0]"]), ("auto", [])):
                cfg = load_config(run / "config.yaml", extra)
                out = decide_run(run, cfg, verbose=False)
                gains.setdefault((name, method, label), []).append(out["crossfit"]["pooled_gain"])
                if label == "auto":
                    locked.setdefault((name, method), []).append(out["complexity"]["chosen"])
            print(f"{name} / {method}: full {gains[(name, method, 'full')][-1]:+.4f}, "
                  f"auto {gains[(name, method, 'auto')][-1]:+.4f} ({locked[(name, method)][-1]})", flush=True)
    rows = []
    for (name, method), rungs in locked.items():
        f, a = np.array(gains[(name, method, "full")]), np.array(gains[(name, method, "auto")])
        rows.append(f"| {name} | {method} | {len(a)} | {f.mean():+.4f} (worst {f.min():+.4f}) | "
                    f"{a.mean():+.4f} (worst {a.min():+.4f}) | {sum(r == 'argmax' for r in rungs)}/{len(rungs)} "
                    f"({', '.join(sorted(set(rungs)))}) |")
    cmd = "python benchmarks/decide_honesty.py " + " ".join(sys.argv[1:])
    publish([f"### decide honesty on small data ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{cmd.strip()}` ({time.time() - t0:.0f} s)", f"- machine: {machine()}",
             "- cross-fitted gain over argmax of the locked decision (official macro-F1 for PsyDefConv, macro-F1 "
             "for Dreaddit); `full` = the old decision's complexity, `auto` = the ladder", "",
             "| data | method | draws | full: mean cross-fitted gain | auto: mean cross-fitted gain | auto locked "
             "argmax |", "|---|---|---|---|---|---|", *rows], args.results)


if __name__ == "__main__":
    main()
