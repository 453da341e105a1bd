"""Exports: a run's final model as a folder that transformers, PEFT or sentence-transformers load, with its
decision and a model card (`harness export`), and `harness.load` to use one from Python.

- files: the export folder's own files and their check
- refit: one model on every training row (`--from refit`), a claimed and committed unit of the run directory
- card: the model card, every figure from the run's files
- writer: `export_run`, staged and renamed into place in one step
- loaded: `load(DIR)` → predict_proba / predict, the same computation as `harness predict`
"""
