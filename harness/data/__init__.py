"""Rows and folds: loaders, validation, grouped folds, prompts, augmentation, synthetic data, init."""
