"""Did this step really help? Runs on identical folds, compared row by row.

A higher point estimate is not a gain: two methods scored on a few hundred rows differ by chance. Every
comparison here is *paired*: the same bootstrap resamples of the same OOF rows score both runs, so the
95% interval of the difference reflects only how the two runs disagree (Koehn 2004; Dror et al. 2018).
Runs whose folds differ are refused, since their OOF rows were predicted by models trained on different
data and the pairing would be meaningless. `harness compare` prints the table, writes it into the HTML
report and a JSON file, and logs it as W&B tables.

The prediction of a run is the argmax of its seed-mean OOF probabilities (what `cv/*` reports); the
decision layer's honest effect is shown as its cross-fitted gain, from calibration.json when present.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.config import ConfigError, ExperimentConfig
from harness.posthoc.decision import OOF, load_oof
from harness.core.metrics import bootstrap_ci, paired_bootstrap, report, score
from harness.track.report import RunSummary, load_runs
from harness.run.rundir import CROSSFIT, RunDir
from harness.run.rundir import OOF as OOF_FILE

COMPARED = ("macro_f1", "macro_f1_official", "balanced_accuracy")


@dataclass
class RunOOF:
    """One run directory's OOF rows, sorted by id so that runs line up row by row."""

    run: RunSummary
    cfg: ExperimentConfig
    oof: OOF
    use: str = "argmax"

    @cached_property
    def decided(self) -> np.ndarray | None:
        """The cross-fitted decided predictions (crossfit.npz) in this object's row order, if the run has them."""
        decision = self.run.decision or {}
        if decision.get("complexity", {}).get("chosen") == "argmax":
            return None  # the rule in force is argmax: credit no gain a searched rule made out of sample
        z = RunDir(self.run.path).read_crossfit()
        if z is None:
            return None
        by_id = dict(zip(z["ids"].astype(str).tolist(), z["pred"].tolist()))
        ids = self.oof.ids.astype(str).tolist()
        missing = [i for i in ids if i not in by_id]
        k = len(self.run.label_names)
        bad = sorted({int(v) for v in by_id.values() if not 0 <= int(v) < k})
        if missing or bad or len(by_id) != len(ids):
            from harness.core.store import StoreError

            raise StoreError(f"{RunDir(self.run.path).file(CROSSFIT)}: does not match {OOF_FILE} ("
                             f"{len(missing)} OOF ids missing, e.g. {missing[:3]}; {len(by_id)} rows for {len(ids)}; "
                             f"labels outside 0..{k - 1}: {bad[:5]}); run `harness decide` again")
        return np.array([by_id[i] for i in ids], dtype=np.int64)

    @property
    def scored_as(self) -> str:
        return "crossfit" if self.use == "crossfit" and self.decided is not None else "argmax"

    @cached_property
    def pred(self) -> np.ndarray:
        """argmax of the seed mean; with use='crossfit', the cross-fitted decided predictions when the run has them."""
        return self.decided if self.scored_as == "crossfit" else self.oof.probs.mean(0).argmax(1)


def _sorted(oof: OOF) -> OOF:
    order = np.argsort(oof.ids.astype(str), kind="stable")
    return OOF(oof.ids[order], oof.labels[order], oof.fold[order], oof.seeds, oof.probs[:, order])


def load_comparable(run_dirs: Sequence[str | Path], use: str = "argmax") -> list[RunOOF]:
    """The runs' OOF rows, after checking they share rows, labels and fold assignment (all problems at once).
    `use`: argmax (of the seed mean) or crossfit (decided predictions, honest; runs without one: argmax)."""
    runs = load_runs(run_dirs)
    out = []
    for r in runs:
        cfg = RunDir(r.path).read_config()
        out.append(RunOOF(r, cfg, _sorted(load_oof(r.path, cfg)), use))
    problems = check_same_folds(out)
    if problems:
        raise ConfigError(problems + ["compare and ensemble need runs on identical folds: the same training data, "
                                      "cv.n_folds, cv.seed and cv.group_by"])
    return out


def check_same_folds(runs: Sequence[RunOOF]) -> list[str]:
    ref = runs[0]
    problems = []
    for r in runs[1:]:
        a, b = ref.run.path, r.run.path
        if r.run.label_names != ref.run.label_names:
            problems.append(f"{b}: labels {r.run.label_names} but {a} has {ref.run.label_names}")
        if r.cfg.data.score_labels != ref.cfg.data.score_labels:  # the "official" score would depend on order
            problems.append(f"{b}: data.score_labels {r.cfg.data.score_labels} but {a} has "
                            f"{ref.cfg.data.score_labels}: their official scores are not the same metric")
        if len(r.oof.ids) != len(ref.oof.ids) or (r.oof.ids != ref.oof.ids).any():
            only_b = sorted(set(r.oof.ids.tolist()) - set(ref.oof.ids.tolist()))
            only_a = sorted(set(ref.oof.ids.tolist()) - set(r.oof.ids.tolist()))
            problems.append(f"{b}: its OOF rows differ from {a}'s ({len(only_b)} ids only in {b}, e.g. "
                            f"{only_b[:3]}; {len(only_a)} only in {a}, e.g. {only_a[:3]})")
            continue
        if (r.oof.labels != ref.oof.labels).any():
            bad = ref.oof.ids[r.oof.labels != ref.oof.labels]
            problems.append(f"{b}: gold labels differ from {a}'s on {len(bad)} rows, e.g. ids {bad[:3].tolist()}")
        if (r.oof.fold != ref.oof.fold).any():
            bad = ref.oof.ids[r.oof.fold != ref.oof.fold]
            problems.append(f"{b}: fold assignment differs from {a}'s on {len(bad)} rows, e.g. ids {bad[:3].tolist()}")
    return problems


