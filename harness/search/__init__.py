"""Searches over configs: Optuna studies and W&B sweeps."""
