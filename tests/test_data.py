import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import DREADDIT, PSY_TEST, needs
from harness.config import load_config
from harness.data.load import DataError, load_file
from harness.data.synthetic import OFFICIAL_COUNTS, make_dreaddit, make_psydefconv, write_dreaddit_csv, write_psydefconv

PSY = load_config(None, ["data.synthetic=psydefconv"])
TABLE = load_config(None, ["data.format=table", "data.synthetic=dreaddit", "data.group_column=post_id"])


def harness(*args: str) -> subprocess.CompletedProcess:
    from helpers import run_cli

    return run_cli(*args, ok=False)


def test_synthetic_matches_official_mix_and_is_deterministic():
    a = make_psydefconv()
    assert Counter(e.label for e in a) == dict(enumerate(OFFICIAL_COUNTS))
    assert len({e.group for e in a}) == 200
    assert a == make_psydefconv()
    assert a != make_psydefconv(seed=1)
    for e in a:
        assert e.dialogue[-1].speaker == "seeker" and e.dialogue[-1].text == e.target


def test_synthetic_round_trips_through_the_loader(tmp_path: Path):
    ex = make_psydefconv(n_groups=30)
    write_psydefconv(tmp_path / "train.json", ex)
    assert load_file(tmp_path / "train.json", PSY, require_label=True) == ex
    d = make_dreaddit(n_groups=20)
    write_dreaddit_csv(tmp_path / "d.csv", d)
    got = load_file(tmp_path / "d.csv", TABLE, require_label=True)
    assert [(e.id, e.group, e.label, e.target) for e in got] == [(e.id, e.group, e.label, e.target) for e in d]


def test_jsonl_is_accepted(tmp_path: Path):
    ex = make_psydefconv(n_groups=12)
    recs = json.loads(json.dumps([{"id": e.id, "dialogue_id": e.group, "current_text": e.target, "label": e.label,
                                   "dialogue": [{"speaker": t.speaker, "text": t.text} for t in e.dialogue]}
                                  for e in ex]))
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    assert len(load_file(tmp_path / "t.jsonl", PSY, require_label=True)) == len(ex)


def _defective(tmp_path: Path) -> Path:
    good = {"id": "a1", "dialogue_id": "D1", "current_text": "hi there",
            "dialogue": [{"speaker": "seeker", "text": "hi there"}], "label": 3}
    rows = [
        good,
        {**good, "id": "a1"},                                     # duplicate id
        {**good, "id": "a3", "label": 12},                        # label outside the set
        {**good, "id": "a4", "current_text": "   ",
         "dialogue": [{"speaker": "seeker", "text": "   "}]},     # empty target
        {**good, "id": "a5", "dialogue": [{"speaker": "supporter", "text": "hi there"}]},  # last turn not seeker
        {**good, "id": "a6", "dialogue": [{"speaker": "seeker", "text": "other"}]},        # differs from current_text
        {"id": "a7", "current_text": "x", "label": 1,
         "dialogue": [{"speaker": "seeker", "text": "x"}]},       # missing dialogue_id
        {**good, "id": "a8", "label": "three"},                   # wrong type
        {**good, "id": 9},                                        # wrong type of id
    ]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(rows))
    return p


def test_every_defect_is_named(tmp_path: Path):
    p = _defective(tmp_path)
    with pytest.raises(DataError) as e:
        load_file(p, PSY, require_label=True)
    msgs = [str(i) for i in e.value.issues]
    text = "\n".join(msgs)
    expected = [("row 1 (id a1)", "id", "duplicate id"), ("id a3", "label", "outside the label set"),
                ("id a4", "current_text", "empty target text"), ("id a5", "dialogue[-1].speaker", "not the seeker"),
                ("id a6", "dialogue[-1].text", "differs from current_text"), ("id a7", "dialogue_id", "missing"),
                ("id a8", "label", "expected an integer"), ("row 8", "id", "expected a string")]
    for where, field, what in expected:
        assert any(where in m and f": {field}: " in m and what in m for m in msgs), (where, field, text)
    assert all(str(p) in m for m in msgs)
    assert len(msgs) == len(expected)


def test_validate_cli_exit_codes(tmp_path: Path):
    bad = harness("validate", str(_defective(tmp_path)), "--json")
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert out["valid"] is False and len(out["problems"]) == 8
    write_psydefconv(tmp_path / "ok.json", make_psydefconv(n_groups=15))
    ok = harness("validate", str(tmp_path / "ok.json"), "--json", "model.name_or_path=tiny-qwen3")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["groups"] == 15 and summary["tokens"]["percentiles"]["50"] > 0


