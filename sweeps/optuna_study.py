"""Optuna objects for sweeps/optuna_tpe.yaml (loaded by `wandb sweep-scheduler` and `harness sweep-local`)."""

from __future__ import annotations

import os
from typing import Any

import optuna

from harness.config import load_config
from harness.search.tune import make_pruner, study_sampler, suggest

EXPERIMENT = "experiments/psydefdetect_qwen3_8b.yaml"


def search_space(trial: optuna.Trial) -> dict[str, Any]:
    """Define-by-run: the experiment's tune.space, the same one `harness tune` searches."""
    return suggest(trial, load_config(EXPERIMENT).tune.space)


def make_study(sweep: Any) -> optuna.Study:
    """A TPE study on persistent storage, named after the sweep.

    W&B's scheduler replays the sweep's finished runs into the study on every (re)start, so the stored study
    is rebuilt here rather than appended to: a restart keeps the study on disk (for optuna-dashboard and
    `harness tune --status`) without counting any trial twice.
    """
    tune = load_config(EXPERIMENT).tune
    storage = os.environ.get("HARNESS_SWEEP_STORAGE", "sqlite:///studies/wandb-sweeps.db")
    if storage.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(storage[len("sqlite:///"):]) or ".", exist_ok=True)
    name = f"wandb-sweep-{sweep.id}"
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass
    goal = (sweep.config.get("metric") or {}).get("goal", "maximize")
    return optuna.create_study(study_name=name, storage=storage, direction=goal, sampler=study_sampler(tune),
                               pruner=make_pruner(tune))
