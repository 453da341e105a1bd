"""SetFit against embed, one fold as one whole `harness cv --folds K` process, on real dialogue texts; the
code before and after a change timed in the same run.

    python benchmarks/setfit_speed.py --before REF            # e.g. --before 5b2c1d0 (a commit before the change)
    python benchmarks/setfit_speed.py --before REF --results  # ... and append to benchmarks/RESULTS.md

Data: the 472 real seeker utterances of ../shared/data/psydefconv/test_unlabeled.json, with labels drawn
(seed 0) at the official training set's class mix (the file has no labels: the scores only compare methods
and code on identical rows; they say nothing about PsyDefDetect). Grouped 5-fold CV by dialogue, so a fold
trains on about 376 rows; MiniLM, `prompt.layout: pair` with 3 context turns, prompt.max_length 256.
Each (code, method, fold) is a fresh process timed from start to exit, as a user runs it. `--before REF`
is checked out into a temporary git worktree and run with PYTHONPATH pointing at it. Scores: the official
macro-F1 (classes 1..8) of the folds' validation rows together, and for setfit the paired bootstrap
difference after - before on those rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data" / "psydefconv" / "test_unlabeled.json"
OFFICIAL_COUNTS = [296, 108, 61, 99, 84, 48, 172, 968, 28]
SETTINGS = ["data.format=psydefconv", "data.preset=psydefdetect", "data.score_labels=[1,2,3,4,5,6,7,8]",
            "cv.n_folds=5", "cv.group_by=dialogue_id", "prompt.layout=pair", "prompt.guide=none",
            "prompt.context_turns=3", "prompt.max_length=256", "model.name_or_path=minilm", "track.backend=none",
            "decide.enabled=false", "train.seeds=[42]"]


def write_data(out: Path) -> None:
    rows = json.loads(DATA.read_text())
    p = np.array(OFFICIAL_COUNTS, float)
    labels = np.random.default_rng(0).choice(len(p), size=len(rows), p=p / p.sum())
    out.write_text(json.dumps([{**r, "label": int(y)} for r, y in zip(rows, labels)]))


def cv_process(code: Path, over: list[str], work: Path, folds: str | None, recipe: str | None = None) -> float:
    """Seconds of one `harness cv [--folds K]` process run from the source tree `code`."""
    env = {**os.environ, "PYTHONPATH": str(code), "HARNESS_QUIET": "1"}
    if recipe is None:
        recipe = str(work / "setfit_speed.yaml")
        Path(recipe).write_text("name: setfit_speed\n")
    cmd = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())", "cv", recipe,
           *over, *(["--folds", folds] if folds else [])]
    t0 = time.perf_counter()
    # cwd outside any checkout: `python -c` puts the working directory first on sys.path, before PYTHONPATH
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=work)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    check = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], env=env, cwd=work,
                           capture_output=True, text=True)
    assert check.stdout.startswith(str(code)), f"ran {check.stdout.strip()}, not the code of {code}"
    return time.perf_counter() - t0


def fold_predictions(run_dirs: list[Path], folds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, predicted labels) of the folds' validation rows."""
    ids, pred = [], []
    for run_dir, k in zip(run_dirs, folds):
        z = np.load(run_dir / "folds" / "seed42" / f"fold{k}" / "probs.npz")
        ids += [str(i) for i in z["val_ids"]]
        pred += z["val_probs"].argmax(1).tolist()
    return np.array(ids), np.array(pred)


