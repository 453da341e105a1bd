"""`harness.load(DIR)`: an export folder as a classifier for notebooks and scripts.

`predict_proba(rows)` gives what the decision applies to (each seed's fold models averaged, then the seeds or
an ensemble's members blended by the decision's weights), and `predict(rows)` the decided labels: the same
computation as `harness predict` on the run directory, so both give the same labels on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ExperimentConfig, load_config
from harness.core.store import read_json
from harness.data.load import DataError, Issue, parse_psydefconv, parse_table, read_file
from harness.data.schema import Example, Turn
from harness.export import files
from harness.posthoc.decision import Decision, apply_to_test, blend

Rows = Sequence[str] | Sequence[dict[str, Any]] | Sequence[Example] | str | Path


def as_examples(rows: Rows, cfg: ExperimentConfig) -> list[Example]:
    """Texts, dicts in the data file's format, Examples, or the path of a data file, as checked Examples."""
    data = cfg.data
    if isinstance(rows, (str, Path)):
        return read_file(rows, data, require_label=False)
    rows = list(rows)
    if not rows or isinstance(rows[0], Example):
        return list(rows)  # type: ignore[arg-type]
    if isinstance(rows[0], str):
        bad = [Issue("<rows>", f"row {i + 1}", "text", "not a non-empty string") for i, t in enumerate(rows)
               if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(bad)
        return [Example(id=str(i), group=str(i), target=t, dialogue=(Turn("seeker", t),)) for i, t in enumerate(rows)]
    if data.format == "psydefconv":
        examples, issues = parse_psydefconv(rows, "<rows>", len(data.label_names()), False)
    else:
        examples, issues = parse_table(rows, "<rows>", data, data.label_names(), False)  # type: ignore[arg-type]
    if issues:
        raise DataError(issues)
    return examples


class _FoldSet:
    """One run's exported fold models (or its one refit / fold model), scored as `score_file` does."""

    def __init__(self, root: Path, models: list[dict[str, Any]], seeds: list[int], n_folds: int):
        from harness.methods.base import make_method

        self.root, self.models, self.seeds = root, models, seeds
        self.cfg = load_config(root / files.CONFIG)
        self.method = make_method(self.cfg)
        self.n_folds = n_folds  # 1: a refit (one model per seed) or one fold

    def probs(self, rows: list[Example]) -> np.ndarray:
        """(S, F, M, K) for the seeds and folds exported (one model: (1, 1, M, K))."""
        from harness.methods.base import check_probs_shape

        k = len(self.cfg.data.label_names())
        out = np.zeros((len(self.seeds), self.n_folds, len(rows), k), dtype=np.float32)
        for m in self.models:
            s = self.seeds.index(m["seed"])
            f = m["fold"] if self.n_folds > 1 else 0  # the fold ensemble's axis, else the one model per seed
            fitted = self.method.load(self.root / m["path"])
            try:
                out[s, f] = check_probs_shape(fitted.predict_proba(rows), len(rows), k, str(self.root / m["path"]))
            finally:
                fitted.close()
        return out


class ExportedModel:
    """A loaded export: `predict_proba`, `predict` and `predict_names` on texts, dicts, Examples or a file. Each
    call loads every fold model once and scores all its rows (one model in memory at a time, as `harness predict`
    does): give a call all the rows, not one batch at a time; `set_probs` once, then `apply_to_test`, gives both
    probabilities and labels."""

    def __init__(self, root: str | Path, verify: bool = True):
        self.root = Path(root)
        self.meta = files.read_export(self.root, verify)
        self.label_names: list[str] = list(self.meta["label_names"])
        self.cfg = load_config(self.root / files.CONFIG)
        self.decision_json = read_json(self.root / files.DECISION)  # None: the run had no decision
        self.decision = None if self.decision_json is None else Decision.from_json(
            self.decision_json, str(self.root / files.DECISION))
        if self.meta["members"]:
            self.sets = {m["path"]: _FoldSet(self.root / m["path"], m["models"], m["seeds"], m["n_folds"])
                         for m in self.meta["members"]}
        else:
            self.sets = {".": _FoldSet(self.root, self.meta["models"], self.meta["seeds"], self.meta["n_folds"])}

    def set_probs(self, rows: Rows) -> np.ndarray:
        """(S, F, M, K): what `harness predict` computes from the fold models (an ensemble: combined members)."""
        examples = as_examples(rows, self.cfg)
        if not self.meta["members"]:
            return self._unfold(self.sets["."].probs(examples))
        from harness.core.store import load_npz
        from harness.posthoc.ensemble import combine_members

        scored = {path: s.probs(examples) for path, s in self.sets.items()}
        member = np.stack([scored[m["path"]][m["seeds"].index(m["seed"])] for m in self.meta["members"]])
        z = load_npz(self.root / files.COMBINER, "temperatures")
        return combine_members(z, self.meta["combine"] or "weights", member, str(self.root / files.COMBINER))

    def _unfold(self, probs: np.ndarray) -> np.ndarray:
        """A head the decision was folded into gives softmax((z + δ) / T): back to softmax(z), which the decision
        (and any caller of predict_proba) expects."""
        if not self.meta["folded"]:
            return probs
        delta, t = np.asarray(self.decision.delta), float(self.decision_json["temperature"] or 1.0)
        logits = t * np.log(np.clip(probs.astype(np.float64), 1e-30, None)) - delta
        logits -= logits.max(-1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    def _weights(self, n_sets: int) -> Decision | None:
        d = self.decision
        if d is None:
            return None
        if len(d.weights) != n_sets:  # one model exported from a run of several seeds: its own probabilities
            return Decision(d.delta, d.tau, d.gate_class, np.ones(n_sets) / n_sets)
        return d

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """(N, K) probabilities the decision applies to."""
        probs = self.set_probs(rows)
        per_set = probs.mean(1)
        d = self._weights(per_set.shape[0])
        return (blend(per_set, d.weights) if d is not None else per_set.mean(0)).astype(np.float32)

    def predict(self, rows: Rows) -> np.ndarray:
        """(N,) decided class indices (the locked decision; argmax without one)."""
        probs = self.set_probs(rows)
        return apply_to_test(probs, self._weights(probs.shape[0]))

    def predict_names(self, rows: Rows) -> list[str]:
        return [self.label_names[i] for i in self.predict(rows)]

    def __repr__(self) -> str:
        return (f"ExportedModel({self.root}: {self.meta['method']}, {len(self.label_names)} classes, "
                f"from {self.meta['source']}, decision {'folded' if self.meta['folded'] else 'applied here'})")


def load(path: str | Path, verify: bool = True) -> ExportedModel:
    """An export folder (`harness export`), every file checked against export.json unless verify=False."""
    return ExportedModel(path, verify)


def write_submission(export_dir: Path, test_file: Path | None, out: Path, verbose: bool = True) -> dict[str, Any]:
    """`harness predict EXPORT --test FILE`: the export's decided labels for a file, as `[{id, label}]`."""
    from harness.config import ConfigError
    from harness.posthoc.predict import check_writable_output, write_labels

    if test_file is None:
        raise ConfigError([f"{export_dir}: an export folder holds no test rows: pass --test FILE"])
    check_writable_output(Path(out))
    model = load(export_dir)
    rows = as_examples(Path(test_file), model.cfg)
    if verbose:
        print(f"scoring {len(rows)} rows with {model}", flush=True)
    return write_labels(Path(out), [e.id for e in rows], model.predict(rows), len(model.label_names), verbose)
