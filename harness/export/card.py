"""The export's model card (README.md, Hugging Face's format): every figure read from the run's own files.

Metadata (library, base model, pipeline tag, tags, model-index with the cross-validated scores), then what the
model is, its cross-validated per-class F1 with bootstrap CIs and confusion matrix, the decision and its
cross-fitted gain, the data fingerprint, the config (secrets masked), how to load it, how to reproduce it, and
what the figures do not say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ExperimentConfig
from harness.config.secrets import mask_secrets
from harness.core.metrics import per_class_f1_ci
from harness.run.rundir import RunDir

# the hub ids of the built-in CPU models (tiny-qwen3 is random weights: no base model to name)
KNOWN_BASES = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct"}
LIBRARIES = {"transformers": "transformers", "peft-adapter": "peft", "peft-adapter+label-scoring": "peft"}


def base_model(cfg: ExperimentConfig) -> str | None:
    """The hub id the model was fine-tuned from, when the method has one and it names a hub model."""
    model = getattr(cfg.settings(), "model", None)
    name = getattr(model, "name_or_path", None)
    if not name:
        return None
    if name in KNOWN_BASES:
        return KNOWN_BASES[name]
    return name if name.count("/") == 1 and not Path(name).exists() else None


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _metadata(cfg: ExperimentConfig, summary: dict[str, Any], fmt: str, dataset: str) -> Any:
    from huggingface_hub import EvalResult, ModelCardData

    def result(key: str, name: str) -> Any:
        return EvalResult(task_type="text-classification", dataset_type=dataset, dataset_name=dataset,
                          dataset_split="out-of-fold (grouped k-fold CV)", metric_type="f1" if "f1" in key else "accuracy",
                          metric_name=name, metric_value=round(float(summary[key]), 4))

    wanted = [("cv/macro_f1", "macro-F1 (OOF)"), ("cv/macro_f1_official", "official macro-F1 (OOF)"),
              ("cv/balanced_accuracy", "balanced accuracy (OOF)"),
              ("decide/macro_f1_official_crossfit", "official macro-F1 after the decision (cross-fitted)")]
    results = [result(k, n) for k, n in wanted if summary.get(k) is not None]
    base = base_model(cfg)
    return ModelCardData(library_name=LIBRARIES.get(fmt, "harness"), base_model=base, pipeline_tag="text-classification",
                         tags=["harness", cfg.method, "text-classification", "imbalanced-classification"],
                         model_name=cfg.name,
                         eval_results=results or None)


def _per_class_section(run: RunDir, names: list[str], blend: dict[str, Any]) -> str:
    oof = run.read_oof()
    pred = oof.probs.mean(0).argmax(-1)
    ci = per_class_f1_ci(oof.labels, pred, len(names))
    rows = [[c["name"], f"{c['f1']:.3f}", f"{ci[i, 0]:.3f} to {ci[i, 1]:.3f}", f"{c['precision']:.3f}",
             f"{c['recall']:.3f}", c["support"]] for i, c in enumerate(blend["per_class"])]
    cm = blend["confusion"]
    return ("## Per-class F1 (out-of-fold, seed mean, argmax)\n\n" +
            _table(["class", "F1", "95% CI (bootstrap over rows)", "precision", "recall", "support"], rows) +
            "\n\n## Confusion matrix (out-of-fold; rows: true, columns: predicted)\n\n" +
            _table(["true \\ predicted"] + [str(i) for i in range(len(names))],
                   [[f"{i} {names[i]}"] + cm[i] for i in range(len(names))]))


def _num(x: Any, fmt: str = ".4g") -> str:
    return "n/a" if x is None else format(float(x), fmt)


def _decision_section(decision: dict[str, Any] | None, names: list[str], folded: bool) -> str:
    if decision is None:
        return "## Decision\n\nNone: `harness decide` was not run; labels are the argmax of the probabilities.\n"
    rows = [[names[i], f"{d:+.3f}"] for i, d in enumerate(decision["delta"])]
    cf = decision.get("crossfit") or {}
    gate = ("off" if decision["tau"] is None else
            f"predict {names[decision['gate_class']]} when its probability is >= {decision['tau']:.3f}")
    lines = [f"## Decision (rung `{decision.get('rung')}`)\n", decision.get("why") or "",
             f"\n- gate: {gate}", f"- weights (seeds or members): {[round(w, 4) for w in decision['weights']]}",
             f"- temperature (fitted on the OOF rows): {_num(decision.get('temperature'))}",
             f"- in-sample gain: {_num(decision.get('gain_in_sample'), '+.4f')}"]
    if cf:
        lo, hi = cf.get("pooled_gain_ci") or [None, None]
        lines.append(f"- cross-fitted gain (each fold decided by a rule searched on the other folds): "
                     f"{cf.get('pooled_gain'):+.4f} (95% CI {lo:+.4f} to {hi:+.4f})")
    lines.append("\n" + ("The per-class biases and the temperature are folded into the classification head: a plain "
                         "`pipeline` gives the decided labels." if folded else
                         "The decision is not in the model's weights (a fold ensemble, a gate, a head without a bias, "
                         "or a method without a head): `harness.load(DIR).predict(...)` applies it."))
    return "\n".join(lines) + "\n\n" + _table(["class", "δ (added to log p)"], rows)


def render(run: RunDir, cfg: ExperimentConfig, meta: dict[str, Any], decision: dict[str, Any] | None,
           command: str) -> str:
    """README.md of the export folder."""
    from huggingface_hub import ModelCard

    metrics = run.read_metrics() or {}
    summary, blend = metrics.get("summary", {}), metrics.get("blend", {})
    names = list(meta["label_names"])
    fingerprint = run.read_fingerprint() or {}
    dataset = Path(cfg.data.train_path).name if cfg.data.train_path else f"synthetic-{cfg.data.synthetic}"
    data = _metadata(cfg, summary, meta["models"][0]["format"] if meta["models"] else "harness", dataset)
    ci = blend.get("macro_f1_official_ci") or [float("nan")] * 2
    n_models = len(meta["models"])
    what = ("one model trained on every training row (refit)" if meta["source"] == "refit" and n_models == 1 else
            f"{n_models} models trained on every training row (refit, one per seed), averaged"
            if meta["source"] == "refit" else
            f"fold {meta['models'][0]['fold']} of seed {meta['models'][0]['seed']}" if len(meta["models"]) == 1 and
            meta["source"] == "folds" else f"the fold ensemble: {len(meta['models'])} fold models, averaged")
    body = [
        f"# {cfg.name}: {cfg.method} text classifier ({len(names)} classes)\n",
        f"Exported by harness {meta['harness_version']} from `{run.path.name}`: {what}. Labels: "
        + ", ".join(f"{i} {n}" for i, n in enumerate(names)) + ".\n",
        "## Cross-validated scores\n",
        f"Grouped stratified {cfg.cv.n_folds}-fold cross-validation, seeds {cfg.train.seeds}, on "
        f"{(fingerprint.get('train') or {}).get('rows')} labelled rows. Every figure is out-of-fold: each row scored "
        "by models that never saw it. They are the fold ensemble's; a refit model has no held-out rows of its own.\n",
        _table(["metric", "value"], [[k, f"{float(v):.4f}"] for k, v in summary.items() if v is not None]),
        f"\nofficial macro-F1 95% CI (bootstrap over rows): {ci[0]:.4f} to {ci[1]:.4f}\n",
        _per_class_section(run, names, blend) if blend else "", "",
        _decision_section(decision, names, bool(meta.get("folded"))), "",
        "## Data fingerprint\n", _table(["part", "source", "rows", "sha256"],
                                       [[k, v.get("source"), v.get("rows"), v.get("sha256")]
                                        for k, v in fingerprint.items()]),
        "\n## How to use\n", _usage(meta), "\n## Reproduce\n",
        f"```\n{command}\n```\n\nThe run's config (secrets masked):\n\n```yaml\n{cfg.to_yaml()}```\n",
        "## Limitations\n",
        "- The figures are cross-validated on the user's own labelled data; they say nothing of another site, "
        "population or annotation guideline. Check on held-out data from where the model will be used.\n"
        "- Rare classes carry wide intervals: read the per-class CIs before the headline.\n"
        "- A classifier of mental-health language is not a diagnostic tool and must not decide care on its own.\n",
    ]
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}\n",
                                   body="\n".join(body))
    return mask_secrets(str(card))


def _usage(meta: dict[str, Any]) -> str:
    lines = ["```python", "import harness", 'model = harness.load("DIR")  # checks every file against export.json',
             'model.predict(["I guess it does not matter anyway."])  # decided labels (class indices)',
             "model.predict_proba(rows)  # texts, dicts in the data file's format, or a file path", "```"]
    single = meta["models"][0] if len(meta["models"]) == 1 else None
    if single and single["format"] != "harness":
        lines += ["", "Without the harness:", "", "```python", single["loads_with"].replace("; ", "\n"), "```"]
    elif meta["models"] and meta["models"][0]["format"] != "harness":
        lines += ["", f"Each fold folder (`{meta['models'][0]['path']}`, ...) also loads on its own with: "
                  f"`{meta['models'][0]['loads_with']}`."]
    if any(m["format"] in ("transformers", "peft-adapter") for m in meta["models"]):
        lines += ["", "The text the model reads is built from a row as `prompt.json` shows (layout, guide, "
                  "instruction, and a rendered example)."]
    return "\n".join(lines)


def decision_record(run: RunDir) -> dict[str, Any] | None:
    """decision.json of the export: the locked decision and what it is worth, from calibration.json."""
    cal = run.read_calibration()
    if cal is None:
        return None
    comp = cal.get("complexity") or {}
    return {"rung": comp.get("chosen"), "why": comp.get("why"), "delta": cal["delta"], "tau": cal["tau"],
            "gate_class": cal["gate_class"], "weights": cal["weights"], "metric": cal.get("metric"),
            "temperature": (cal.get("temperature") or {}).get("temperature"),
            "gain_in_sample": (cal.get("in_sample") or {}).get("gain"),
            "crossfit": {k: v for k, v in (cal.get("crossfit") or {}).items() if k != "after_report"} or None}


def foldable(decision: dict[str, Any] | None) -> tuple[np.ndarray, float] | None:
    """(δ, T) when the decision is a per-class shift of log-probabilities (no gate): what a head can absorb."""
    if decision is None or decision["tau"] is not None:
        return None
    return np.asarray(decision["delta"], dtype=float), float(decision.get("temperature") or 1.0)
