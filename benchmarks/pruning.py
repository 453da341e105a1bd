"""Fold-level pruning: the same 20-trial study with no pruner, the median rule and Wilcoxon.

    python benchmarks/pruning.py --results                 # MiniLM on synthetic PsyDefConv, 5-fold CV, CPU
    python benchmarks/pruning.py --trials 6 --groups 30    # a quick look

Each study runs `harness tune`'s own code (harness.search.tune.run_study, SQLite storage, TPE with a fixed seed) on
the demo recipe with a small search space (learning rate, class weights, label smoothing). It reports the
fold-trainings each study paid for, the best CV score it found, and wall time. A fold-training is what
costs GPU-hours on the real recipe, so "fold-trainings saved" is the figure that matters.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import machine  # noqa: E402

SPACE = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
         "loss.class_weights": {"type": "categorical", "choices": ["none", "inverse_sqrt", "inverse"]},
         "loss.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}


def run(pruner: str, args: argparse.Namespace, work: Path) -> dict:
    import optuna

    from harness.search.tune import run_study

    cfg = work / f"{pruner}.yaml"
    cfg.write_text(yaml.safe_dump({"tune": {"space": SPACE, "pruner": pruner, "seed": args.seed,
                                            "pruner_warmup_folds": 2, "pruner_startup_trials": 3},
                                   "output_dir": str(work / "runs")}))
    overrides = [f"data.synthetic_groups={args.groups}", f"cv.n_folds={args.folds}", f"train.epochs={args.epochs}",
                 "track.backend=none", "decide.enabled=false", "train.inner_val_fraction=0"]
    base = yaml.safe_load((ROOT / "harness" / "recipes" / "demo_cpu.yaml").read_text())
    merged = work / f"{pruner}-full.yaml"
    merged.write_text(yaml.safe_dump({**base, **yaml.safe_load(cfg.read_text()), "name": f"prune-{pruner}"}))
    t0 = time.time()
    study = run_study(merged, overrides, f"prune-{pruner}", storage=f"sqlite:///{work / (pruner + '.db')}",
                      n_trials=args.trials, verbose=False)
    seconds = time.time() - t0
    trials = study.get_trials()
    folds = sum(t.user_attrs.get("folds_done", 0) for t in trials)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {"pruner": pruner, "trials": len(trials), "pruned": len(trials) - len(complete), "folds": folds,
            "best": max(t.value for t in complete), "best_params": study.best_trial.params, "seconds": seconds,
            "values": {t.number: t.value for t in complete}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--groups", type=int, default=40, help="synthetic dialogues (default 40)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="TPE seed, the same for every study")
    p.add_argument("--pruners", default="none,median,wilcoxon")
    p.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in args.pruners.split(","):
            r = run(pruner, args, Path(tmp))
            out.append(r)
            print(f"{pruner:>9}: {r['trials']} trials ({r['pruned']} pruned), {r['folds']} fold-trainings, "
                  f"best {r['best']:.4f}, {r['seconds']:.0f}s", flush=True)
    full = args.trials * args.folds
    lines = [f"\n### pruning ({time.strftime('%Y-%m-%d')})\n",
             f"- command: `python benchmarks/pruning.py {' '.join(sys.argv[1:])}`",
             f"- machine: {machine()}",
             f"- study: {args.trials} trials, TPE seed {args.seed}, MiniLM demo recipe on {args.groups} synthetic "
             f"dialogues, {args.folds}-fold CV, {args.epochs} epochs; objective cv/macro_f1_official; pruners wait "
             f"for 2 folds (median also for 3 finished trials)\n",
             "| pruner | pruned trials | fold-trainings | saved vs no pruning | best CV official macro-F1 | wall time |",
             "|---|---|---|---|---|---|"]
    base = next((r for r in out if r["pruner"] == "none"), None)
    for r in out:
        saved = f"{1 - r['folds'] / base['folds']:.0%}" if base else "-"
        lines.append(f"| {r['pruner']} | {r['pruned']} / {r['trials']} | {r['folds']} of {full} | {saved} | "
                     f"{r['best']:.4f} | {r['seconds'] / 60:.1f} min |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
