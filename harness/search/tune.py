"""Optuna studies over training settings. A trial is one `harness cv` run with the trial's overrides.

- The space is `tune.space` in the experiment YAML; a trial's suggestions become a flat override dict that
  goes through the same config validation as the CLI and W&B (`apply_overrides`).
- Every finished fold reports an intermediate value at step = seed_index * n_folds + fold, so a bad trial
  stops after its first folds (median or Wilcoxon pruner; see `make_pruner`).
- Storage is an RDBStorage with a heartbeat: a worker killed mid-trial leaves a RUNNING trial that the
  next worker marks FAIL after `tune.grace_period`, and RetryHeartbeatStaleTrialCallback re-enqueues its
  parameters. The retry reuses the dead trial's run directory, so its finished folds are not retrained.
- `--n-trials N` is the study's target of finished (complete or pruned) trials: running the same command
  again after a crash finishes the job instead of adding N more.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import warnings

from harness.core import keys
from harness.run.rundir import RunDir
from harness.core.samplers import make_sampler
from harness.config import ConfigError, ExperimentConfig, TuneConfig, apply_overrides, load_config, mask_secrets, redact

warnings.filterwarnings("ignore", message=".*(experimental|RetryHeartbeatStaleTrialCallback|heartbeat).*")

FOLD_METRICS = keys.SCORES  # every fold reports the same scores as the OOF summary


def default_storage(study: str) -> str:
    return f"sqlite:///studies/{study}.db"


def make_storage(url: str, tune: TuneConfig) -> Any:
    """RDB storage with heartbeat, grace period and retry of trials whose worker died (Optuna 5's way)."""
    import optuna

    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 60}}  # two local workers wait for the write lock instead of failing
    else:
        engine = {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=tune.heartbeat_interval, grace_period=tune.grace_period,
                failed_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=tune.max_retry))
        except Exception as e:  # noqa: BLE001
            # workers started together on an empty database race to create Optuna's schema; the loser
            # sees a duplicate-type/table error and simply connects once the winner is done
            if attempt == 4 or "already exists" not in str(e) and "duplicate" not in str(e).lower():
                raise ConfigError([f"tune.storage: cannot open the Optuna storage {mask_secrets(url)}: "
                                   + redact(f"{type(e).__name__}: {e}".splitlines()[0], url)]) from None
            time.sleep(0.5 + attempt)


def make_pruner(tune: TuneConfig) -> Any:
    """tune.pruner as Optuna's pruner, the step being the fold. Every rule compares trials on the same folds (the
    fold split is fixed by cv.seed). Why percentile (top 25% kept) by default: on three 40-trial studies
    (benchmarks/pruning.py, RESULTS.md) it saved 45-51% of fold trainings and kept the unpruned study's best
    trial every time; median saved 39-44%, halving 42-49%; Wilcoxon 10-13% (with 5 folds a Wilcoxon test can only
    reach p < 0.1 once 4 folds agree, exact p = 1/16)."""
    import optuna

    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.pruner_startup_trials,
                                           n_warmup_steps=tune.pruner_warmup_folds - 1)
    if tune.pruner == "percentile":
        return optuna.pruners.PercentilePruner(tune.pruner_percentile, n_startup_trials=tune.pruner_startup_trials,
                                               n_warmup_steps=tune.pruner_warmup_folds - 1)
    if tune.pruner == "halving":  # the step is the fold index: rungs after 2, 4, 10, ... folds with warmup 2
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, tune.pruner_warmup_folds - 1),
                                                      reduction_factor=3)
    if tune.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=tune.wilcoxon_p, n_startup_steps=tune.pruner_warmup_folds)
    return optuna.pruners.NopPruner()


