"""Is the learning curve's forecast right? Fit on the points up to half the labels, forecast the full-data point.

For real Dreaddit and the synthetic PsyDefConv data, with tfidf and embed (MiniLM): `harness curve` at
fractions 0.1 .. 0.5 (3 draws each) and 1.0; the power law is fitted on the points <= 0.5 only and forecasts the
official macro-F1 at the 1.0 point's training rows. Reported: the forecast, its 95% interval, the measured 1.0
point, whether it falls inside, and the error. Target: inside, and |error| <= 0.02.

    python benchmarks/curve.py [--results]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
DREADDIT = ROOT.parent / "shared" / "data" / "dreaddit" / "dreaddit-train.csv"
FRACTIONS = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 1.0]
EMBED = ["method=embed", "model.name_or_path=minilm", "prompt.layout=pair", "prompt.guide=none"]
SETUPS = {
    "Dreaddit (real), tfidf": (ROOT / "experiments/dreaddit_tfidf.yaml", [f"data.train_path={DREADDIT}"]),
    "Dreaddit (real), embed MiniLM": (ROOT / "experiments/dreaddit_embed.yaml", [f"data.train_path={DREADDIT}"]),
    "synthetic PsyDefConv, tfidf": (ROOT / "experiments/psydefdetect_tfidf.yaml",
                                    ["data.synthetic=psydefconv", "data.train_path=null", "data.test_path=null"]),
    "synthetic PsyDefConv, embed MiniLM": (ROOT / "experiments/psydefdetect_tfidf.yaml",
                                           ["data.synthetic=psydefconv", "data.train_path=null", "data.test_path=null",
                                            "prompt.context_turns=1", "prompt.max_length=64", *EMBED]),
}


def one(yaml: Path, over: list[str], tmp: Path, draws: int) -> dict[str, float]:
    from harness.config import load_config
    from harness.search.curve import curve_data, fit_curve, train_points

    cfg = load_config(yaml, over + [f"run_dir={tmp / 'run'}", "track.backend=none", "decide.enabled=false"])
    t0 = time.time()
    points = train_points(cfg, FRACTIONS, draws, verbose=False)
    data, fractions = curve_data(cfg, points)
    fit = fit_curve(cfg, data, fractions, fit_upto=0.5, n_boot=300)
    f = fit["overall"]["macro_f1_official"]
    at_full = f["forecast"][0]  # the forecast at the 1.0 point's training rows
    actual = f["points"][-1]
    return {"forecast": at_full["score"], "lo": at_full["lo"], "hi": at_full["hi"], "actual": actual,
            "rows": fit["at"][0], "half": f["points"][fractions.index(0.5)], "seconds": time.time() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_QUIET", "1")
    lines = [f"### curve ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/curve.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- fractions {FRACTIONS} of each fold's training groups, {args.draws} draws below 1.0, 5 grouped folds; "
             "the power law a - b n^-c fitted on the points <= 0.5 forecasts the official macro-F1 at the 1.0 "
             "point's rows (95% interval: paired bootstrap over OOF rows and draws, 300 resamples)", "",
             "| setup | rows/fold at 1.0 | score at 0.5 | forecast at 1.0 (95% interval) | measured at 1.0 | inside | "
             "error | s |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(args.setups):
            yaml, over = SETUPS[name]
            if "Dreaddit" in name and not DREADDIT.exists():
                lines.append(f"| {name} | skipped: {DREADDIT} not found | | | | | | |")
                continue
            r = one(yaml, over, Path(tmp) / str(i), args.draws)
            inside = r["lo"] <= r["actual"] <= r["hi"]
            lines.append(f"| {name} | {r['rows']:.0f} | {r['half']:.4f} | {r['forecast']:.4f} ({r['lo']:.4f} to "
                         f"{r['hi']:.4f}) | {r['actual']:.4f} | {'yes' if inside else 'no'} | "
                         f"{r['forecast'] - r['actual']:+.4f} | {r['seconds']:.0f} |")
            print(lines[-1], flush=True)
    publish(lines + [""], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
