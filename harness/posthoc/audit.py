"""Which labels look wrong, and which rows every model gets wrong: `harness audit RUN_DIR…`.

Every finished run already holds an out-of-fold probability for every training row, i.e. a prediction from a
model that never saw that row. Rows whose given label those models find very unlikely are the first to
re-read: cleanlab's confident learning (`cleanlab.filter.find_label_issues`) flags them, ranked by
self-confidence (the OOF probability of the given label; Northcutt et al. 2021). With several runs the
probabilities are the mean of each run's seed mean, so one model's quirk flags less.

Writes `label_issues.json` (most suspicious first: id, given and suggested label, score, the row's text) and
`errors.html` (every row the blend gets wrong, with its text, context turns folded, gold and predicted label
and probability, which runs got it right, filterable by class pair from the confusion matrix). Everything
from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.posthoc.compare import RunOOF, load_comparable
from harness.config import ConfigError
from harness.data.load import load_train
from harness.run.rundir import RunDir
from harness.data.schema import Example, rows_digest
from harness.core.store import check_output_file

ISSUES = "label_issues.json"
FIXES = "label_fixes.csv"
ERRORS = "errors.html"


def _rows(runs: Sequence[RunOOF]) -> dict[str, Example]:
    """The training rows behind the OOF ids, read again from the first run's data, after checking they are the
    rows the runs were trained on (data.json's content digest)."""
    first = runs[0]
    rows = load_train(first.cfg)
    recorded = (RunDir(first.run.path).require_fingerprint("the audit").get("train") or {}).get("sha256")
    if rows_digest(rows) != recorded:
        raise ConfigError([f"{first.cfg.data.train_path}: its rows changed since {first.run.path} was trained "
                           "(content digest differs from data.json); the audit would show other texts"])
    by_id = {e.id: e for e in rows}
    missing = [i for i in first.oof.ids.astype(str).tolist() if i not in by_id]
    if missing:
        raise ConfigError([f"{first.cfg.data.train_path}: {len(missing)} OOF ids are not in the data, e.g. {missing[:3]}"])
    return by_id


def _check_counted_once(run_dirs: Sequence[str | Path]) -> None:
    """An ensemble's OOF rows already hold its members': auditing both would count a run twice."""
    given = {str(Path(d).resolve()): str(d) for d in run_dirs}
    problems = []
    for d in run_dirs:
        for m in RunDir(d).read_members() or []:
            if m.run_dir in given:
                problems.append(f"{given[m.run_dir]}: is a member of the ensemble {d} also given; give one of them")
    if problems:
        raise ConfigError(sorted(set(problems)))


def find_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices flagged by confident learning, most suspicious first; self-confidence score of every row)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    present = np.unique(labels)
    if len(present) < 2:
        raise ConfigError(["audit: the OOF rows hold one class only; nothing to compare a label against"])
    p = np.clip(probs.astype(np.float64), 1e-9, None)
    p = p / p.sum(1, keepdims=True)
    scores = get_label_quality_scores(labels, p, method="self_confidence")
    flagged = find_label_issues(labels, p, return_indices_ranked_by="self_confidence")
    return np.asarray(flagged, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def _row_json(e: Example) -> dict[str, Any]:
    return {"text": e.target, "context": [{"speaker": t.speaker, "text": t.text} for t in e.context]}


def audit_runs(run_dirs: Sequence[str | Path], out: str | Path, top: int = 50, verbose: bool = True,
               fixes_template: bool = False) -> dict[str, Any]:
    """Write label_issues.json and errors.html into `out` (and, asked, label_fixes.csv to review); returns what
    was found."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError([f"--out: {out} is a file, not a directory"])
    _check_counted_once(run_dirs)
    runs = load_comparable(run_dirs)
    for name in (ISSUES, ERRORS) + ((FIXES,) if fixes_template else ()):
        check_output_file(out / name, "--out")
    target = RunDir(out)
    if target.committed_config() is not None or target.is_legacy():
        raise ConfigError([f"--out {out}: is a run directory; give the audit a folder of its own"])
    names = runs[0].run.label_names
    ids = runs[0].oof.ids.astype(str)
    y = runs[0].oof.labels
    per_run = np.stack([r.oof.probs.mean(0) for r in runs])  # (R, N, K)
    probs = per_run.mean(0)
    by_id = _rows(runs)
    flagged, scores = find_issues(y, probs)
    issues = [{"id": ids[i], "given": int(y[i]), "given_name": names[y[i]], "suggested": int(probs[i].argmax()),
               "suggested_name": names[int(probs[i].argmax())], "score": float(scores[i]),
               "p_given": float(probs[i, y[i]]), "p_suggested": float(probs[i].max()), **_row_json(by_id[ids[i]])}
              for i in flagged[:top]]
    result = {"runs": [str(r.run.path) for r in runs], "rows": len(y), "flagged": len(flagged),
              "method": "cleanlab find_label_issues, ranked by self-confidence", "issues": issues}
    with target.writing("audit") as tx:  # both files, or neither; a second audit into --out is refused meanwhile
        tx.write_text(ISSUES, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        tx.write_text(ERRORS, errors_html(runs, probs, per_run, by_id, scores))
        if fixes_template:
            from harness.data.fixes import fixes_template as write_template

            write_template(issues, tx.path(FIXES))
    if verbose:
        print(f"{len(flagged)} of {len(y)} labels look wrong to the OOF probabilities of {len(runs)} run(s); "
              f"the {len(issues)} most suspicious are in {out / ISSUES}")
        for it in issues[:10]:
            text = it["text"] if len(it["text"]) <= 70 else it["text"][:67] + "..."
            print(f"  {it['id']}: given {it['given_name']} (p {it['p_given']:.2f}), looks like {it['suggested_name']} "
                  f"(p {it['p_suggested']:.2f}): {text}")
        print(f"misclassified rows, filterable by class pair: {out / ERRORS}")
        if fixes_template:
            print(f"fixes to review: {out / FIXES} (mark accept=yes, then set data.label_fixes={out / FIXES})")
    return result


def errors_html(runs: Sequence[RunOOF], probs: np.ndarray, per_run: np.ndarray, by_id: dict[str, Example],
                scores: np.ndarray) -> str:
    """Every row the blend gets wrong, with a confusion matrix whose cells filter the table."""
    e = html.escape
    names = runs[0].run.label_names
    k = len(names)
    ids = runs[0].oof.ids.astype(str)
    y = runs[0].oof.labels
    pred = probs.argmax(1)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, pred), 1)
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(scores[wrong], kind="stable")]  # the most confidently wrong first
    run_names = [r.run.name for r in runs]
    head = "".join(f"<th>{e(n)}</th>" for n in names)
    cells = []
    for i in range(k):
        row = []
        for j in range(k):
            attr = f" class=off data-pair='{i}-{j}' title='show gold {e(names[i])}, predicted {e(names[j])}'" \
                if i != j and cm[i, j] else ""
            row.append(f"<td{attr}>{cm[i, j]}</td>")
        cells.append(f"<tr><th>{e(names[i])}</th>{''.join(row)}</tr>")
    body = []
    for i in wrong:
        ex = by_id[ids[i]]
        ctx = "".join(f"<div><b>{e(t.speaker)}</b>: {e(t.text)}</div>" for t in ex.context)
        folded = f"<details><summary>{len(ex.context)} context turns</summary>{ctx}</details>" if ex.context else ""
        right = [n for n, p in zip(run_names, per_run[:, i]) if p.argmax() == y[i]]
        body.append(f"<tr data-pair='{y[i]}-{pred[i]}'><td>{e(ids[i])}</td><td>{folded}{e(ex.target)}</td>"
                    f"<td>{e(names[y[i]])}</td><td>{e(names[pred[i]])}</td><td>{probs[i, pred[i]]:.2f}</td>"
                    f"<td>{probs[i, y[i]]:.2f}</td><td>{e(', '.join(right)) or '–'}</td></tr>")
    script = ("document.querySelectorAll('td[data-pair]').forEach(c=>c.onclick=()=>{const on=c.classList.contains('on');"
              "document.querySelectorAll('td[data-pair]').forEach(x=>x.classList.remove('on'));"
              "if(!on)c.classList.add('on');const p=on?null:c.dataset.pair;"
              "document.querySelectorAll('tr[data-pair]').forEach(r=>r.style.display=(!p||r.dataset.pair===p)?'':'none');"
              "document.getElementById('shown').textContent=p?'gold '+c.title.slice(10):'all';});")
    style = ("body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}th{background:#f3f3f3}"
             "td.off{cursor:pointer;background:#fde8e8}td.on{background:#f5a3a3;font-weight:bold}"
             "details{color:#666;font-size:12px;margin-bottom:4px}table.rows td:nth-child(2){max-width:70ch}")
    runs_line = ", ".join(e(f"{r.run.name} ({r.run.path})") for r in runs)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>harness audit: misclassified rows</title>"
            f"<style>{style}</style></head><body><h1>Misclassified rows</h1><p>{len(wrong)} of {len(y)} OOF rows "
            f"wrong for the blend of {runs_line}. Click an off-diagonal cell to show that class pair only "
            f"(again: all). Showing: <span id=shown>all</span>.</p>"
            f"<table class=cm><tr><th>gold \\ predicted</th>{head}</tr>{''.join(cells)}</table>"
            "<table class=rows><tr><th>id</th><th>text</th><th>gold</th><th>predicted</th><th>p(predicted)</th>"
            f"<th>p(gold)</th><th>runs right</th></tr>{''.join(body)}</table><script>{script}</script></body></html>")
