"""`harness select`: which unlabelled rows to label next, ranked by the runs' fold models.

Every fold model of every seed of every run (and of every member of an ensemble) scores the pool: a committee.
Strategies are small-text's, on those probabilities: `entropy` (PredictionEntropy of the committee mean),
`margin` (BreakingTies: the smallest gap between the two likeliest classes), `disagreement` (BALD: the mutual
information between the prediction and the committee member), and `random`. What no library does on grouped
fold ensembles is ours: `--balance` spreads the picks over the predicted classes, the rarest in the training
labels first, so a rare class is not crowded out by the majority's uncertain rows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError
from harness.data.load import Example, read_file
from harness.run.rundir import RunDir

STRATEGIES = ("entropy", "margin", "disagreement", "random")


class Committee:
    """small-text's classifier interface over fixed probabilities: `dataset` is an array of row indices."""

    def __init__(self, members: np.ndarray):
        self.members = members  # (N, C, K): each row's probabilities from each committee member

    def predict_proba(self, dataset: np.ndarray, dropout_sampling: int = 1) -> np.ndarray:
        return self.members[dataset] if dropout_sampling > 1 else self.members[dataset].mean(1)


def committee(run_dirs: Sequence[str | Path], rows: list[Example], verbose: bool) -> np.ndarray:
    """(N, C, K): every fold model of every run (an ensemble: its combined members per fold) on the rows."""
    from harness.posthoc.ensemble import combine_test
    from harness.posthoc.predict import member_test_probs, score_file

    parts = []
    for d in run_dirs:
        run = RunDir(d)
        if run.is_ensemble():
            probs = combine_test(run, member_test_probs(run.path, rows, verbose))
        else:
            probs = score_file(run.path, run.read_config(), rows, verbose)
        parts.append(probs.reshape(-1, *probs.shape[2:]))  # (sets x folds, N, K)
    return np.concatenate(parts, 0).transpose(1, 0, 2)


def scores(strategy: str, members: np.ndarray, seed: int) -> np.ndarray:
    """(N,) how much each row is worth labelling (higher first)."""
    from small_text.query_strategies import BreakingTies, PredictionEntropy
    from small_text.query_strategies.bayesian import _bald  # BALD's score; its query() returns no scores

    clf, idx = Committee(members), np.arange(len(members))
    if strategy == "entropy":
        return -PredictionEntropy().score(clf, idx, idx, np.array([], int), np.array([], int))
    if strategy == "margin":
        return -BreakingTies().score(clf, idx, idx, np.array([], int), np.array([], int))
    if strategy == "disagreement":
        return _bald(members)
    return np.random.default_rng(seed).random(len(members))


def pick(score: np.ndarray, predicted: np.ndarray, n: int, class_order: Sequence[int] | None) -> np.ndarray:
    """The n best rows; with `class_order`, taken in turn from each predicted class in that order (best row of
    each class first), a class that runs out skipped."""
    ranked = np.argsort(-score, kind="stable")
    if class_order is None:
        return ranked[:n]
    queues = {c: [i for i in ranked if predicted[i] == c] for c in class_order}
    out: list[int] = []
    while len(out) < n and any(queues.values()):
        for c in class_order:
            if queues[c] and len(out) < n:
                out.append(queues[c].pop(0))
    return np.array(out, dtype=int)


def _training_ids_and_labels(run_dirs: Sequence[str | Path]) -> tuple[set[str], np.ndarray]:
    ids: set[str] = set()
    labels = []
    for d in run_dirs:
        oof = RunDir(d).read_oof()
        ids |= {str(i) for i in oof.ids}
        labels.append(oof.labels)
    return ids, np.concatenate(labels)


def check_pool(rows: list[Example], train_ids: set[str], n: int, pool: Path) -> None:
    """A pool whose ids are training rows (already labelled: a wrong file?), or smaller than --n: every problem."""
    problems = []
    taken = sorted({e.id for e in rows} & train_ids)
    if taken:
        problems.append(f"{pool}: {len(taken)} id(s) are training rows of the run(s), e.g. {taken[:5]}: the pool "
                        "must hold rows without labels (remove them, or give the unlabelled file)")
    if n > len(rows):
        problems.append(f"--n {n}: the pool {pool} has {len(rows)} row(s); ask for at most {len(rows)}")
    if problems:
        raise ConfigError(problems)


def _csv(rows: list[Example], chosen: np.ndarray, mean: np.ndarray, score: np.ndarray, names: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "id", "text", "context", "predicted", "probability", "score", "label"])
    for rank, i in enumerate(chosen, 1):
        e, c = rows[i], int(mean[i].argmax())
        context = " | ".join(f"[{t.speaker}] {t.text}" for t in e.context)
        w.writerow([rank, e.id, e.target, context, names[c], f"{mean[i, c]:.4f}", f"{score[i]:.6g}", ""])
    return buf.getvalue()


def select_rows(run_dirs: Sequence[str | Path], pool: str | Path, n: int, out: str | Path,
                strategy: str = "entropy", balance: bool = False, seed: int = 0, verbose: bool = True
                ) -> dict[str, Any]:
    """Rank the pool, write the n picks as a CSV for annotators (an empty `label` column); what was picked."""
    from harness.core.store import atomic_write_text

    out, pool = Path(out), Path(pool)
    if out.exists():
        raise ConfigError([f"--out {out}: exists (annotators may have filled it in): choose a new file"])
    if strategy not in STRATEGIES:
        raise ConfigError([f"--strategy: {strategy!r}; choose from {', '.join(STRATEGIES)}"])
    cfg = RunDir(run_dirs[0]).read_config()
    names = cfg.data.label_names()
    other = [f"{d}: labels {RunDir(d).read_config().data.label_names()} differ from {run_dirs[0]}'s {names}"
             for d in run_dirs[1:] if RunDir(d).read_config().data.label_names() != names]
    if other:
        raise ConfigError(other + ["the runs of one selection classify into the same labels"])
    rows = read_file(pool, cfg.data, require_label=False)
    train_ids, train_labels = _training_ids_and_labels(run_dirs)
    check_pool(rows, train_ids, n, pool)
    members = committee(run_dirs, rows, verbose)
    mean = members.mean(1)
    score = scores(strategy, members, seed)
    order = None
    if balance:
        counts = np.bincount(train_labels, minlength=len(names))
        order = [int(c) for c in np.argsort(counts, kind="stable")]  # rarest in the training labels first
    chosen = pick(score, mean.argmax(1), n, order)
    atomic_write_text(out, _csv(rows, chosen, mean, score, names))
    picked = np.bincount(mean[chosen].argmax(1), minlength=len(names)).tolist()
    if verbose:
        print(f"{len(chosen)} of {len(rows)} pool rows picked by {strategy}{' (balanced)' if balance else ''} with "
              f"{members.shape[1]} fold model(s); predicted classes {dict(zip(names, picked))}; wrote {out}")
    return {"rows": len(rows), "picked": len(chosen), "ids": [rows[i].id for i in chosen],
            "predicted_counts": picked, "committee": int(members.shape[1])}
