"""The searches over a decision's space: an Optuna study (ask/tell in vectorised batches), a batched
evolutionary or quasi-random search recorded in the study, and a random baseline."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from typing import Any

import numpy as np

from harness.config import DecideConfig

from harness.core.samplers import make_sampler
from harness.posthoc.decision.rule import Decision
from harness.posthoc.decision.space import BATCH, Evaluator, Space, candidates_from_params, random_candidates

RECORD_CHUNK = 32  # batched search: the study records the best of every this many candidates


def decide_sampler(cfg: DecideConfig) -> Any:
    """The decision search's sampler: a longer random warm-up than Optuna's default (cheap candidates)."""
    return make_sampler(cfg.sampler, cfg.seed, startup_trials={"tpe": 50, "cmaes": 20}.get(cfg.sampler))


def _suggest(trial: Any, space: Space) -> None:
    lo, hi = space.delta_range
    for c in space.delta_classes:
        trial.suggest_float(f"delta_{c}", lo, hi)
    if space.gate_class is not None:
        trial.suggest_categorical("gate", ["on", "off"])
        trial.suggest_float("tau", *space.tau_range)
    if space.search_weights:
        for s in range(space.n_seeds):
            trial.suggest_float(f"w_{s}", 0.0, 1.0)


def search(ev: Evaluator, cfg: DecideConfig, study: Any = None, n_trials: int | None = None,
           progress: bool = False, counted: bool = False) -> tuple[Any, ...]:
    """Run (or extend) an Optuna study on the evaluator's rows; return the best decision and its score (and,
    with `counted`, the candidates this call scored). TPE asks and tells in batches; the other samplers search
    in large batched generations that the study records."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study is None:
        study = optuna.create_study(direction="maximize", sampler=decide_sampler(cfg))
    total = n_trials if n_trials is not None else cfg.n_trials
    if cfg.sampler != "tpe":
        decision, best, done = _search_batched(ev, cfg, study, total, progress)
    else:
        done = _search_tpe(ev, cfg, study, total, progress)
        decision, best = _decision_of(ev.space, study.best_trial.params), float(study.best_trial.value)
    return (decision, best, study, done) if counted else (decision, best, study)


def _decision_of(space: Space, params: dict[str, Any]) -> Decision:
    d, t, w = candidates_from_params(space, [params])
    tau = None if t is None or np.isnan(t[0]) else float(t[0])
    return Decision(d[0], tau, space.gate_class if tau is not None else None, w[0])


def _search_batched(ev: Evaluator, cfg: DecideConfig, study: Any, total: int, progress: bool
                    ) -> tuple[Decision, float, int]:
    """The kernel scores whole generations; the study records them (an earlier search's best is kept when better)."""
    import optuna

    space = ev.space
    done_before = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    start = [study.best_trial.params] if done_before else []
    x, v = batched_search(ev, cfg, total, cfg.seed + len(done_before), start, progress)
    record_search(study, space, x, v, RECORD_CHUNK)
    i = int(v.argmax())
    params = _params(space, x[i:i + 1])[0]
    if done_before and study.best_trial.value > v[i]:  # an earlier search found better: keep it
        params = study.best_trial.params
    return _decision_of(space, params), float(max(v[i], study.best_trial.value)), len(v)


def _search_tpe(ev: Evaluator, cfg: DecideConfig, study: Any, total: int, progress: bool) -> int:
    """Ask and tell in batches of BATCH, within decide.timeout; the trials it finished. A batch interrupted
    between ask and tell is told FAIL, so no trial stays RUNNING forever in the stored study."""
    import optuna

    from harness.core.progress import progress_bar

    space = ev.space
    if not study.trials:  # start from plain argmax: the search can only improve on it
        base = {f"delta_{c}": 0.0 for c in space.delta_classes}
        if space.gate_class is not None:
            base.update(gate="off", tau=float(space.tau_range[1]))
        if space.search_weights:
            base.update({f"w_{s}": 0.5 for s in range(space.n_seeds)})
        study.enqueue_trial(base)
    deadline = time.time() + cfg.timeout if cfg.timeout else math.inf
    done = 0
    batches = range(0, total, BATCH)
    for _ in progress_bar(batches, desc="decide", enable=progress, total=len(batches)):
        if time.time() > deadline:
            break
        trials: list[Any] = []
        told = 0
        try:
            trials = [study.ask() for _ in range(min(BATCH, total - done))]
            for t in trials:
                _suggest(t, space)
            delta, tau, w = candidates_from_params(space, [t.params for t in trials])
            for t, v in zip(trials, ev.score(delta, tau, w)):
                study.tell(t, float(v))
                told += 1
        except BaseException:
            for t in trials[told:]:
                with contextlib.suppress(Exception):
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
            raise
        done += len(trials)
    return done


