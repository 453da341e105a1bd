"""What a newcomer's first run costs: `harness demo` timed, its run directory weighed, its console read.

    python benchmarks/demo.py            # run the demo in a fresh folder, print the figures
    python benchmarks/demo.py --results  # ... and append them to benchmarks/RESULTS.md

The demo runs as a user types it (`harness demo`, a real process, in an empty folder, W&B offline as on a
machine that is not logged in). Reported: wall time, the size of runs/demo (and of its largest parts), how many
console lines W&B printed, and the last lines on screen (the harness's own table must be last).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from common import machine, publish

    work = Path(tempfile.mkdtemp(prefix="demo-"))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(work), "WANDB_CACHE_DIR": str(work / "wc"),
           "WANDB_DATA_DIR": str(work / "wd")}
    harness = shutil.which("harness") or "harness"
    t0 = time.time()
    r = subprocess.run([harness, "demo"], cwd=work, env=env, capture_output=True, text=True)
    seconds = time.time() - t0
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
        return 1
    run = work / "runs" / "demo"
    parts = sorted(((size(p) if p.is_dir() else p.stat().st_size, p.relative_to(run)) for p in run.iterdir()),
                   reverse=True)
    out_lines = r.stdout.rstrip().splitlines()
    wandb_lines = sum("wandb" in ln.lower() for ln in out_lines + r.stderr.splitlines())
    empty_dirs = [str(p.relative_to(run)) for p in run.rglob("*") if p.is_dir() and not any(p.iterdir())]
    publish([f"### demo: a newcomer's first run ({time.strftime('%Y-%m-%d')})", "",
             "- command: `python benchmarks/demo.py" + (" --results" if args.results else "") + "` (runs `harness demo` "
             "in an empty folder, W&B offline)", f"- machine: {machine()}", "",
             f"- wall time: **{seconds:.0f} s** ({seconds / 60:.1f} min)",
             f"- runs/demo: **{size(run) / 2**20:.1f} MB**; largest parts: "
             + ", ".join(f"{p} {b / 2**20:.2f} MB" for b, p in parts[:4]),
             f"- empty folders left: {empty_dirs or 'none'}",
             f"- console: {len(out_lines)} lines on stdout, {len(r.stderr.splitlines())} on stderr, {wandb_lines} "
             "mentioning W&B; stderr: " + (" / ".join(r.stderr.strip().splitlines()[:3]) or "empty"),
             "- the last lines on screen:", "", "```", *out_lines[-6:], "```"], args.results)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
