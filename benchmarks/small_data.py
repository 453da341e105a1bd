"""Small data, honestly: does the decision layer, an ensemble, or SetFit earn its keep on a few hundred rows?

    python benchmarks/small_data.py                       # Dreaddit subsamples (../shared) + synthetic PsyDefConv
    python benchmarks/small_data.py --results             # ... and append the tables to benchmarks/RESULTS.md
    python benchmarks/small_data.py --methods tfidf embed # a subset (setfit is the slow one)
    python benchmarks/small_data.py --methods embed setfit --sets 300 synthetic   # SetFit where the issue asks

Data: real Dreaddit subsamples of ~300 and ~600 rows (whole posts drawn at random, 5 draws each) and
synthetic PsyDefConv with 40 dialogues (3 generator seeds); grouped 5-fold CV; methods `tfidf`, `embed`
(frozen MiniLM, pair layout) and `setfit` (the same MiniLM tuned contrastively per fold on 2 pairs a row, the
same head).
Per OOF set:

1. Decisions. Two decisions are locked and cross-fitted: `full` (the old decision layer's complexity: delta +
   gate, no shrinkage, searched with the same batched engine) and `auto` (the ladder argmax -> prior -> delta
   -> delta_gate -> full with shrinkage, chosen by cross-fitting). Figure: the cross-fitted gain over argmax.
2. Ensembles of tfidf + embed on the same folds: the weight blend (calibrated members) and the stacker
   (`--stack`), each scored by its cross-fitted decided predictions against the best member's, with a paired
   bootstrap CI (`harness compare --use crossfit`).
3. SetFit against embed: the paired difference of the argmax OOF
   scores, and seconds per fold.

Scores: official macro-F1 (labels 1..8) for PsyDefConv, macro-F1 for Dreaddit (its official labels are all).
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

from harness.config import DecideConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared")) / "data"
DREADDIT = SHARED / "dreaddit" / "dreaddit-train.csv"
MINILM = ["model.name_or_path=minilm", "prompt.layout=pair", "prompt.guide=none", "prompt.context_turns=0",
          "prompt.max_length=128"]
METHODS = {"tfidf": ["method=tfidf"], "embed": ["method=embed", *MINILM],
           # 2 pairs a row (SetFit's num_iterations=1): what 2 CPU cores can afford on 8 sets x 5 folds
           "setfit": ["method=setfit", *MINILM, "setfit.pairs_per_row=2"]}
METRIC = "macro_f1_official"
DEFAULT_MARGIN = DecideConfig().rung_margin  # the ladder's default margin: its column is plain `auto`


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


def data_sets(tmp: Path, draws: int = 5) -> list[tuple[str, list[str]]]:
    sets = []
    if DREADDIT.exists():
        with open(DREADDIT, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for n in (300, 600):
            for draw in range(draws):
                path = dreaddit_subsample(rows, n, draw, tmp / f"dreaddit-{n}-{draw}.csv")
                sets.append((f"Dreaddit ~{n} rows", ["data.format=table", "data.preset=dreaddit",
                                                     "data.synthetic=none", f"data.train_path={path}",
                                                     "data.group_column=post_id", "data.score_labels=null"]))
    else:
        print(f"note: {DREADDIT} absent: Dreaddit subsamples skipped")
    for seed in range(min(draws, 3)):
        sets.append(("synthetic PsyDefConv, 40 dialogues", ["data.synthetic=psydefconv", "data.synthetic_groups=40",
                                                            f"data.synthetic_seed={seed}",
                                                            "data.score_labels=[1,2,3,4,5,6,7,8]"]))
    return sets


def auto_label(margin: float) -> str:
    return "auto" if margin == DEFAULT_MARGIN else f"auto (margin {margin:g})"


def _fmt(values: list[float]) -> str:
    a = np.array(values)
    return f"{a.mean():+.4f} ({a.min():+.4f}..{a.max():+.4f})"


def _ci_counts(cis: list[tuple[float, float]]) -> str:
    above = sum(lo > 0 for lo, _ in cis)
    below = sum(hi < 0 for _, hi in cis)
    return f"{above} above 0, {below} below 0, {len(cis) - above - below} across 0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--sets", nargs="*", default=["300", "600", "synthetic"], choices=["300", "600", "synthetic"],
                    help="which data sets: the ~300- and ~600-row Dreaddit draws, synthetic PsyDefConv")
    ap.add_argument("--draws", type=int, default=5, help="Dreaddit draws per size (default 5; synthetic: up to 3)")
    ap.add_argument("--work", type=Path, help="keep the runs here (default: a temporary folder); an interrupted "
                    "benchmark given the same folder resumes, keeping every finished fold")
    ap.add_argument("--margins", nargs="*", type=float, default=[DEFAULT_MARGIN],
                    help="decide.rung_margin values for the ladder (`auto`), one column each (default: 2, the default)")
    ap.add_argument("--results", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from common import machine, publish

    from harness.posthoc.compare import run_compare
    from harness.config import load_config
    from harness.run.experiment import run_experiment
    from harness.posthoc.decision import decide_run
    from harness.posthoc.ensemble import build_ensemble
    from harness.run.rundir import RunDir

    os.environ.setdefault("WANDB_MODE", "disabled")
    tmp = args.work or Path(tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    gains: dict[tuple[str, str, str], list[float]] = {}
    locked: dict[tuple[str, str, str], list[str]] = {}
    margins = sorted(set(args.margins))
    ens: dict[tuple[str, str], list[tuple[float, tuple[float, float]]]] = {}
    setfit: dict[str, list[tuple[float, tuple[float, float]]]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    t0 = time.time()
    for i, (name, data) in enumerate(data_sets(tmp, args.draws)):
        if not any(k in name for k in args.sets):
            continue
        runs: dict[str, Path] = {}
        for method in args.methods:
            run = tmp / f"run-{i}-{method}"
            base = [*data, *METHODS[method], "cv.n_folds=5", "track.backend=none", "decide.enabled=false",
                    f"run_dir={run}"]
            run_experiment(load_config(None, base), verbose=False)
            runs[method] = run
            seconds.setdefault((name, method), []).extend(
                f["seconds"] for f in RunDir(run).read_metrics()["per_fold"])
            # the default margin last: the member runs' calibration.json (used by the ensembles) is the default's
            autos = [(auto_label(m), [f"decide.rung_margin={m}"])
                     for m in sorted(args.margins, key=lambda m: m == DEFAULT_MARGIN)]
            for label, extra in (("full", ["decide.complexity=full", "decide.shrinkage=[0]"]), *autos):
                cfg = load_config(run / "config.yaml", extra)
                out = decide_run(run, cfg, verbose=False)
                gains.setdefault((name, method, label), []).append(out["crossfit"]["pooled_gain"])
                if label != "full":
                    locked.setdefault((name, method, label), []).append(out["complexity"]["chosen"])
            print(f"{name} / {method}: " + ", ".join(f"{label} {gains[(name, method, label)][-1]:+.4f}" for label in
                                                     ["full", *(a for a, _ in autos)]), flush=True)
        if {"tfidf", "embed"} <= set(runs):  # decided (auto) above: crossfit.npz holds each member's honest output
            members = [runs["tfidf"], runs["embed"]]
            scores = [run_compare([m], use="crossfit", track=False, n_boot=100)["runs"][0][METRIC] for m in members]
            best = members[int(np.argmax(scores))]
            for kind in ("weights", "stack"):
                out = tmp / f"ens-{i}-{kind}"
                build_ensemble(members, out, verbose=False, stack=kind == "stack")
                row = run_compare([best, out], reference="first", use="crossfit", track=False, n_boot=1000)["runs"][1]
                ens.setdefault((name, kind), []).append((row[f"delta_{METRIC}"], tuple(row[f"delta_{METRIC}_ci"])))
                print(f"{name} / ensemble {kind} vs best member ({best.name.split('-')[-1]}): "
                      f"{row[f'delta_{METRIC}']:+.4f} ({row[f'delta_{METRIC}_ci'][0]:+.4f}..{row[f'delta_{METRIC}_ci'][1]:+.4f})",
                      flush=True)
        if {"embed", "setfit"} <= set(runs):
            row = run_compare([runs["embed"], runs["setfit"]], reference="first", track=False, n_boot=1000)["runs"][1]
            setfit.setdefault(name, []).append((row[f"delta_{METRIC}"], tuple(row[f"delta_{METRIC}_ci"])))
            print(f"{name} / setfit vs embed: {row[f'delta_{METRIC}']:+.4f}", flush=True)
    cmd = ("python benchmarks/small_data.py " + " ".join(sys.argv[1:])).strip()
    lines = [f"### small data: decisions, ensembles and SetFit on a few hundred rows ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{cmd}` ({time.time() - t0:.0f} s)", f"- machine: {machine()}",
             "- grouped 5-fold CV; official macro-F1 for PsyDefConv (labels 1..8), macro-F1 for Dreaddit; "
             "mean over draws (min..max)", "",
             "Decisions: cross-fitted gain over argmax of the locked decision (`full` = the old complexity, `auto` = "
             "the ladder, with its decide.rung_margin if not the default 2)", "",
             "| data | method | draws | full | " + " | ".join(f"{a} | {a} locked argmax" for a in map(auto_label, margins))
             + " |", "|---|---|---|---|" + "---|---|" * len(margins)]
    for name, method in dict.fromkeys((n, m) for n, m, _ in gains):
        cells = []
        for a in map(auto_label, margins):
            rungs = locked[(name, method, a)]
            cells += [_fmt(gains[(name, method, a)]), f"{sum(r == 'argmax' for r in rungs)}/{len(rungs)} "
                      f"({', '.join(sorted(set(rungs)))})"]
        lines.append(f"| {name} | {method} | {len(rungs)} | {_fmt(gains[(name, method, 'full')])} | "
                     + " | ".join(cells) + " |")
    if gains:
        every = {label: [g for (_, _, lab), v in gains.items() if lab == label for g in v]
                 for label in ["full", *map(auto_label, margins)]}
        lines += ["", "- every OOF set above, mean cross-fitted gain (worst configuration mean): " + "; ".join(
            f"{label} {np.mean(v):+.4f} ({min(np.mean(g) for (_, _, lab), g in gains.items() if lab == label):+.4f})"
            for label, v in every.items())]
    if ens:
        lines += ["", "Ensembles of tfidf + embed: cross-fitted decided score minus the best member's (paired "
                  "bootstrap 95% CI per draw)", "", "| data | ensemble | draws | difference | per-draw CIs |",
                  "|---|---|---|---|---|"]
        for (name, kind), vals in ens.items():
            lines.append(f"| {name} | {kind} | {len(vals)} | {_fmt([v for v, _ in vals])} | "
                         f"{_ci_counts([c for _, c in vals])} |")
    if setfit:
        lines += ["", "SetFit against embed (same MiniLM, same head; argmax OOF, paired bootstrap 95% CI per draw)",
                  "", "| data | draws | setfit - embed | per-draw CIs | s/fold embed | s/fold setfit |",
                  "|---|---|---|---|---|---|"]
        for name, vals in setfit.items():
            lines.append(f"| {name} | {len(vals)} | {_fmt([v for v, _ in vals])} | {_ci_counts([c for _, c in vals])} "
                         f"| {np.median(seconds[(name, 'embed')]):.1f} | {np.median(seconds[(name, 'setfit')]):.1f} |")
    publish(lines, args.results)


if __name__ == "__main__":
    main()
