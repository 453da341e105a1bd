"""`method: tfidf`: word and character n-gram TF-IDF with a linear model. Seconds per fold on CPU.

On a few hundred labelled rows this is the baseline every fine-tuned model has to beat on the same
folds. Blocks: word n-grams and char n-grams (within word bounds) of the target, and optionally a
separate word block for the context turns (so the context never drowns the target). Classifiers:
- `logreg`: class-weighted logistic regression;
- `svm`: class-weighted linear SVM whose decision scores are turned into probabilities by a
  logistic calibrator fitted on *grouped* inner folds of the fold's training part (never on the
  fold's validation rows).
Saved as JSON vocabularies and numpy arrays (no pickle).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.data.load import group_of
from harness.methods.base import Fitted, FoldContext, Method
from harness.methods.linear import LinearHead, weight_dict
from harness.data.schema import Example
from harness.core.store import atomic_write_npz, atomic_write_text, read_json


def target_text(e: Example) -> str:
    return e.target


def context_text(e: Example, turns: int) -> str:
    ctx = e.context[-turns:] if turns else ()
    return "\n".join(f"[{t.speaker}] {t.text}" for t in ctx)


def _vectorizer(analyzer: str, ngrams: Sequence[int], cfg: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=analyzer, ngram_range=(ngrams[0], ngrams[1]), min_df=cfg.min_df,
                           max_features=cfg.max_features, sublinear_tf=cfg.sublinear_tf, lowercase=True,
                           dtype=np.float64)


class Features:
    """The fitted TF-IDF blocks: rows -> one sparse matrix [word | char | context]."""

    def __init__(self, cfg: Any):
        self.settings = cfg
        self.blocks: list[tuple[str, Any]] = []  # (name, vectorizer)
        if cfg.word_ngrams:
            self.blocks.append(("word", _vectorizer("word", cfg.word_ngrams, cfg)))
        if cfg.char_ngrams:
            self.blocks.append(("char", _vectorizer("char_wb", cfg.char_ngrams, cfg)))
        if cfg.context_turns:
            self.blocks.append(("context", _vectorizer("word", cfg.word_ngrams or [1, 1], cfg)))

    def _texts(self, name: str, rows: Sequence[Example]) -> list[str]:
        if name == "context":
            return [context_text(e, self.settings.context_turns) for e in rows]
        return [target_text(e) for e in rows]

    def fit(self, rows: Sequence[Example]) -> "Features":
        for name, vec in self.blocks:
            try:
                vec.fit(self._texts(name, rows))
            except ValueError as e:  # every context empty, or min_df above the rows: an empty vocabulary
                from harness.config import ConfigError

                raise ConfigError([f"tfidf: cannot build the {name!r} block from {len(rows)} training rows ({e}); "
                                   f"check tfidf.min_df={self.settings.min_df}, tfidf.max_features and "
                                   "tfidf.context_turns"]) from None
        return self

    def transform(self, rows: Sequence[Example]) -> Any:
        from scipy import sparse

        return sparse.hstack([vec.transform(self._texts(name, rows)) for name, vec in self.blocks]).tocsr()

    def save(self, out: Path) -> dict[str, np.ndarray]:
        vocab = {name: {k: int(i) for k, i in vec.vocabulary_.items()} for name, vec in self.blocks}
        atomic_write_text(out / "vocabulary.json", json.dumps(vocab, ensure_ascii=False))
        return {f"idf_{name}": vec.idf_ for name, vec in self.blocks}

    def load(self, out: Path, z: Any) -> "Features":
        vocab = read_json(out / "vocabulary.json")
        for name, vec in self.blocks:
            vec.vocabulary_ = vocab[name]
            vec.idf_ = z[f"idf_{name}"]
        return self


class TfidfFitted(Fitted):
    def __init__(self, features: Features, head: LinearHead, svm: LinearHead | None, info: dict[str, Any]):
        self.features, self.head, self.svm, self._info = features, head, svm, info

    def predict_proba(self, rows: Sequence[Example]) -> np.ndarray:
        X = self.features.transform(rows)
        if self.svm is not None:  # calibrated SVM: the head reads the SVM's decision scores
            X = self.svm.scores(X)
        return self.head.predict_proba(X)

    def save(self, out: Path) -> None:
        arrays = self.features.save(out) | self.head.arrays("head_")
        if self.svm is not None:
            arrays |= self.svm.arrays("svm_")
        atomic_write_npz(out / "tfidf.npz", **arrays)

    def info(self) -> dict[str, Any]:
        return self._info


class TfidfMethod(Method):
    name = "tfidf"

    def fit(self, train: Sequence[Example], inner: Sequence[Example], ctx: FoldContext) -> Fitted:
        cfg, seed, class_weights = self.settings, ctx.seed, ctx.class_weights
        rows = list(train) + list(inner)  # no checkpoint to choose: the inner rows are training data here
        y = np.array([e.label for e in rows], dtype=np.int64)
        t0 = time.time()
        features = Features(cfg).fit(rows)
        X = features.transform(rows)
        k = len(self.label_names)
        if cfg.classifier == "logreg":
            head = LinearHead.fit_logreg(X, y, class_weights, k, cfg.C, cfg.max_iter, seed)
            svm = None
        else:
            svm = _fit_svm(X, y, class_weights, k, cfg, seed)
            scores = _grouped_decision_scores(X, y, rows, class_weights, k, cfg, seed, self.task.group_key)
            head = LinearHead.fit_logreg(scores, y, class_weights, k, 1.0, cfg.max_iter, seed)
        info = {"features": int(X.shape[1]), "fit_seconds": round(time.time() - t0, 3)}
        ctx.log({"train/features": float(X.shape[1]), "train/fit_seconds": info["fit_seconds"]}, 0)
        return TfidfFitted(features, head, svm, info)

    def load(self, out: Path) -> Fitted:
        z = np.load(out / "tfidf.npz", allow_pickle=False)
        features = Features(self.settings).load(out, z)
        svm = LinearHead.from_arrays(z, "svm_") if "svm_coef" in z.files else None
        return TfidfFitted(features, LinearHead.from_arrays(z, "head_"), svm, {})


def _fit_svm(X: Any, y: np.ndarray, class_weights: np.ndarray, n_labels: int, cfg: Any, seed: int) -> LinearHead:
    from sklearn.svm import LinearSVC

    svm = LinearSVC(C=cfg.C, class_weight=weight_dict(class_weights, y), max_iter=cfg.max_iter, random_state=seed)
    svm.fit(X, y)
    return LinearHead(svm.coef_.astype(np.float64), np.atleast_1d(svm.intercept_).astype(np.float64),
                      svm.classes_.astype(np.int64), n_labels)


def _grouped_decision_scores(X: Any, y: np.ndarray, rows: Sequence[Example], class_weights: np.ndarray,
                             n_labels: int, cfg: Any, seed: int, group_key: str) -> np.ndarray:
    """Out-of-fold SVM decision scores on the training part, folds grouped like the outer CV (augmented
    variants stay with their source row's group), for fitting the calibrator on scores it did not train on."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = [group_of(e, group_key) for e in rows]
    n_groups = len(set(groups))
    splits = min(cfg.calibration_folds, n_groups)
    classes = np.unique(y)
    width = 1 if len(classes) == 2 else len(classes)
    scores = np.zeros((len(y), width))
    skf = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a rare class missing from some inner part is handled below
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(skf.split(np.zeros(len(y)), y, groups))
    for fit_idx, held_idx in splits:
        seen = np.unique(y[fit_idx])
        if len(seen) < 2:  # a rare class missed this inner part entirely: the one class seen scores highest
            scores[held_idx] = (1.0 if seen[0] == classes[-1] else -1.0) if width == 1 else \
                np.where(classes == seen[0], 1.0, -1.0)
            continue
        part = _fit_svm(X[fit_idx], y[fit_idx], class_weights, n_labels, cfg, seed)
        s = part.scores(X[held_idx])
        if s.shape[1] == width:
            scores[held_idx] = s
        else:  # a class missing from this inner split: put its column back (score far below the others)
            full = np.full((len(held_idx), width), s.min() - 1.0)
            full[:, np.searchsorted(classes, part.classes)] = s
            scores[held_idx] = full
    return scores
