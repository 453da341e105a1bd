"""Leaves every layer may use: summary-key names, atomic writes, progress, metrics, samplers."""
