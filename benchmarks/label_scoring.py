"""Label scoring: the cached scorer (one prompt pass, K continuations from its cache) against K full passes.

    python benchmarks/label_scoring.py              # SmolLM2-135M-Instruct, 9 DMRS labels, 32 real prompts
    python benchmarks/label_scoring.py --results    # append the figures to benchmarks/RESULTS.md

Prompts are the `prompt` method's zero-shot DMRS prompts (guide + dialogue + target, chat template)
built from the real dialogues of ../shared/data/psydefconv/test_unlabeled.json. Both scorers give the
same numbers (tests/test_generative.py); this measures rows per second and checks they agree here too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data" / "psydefconv" / "test_unlabeled.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=512, help="prompt token budget (prompt.max_length)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--results", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark uses real dialogues")
    os.environ.setdefault("HARNESS_QUIET", "1")
    from harness.config import load_config
    from harness.data.load import load_file
    from harness.methods.hf.scoring import label_logprobs, label_logprobs_naive
    from harness.methods.base import make_method

    cfg = load_config(None, ["method=prompt", f"model.name_or_path={args.model}", f"prompt.max_length={args.max_length}",
                             "prompt.context_turns=6", f"generative.score_batch_size={args.batch_size}"])
    rows = load_file(DATA, cfg, require_label=False)[: args.rows]
    method = make_method(cfg)
    scorer = method.scorer()
    prompts = [scorer.prompts.prompt_ids(e) for e in rows]
    lengths = [len(p) for p in prompts]
    k = len(scorer.prompts.continuations)
    label_logprobs(scorer.model, prompts[:2], scorer.prompts.continuations, scorer.tok.pad_token_id, 2)  # warm-up
    t0 = time.perf_counter()
    cached = label_logprobs(scorer.model, prompts, scorer.prompts.continuations, scorer.tok.pad_token_id, args.batch_size)
    t_cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = label_logprobs_naive(scorer.model, prompts, scorer.prompts.continuations)
    t_naive = time.perf_counter() - t0
    diff = float(np.abs(cached - naive).max())
    lines = [f"### label_scoring ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/label_scoring.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- {len(rows)} real PsyDefConv prompts (zero-shot DMRS prompt, chat template), tokens p50 "
             f"{int(np.median(lengths))}, max {max(lengths)}; {k} labels, continuation tokens "
             f"{min(len(c) for c in scorer.prompts.continuations)}-{max(len(c) for c in scorer.prompts.continuations)}; "
             f"model {args.model}", "",
             "| scorer | rows/s | seconds |", "|---|---|---|",
             f"| cached prompt, K continuations batched (batch {args.batch_size}) | {len(rows) / t_cached:.2f} | "
             f"{t_cached:.1f} |",
             f"| K full forward passes per row | {len(rows) / t_naive:.2f} | {t_naive:.1f} |", "",
             f"speed-up {t_naive / t_cached:.1f}x; largest difference between the two scorers {diff:.1e} (log-prob)", ""]
    publish(lines, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