def _box(space: Space) -> np.ndarray:
    """(D, 2) bounds of the candidate vector [delta of each searched class | gate switch, tau | raw weights]."""
    rows = [space.delta_range] * len(space.delta_classes)
    if space.gate_class is not None:
        rows += [(0.0, 1.0), tuple(space.tau_range)]
    if space.search_weights:
        rows += [(0.0, 1.0)] * space.n_seeds
    box = np.array(rows, dtype=float).reshape(-1, 2)
    box[:, 1] = np.maximum(box[:, 1], box[:, 0] + 1e-9)  # a degenerate range (tau [1, 1]) stays searchable
    return box


def _params(space: Space, x: np.ndarray) -> list[dict[str, Any]]:
    """Candidate vectors (B, D) as Optuna-style params (what candidates_from_params and the study read)."""
    out = []
    for row in x:
        p: dict[str, Any] = {f"delta_{c}": float(v) for c, v in zip(space.delta_classes, row)}
        i = len(space.delta_classes)
        if space.gate_class is not None:
            p.update(gate="on" if row[i] >= 0.5 else "off", tau=float(row[i + 1]))
            i += 2
        if space.search_weights:
            p.update({f"w_{s}": float(v) for s, v in enumerate(row[i:i + space.n_seeds])})
        out.append(p)
    return out


