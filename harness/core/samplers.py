"""The one Optuna sampler factory, for the decision layer's search and for training-setting studies."""

from __future__ import annotations

from typing import Any


def make_sampler(name: str, seed: int | None, *, startup_trials: int | None = None,
                 constant_liar: bool = False) -> Any:
    """tpe | random | qmc | cmaes. `constant_liar` keeps parallel TPE workers from proposing the same point;
    `startup_trials` is the random warm-up before TPE / CMA-ES model the objective (Optuna's default if None)."""
    import optuna

    startup = {} if startup_trials is None else {"n_startup_trials": startup_trials}
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=constant_liar, **startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    if name == "cmaes":
        # categorical choices (the gate on/off) are sampled independently by design: no warning for that
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False, **startup)
    raise ValueError(f"unknown sampler {name!r}")
