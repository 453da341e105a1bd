"""Classifier methods behind one protocol (see base.py): seqcls, tfidf, embed."""

from harness.methods.base import REGISTRY, Fitted, Method, make_method, method_class

__all__ = ["REGISTRY", "Fitted", "Method", "make_method", "method_class"]