def _arrays(space: Space, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Candidate vectors (B, D) as the kernel's (delta (B, K), tau (B,) NaN = gate off, weights (B, S)): the same
    decisions `candidates_from_params(space, _params(space, x))` gives, without building a dict per candidate."""
    b, n_d = len(x), len(space.delta_classes)
    delta = np.zeros((b, space.n_labels))
    delta[:, space.delta_classes] = x[:, :n_d]
    i, tau = n_d, None
    if space.gate_class is not None:
        tau = np.where(x[:, i] >= 0.5, x[:, i + 1], np.nan)
        i += 2
    if space.search_weights:
        raw = x[:, i:i + space.n_seeds] + 1e-9
        weights = raw / raw.sum(1, keepdims=True)
    else:
        weights = np.tile(space.fixed_weights, (b, 1))
    return delta, tau, weights


def _vector(space: Space, params: dict[str, Any]) -> np.ndarray:
    x = [params.get(f"delta_{c}", 0.0) for c in space.delta_classes]
    if space.gate_class is not None:
        x += [1.0 if params.get("gate", "off") == "on" else 0.0, params.get("tau", space.tau_range[1])]
    if space.search_weights:
        x += [params.get(f"w_{s}", 0.5) for s in range(space.n_seeds)]
    return np.array(x, dtype=float)


def _distributions(space: Space) -> dict[str, Any]:
    import optuna

    d: dict[str, Any] = {f"delta_{c}": optuna.distributions.FloatDistribution(*space.delta_range)
                         for c in space.delta_classes}
    if space.gate_class is not None:
        d["gate"] = optuna.distributions.CategoricalDistribution(["on", "off"])
        d["tau"] = optuna.distributions.FloatDistribution(*space.tau_range)
    if space.search_weights:
        d.update({f"w_{s}": optuna.distributions.FloatDistribution(0.0, 1.0) for s in range(space.n_seeds)})
    return d


def batched_search(ev: Evaluator, cfg: DecideConfig, n_candidates: int, seed: int,
                   start: list[dict[str, Any]] = (), progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate scored (vectors (B, D), scores (B,)), in large batches so the fused kernel does the work:
    plain argmax and `start` (an earlier study's best) first; then a scrambled Sobol design over the box
    (`qmc`), uniform draws (`random`), or a Sobol warm start refined by CMA-ES generations (`cmaes`)."""
    from scipy.stats import qmc

    from harness.core.progress import progress_bar

    space = ev.space
    deadline = time.time() + cfg.timeout if cfg.timeout else math.inf  # decide.timeout: checked every generation
    box = _box(space)
    lo, hi = box[:, 0], box[:, 1]
    base = _vector(space, {})  # delta 0, gate off, equal weights: argmax of the seed mean
    xs = [np.vstack([base] + [np.clip(_vector(space, p), lo, hi) for p in start])]
    left = max(0, n_candidates - len(xs[0]))
    rng = np.random.default_rng(seed)
    warm = left if cfg.sampler in ("qmc", "random") else min(left, max(64, left // 4))
    if warm:
        with warnings.catch_warnings():  # Sobol's balance is best at powers of two; any count is still a design
            warnings.filterwarnings("ignore", message=".*balance properties of Sobol")
            u = (rng.uniform(size=(warm, len(box))) if cfg.sampler == "random"
                 else qmc.Sobol(len(box), scramble=True, seed=seed).random(warm))
        xs.append(lo + u * (hi - lo))
    scores = [ev.score(*_arrays(space, x)) for x in xs]
    left -= warm
    if left > 0:  # cmaes: generations of a bounded CMA-ES around the best so far
        from cmaes import CMA

        allx, alls = np.vstack(xs), np.concatenate(scores)
        pop = max(16, 4 + int(3 * np.log(len(box))))
        # no bounds inside CMA (its rejection sampling dominated the cost): proposals are clipped to the box
        cma = CMA(mean=allx[alls.argmax()], sigma=0.3 * float(np.median(hi - lo)), seed=seed, population_size=pop)
        gens = range(0, left, pop)
        for _ in progress_bar(gens, desc="decide", enable=progress, total=len(gens)):
            if time.time() > deadline:
                break
            raw = np.array([cma.ask() for _ in range(pop)])
            x = np.clip(raw, lo, hi)
            v = ev.score(*_arrays(space, x))
            cma.tell([(ri, -float(vi)) for ri, vi in zip(raw, v)])  # cmaes minimises
            xs.append(x)
            scores.append(v)
            if cma.should_stop():
                cma = CMA(mean=allx[alls.argmax()], sigma=0.3 * float(np.median(hi - lo)),
                          seed=int(rng.integers(1 << 31)), population_size=pop)
    return np.vstack(xs)[:n_candidates], np.concatenate(scores)[:n_candidates]


def record_search(study: Any, space: Space, x: np.ndarray, v: np.ndarray, chunk: int) -> None:
    """The study (engine of record) gets one finished trial per `chunk` candidates: the best of that chunk,
    with how many it stands for; written in one batch (no per-candidate storage round trip)."""
    import optuna

    dist = _distributions(space)
    trials = []
    chunk = max(chunk, -(-len(v) // 8))  # at most 8 stored trials a search: each is a database transaction
    for s in range(0, len(v), chunk):
        i = s + int(v[s:s + chunk].argmax())
        trials.append(optuna.trial.create_trial(params=_params(space, x[i:i + 1])[0], distributions=dist,
                                                value=float(v[i]),
                                                user_attrs={"candidates": int(min(chunk, len(v) - s))}))
    study.add_trials(trials)


def random_search(ev: Evaluator, n: int, seed: int) -> tuple[float, np.ndarray]:
    """Best score of N uniform candidates, and the running best after each candidate (for efficiency plots)."""
    rng = np.random.default_rng(seed)
    delta, tau, w = random_candidates(ev.space, n, rng)
    scores = ev.score(delta, tau, w)
    return float(scores.max()), np.maximum.accumulate(scores)
