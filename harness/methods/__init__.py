"""Classifier methods, one package each (harness/methods/<name>/), behind one protocol (base.py).

Kept free of imports: the config reads the method specs (registry.py) while it is itself being imported.
"""
