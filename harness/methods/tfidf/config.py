"""`tfidf:` settings of the TF-IDF + linear model method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.config.fields import setting


@dataclass
class TfidfConfig:
    classifier: Literal["logreg", "svm"] = setting(
        "logreg: logistic regression; svm: linear SVM with probabilities calibrated on grouped inner folds of "
        "the fold's training part", "logreg")
    word_ngrams: list[int] | None = setting("word n-gram range [low, high]; null = no word features", factory=lambda: [1, 2])
    char_ngrams: list[int] | None = setting("character n-gram range [low, high] (within word bounds); null = none",
                                          factory=lambda: [2, 5])
    context_turns: int = setting(
        "turns before the target added as a separate word TF-IDF block (0 = target only: on real PsyDefConv "
        "the target alone is the stronger input)", 0)
    min_df: int = setting("ignore n-grams in fewer rows than this", 1)
    max_features: int | None = setting("keep the most frequent N n-grams per block; null = all", None)
    sublinear_tf: bool = setting("1 + log(tf) instead of raw counts", True)
    C: float = setting("inverse regularisation strength", 1.0)
    max_iter: int = setting("solver iterations", 2000)
    calibration_folds: int = setting("svm: grouped inner folds for the probability calibration", 3)

    def check(self) -> list[str]:
        p = []
        for key in ("word_ngrams", "char_ngrams"):
            r = getattr(self, key)
            if r is not None and (len(r) != 2 or not 1 <= r[0] <= r[1]):
                p.append(f"tfidf.{key}: [low, high] with 1 <= low <= high, or null")
        if self.word_ngrams is None and self.char_ngrams is None:
            p.append("tfidf: word_ngrams and char_ngrams are both null; no features left")
        if self.C <= 0:
            p.append("tfidf.C: must be > 0")
        p += [f"tfidf.{k}: must be >= 1" for k in ("min_df", "max_iter") if getattr(self, k) < 1]
        if self.context_turns < 0:
            p.append("tfidf.context_turns: must be >= 0")
        if self.calibration_folds < 2:
            p.append("tfidf.calibration_folds: must be >= 2")
        return p
