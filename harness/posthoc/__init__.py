"""After the folds: the decision ladder, calibration, ensembles, comparisons, audits, predictions."""
