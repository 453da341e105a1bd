"""Decision-layer benchmark: evaluator throughput, search efficiency, cross-fitted vs in-sample gain.

    python benchmarks/decide_search.py                       # synthetic imbalanced OOF (1864 x 9, two seeds)
    python benchmarks/decide_search.py --run runs/demo       # also on OOF from a real `harness cv` run
    python benchmarks/decide_search.py --results             # append the figures to benchmarks/RESULTS.md

Throughput is measured on one core (torch/BLAS threads pinned to 1) against two references:
a per-candidate numpy loop and sklearn's f1_score in a loop. Search efficiency: trials Optuna
needs to reach the best score of the published 22k-candidate random search.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCORE = list(range(1, 9))


def throughput(probs: np.ndarray, y: np.ndarray, space, metric: str) -> dict[str, float]:
    from sklearn.metrics import f1_score

    from harness.posthoc.decision import Evaluator, random_candidates

    ev = Evaluator(probs, y, space, metric, SCORE)
    rng = np.random.default_rng(0)
    delta, tau, w = random_candidates(space, 20000, rng)
    from dataclasses import replace

    fixed = Evaluator(probs, y, replace(space, search_weights=False), metric, SCORE)

    def best_rate(evaluator) -> float:
        """Best of three timed passes over 20k candidates, after a warm-up (numba compile/cache load)."""
        evaluator.score(delta[:1024], None if tau is None else tau[:1024], w[:1024])
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            evaluator.score(delta, tau, w)
            times.append(time.perf_counter() - t0)
        return 20000 / min(times)

    ours, ours_fixed = best_rate(ev), best_rate(fixed)
    # per-candidate numpy loop
    p = probs.mean(0)
    logp = np.log(p + 1e-12)
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        pred = np.argmax(logp + delta[i], 1)
        if tau is not None:
            pred = np.where(p[:, space.gate_class] >= tau[i], space.gate_class, pred)
        cm = np.bincount(y * 9 + pred, minlength=81).reshape(9, 9)
        tp = np.diag(cm)
        f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
        f1[SCORE].mean()
    loop = n / (time.perf_counter() - t0)
    n = 300
    t0 = time.perf_counter()
    for i in range(n):
        pred = np.argmax(logp + delta[i], 1)
        f1_score(y, pred, labels=SCORE, average="macro", zero_division=0)
    sk = n / (time.perf_counter() - t0)
    return {"harness (delta, tau, blend weights)": ours, "harness (delta, tau; fixed blend)": ours_fixed,
            "per-candidate numpy loop": loop, "sklearn f1_score loop": sk}


def efficiency(probs: np.ndarray, y: np.ndarray, space, metric: str, budget: int, random_n: int,
               seeds: list[int], score_labels: list[int] | None) -> dict[str, object]:
    """Trials to reach the best of `random_n` uniform candidates (median over sampler seeds)."""
    from harness.config import DecideConfig
    from harness.posthoc.decision import Evaluator, random_search, search

    ev = Evaluator(probs, y, space, metric, score_labels)
    target, _ = random_search(ev, random_n, 0)
    out: dict[str, object] = {"target": target, "argmax": ev.argmax_score()}
    for sampler in ("tpe", "random", "cmaes"):
        reached, best = [], []
        for s in seeds:
            cfg = DecideConfig(sampler=sampler, seed=s, n_trials=budget)
            _, b, study = search(ev, cfg)
            vals = np.maximum.accumulate([t.value for t in study.trials])
            hit = np.nonzero(vals >= target - 1e-12)[0]
            reached.append(int(hit[0]) + 1 if len(hit) else None)
            best.append(b)
        out[sampler] = {"trials_to_target": reached, "best": best}
    return out


def gains(run_dir: Path | None, probs, y, fold, trials: int) -> dict[str, float]:
    """In-sample vs cross-fitted gain from decide_run on a (temporary) run directory."""
    import tempfile

    from harness.config import load_config
    from harness.posthoc.decision import decide_run
    from harness.core.store import atomic_write_npz

    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp()) / "run"
        cfg = load_config(None, ["data.synthetic=psydefconv", f"train.seeds={list(range(probs.shape[0]))}",
                                 "data.score_labels=[1,2,3,4,5,6,7,8]", f"run_dir={run_dir}"])
        run_dir.mkdir(parents=True)
        atomic_write_npz(run_dir / "oof.npz", ids=np.arange(len(y)).astype(str), labels=y, fold=fold,
                         seeds=np.arange(probs.shape[0]), probs=probs)
    else:
        cfg = load_config(run_dir / "config.yaml")
    cfg.decide.n_trials = trials
    out = decide_run(run_dir, cfg, verbose=False)
    cf = out["crossfit"]
    return {"in_sample_gain": out["in_sample"]["gain"], "crossfit_gain": cf["pooled_gain"],
            "crossfit_ci": cf["pooled_gain_ci"], "per_fold_mean": cf["gain_mean"], "per_fold_sd": cf["gain_sd"],
            "before": out["in_sample"]["before"], "in_sample_after": out["in_sample"]["after"],
            "crossfit_after": cf["pooled_after"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a finished `harness cv` run directory to use as real OOF")
    ap.add_argument("--budget", type=int, default=2000, help="Optuna trials per search")
    ap.add_argument("--random-n", type=int, default=22000, help="candidates of the published random search")
    ap.add_argument("--repeats", type=int, default=3, help="sampler seeds")
    ap.add_argument("--results", action="store_true")
    args = ap.parse_args()

    from harness.config import DecideConfig
    from harness.posthoc.decision import OOF, make_space
    from harness.testing.oof import make_oof_probs

    probs, y, fold = make_oof_probs(n_rows=1864, n_seeds=2, seed=0)
    oof = OOF(np.arange(len(y)), y, fold, [0, 1], probs)
    space = make_space(DecideConfig(gate="7"), oof)
    metric = "macro_f1_official"
    lines = [f"### decide_search ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `python benchmarks/decide_search.py {' '.join(sys.argv[1:])}`".rstrip(),
             f"- machine: {machine()}; one thread", ""]
    tp = throughput(probs, y, space, metric)
    lines += ["Evaluator throughput on a 1864x9 OOF matrix (two seeds), candidates per second:", "",
              "| evaluator | candidates/s |", "|---|---|", *[f"| {k} | {v:,.0f} |" for k, v in tp.items()], ""]
    print("\n".join(lines))
    sets = [("synthetic imbalanced OOF (1864 x 9, 2 seeds)", probs, y, fold, None)]
    if args.run:
        z = np.load(args.run / "oof.npz")
        sets.append((f"`harness cv` OOF of {args.run} ({len(z['labels'])} x {z['probs'].shape[-1]}, "
                     f"{z['probs'].shape[0]} seed(s))", z["probs"], z["labels"], z["fold"], args.run))
    for name, p, yy, ff, run in sets:
        sp = make_space(DecideConfig(gate="majority"), OOF(np.arange(len(yy)), yy, ff, list(range(p.shape[0])), p))
        labels = SCORE if p.shape[-1] == 9 else None  # official 1..8 for PsyDefConv; all labels otherwise
        eff = efficiency(p, yy, sp, metric, args.budget, args.random_n, list(range(args.repeats)), labels)
        block = [f"Search efficiency on {name}: argmax {eff['argmax']:.4f}, best of {args.random_n:,} uniform "
                 f"candidates {eff['target']:.4f}; budget {args.budget} trials, sampler seeds 0..{args.repeats - 1}:",
                 "", "| sampler | trials to reach the random-search best | best score |", "|---|---|---|"]
        for s in ("tpe", "random", "cmaes"):
            r = eff[s]
            block.append(f"| {s} | {', '.join('not reached' if x is None else str(x) for x in r['trials_to_target'])} "
                         f"| {', '.join(f'{b:.4f}' for b in r['best'])} |")
        g = gains(run, p, yy, ff, min(args.budget, 1000))
        block += ["", f"Gain over argmax ({metric}), 1000 TPE trials: in-sample {g['in_sample_gain']:+.4f} "
                  f"({g['before']:.4f} -> {g['in_sample_after']:.4f}); cross-fitted {g['crossfit_gain']:+.4f} "
                  f"(95% CI {g['crossfit_ci'][0]:+.4f}..{g['crossfit_ci'][1]:+.4f}; per-fold mean "
                  f"{g['per_fold_mean']:+.4f}, sd {g['per_fold_sd']:.4f})", ""]
        print("\n".join(block))
        lines += block
    if args.results:
        res = ROOT / "benchmarks" / "RESULTS.md"
        prev = res.read_text() if res.exists() else "# Benchmark results\n\nEach section names the command and the machine.\n\n"
        res.write_text(prev + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