def study_sampler(tune: TuneConfig, trials_so_far: int = 0) -> Any:
    """A seeded sampler is offset by the trials already in the study: a restarted worker with a fixed seed
    would otherwise replay its first proposals and train duplicate trials."""
    seed = None if tune.seed is None else tune.seed + trials_so_far
    return make_sampler(tune.sampler, seed, constant_liar=True)


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """tune.space → flat overrides {section.key: value}."""
    out: dict[str, Any] = {}
    for key, spec in space.items():
        if spec["type"] == "float":
            out[key] = trial.suggest_float(key, spec["low"], spec["high"], log=bool(spec.get("log")),
                                           step=spec.get("step"))
        elif spec["type"] == "int":
            out[key] = trial.suggest_int(key, spec["low"], spec["high"], log=bool(spec.get("log")),
                                         step=spec.get("step", 1))
        else:
            out[key] = trial.suggest_categorical(key, spec["choices"])
    return out


def fold_metric(tune: TuneConfig) -> str:
    """The per-fold score reported for pruning: the fold-level counterpart of tune.metric."""
    name = tune.metric.split("/", 1)[1].removesuffix("_crossfit")
    if name not in FOLD_METRICS:
        raise ConfigError([f"tune.metric: {tune.metric!r} has no per-fold counterpart for pruning; "
                           f"use one of {[keys.cv(m) for m in FOLD_METRICS]} or set tune.pruner=none"])
    return name


def root_trial_number(trial: Any) -> int:
    """A retried trial's first attempt: its run directory holds the folds already finished."""
    import optuna

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    if RESUME_OF in frozen.user_attrs:  # the rerun of an interrupted trial: its folds are in the first's folder
        return int(frozen.user_attrs[RESUME_OF])
    history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(frozen)
    return history[0] if history else trial.number


RESUME_OF = "harness/resume_of"  # user attr of a trial enqueued to finish an interrupted one


def requeue(study: Any, params: dict[str, Any], root: int) -> None:
    """Enqueue `params` again as a rerun of trial `root`: the next worker reuses its run directory, so the
    folds it finished are kept (a trial is its settings; a new number must not mean retraining them)."""
    study.enqueue_trial(params, user_attrs={RESUME_OF: root})


def fail_dead_local_trials(study: Any, say: Any, max_retry: int) -> None:
    """RUNNING trials whose worker ran on this host and is gone (SIGTERM, kill -9): failed and requeued now,
    instead of after the heartbeat grace period."""
    import socket

    import optuna

    from harness.run.claims import _pid_alive

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("harness/pid")
        if t.user_attrs.get("harness/host") != host or not isinstance(pid, int) or _pid_alive(pid):
            continue
        study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
        root = int(t.user_attrs.get(RESUME_OF, t.number))
        reruns = sum(u.user_attrs.get(RESUME_OF) == root for u in study.get_trials(deepcopy=False))
        if reruns >= max_retry:
            say(f"trial {t.number}: its worker (pid {pid} on this host) is gone; failed now, not queued again "
                f"(trial {root} was already rerun {reruns} times, tune.max_retry={max_retry})")
            continue
        requeue(study, t.params, root)
        say(f"trial {t.number}: its worker (pid {pid} on this host) is gone; failed now and queued again "
            f"(its finished folds are kept)")