def quality_check(codes: dict[str, Path], work: Path, args: argparse.Namespace) -> list[str]:
    """The random labels above carry no signal: setfit before and after on the demo recipe's synthetic
    PsyDefConv (learnable labels), every fold, and the paired difference of their OOF official macro-F1."""
    from harness.core.metrics import paired_bootstrap, score

    preds = {}
    for name, code in codes.items():
        run_dir = work / f"quality-{name}"
        secs = cv_process(code, ["method=setfit", f"data.synthetic_groups={args.quality_groups}",
                                 "decide.enabled=false", "track.backend=none", f"run_dir={run_dir}", *args.setfit],
                          work, None, recipe="demo_cpu")
        z = np.load(run_dir / "oof.npz")
        preds[name] = (z["ids"], z["labels"], z["probs"].mean(0).argmax(-1), secs)
    (ia, y, a, ta), (ib, _, b, tb) = preds["before"], preds["after"]
    assert list(ia) == list(ib)
    official = list(range(1, 9))
    d = paired_bootstrap(y, a, b, 9, "macro_f1_official", official, n_boot=2000)
    return ["", f"Quality on learnable labels: the demo recipe (synthetic PsyDefConv, {args.quality_groups} dialogues, "
                f"grouped 5-fold CV, MiniLM), setfit OOF official macro-F1 before {score(y, a, 9, 'macro_f1_official', official):.4f} "
                f"({ta:.0f} s for the run), after {score(y, b, 9, 'macro_f1_official', official):.4f} ({tb:.0f} s); "
                f"after - before {d['delta']:+.4f} (95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}) on {len(y)} rows"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="git ref of the code before the change (timed in a worktree); omit: after only")
    ap.add_argument("--folds", default="0,1", help="folds to run, each its own process (default 0,1)")
    ap.add_argument("--setfit", nargs="*", default=[], help="extra setfit overrides for both codes")
    ap.add_argument("--quality", action="store_true", help="with --before: also compare OOF scores on learnable labels")
    ap.add_argument("--quality-groups", type=int, default=80, help="synthetic dialogues for --quality (default 80)")
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark times real dialogue texts")
    from harness.core.metrics import paired_bootstrap, report

    folds = [int(f) for f in args.folds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "train.json"
        write_data(data)
        truth = {r["id"]: r["label"] for r in json.loads(data.read_text())}
        codes = {"after": ROOT}
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(work / "before"),
                            args.before], check=True, capture_output=True)
            codes = {"before": work / "before", "after": ROOT}
        results: dict[tuple[str, str], dict] = {}
        try:
            for code_name, code in codes.items():
                for method in ("embed", "setfit"):
                    if method == "embed" and code_name == "before":
                        continue  # embed is not what changed: timed once, with the code after
                    # each fold in a fresh run directory: no fold reuses another's cached embeddings
                    dirs = [work / f"{code_name}-{method}-{k}" for k in folds]
                    extra = args.setfit if method == "setfit" else []
                    secs = [cv_process(code, [*SETTINGS, f"method={method}", f"data.train_path={data}",
                                              f"run_dir={d}", *extra], work, str(k)) for d, k in zip(dirs, folds)]
                    ids, pred = fold_predictions(dirs, folds)
                    y = np.array([truth[i] for i in ids])
                    score = report(y, pred, [str(i) for i in range(9)], list(range(1, 9)), n_boot=0)
                    results[(code_name, method)] = {"seconds": secs, "ids": ids, "pred": pred, "y": y,
                                                    "f1": score["macro_f1_official"]}
                    print(code_name, method, [round(s, 1) for s in secs], round(score["macro_f1_official"], 4),
                          flush=True)
            quality = quality_check(codes, work, args) if args.quality and "before" in codes else []
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "before")],
                               capture_output=True)
    embed_s = np.mean(results[("after", "embed")]["seconds"])
    lines = [f"### setfit_speed ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/setfit_speed.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- 472 real PsyDefConv utterances, labels drawn at the official class mix (seed 0); grouped 5-fold CV "
             f"by dialogue, folds {args.folds} each as one whole process; MiniLM, pair layout, 3 context turns", "",
             "| code | method | s per fold process | x embed | official macro-F1 (val rows of these folds) |",
             "|---|---|---|---|---|"]
    for (code_name, method), r in results.items():
        lines.append(f"| {code_name} | {method} | {' / '.join(f'{s:.0f}' for s in r['seconds'])} | "
                     f"{np.mean(r['seconds']) / embed_s:.1f}x | {r['f1']:.4f} |")
    if ("before", "setfit") in results:
        a, b = results[("before", "setfit")], results[("after", "setfit")]
        assert list(a["ids"]) == list(b["ids"])
        d = paired_bootstrap(a["y"], a["pred"], b["pred"], 9, "macro_f1_official", list(range(1, 9)), n_boot=2000)
        lines += ["", f"setfit after - before, official macro-F1: {d['delta']:+.4f} (95% CI {d['ci_low']:+.4f} to "
                      f"{d['ci_high']:+.4f}) on {len(a['y'])} rows"]
    publish(lines + quality + [""], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
