"""Fixtures for tests and benchmarks (tiny random models, synthetic OOF arrays): not features of the harness."""