def _reference_index(runs: Sequence[RunOOF], reference: str, i: int) -> int | None:
    """'previous' (a ladder: each rung against the one before), 'first', or a run directory."""
    if reference == "previous":
        return i - 1 if i > 0 else None
    if reference == "first":
        return 0 if i > 0 else None
    target = Path(reference).resolve()
    idx = [j for j, r in enumerate(runs) if r.run.path.resolve() == target]
    if not idx:
        raise ConfigError([f"--reference: {reference} is not one of the compared run directories"])
    return None if idx[0] == i else idx[0]


def compare_runs(runs: Sequence[RunOOF], reference: str = "previous", n_boot: int = 2000, seed: int = 0
                 ) -> dict[str, Any]:
    """Every run's headline scores with CIs, and each run's paired difference against its reference."""
    names = runs[0].run.label_names
    score_labels = runs[0].cfg.data.score_labels
    k = len(names)
    y = runs[0].oof.labels
    per_class = [{c["name"]: c["f1"] for c in report(y, r.pred, names, score_labels, n_boot=0)["per_class"]}
                 for r in runs]
    rows = []
    for i, r in enumerate(runs):
        combine = RunDir(r.run.path).read_combine()
        method = r.cfg.method if combine is None else "stack" if combine == "stack" else "ensemble"
        row: dict[str, Any] = {"run": r.run.name, "path": str(r.run.path), "method": method, "model": r.run.model,
                               "scored_as": r.scored_as, "per_class_f1": per_class[i]}
        for m in COMPARED:
            row[m] = score(y, r.pred, k, m, score_labels)
            row[f"{m}_ci"] = bootstrap_ci(y, r.pred, k, m, score_labels, n_boot=n_boot, seed=seed)
        d = r.run.decision
        if d and "crossfit" in d:
            row["decision_gain_crossfit"] = d["crossfit"]["pooled_gain"]
            row["decision_gain_crossfit_ci"] = tuple(d["crossfit"]["pooled_gain_ci"])
            row["decision_metric"] = d["metric"]
        j = _reference_index(runs, reference, i)
        if j is not None:
            row["reference"] = runs[j].run.name
            for m in COMPARED:
                pb = paired_bootstrap(y, runs[j].pred, r.pred, k, m, score_labels, n_boot=n_boot, seed=seed)
                row[f"delta_{m}"] = pb["delta"]
                row[f"delta_{m}_ci"] = (pb["ci_low"], pb["ci_high"])
                row[f"p_not_better_{m}"] = pb["p_b_not_better"]
            row["delta_per_class_f1"] = {n: per_class[i][n] - per_class[j][n] for n in names}
        rows.append(row)
    return {"reference": reference, "rows_scored": int(len(y)), "n_boot": n_boot, "label_names": names,
            "runs": rows}


