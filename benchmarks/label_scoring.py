"""Label scoring: the packed scorer (prompt + K continuations in one pass) against K full passes, and the
cache-copying scorer it replaced.

    python benchmarks/label_scoring.py              # SmolLM2-135M-Instruct, 9 DMRS labels, 24 real prompts
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
import torch

from common import machine, publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data" / "psydefconv" / "test_unlabeled.json"


@torch.no_grad()
def repeated_cache_scorer(model, prompts, continuations, pad_id: int, batch_size: int = 8) -> np.ndarray:
    """The scorer before issue 34, kept here as the "before": one prompt pass with its cache, the cache
    copied K times (`batch_repeat_interleave`), then one pass over the K padded continuations."""
    k, width = len(continuations), max(len(c) for c in continuations)
    cont_in = torch.full((k, max(width - 1, 1)), pad_id, dtype=torch.long)
    cont_mask, cont_tgt = torch.zeros_like(cont_in), torch.zeros_like(cont_in)
    for j, c in enumerate(continuations):
        cont_in[j, :len(c) - 1] = torch.tensor(c[:-1])
        cont_mask[j, :len(c) - 1] = 1
        cont_tgt[j, :len(c) - 1] = torch.tensor(c[1:])
    first = torch.tensor([c[0] for c in continuations])
    out = np.zeros((len(prompts), k))
    order = np.argsort([len(p) for p in prompts], kind="stable")[::-1]
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        b, longest = len(idx), max(len(prompts[i]) for i in idx)
        ids = torch.full((b, longest), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, longest - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[r, longest - len(prompts[i]):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        total = torch.log_softmax(res.logits[:, -1].float(), -1)[:, first]
        cache = res.past_key_values
        cache.batch_repeat_interleave(k)
        c_mask = cont_mask.repeat(b, 1)
        c_pos = mask.sum(-1).repeat_interleave(k)[:, None] + torch.arange(cont_in.shape[1])[None]
        res2 = model(input_ids=cont_in.repeat(b, 1), attention_mask=torch.cat([mask.repeat_interleave(k, 0), c_mask], 1),
                     position_ids=c_pos, past_key_values=cache, use_cache=True)
        logp = torch.log_softmax(res2.logits.float(), -1)
        rest = (logp.gather(-1, cont_tgt.repeat(b, 1)[..., None]).squeeze(-1) * c_mask).sum(-1)
        out[idx] = (total + rest.view(b, k)).double().numpy()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--rows", type=int, default=24)
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
    before = repeated_cache_scorer(scorer.model, prompts, scorer.prompts.continuations, scorer.tok.pad_token_id,
                                   args.batch_size)
    t_before = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = label_logprobs_naive(scorer.model, prompts, scorer.prompts.continuations)
    t_naive = time.perf_counter() - t0
    diff = float(np.abs(cached - naive).max())
    diff_before = float(np.abs(before - naive).max())
    lines = [f"### label_scoring ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `{' '.join(['python benchmarks/label_scoring.py', *sys.argv[1:]])}`",
             f"- machine: {machine()}",
             f"- {len(rows)} real PsyDefConv prompts (zero-shot DMRS prompt, chat template), tokens p50 "
             f"{int(np.median(lengths))}, max {max(lengths)}; {k} labels, continuation tokens "
             f"{min(len(c) for c in scorer.prompts.continuations)}-{max(len(c) for c in scorer.prompts.continuations)}; "
             f"model {args.model}", "",
             "| scorer | rows/s | seconds |", "|---|---|---|",
             f"| packed: prompt + K continuations in one pass, tree mask (batch {args.batch_size}) | "
             f"{len(rows) / t_cached:.2f} | {t_cached:.1f} |",
             f"| before: prompt pass, cache copied K times, continuations pass (batch {args.batch_size}) | "
             f"{len(rows) / t_before:.2f} | {t_before:.1f} |",
             f"| K full forward passes per row | {len(rows) / t_naive:.2f} | {t_naive:.1f} |", "",
             f"speed-up over K full passes: packed **{t_naive / t_cached:.1f}x**, before {t_naive / t_before:.1f}x; "
             f"largest difference from the full passes: packed {diff:.1e}, before {diff_before:.1e} (log-prob)", ""]
    publish(lines, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
