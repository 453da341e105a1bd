"""Fold-level pruning: the same study with no pruner and with each pruner Optuna ships.

    python benchmarks/pruning.py --method tfidf --trials 40 --groups 60 --sampler random --results
    python benchmarks/pruning.py --results                 # MiniLM on synthetic PsyDefConv, 5-fold CV, CPU
    python benchmarks/pruning.py --trials 6 --groups 30    # a quick look

Each study runs `harness tune`'s own code (harness.search.tune.run_study, SQLite storage, a seeded sampler) on
the demo recipe with a small search space (seqcls: learning rate, class weights, label smoothing; tfidf: C, class
weights, min_df). It reports the fold-trainings each study paid for, the best CV score it found, whether the
unpruned study's best trial survived pruning, and wall time. A fold-training is what costs GPU-hours on the real
recipe, so "fold-trainings saved" is the figure that matters, at the same best trial. `--sampler random` proposes
the same candidates in the same order to every study (TPE's proposals follow what it was told, so pruning changes
them), which makes "the same best trial" a question with an answer.
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
from common import machine, publish  # noqa: E402

SPACES = {
    "seqcls": {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
               "loss.class_weights": {"type": "categorical", "choices": ["none", "inverse_sqrt", "inverse"]},
               "loss.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}},
    "tfidf": {"tfidf.C": {"type": "float", "low": 0.01, "high": 100.0, "log": True},
              "loss.class_weights": {"type": "categorical", "choices": ["none", "inverse_sqrt", "inverse"]},
              "tfidf.min_df": {"type": "int", "low": 1, "high": 3}},
}


def run(pruner: str, args: argparse.Namespace, work: Path) -> dict:
    import optuna

    from harness.search.tune import run_study

    cfg = work / f"{pruner}.yaml"
    cfg.write_text(yaml.safe_dump({"tune": {"space": SPACES[args.method], "pruner": pruner, "seed": args.seed,
                                            "sampler": args.sampler, "pruner_warmup_folds": 2,
                                            "pruner_startup_trials": 3}, "output_dir": str(work / "runs")}))
    overrides = [f"method={args.method}", f"data.synthetic_groups={args.groups}", f"cv.n_folds={args.folds}",
                 f"train.epochs={args.epochs}", "track.backend=none", "decide.enabled=false",
                 "train.inner_val_fraction=0"]
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
            "best": max(t.value for t in complete), "best_trial": study.best_trial.number,
            "best_params": study.best_trial.params, "seconds": seconds, "values": {t.number: t.value for t in complete}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--groups", type=int, default=40, help="synthetic dialogues (default 40)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="sampler seed, the same for every study")
    p.add_argument("--method", choices=sorted(SPACES), default="seqcls")
    p.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    p.add_argument("--pruners", default="none,median,percentile,halving,wilcoxon")
    p.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in args.pruners.split(","):
            r = run(pruner, args, Path(tmp))
            out.append(r)
            print(f"{pruner:>10}: {r['trials']} trials ({r['pruned']} pruned), {r['folds']} fold-trainings, "
                  f"best {r['best']:.4f} (trial {r['best_trial']}), {r['seconds']:.0f}s", flush=True)
    full = args.trials * args.folds
    lines = [f"\n### pruning ({time.strftime('%Y-%m-%d')})\n",
             f"- command: `python benchmarks/pruning.py {' '.join(sys.argv[1:])}`",
             f"- machine: {machine()}",
             f"- study: {args.trials} trials, {args.sampler} sampler seed {args.seed}, `{args.method}` on the demo recipe's "
             f"{args.groups} synthetic dialogues, {args.folds}-fold CV"
             + (f", {args.epochs} epochs" if args.method == "seqcls" else "")
             + "; objective cv/macro_f1_official; pruners wait for 2 folds (median and percentile also for 3 "
             "finished trials; percentile keeps the top 25%; halving: rungs after 2 and 4 folds, keeping the top third)\n",
             "| pruner | pruned trials | fold-trainings | saved vs no pruning | best CV official macro-F1 (trial) | "
             "unpruned best kept | wall time |",
             "|---|---|---|---|---|---|---|"]
    base = next((r for r in out if r["pruner"] == "none"), None)
    for r in out:
        saved = f"{1 - r['folds'] / base['folds']:.0%}" if base else "-"
        kept = "-" if not base else ("yes" if r["best_trial"] == base["best_trial"] else
                                     f"no (best {base['best_trial']} {'pruned' if base['best_trial'] not in r['values'] else 'outscored'})")
        lines.append(f"| {r['pruner']} | {r['pruned']} / {r['trials']} | {r['folds']} of {full} | {saved} | "
                     f"{r['best']:.4f} ({r['best_trial']}) | {kept} | {r['seconds'] / 60:.1f} min |")
    publish(lines, args.results)


if __name__ == "__main__":
    main()
