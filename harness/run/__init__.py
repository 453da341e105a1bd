"""The run directory (RunDir, manifest, claims and locks) and the fold loop."""