def test_unreadable_and_non_utf8(tmp_path: Path):
    p = tmp_path / "latin1.json"
    p.write_bytes('[{"id": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_file(p, PSY, require_label=False)
    with pytest.raises(DataError, match="cannot read"):
        load_file(tmp_path / "missing.json", PSY, require_label=False)
    (tmp_path / "broken.json").write_text('[{"id": "x",]')
    with pytest.raises(DataError, match="invalid JSON"):
        load_file(tmp_path / "broken.json", PSY, require_label=False)


def test_table_problems(tmp_path: Path):
    p = tmp_path / "t.csv"
    p.write_text("id,text,label,post_id\n1,hello,1,p1\n1,again,0,p1\n3,,1,p2\n4,x,7,p3\n5,y,one,\n")
    with pytest.raises(DataError) as e:
        load_file(p, TABLE, require_label=True)
    text = str(e.value)
    for needle in ["row 2: id: duplicate id '1'", "row 3: text: empty target text", "row 4: label: 7 is outside",
                   "row 5: label: 'one' is neither a label name", "row 5: post_id: missing group"]:
        assert needle in text, text
    (tmp_path / "nocol.csv").write_text("id,body\n1,x\n")
    with pytest.raises(DataError, match="text: column missing"):
        load_file(tmp_path / "nocol.csv", TABLE, require_label=False)


@needs(PSY_TEST)
def test_official_test_file_validates():
    r = harness("validate", str(PSY_TEST), "--json", "model.name_or_path=tiny-qwen3")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["rows"] == 472 and s["groups"] == 189 and s["labelled"] == 0
    assert s["turns_per_item"]["max"] == 54


@needs(DREADDIT)
def test_dreaddit_validates():
    r = harness("validate", str(DREADDIT), "--json", "data.format=table", "data.group_column=post_id", "data.preset=dreaddit",
                "--labelled")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["rows"] == 2838 and s["labelled"] == 2838
    assert 50 < s["class_counts"]["1 stress"]["pct"] < 54


def test_labels_given_as_names_map_through_data_labels(tmp_path):
    """A CSV whose labels are names (neg/pos) loads with data.labels=[neg,pos]; ids still work; an unknown name is
    named with the list it is not in."""
    from harness.config import load_config
    from harness.data.load import DataError, load_file

    path = tmp_path / "reviews.csv"
    path.write_text("id,text,label,user_id\n" + "".join(f"r{i},text {i},{'pos' if i % 3 else 'neg'},u{i % 7}\n"
                                                        for i in range(30)) + "r30,text 30,1,u1\n")
    cfg = load_config(None, ["data.format=table", "data.labels=[neg,pos]", "data.group_column=user_id",
                             "data.preset=none"])
    rows = load_file(path, cfg, require_label=True)
    assert [e.label for e in rows[:4]] == [0, 1, 1, 0] and rows[-1].label == 1 and rows[0].group == "u0"
    path.write_text("id,text,label,user_id\nr0,a,neg,u0\nr1,b,neu,u1\n")
    with pytest.raises(DataError, match=r"row 2: label: 'neu' is neither a label name \(neg, pos\) nor a class id 0\.\.1"):
        load_file(path, cfg, require_label=True)


def test_four_hundred_bad_lines_fit_a_screen(tmp_path):
    from harness.config import load_config
    from harness.data.load import DataError, load_file

    path = tmp_path / "bad.jsonl"
    path.write_text("".join("{not json\n" for _ in range(400)))
    with pytest.raises(DataError) as e:
        load_file(path, load_config(None, []), require_label=True)
    lines = str(e.value).splitlines()
    assert len(lines) <= 3, lines  # every line's problem once, with a count
    assert "line 1, line 2, line 3 and 397 more: -: invalid JSON line" in lines[1]
    table = tmp_path / "bad.csv"  # 200 rows, two problems each, every label a different wrong value
    table.write_text("id,text,label\n" + "".join(f"r{i},,x{i}\n" for i in range(200)))
    with pytest.raises(DataError) as e:
        load_file(table, load_config(None, ["data.format=table", "data.labels=[neg,pos]", "data.preset=none"]),
                  require_label=True)
    lines = str(e.value).splitlines()
    assert lines[0] == "400 data problem(s):" and len(lines) == 3, lines
    assert "row 1, row 2, row 3 and 197 more: label: 'x0' is neither a label name (neg, pos)" in str(e.value)
    csv = tmp_path / "reviews.csv"
    csv.write_text("id,text,label\nr0,a,neg\n")
    with pytest.raises(DataError, match=r"a \.csv table, but data\.format is psydefconv .* data\.format=table"):
        load_file(csv, load_config(None, []), require_label=True)


def test_validate_folds_and_config_reach_no_network_and_load_no_model(tmp_path, monkeypatch):
    """With the hub reachable in principle (HF_HUB_OFFLINE unset), an empty HF cache and every socket connection
    blocked and recorded, validate (default method: a Qwen3-8B tokenizer that is not here), folds, init and config
    finish without one connection attempt."""
    import socket

    from helpers import run_cli

    tried: list = []

    def blocked(self, address, *a, **k):
        tried.append(address)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket.socket, "connect_ex", blocked)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = tmp_path / "reviews.csv"
    path.write_text("id,text,label\n" + "".join(f"r{i},text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40)))
    over = ["data.format=table", "data.labels=[neg,pos]", "data.preset=none"]
    r = run_cli("validate", str(path), *over)
    assert "VALID" in r.stdout and "not on this machine" in r.stdout
    run_cli("folds", "demo_cpu", "method=tfidf", "data.synthetic_groups=12", "cv.n_folds=3")
    run_cli("init", str(path), "--out", str(tmp_path / "r.yaml"))
    run_cli("config", "--keys")
    assert tried == []
