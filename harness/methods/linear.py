"""A linear probability head (scikit-learn's logistic regression) that saves as plain arrays, not pickle.

Shared by the feature methods (tfidf, embed): they differ in features, not in the head. The class
weights are the fold loop's (`loss.class_weights`), passed as scikit-learn's `class_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@dataclass
class LinearHead:
    """scores = X @ coef.T + intercept over the classes seen in training; probabilities in all K columns
    (a class absent from a fold's training part gets probability 0)."""

    coef: np.ndarray  # (C, D), or (1, D) for two classes (scikit-learn's binary form)
    intercept: np.ndarray  # (C,) or (1,)
    classes: np.ndarray  # (C,) label ids
    n_labels: int

    @classmethod
    def fit_logreg(cls, X: Any, y: np.ndarray, class_weights: np.ndarray, n_labels: int, C: float,
                   max_iter: int, seed: int) -> "LinearHead":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=C, max_iter=max_iter, class_weight=weight_dict(class_weights, y),
                                random_state=seed)
        lr.fit(X, y)
        return cls(lr.coef_.astype(np.float64), lr.intercept_.astype(np.float64), lr.classes_.astype(np.int64),
                   n_labels)

    def scores(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict_proba(self, X: Any) -> np.ndarray:
        s = self.scores(X)
        if len(self.classes) == 2 and s.shape[1] == 1:  # scikit-learn's binary logistic form
            p1 = 1.0 / (1.0 + np.exp(-s[:, 0]))
            p = np.stack([1.0 - p1, p1], 1)
        else:
            p = softmax(s)
        out = np.zeros((p.shape[0], self.n_labels), dtype=np.float32)
        out[:, self.classes] = p
        return out

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}coef": self.coef, f"{prefix}intercept": self.intercept, f"{prefix}classes": self.classes,
                f"{prefix}n_labels": np.array(self.n_labels)}

    @classmethod
    def from_arrays(cls, z: Any, prefix: str) -> "LinearHead":
        return cls(z[f"{prefix}coef"], z[f"{prefix}intercept"], z[f"{prefix}classes"], int(z[f"{prefix}n_labels"]))


def weight_dict(class_weights: np.ndarray, y: np.ndarray) -> dict[int, float]:
    """scikit-learn's `class_weight` for the classes present in y."""
    return {int(c): float(class_weights[c]) for c in np.unique(y)}
