import json
from collections import Counter


from conftest import DREADDIT, needs
from harness.config import load_config
from harness.data.load import load_train
from harness.data.folds import Folds, audit, make_folds
from harness.data.synthetic import make_psydefconv
import harness.run.layout as run_files

LABELS = load_config(None, ["data.synthetic=psydefconv"]).data.label_names()


def test_grouped_folds_have_no_leak_and_are_deterministic(tmp_path):
    ex = make_psydefconv(n_groups=60)
    f = make_folds(ex, 5, 42, "dialogue_id")
    rep = audit(f, ex, LABELS)
    assert rep["ok"] and rep["leaked_groups"] == [] and rep["rows_without_fold"] == []
    assert sum(p["rows"] for p in rep["per_fold"]) == len(ex)
    assert make_folds(ex, 5, 42, "dialogue_id").fold_of == f.fold_of
    assert make_folds(ex, 5, 7, "dialogue_id").fold_of != f.fold_of
    f.save(tmp_path / run_files.FOLDS)
    assert Folds.load(tmp_path / run_files.FOLDS).fold_of == f.fold_of


def test_audit_catches_a_leak():
    ex = make_psydefconv(n_groups=30)
    f = make_folds(ex, 3, 0, "dialogue_id")
    victim = ex[0]
    sibling = next(e for e in ex if e.group == victim.group and e.id != victim.id)
    f.fold_of[sibling.id] = (f.fold_of[victim.id] + 1) % 3
    rep = audit(f, ex, LABELS)
    assert not rep["ok"] and rep["leaked_groups"] == [victim.group]


def test_utterance_mode_mirrors_official_split():
    ex = make_psydefconv(n_groups=40)
    f = make_folds(ex, 5, 0, "utterance")
    folds_per_dialogue = Counter()
    for g in {e.group for e in ex}:
        folds_per_dialogue[len({f.fold_of[e.id] for e in ex if e.group == g})] += 1
    assert max(folds_per_dialogue) > 1  # dialogues do cross folds, as in the official split
    assert audit(f, ex, LABELS)["ok"]


def test_augmented_rows_follow_their_source():
    ex = make_psydefconv(n_groups=20)
    f = make_folds(ex, 4, 0, "dialogue_id")
    variant = ex[5].with_target("a variant", f"{ex[5].id}#aug0")
    for k in range(4):
        train, val = f.split(ex + [variant], k)
        assert (variant in train) == (ex[5] in train)


def test_folds_cli_psydefconv(tmp_path):
    from helpers import run_cli

    r = run_cli("folds", "demo_cpu", "--json", "--out", str(tmp_path / run_files.FOLDS))
    rep = json.loads(r.stdout)
    assert rep["ok"] and rep["group_key"] == "dialogue_id" and rep["leaked_groups"] == []
    assert (tmp_path / run_files.FOLDS).exists()


@needs(DREADDIT)
def test_dreaddit_folds_grouped_by_post():
    cfg = load_config(None, {"data.format": "table", "data.train_path": str(DREADDIT),
                             "data.group_column": "post_id", "data.preset": "dreaddit"})
    ex = load_train(cfg)
    f = make_folds(ex, 5, 42, cfg.group_key())
    rep = audit(f, ex, cfg.data.label_names())
    assert rep["ok"] and rep["leaked_groups"] == [] and rep["rows"] == 2838
    assert len({e.group for e in ex}) == rep["groups"] < 2838  # real groups: some posts have several segments
