"""What the verified run directory costs: a fold's commit (hashing its model, the lock, the journal) and a verified
read, against the plain atomic writes and reads of before, for fold models of several sizes.

    python benchmarks/manifest.py [--sizes-mb 1 100 300] [--folds 10] [--results]

A LoRA adapter of Qwen3-8B at r=16 with its score head is ~170 MB; a tfidf fold ~1 MB. The figures are wall
seconds on this machine, medians over the folds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, publish  # noqa: E402

from harness.run.rundir import FoldRecord, RunDir  # noqa: E402
from harness.core.store import atomic_write_json, atomic_write_npz  # noqa: E402


def fake_model(mb: float) -> callable:
    """A save(folder) writing an adapter-sized file of random bytes (hashing cost depends on size only)."""
    blob = os.urandom(int(mb * 1024 * 1024))

    def save(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "adapter_model.safetensors").write_bytes(blob)
        (out / "adapter_config.json").write_text("{}")
    return save


def record(seed: int, fold: int) -> FoldRecord:
    rng = np.random.default_rng(fold)
    p = rng.dirichlet(np.ones(9), size=400).astype(np.float32)
    return FoldRecord(seed, fold, [f"r{i}" for i in range(400)], p, p[:200], {"macro_f1": 0.5})


def plain_write(root: Path, r: FoldRecord, save: callable) -> None:
    out = root / "folds" / f"seed{r.seed}" / f"fold{r.fold}"
    save(out / "model")
    atomic_write_json(out / "metrics.json", r.metrics)
    atomic_write_npz(out / "probs.npz", val_ids=np.array(r.val_ids), val_probs=r.val_probs, test_probs=r.test_probs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 100, 300])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    rows = []
    for mb in args.sizes_mb:
        save = fake_model(mb)
        with tempfile.TemporaryDirectory() as tmp:
            plain, managed = Path(tmp) / "plain", Path(tmp) / "managed"
            t_plain, t_commit, t_first, t_again = [], [], [], []
            run = RunDir(managed)
            for k in range(args.folds):
                r = record(42, k)
                t0 = time.perf_counter()
                plain_write(plain, r, save)
                t_plain.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run.write_fold(r, save)
                t_commit.append(time.perf_counter() - t0)
            for k in range(args.folds):
                fresh = RunDir(managed)  # a new process's view: nothing verified yet
                t0 = time.perf_counter()
                fresh.verified_model_dir(42, k)
                fresh.read_fold(42, k)
                t_first.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                fresh.verified_model_dir(42, k)
                fresh.read_fold(42, k)
                t_again.append(time.perf_counter() - t0)
            shutil.rmtree(plain)
        med = statistics.median
        rows.append(f"| {mb:g} MB | {med(t_plain):.3f} | {med(t_commit):.3f} | {med(t_commit) - med(t_plain):+.3f} | "
                    f"{med(t_first):.3f} | {med(t_again):.4f} |")
        print(rows[-1], flush=True)
    publish([f"## manifest: what a verified run directory costs per fold ({time.strftime('%Y-%m-%d')})", "",
             f"`python benchmarks/manifest.py --sizes-mb {' '.join(f'{x:g}' for x in args.sizes_mb)} --folds "
             f"{args.folds}` on {machine()}; wall seconds, median over {args.folds} folds.", "",
             "| fold model | plain atomic writes | committed (stage, hash, lock, journal, move, manifest) | "
             "overhead | first verified read (model + fold files) | read again (same process) |",
             "|---|---|---|---|---|---|", *rows], args.results)


if __name__ == "__main__":
    main()
