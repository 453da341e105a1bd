"""Does `harness select` beat random at equal labels? A simulated annotation loop on real Dreaddit.

Per draw: a quarter of the posts (grouped) is the evaluation set; 300 rows of the rest are the labelled start,
the remaining rows the pool (labels hidden from the strategy). Each round trains `tfidf` (5 grouped folds,
fold models kept), scores the evaluation set with the fold ensemble, then `harness select` picks K = 100 pool
rows, whose true labels are added. Reported per round: balanced accuracy on the evaluation set (mean over
draws) per strategy, and each strategy minus random with a paired bootstrap CI over evaluation rows (the same
resampled rows for every draw and both strategies).

    python benchmarks/selection.py [--draws 3] [--results]
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

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
DREADDIT = ROOT.parent / "shared" / "data" / "dreaddit" / "dreaddit-train.csv"
YAML = ROOT / "experiments" / "dreaddit_tfidf.yaml"
STRATEGIES = [("random", False), ("entropy", False), ("margin", False), ("disagreement", False),
              ("entropy", True)]


def write_rows(path: Path, rows: list, labelled: bool) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label", "post_id"])
        for e in rows:
            w.writerow([e.id, e.target, e.label if labelled else "", e.group])


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """pred (..., N) → balanced accuracy (...,) over the two classes."""
    recalls = [((pred == c) & (y == c)).sum(-1) / np.maximum(1, (y == c).sum(-1)) for c in (0, 1)]
    return (recalls[0] + recalls[1]) / 2


def simulate(rows: list, draw: int, strategy: str, balance: bool, tmp: Path, rounds: int, k: int, start: int
             ) -> list[np.ndarray]:
    """The evaluation predictions after each round (labels 300, 400, ...)."""
    from harness.config import load_config
    from harness.posthoc.predict import score_file
    from harness.posthoc.select import select_rows
    from harness.run.experiment import run_experiment

    rng = np.random.default_rng(draw)
    groups = sorted({e.group for e in rows})
    order = [groups[i] for i in rng.permutation(len(groups))]
    held = set(order[: len(order) // 4])
    evaluation = [e for e in rows if e.group in held]
    rest = [e for e in rows if e.group not in held]
    rest = [rest[i] for i in rng.permutation(len(rest))]
    labelled, pool = rest[:start], rest[start:]
    preds = []
    for r in range(rounds + 1):
        train = tmp / f"train{r}.csv"
        write_rows(train, labelled, True)
        cfg = load_config(YAML, [f"data.train_path={train}", f"run_dir={tmp / f'run{r}'}", "decide.enabled=false",
                                 "train.save_adapters=true", "track.backend=none"])
        run_experiment(cfg, verbose=False)
        preds.append(score_file(tmp / f"run{r}", cfg, evaluation, verbose=False).mean((0, 1)).argmax(-1))
        if r == rounds:
            break
        write_rows(tmp / f"pool{r}.csv", pool, False)
        picked = set(select_rows([tmp / f"run{r}"], tmp / f"pool{r}.csv", k, tmp / f"picked{r}.csv", strategy,
                                 balance, seed=draw * 100 + r, verbose=False)["ids"])
        labelled = labelled + [e for e in pool if e.id in picked]
        pool = [e for e in pool if e.id not in picked]
    return preds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--start", type=int, default=300)
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_QUIET", "1")
    if not DREADDIT.exists():
        print(f"{DREADDIT} not found: this benchmark needs the real Dreaddit file")
        return 2
    from harness.config import load_config
    from harness.data.load import read_file

    t0 = time.time()
    rows = read_file(DREADDIT, load_config(YAML, [f"data.train_path={DREADDIT}"]).data, require_label=True)
    results: dict[str, list[list[np.ndarray]]] = {}
    y_by_draw = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in range(args.draws):
            rng = np.random.default_rng(d)
            groups = sorted({e.group for e in rows})
            held = set([groups[i] for i in rng.permutation(len(groups))][: len(groups) // 4])
            y_by_draw.append(np.array([e.label for e in rows if e.group in held]))
            for s, b in STRATEGIES:
                name = s + (" --balance" if b else "")
                path = Path(tmp) / f"{d}-{name.replace(' ', '')}"
                path.mkdir()
                results.setdefault(name, []).append(simulate(rows, d, s, b, path, args.rounds, args.k, args.start))
                print(f"draw {d} {name}: " + ", ".join(f"{balanced_accuracy(y_by_draw[-1], p):.4f}"
                                                     for p in results[name][-1]), flush=True)
    lines = table(results, y_by_draw, args)
    lines.insert(4, f"- wall time {time.time() - t0:.0f} s")
    publish(lines + [""], args.results)
    return 0


def table(results: dict[str, list[list[np.ndarray]]], ys: list[np.ndarray], args: argparse.Namespace) -> list[str]:
    rng = np.random.default_rng(0)
    boots = [rng.integers(0, len(y), size=(2000, len(y))) for y in ys]
    lines = [f"### selection ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/selection.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- real Dreaddit (2,838 rows); per draw a quarter of the posts evaluates, {args.start} rows start, "
             f"{args.rounds} rounds of K = {args.k} from the rest (the pool); tfidf, 5 grouped folds; "
             f"{args.draws} draws; balanced accuracy on the evaluation rows, mean over draws; strategy - random "
             "with a paired bootstrap 95% CI over evaluation rows (2000 resamples)", "",
             "| strategy | " + " | ".join(f"{args.start + r * args.k} labels" for r in range(args.rounds + 1)) + " |",
             "|---|" + "---|" * (args.rounds + 1)]
    for name, per_draw in results.items():
        cells = []
        for r in range(args.rounds + 1):
            mean = np.mean([balanced_accuracy(y, p[r]) for y, p in zip(ys, per_draw)])
            if name == "random":
                cells.append(f"{mean:.4f}")
                continue
            diff = np.mean([balanced_accuracy(y[i], p[r][i]) - balanced_accuracy(y[i], q[r][i])
                            for y, p, q, i in zip(ys, per_draw, results["random"], boots)], 0)
            lo, hi = np.quantile(diff, [0.025, 0.975])
            gain = np.mean([balanced_accuracy(y, p[r]) - balanced_accuracy(y, q[r])
                            for y, p, q in zip(ys, per_draw, results["random"])])
            cells.append(f"{mean:.4f} ({gain:+.4f}, {lo:+.4f} to {hi:+.4f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
