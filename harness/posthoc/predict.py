"""Scoring new files with a run's saved fold models, and writing submissions with the locked decision.

Any method: each fold's model is reloaded with `Method.load` and scores the rows; the test
probabilities (seeds, folds, rows, classes) then go through the same blend and decision as `test.npz`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import ConfigError, ExperimentConfig
from harness.data.load import Example, load_file
from harness.posthoc.decision import DecisionInputError, apply_to_test, check_probs, load_decision
from harness.run.rundir import RunDir
from harness.data.schema import content_digest, rows_digest
from harness.core.store import StoreError, atomic_write_text


def _run_test_probs(run: RunDir, digest: str) -> np.ndarray | None:
    """test.npz when these rows are exactly the test data `harness cv` scored (data.json's content digest;
    a resume over changed test data is refused, so test.npz always matches that digest)."""
    fingerprint = run.require_fingerprint("predict --test")
    if not run.has(run.test_path.name) or (fingerprint.get("test") or {}).get("sha256") != digest:
        return None
    return run.read_test().probs


def score_file(run_dir: Path, cfg: ExperimentConfig, examples: list[Example], verbose: bool = True) -> np.ndarray:
    """Test probabilities (S, F, M, K) for new rows from every fold's saved model.

    Cached in the run directory under a key of the rows' full content (ids, targets, every dialogue
    turn) and the run's config, so a file that differs in any text is scored again, never served stale.
    """
    from harness.methods.base import make_method
    from harness.methods.base import check_probs_shape

    run = RunDir(run_dir)
    digest = rows_digest(examples)
    same = _run_test_probs(run, digest)
    if same is not None:  # the run's own test file, byte for byte in content: its test.npz already holds it
        return same
    key = content_digest([digest, cfg.to_flat_dict()])[:20]
    try:
        cached = run.read_scored(key)
    except StoreError as e:  # a damaged or unrecorded cache file: score again (it is rewritten below)
        warnings.warn(f"{e}; scoring again", stacklevel=2)
        cached = None
    if cached is not None:
        return cached["probs"]
    names = cfg.data.label_names()
    saved_dirs = fold_models(run, cfg)  # every fold model checked before the first is loaded
    method = make_method(cfg, run.cache)
    out = np.zeros((len(cfg.train.seeds), cfg.cv.n_folds, len(examples), len(names)), dtype=np.float32)
    for s, seed in enumerate(cfg.train.seeds):
        for k in range(cfg.cv.n_folds):
            saved = saved_dirs[(seed, k)]
            if verbose:
                print(f"scoring {len(examples)} rows with seed {seed} fold {k}", flush=True)
            fitted = method.load(saved)
            try:
                out[s, k] = check_probs_shape(fitted.predict_proba(examples), len(examples), len(names),
                                              f"{saved}")
            finally:
                fitted.close()
    run.write_scored(key, probs=out, ids=np.array([e.id for e in examples]))
    return out


def fold_models(run: RunDir, cfg: ExperimentConfig) -> dict[tuple[int, int], Path]:
    """Every fold's saved model, verified against the run's manifest; all missing ones named at once."""
    run.require_fingerprint("predict --test")
    found, missing = {}, []
    for seed in cfg.train.seeds:
        for k in range(cfg.cv.n_folds):
            saved = run.verified_model_dir(seed, k)
            if saved is None:
                missing.append(str(run.model_dir(seed, k)))
            else:
                found[(seed, k)] = saved
    if missing:
        raise ConfigError([f"{run.path}: {len(missing)} fold model(s) missing (e.g. {missing[0]}); train.save_adapters "
                           "must be on to score new files: run `harness cv` again with train.save_adapters=true in a "
                           "new run directory"])
    return found


def member_test_probs(run_dir: Path, examples: list[Example], verbose: bool) -> np.ndarray:
    """A new file scored for an ensemble directory: every member run's fold models score it (each run once),
    stacked like the ensemble's test.npz (members, folds, rows, classes)."""
    from harness.posthoc.ensemble import check_members_unchanged

    run = RunDir(run_dir)
    check_members_unchanged(run)
    members = run.read_members() or []
    for path in dict.fromkeys(m.run_dir for m in members):  # every member's models checked before any is scored
        member = RunDir(path)
        fold_models(member, member.read_config())
    out, scored = [], {}
    for m in members:
        member = RunDir(m.run_dir)
        if member not in scored:
            member_cfg = member.read_config()
            scored[member] = (member_cfg, score_file(member.path, member_cfg, examples, verbose))
        member_cfg, probs = scored[member]
        if m.seed not in member_cfg.train.seeds:
            raise ConfigError([f"{member.path}: has no seed {m.seed} (seeds {member_cfg.train.seeds}), which the "
                               f"ensemble {run_dir} was fitted on; build the ensemble again"])
        out.append(probs[member_cfg.train.seeds.index(m.seed)])
    return np.stack(out, 0)


def check_writable_output(out: Path) -> None:
    """--out can be written: named before any model scores a row."""
    from harness.core.store import check_output_file

    check_output_file(out, "--out")
    _probe_writable(out)


def _probe_writable(out: Path) -> None:
    """Write and remove a file beside `out` now, so a folder that cannot take it (read-only, a mount, /proc) is
    named before any fold model scores a row (permission bits alone say nothing to root)."""
    import tempfile

    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as e:
        raise StoreError(f"--out {out}: cannot write in {parent} ({e.strerror or e})") from None


def write_submission(run_dir: Path, cfg: ExperimentConfig, out: Path, test_file: Path | None = None,
                     verbose: bool = True) -> dict[str, Any]:
    """Apply the locked decision to test probabilities and write `[{id, label}]` (the task's JSON format)."""
    check_writable_output(Path(out))
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    n_labels = len(cfg.data.label_names())
    load_decision(run_dir, n_labels)  # a damaged decision is refused before any row is scored
    if test_file is not None:
        examples = load_file(test_file, cfg, require_label=False)
        ids = [e.id for e in examples]
        if run.is_ensemble():
            from harness.posthoc.ensemble import combine_test

            probs = combine_test(run, member_test_probs(run_dir, examples, verbose))
        else:
            probs = score_file(run_dir, cfg, examples, verbose)
    else:
        z = run.read_test()
        ids, probs = [str(i) for i in z.ids], z.probs
        if not ids:
            raise DecisionInputError([f"{run.test_path} holds no test rows: pass --test FILE "
                                      "(or set data.test_path before `harness cv`)"])
    checked, problems = check_probs(probs, "test probabilities")
    if problems:
        raise DecisionInputError(problems)
    decision = load_decision(run_dir, n_labels, probs.shape[0])
    if decision is None and verbose:
        print(f"note: no {run.calibration_path}: plain argmax of the seed/fold mean")
    labels = apply_to_test(checked, decision)
    return {**write_labels(Path(out), ids, labels, n_labels, verbose), "decision": decision is not None}


def write_labels(out: Path, ids: list[str], labels: np.ndarray, n_labels: int, verbose: bool) -> dict[str, Any]:
    """`[{id, label}]` (the task's JSON format), written atomically; rows and label counts."""
    items = [{"id": i, "label": int(y)} for i, y in zip(ids, labels)]
    atomic_write_text(out, json.dumps(items, indent=1) + "\n")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_labels).tolist()
    if verbose:
        print(f"wrote {len(items)} predictions to {out}; label counts {counts}")
    return {"rows": len(items), "counts": counts}