class Objective:
    """One trial = one fold loop with the trial's overrides, reporting each fold."""

    def __init__(self, base: ExperimentConfig, study: str, study_dir: Path, verbose: bool):
        self.base, self.study, self.study_dir, self.verbose = base, study, study_dir, verbose
        self.current: tuple[dict[str, Any], int] | None = None  # (params, root) of the trial being run

    def __call__(self, trial: Any) -> float:
        import numpy as np
        import optuna

        from harness.run.experiment import run_experiment
        from harness.track import make_tracker

        import os
        import socket

        params = suggest(trial, self.base.tune.space)
        root = root_trial_number(trial)
        trial.set_user_attr("harness/host", socket.gethostname())
        trial.set_user_attr("harness/pid", os.getpid())
        self.current = (params, root)
        run_dir = self.study_dir / f"trial-{root:04d}"
        cfg = apply_overrides(self.base, {**params, "run_dir": str(run_dir), "name": f"{self.study}-t{root}",
                                          "track.group": self.base.track.group or self.study})
        trial.set_user_attr("run_dir", str(run_dir))
        try:  # intermediate values are reported even without a pruner: dashboards plot them
            metric = fold_metric(cfg.tune)
        except ConfigError:
            metric = None  # e.g. decide/gain_crossfit: no per-fold counterpart (run_study refuses a pruner then)
        n_folds, seeds = cfg.cv.n_folds, cfg.train.seeds
        seen: list[float] = []

        done: list[int] = []

        def on_fold(r: Any) -> None:
            done.append(r.fold)
            trial.set_user_attr("folds_done", len(done))
            if metric is None:
                return
            seen.append(r.metrics[metric])
            # wilcoxon compares per-fold values pairwise; median compares the running mean at the same fold
            value = seen[-1] if cfg.tune.pruner == "wilcoxon" else float(np.mean(seen))
            trial.report(value, step=seeds.index(r.seed) * n_folds + r.fold)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {len(seen)} fold(s): {metric} {value:.4f}")

        tracker = make_tracker(cfg, run_dir, {"optuna/study": self.study, "optuna/trial": trial.number,
                                              "optuna/root_trial": root})
        if self.verbose:
            print(f"\n== trial {trial.number}" + (f" (retry of {root})" if root != trial.number else "")
                  + f": {params}", flush=True)
        metrics = run_experiment(cfg, verbose=self.verbose, tracker=tracker, on_fold=on_fold)
        if metrics is None:
            raise RuntimeError(f"trial {trial.number}: CV did not finish all folds (cv.folds is set?)")
        summary = metrics["summary"]
        if cfg.tune.metric not in summary:
            raise ConfigError([f"tune.metric: {cfg.tune.metric!r} is not in {RunDir(run_dir).metrics_path}; "
                               f"available: {sorted(summary)}" +
                               (" (decide/* keys need decide.enabled=true)" if cfg.tune.metric.startswith(keys.decide(""))
                                else "")])
        self.current = None
        return float(summary[cfg.tune.metric])


def open_study(cfg: ExperimentConfig, study: str, storage: str | None) -> Any:
    import optuna

    url = storage or cfg.tune.storage or default_storage(study)
    return optuna.create_study(study_name=study, storage=make_storage(url, cfg.tune), sampler=study_sampler(cfg.tune),
                               pruner=make_pruner(cfg.tune), direction=cfg.tune.direction, load_if_exists=True)


def space_value_problems(cfg: ExperimentConfig) -> list[str]:
    """Each endpoint and choice of tune.space applied to the config alone: a value the config's own checks
    refuse (lora.r=0, a learning rate <= 0, an unknown loss) is named before the study starts."""
    problems = []
    for key, spec in cfg.tune.space.items():
        values = spec.get("choices", []) if spec.get("type") == "categorical" else [spec.get("low"), spec.get("high")]
        for v in values:
            try:
                apply_overrides(cfg, {key: v})
            except ConfigError as e:
                problems += [f"tune.space.{key}: {v!r} gives {p}" for p in e.problems]
    return problems


def study_identity(cfg: ExperimentConfig) -> dict[str, str]:
    """What makes two trials of a study comparable: the metric, its direction and the search space."""
    import json

    return {"harness/metric": cfg.tune.metric, "harness/direction": cfg.tune.direction,
            "harness/space": json.dumps(cfg.tune.space, sort_keys=True, default=str)}


def check_study_identity(study: Any, cfg: ExperimentConfig) -> None:
    """A study resumed under another metric, direction or space would rank accuracy against macro-F1 (or
    trials from another space): refuse, naming what changed. A new study records its identity."""
    mine, theirs = study_identity(cfg), study.user_attrs
    known = {k: theirs[k] for k in mine if k in theirs}
    if not known:
        for k, v in mine.items():
            study.set_user_attr(k, v)
        return
    changed = [f"tune.{k.split('/')[1]}: {known[k]!r} in study {study.study_name!r} but {mine[k]!r} now"
               for k in mine if k in known and known[k] != mine[k]]
    if changed:
        raise ConfigError(changed + ["a study's trials are comparable only under one metric and space: "
                                     "give a new --study name to search this one"])


