"""Fixtures for tests and benchmarks (tiny random models, synthetic OOF arrays), and `check_method`, the method
contract a plugin's author runs in their own tests: not features of the harness."""

from harness.testing.contract import ContractError, check_method

__all__ = ["ContractError", "check_method"]