def _ci(ci: Any, signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"[{f.format(ci[0])}, {f.format(ci[1])}]" if ci else ""


def verdict(row: dict[str, Any], metric: str) -> str:
    """In words: the paired 95% CI of the difference excludes zero, or it does not."""
    lo, hi = row[f"delta_{metric}_ci"]
    return "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"


def format_comparison(result: dict[str, Any], metric: str = "macro_f1") -> str:
    """The terminal table: scores with CIs, then each step's paired difference."""
    lines = [f"{result['rows_scored']} OOF rows, identical folds; 95% CIs from {result['n_boot']} bootstrap "
             f"resamples (paired for differences; reference: {result['reference']})", ""]
    w = max(len(r["run"]) for r in result["runs"]) + 2
    lines.append(f"{'run':<{w}}{'method':<12}{'scored':<10}{'macro-F1 [95% CI]':<26}{'official [95% CI]':<26}"
                 f"{'balanced acc':<14}{'decision gain (cross-fitted)'}")
    for r in result["runs"]:
        gain = (f"{r['decision_gain_crossfit']:+.4f} {_ci(r['decision_gain_crossfit_ci'], True)}"
                if "decision_gain_crossfit" in r else "-")
        lines.append(f"{r['run']:<{w}}{r['method']:<12}{r['scored_as']:<10}{r['macro_f1']:.4f} {_ci(r['macro_f1_ci']):<19}"
                     f"{r['macro_f1_official']:.4f} {_ci(r['macro_f1_official_ci']):<19}"
                     f"{r['balanced_accuracy']:<14.4f}{gain}")
    lines += ["", f"paired differences ({metric}" + ("" if metric == "balanced_accuracy" else "; balanced accuracy")
              + "):"]
    for r in result["runs"]:
        if "reference" not in r:
            continue
        ba = "" if metric == "balanced_accuracy" else (f"; balanced acc {r['delta_balanced_accuracy']:+.4f} "
                                                       f"{_ci(r['delta_balanced_accuracy_ci'], True)}")
        lines.append(f"  {r['run']} - {r['reference']}: {r[f'delta_{metric}']:+.4f} "
                     f"{_ci(r[f'delta_{metric}_ci'], True)} ({verdict(r, metric)}){ba}")
        worst = sorted(r["delta_per_class_f1"].items(), key=lambda kv: kv[1])
        lines.append("    per-class F1: " + ", ".join(f"{n} {d:+.3f}" for n, d in worst))
    return "\n".join(lines)


def comparison_html(result: dict[str, Any], metric: str = "macro_f1") -> str:
    """The paired-differences section of the HTML report."""
    e = html.escape
    names = result["label_names"]
    head = ("<tr><th>run</th><th>against</th><th>Δ macro-F1 [95% CI]</th><th>Δ official [95% CI]</th>"
            "<th>Δ balanced acc [95% CI]</th><th>verdict</th>" + "".join(f"<th>Δ F1 {e(n)}</th>" for n in names)
            + "</tr>")
    body = ""
    for r in result["runs"]:
        if "reference" not in r:
            continue
        cells = "".join(f"<td>{r[f'delta_{m}']:+.4f} <span class=ci>{_ci(r[f'delta_{m}_ci'], True)}</span></td>"
                        for m in COMPARED)
        per = "".join(f"<td>{r['delta_per_class_f1'][n]:+.3f}</td>" for n in names)
        body += (f"<tr><td>{e(r['run'])}</td><td>{e(r['reference'])}</td>{cells}<td>{verdict(r, metric)}</td>"
                 f"{per}</tr>")
    return (f"<p>Paired bootstrap over the same {result['rows_scored']} OOF rows ({result['n_boot']} resamples); "
            f"a step helps when its interval lies above zero.</p><table class=summary>{head}{body}</table>")


def comparison_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the W&B table (one row per run; differences against its reference)."""
    cols = ["run", "method", "reference"]
    for m in COMPARED:
        cols += [m, f"{m}_ci_low", f"{m}_ci_high", f"delta_{m}", f"delta_{m}_ci_low", f"delta_{m}_ci_high"]
    cols += ["decision_gain_crossfit"]
    rows = []
    for r in result["runs"]:
        row: list[Any] = [r["run"], r["method"], r.get("reference")]
        for m in COMPARED:
            d = r.get(f"delta_{m}_ci") or (None, None)
            row += [r[m], r[f"{m}_ci"][0], r[f"{m}_ci"][1], r.get(f"delta_{m}"), d[0], d[1]]
        row.append(r.get("decision_gain_crossfit"))
        rows.append(row)
    return cols, rows


def per_class_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    names = result["label_names"]
    rows = [[r["run"], r["reference"], *[r["delta_per_class_f1"][n] for n in names]]
            for r in result["runs"] if "reference" in r]
    return ["run", "reference", *names], rows


def run_compare(run_dirs: Sequence[str | Path], reference: str = "previous", out: str | Path | None = None,
                track: bool = True, n_boot: int = 2000, use: str = "argmax") -> dict[str, Any]:
    """`harness compare`: the comparison, printed; the HTML report and compare.json at `out`; W&B tables."""
    from harness.track.report import write_report
    from harness.core.store import atomic_write_json
    from harness.track import make_tracker

    if out is not None:
        from harness.core.store import check_output_file

        check_output_file(Path(out), "--out")
        check_output_file(Path(out).with_suffix(".json"), "--out (its .json)")
    runs = load_comparable(run_dirs, use)
    result = compare_runs(runs, reference, n_boot=n_boot)
    print(format_comparison(result))
    if out is not None:
        out = Path(out)
        write_report(run_dirs, out, sections=[("Paired differences", comparison_html(result))],
                     title="harness compare")
        atomic_write_json(out.with_suffix(".json"), result)
        print(f"\nwrote {out} and {out.with_suffix('.json')}")
    if track:
        cfg = runs[0].cfg
        tracker = make_tracker(cfg, runs[0].run.path)
        tracker.log_comparison(f"compare: {' -> '.join(r.run.name for r in runs)}", *comparison_table(result),
                               per_class=per_class_table(result))
    return result
