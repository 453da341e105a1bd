"""The post-hoc decision layer: per-class logit bias δ, a majority-class gate τ, and seed-blend weights.

Decode rule, per row:  if the gate is on and p_m ≥ τ → m;  else argmax_c (log p_c + δ_c).

δ, τ and the blend weights are searched on the out-of-fold (OOF) rows. Their in-sample gain is optimistic by
construction (they were tuned on those rows), so how much decision the rows can pay for is chosen by nested
cross-fitting (the ladder), and the gain is cross-fitted too: fit on K−1 folds' OOF rows, score the held-out
fold, for every fold. Candidates are scored in vectorised batches, so thousands cost seconds.

The pieces, lowest first:
- inputs: the OOF rows a decision is fitted to, checked;
- rule: the decision and its decoder (vectorised over candidates), read back and checked from disk;
- space: what a decision may move, and the scorer of candidates;
- searches: an Optuna study, a batched search recorded in it, a random baseline;
- ladder: the rungs (argmax → prior → blend → δ → δ + τ → full), each an object that fits itself;
- step: the run's decision step (`decide_run`), committed in one step under the run's writer lock.
"""

from harness.posthoc.decision.inputs import OOF, DecisionInputError, check_probs, load_oof
from harness.posthoc.decision.ladder import (RUNGS, Rung, choose_rung, pick_rung, rung_named, rungs_for,
                                             simplex_grid)
from harness.posthoc.decision.rule import (Decision, apply_to_test, batch_scores, blend, check_decision_json,
                                           check_weights, decode, decode_batch, load_decision)
from harness.posthoc.decision.searches import batched_search, random_search, search
from harness.posthoc.decision.space import Evaluator, Space, candidates_from_params, make_space, random_candidates
from harness.posthoc.decision.step import crossfit, decide_run, decide_summary, format_decision

__all__ = ["OOF", "RUNGS", "Decision", "DecisionInputError", "Evaluator", "Rung", "Space", "apply_to_test",
           "batch_scores", "batched_search", "blend", "candidates_from_params", "check_decision_json",
           "check_probs", "check_weights", "choose_rung", "crossfit", "decide_run", "decide_summary", "decode",
           "decode_batch", "format_decision", "load_decision", "load_oof", "make_space", "pick_rung",
           "random_candidates", "random_search", "rung_named", "rungs_for", "search", "simplex_grid"]
