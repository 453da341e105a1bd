"""The summary-key names (README "Summary keys"): the one place they are spelled.

`metrics.json` → `summary`, the W&B experiment run's summary, sweeps, Optuna studies, the
dashboard and the HTML report all use these names, so a key renamed here is renamed everywhere.
A leaf module: it imports nothing.
"""

from __future__ import annotations

SCORES = ("macro_f1", "macro_f1_official", "accuracy", "balanced_accuracy", "weighted_f1")
FOLD_PROGRESS_SCORES = ("macro_f1", "macro_f1_official", "balanced_accuracy")  # running means after each fold
DECIDE_SCORES = ("macro_f1", "macro_f1_official", "balanced_accuracy")
PREFIXES = ("cv", "decide", "baseline", "calibration")


def cv(score: str) -> str:
    """OOF score of the argmax of the seed mean, e.g. cv/macro_f1_official."""
    return f"cv/{score}"


def decide(score: str) -> str:
    """Score after the decision layer (in-sample), e.g. decide/macro_f1_official."""
    return f"decide/{score}"


def crossfit(score: str) -> str:
    """Cross-fitted (honest) score after the decision layer."""
    return f"decide/{score}_crossfit"


def per_class_f1(prefix: str, class_name: str) -> str:
    return f"{prefix}/per_class_f1/{class_name}"


def ci(key: str, side: str) -> str:
    """The bootstrap CI bound of a key: side is 'low' or 'high'."""
    return f"{key}_ci_{side}"


CV_FOLD_SD = "cv/macro_f1_official_fold_sd"
CV_FOLDS_DONE = "cv/folds_done"
BASELINE_MAJORITY = "baseline/majority_macro_f1"
BASELINE_MAJORITY_OFFICIAL = "baseline/majority_macro_f1_official"
GAIN_IN_SAMPLE = "decide/gain_in_sample"
GAIN_CROSSFIT = "decide/gain_crossfit"
DECIDE_TAU = "decide/tau"
DECIDE_GATE_CLASS = "decide/gate_class"
DECIDE_TRIALS = "decide/trials"
TEMPERATURE = "calibration/temperature"
ECE_BEFORE = "calibration/ece_before"
ECE_AFTER = "calibration/ece_after_crossfit"


# media logged by the tracker that the dashboard shows
CV_CONFUSION_HEATMAP = "cv/confusion_heatmap"
DECIDE_CONFUSION_HEATMAP = "decide/confusion_heatmap"


def seed_weight(seed: int) -> str:
    return f"decide/seed_weight/{seed}"


# what `tune.metric` and a sweep's `metric.name` may target
TUNE_METRICS = frozenset({cv(m) for m in SCORES} | {decide(m) for m in DECIDE_SCORES}
                         | {crossfit(m) for m in ("macro_f1", "macro_f1_official")} | {GAIN_CROSSFIT})
DEFAULT_TUNE_METRIC = cv("macro_f1_official")

# the dashboard's headline bars
HEADLINE = (cv("macro_f1_official"), cv("macro_f1"), cv("balanced_accuracy"), decide("macro_f1_official"),
            GAIN_CROSSFIT, CV_FOLD_SD)