def count_states(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def run_study(config: str | Path | None, overrides: list[str], study_name: str, storage: str | None = None,
              n_trials: int | None = None, timeout: float | None = None, verbose: bool = True) -> Any:
    """Work on a study until it holds `n_trials` finished trials or `timeout` seconds pass; resumable."""
    import optuna

    cfg = load_config(config, overrides)
    if not cfg.tune.space:
        raise ConfigError([f"tune.space: empty in {config or 'the config'}; declare what to search, e.g. "
                           "tune: {space: {train.learning_rate: {type: float, low: 1e-5, high: 1e-3, log: true}}}"])
    if cfg.tune.pruner != "none":
        fold_metric(cfg.tune)  # fail before the first trial, not after its first fold
    space_problems = space_value_problems(cfg)
    if space_problems:  # a trial that fails on its settings would stay in the study as FAIL
        raise ConfigError(space_problems)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg, study_name, storage)
    check_study_identity(study, cfg)
    study.sampler = study_sampler(cfg.tune, len(study.get_trials(deepcopy=False)))
    study.set_metric_names([cfg.tune.metric])
    study_dir = Path(cfg.output_dir) / "studies" / study_name
    objective = Objective(cfg, study_name, study_dir, verbose)
    fail_dead_local_trials(study, print if verbose else (lambda *a: None), cfg.tune.max_retry)
    start = time.time()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    while True:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial → FAIL, and its retry is enqueued
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in finished for t in trials)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        if n_trials is not None and done + running >= n_trials:
            break
        if timeout is not None and time.time() - start >= timeout:
            break
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # an interrupt is reported once, by the command
        try:
            study.optimize(objective, n_trials=1, gc_after_trial=True)
        except KeyboardInterrupt:
            if objective.current is not None:  # Optuna failed the trial: queue it again, keeping its folds
                requeue(study, *objective.current)
            raise
        finally:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
    if verbose:
        print(format_status(study, cfg.tune.metric))
    return study


def format_status(study: Any, metric: str | None = None) -> str:
    """Best trial, trial states, and parameter importances once enough trials exist."""
    import optuna

    states = count_states(study)
    lines = [f"study {study.study_name}: {sum(states.values())} trials (" +
             ", ".join(f"{k.lower()} {v}" for k, v in sorted(states.items())) + ")"]
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if done:
        b = study.best_trial
        lines.append(f"best: trial {b.number}, {metric or (study.metric_names or ['value'])[0]} = {b.value:.4f}, "
                     f"params {b.params}, run dir {b.user_attrs.get('run_dir')}")
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    if pruned:
        lines.append(f"pruned trials ran {sum(t.user_attrs.get('folds_done', 0) for t in pruned)} fold(s) "
                     f"in all ({len(pruned)} trials)")
    if len(done) >= 4 and study.best_trial.params:
        try:
            imp = optuna.importance.get_param_importances(study)
            lines.append("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()))
        except (RuntimeError, ValueError) as e:
            lines.append(f"importance: not available ({e})")
    elif done:
        lines.append(f"importance: after 4 complete trials ({len(done)} so far)")
    lines.append(f"{'#':>4} {'state':<9} {'value':>8} {'folds':>5}  params")
    for t in study.get_trials(deepcopy=False):
        v = f"{t.value:.4f}" if t.value is not None else "-"
        lines.append(f"{t.number:>4} {t.state.name.lower():<9} {v:>8} {len(t.intermediate_values):>5}  {t.params}")
    return "\n".join(lines)


def study_status(config: str | Path | None, overrides: list[str], study_name: str, storage: str | None) -> str:
    import optuna

    cfg = load_config(config, overrides)
    url = storage or cfg.tune.storage or default_storage(study_name)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise ConfigError([f"--study {study_name}: no study database at {url[len('sqlite:///'):]}"])
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(url, cfg.tune))
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(make_storage(url, cfg.tune))]
        raise ConfigError([f"--study {study_name}: not found in {mask_secrets(url)}; studies there: {names}"])
    return format_status(study, cfg.tune.metric)
