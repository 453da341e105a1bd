"""A third-party method, installed the way a user would: its own package with its own config section,
registered through the `harness.methods` entry-point group (a real .dist-info folder on sys.path, read by
importlib.metadata), then run through cv, decide, compare and tune with no change inside harness/."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.config import ConfigError, field_help, load_config
from harness.methods import registry
from harness.run.rundir import RunDir

TOY = '''
"""A toy method: per-class character-frequency centroids, softmax of -distance / temperature."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config.fields import setting
from harness.methods.spec import MethodSpec


@dataclass
class ToyConfig:
    temperature: float = setting("softmax temperature of the centroid distances", 0.05)
    alphabet: str = setting("characters counted", "abcdefghijklmnopqrstuvwxyz ")

    def check(self) -> list[str]:
        return [] if self.temperature > 0 else ["toy.temperature: must be > 0"]


METHOD = MethodSpec(name="toy", method="toy_harness_method:ToyMethod", help="character centroids (a plugin)",
                    section="toy", config=ToyConfig)


def _features(rows, alphabet):
    x = np.array([[e.target.lower().count(c) for c in alphabet] for e in rows], dtype=np.float64)
    return x / np.maximum(x.sum(1, keepdims=True), 1)


def _method_base():
    from harness.methods.base import Fitted, Method
    return Fitted, Method


Fitted, Method = _method_base()


class ToyFitted(Fitted):
    def __init__(self, centroids, opts):
        self.centroids, self.opts = centroids, opts

    def predict_proba(self, rows):
        d = ((_features(rows, self.opts.alphabet)[:, None] - self.centroids[None]) ** 2).sum(-1)
        z = -d / self.opts.temperature
        p = np.exp(z - z.max(1, keepdims=True))
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    def save(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "centroids.json").write_text(json.dumps(self.centroids.tolist()))


class ToyMethod(Method):
    name = "toy"

    def fit(self, train, inner, ctx):
        rows = list(train) + list(inner)
        x, y = _features(rows, self.settings.alphabet), np.array([e.label for e in rows])
        k = len(self.label_names)
        centroids = np.stack([x[y == c].mean(0) if (y == c).any() else x.mean(0) for c in range(k)])
        ctx.log({"train/rows": float(len(rows))}, 0)
        (ctx.run.path / "toy-fits.jsonl").open("a").write(json.dumps({"seed": ctx.seed, "fold": ctx.fold}) + "\\n")
        return ToyFitted(centroids, self.settings)

    def load(self, out: Path):
        return ToyFitted(np.array(json.loads((out / "centroids.json").read_text())), self.settings)
'''


@pytest.fixture
def toy_installed(tmp_path_factory, monkeypatch):
    """`pip install` of a one-module package declaring the entry point, without pip: the same files pip writes."""
    site = tmp_path_factory.mktemp("site")
    (site / "toy_harness_method.py").write_text(TOY)
    info = site / "toy_harness_method-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-harness-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness.methods]\ntoy = toy_harness_method:METHOD\n")
    monkeypatch.syspath_prepend(str(site))
    registry.specs(refresh=True)
    yield
    monkeypatch.undo()
    registry.specs(refresh=True)


SMALL = ["data.synthetic=psydefconv", "data.synthetic_groups=30", "cv.n_folds=3", "track.backend=none",
         "data.score_labels=[1,2,3,4,5,6,7,8]", "decide.enabled=false"]


def test_a_plugin_method_runs_through_cv_decide_compare_and_tune(toy_installed, tmp_path, capsys):
    # the method contract, as its author would run it in the plugin's own tests
    from harness.testing import check_method

    assert check_method("toy", tmp_path / "contract")["reload_max_difference"] <= 1e-6
    # its settings are config keys like any built-in's, validated and listed
    assert "toy.temperature" in field_help() and "tfidf.C" in field_help()
    with pytest.raises(ConfigError, match=r"toy\.temperature: must be > 0"):
        load_config(None, SMALL + ["method=toy", "toy.temperature=0"])
    assert cli.main(["config", "--keys"]) == 0 and "toy.temperature" in capsys.readouterr().out

    run, base = tmp_path / "toy", tmp_path / "tfidf"
    assert cli.main(["cv", "demo_cpu", *SMALL, "method=toy", "toy.temperature=0.02", f"run_dir={run}"]) == 0
    cfg = RunDir(run).read_config()
    assert cfg.method == "toy" and cfg.toy.temperature == 0.02  # its section is in the run's config.yaml
    fits = [json.loads(x) for x in (run / "toy-fits.jsonl").read_text().splitlines()]
    assert fits == [{"seed": 42, "fold": k} for k in range(3)]  # the fold context, not a parsed path
    oof = RunDir(run).read_oof()
    assert oof.probs.shape == (1, len(oof.ids), 9) and np.allclose(oof.probs.sum(-1), 1, atol=1e-5)
    summary = RunDir(run).read_metrics()["summary"]
    assert summary["cv/macro_f1"] > summary["baseline/majority_macro_f1"]  # the centroids learn something

    assert cli.main(["decide", str(run), "decide.n_trials=40"]) == 0
    assert RunDir(run).read_calibration()["complexity"]["setting"] == "auto"  # the decision ladder ran on it
    assert cli.main(["cv", "demo_cpu", *SMALL, "method=tfidf", f"run_dir={base}"]) == 0
    assert cli.main(["compare", str(base), str(run), "--no-track", "--n-boot", "200",
                     "--out", str(tmp_path / "c.html")]) == 0
    table = json.loads((tmp_path / "c.json").read_text())
    assert [r["method"] for r in table["runs"]] == ["tfidf", "toy"]

    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert cli.main(["tune", "demo_cpu", "--study", "toy", "--storage", storage, "--n-trials", "3", *SMALL,
                     "method=toy", f"output_dir={tmp_path / 'runs'}", "tune.pruner=none", "tune.seed=0",
                     "tune.space={toy.temperature: {type: float, low: 0.01, high: 1.0, log: true}}"]) == 0
    import optuna

    trials = optuna.load_study(study_name="toy", storage=storage).trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.params["toy.temperature"] for t in trials}) == 3


def test_unknown_and_broken_plugins_are_named(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"method: 'nope' is not an installed method; one of \[.*'tfidf'"):
        load_config(None, ["method=nope"])
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness.methods]\nbroken = no_such_module:METHOD\n")
    monkeypatch.syspath_prepend(str(site))
    try:  # a broken plugin costs only itself: named once, every other method (and command) still works
        with pytest.warns(UserWarning, match=r"method plugin 'broken' \(no_such_module:METHOD\) cannot be loaded"):
            known = registry.specs(refresh=True)
        assert "tfidf" in known and "broken" not in known
        with pytest.raises(ConfigError, match=r"method: method plugin 'broken' \(no_such_module:METHOD\) cannot"):
            load_config(None, ["method=broken"])
        assert load_config(None, ["method=tfidf"]).method == "tfidf"
    finally:
        monkeypatch.undo()
        registry.specs(refresh=True)


@pytest.mark.parametrize("body, needle", [
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("from harness.methods.spec import MethodSpec\nMETHOD = MethodSpec('grab', 'x:Y', section='train')\n",
     "claims the core config key 'train'"),
])
def test_a_plugin_that_exits_or_claims_a_core_section_costs_only_itself(tmp_path, monkeypatch, body, needle):
    site = tmp_path / "site"
    info = site / "grab-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "grab_plugin.py").write_text(body + ("" if "METHOD" in body else "METHOD = None\n"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: grab\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness.methods]\ngrab = grab_plugin:METHOD\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        with pytest.warns(UserWarning, match=needle):
            registry.specs(refresh=True)
        assert cli.main(["config", "--keys"]) == 0  # the CLI still speaks, core sections intact
        assert load_config(None, ["train.epochs=2"]).train.epochs == 2
    finally:
        monkeypatch.undo()
        sys.modules.pop("grab_plugin", None)
        registry.specs(refresh=True)


def test_core_keys_of_the_registry_are_the_config_s_own():
    import dataclasses

    from harness.config import ExperimentConfig
    from harness.methods.spec import CORE_KEYS

    assert CORE_KEYS == {f.name for f in dataclasses.fields(ExperimentConfig)}


def test_every_builtin_method_is_one_folder():
    """A built-in method is found by its folder alone: its spec, settings and code all live under it."""
    root = Path(registry.__file__).parent
    for name, spec in registry.specs().items():
        assert (root / name / "__init__.py").exists(), name
        assert spec.method.startswith(f"harness.methods.{name}."), spec.method
        if spec.config is not None:
            assert spec.config.__module__ == f"harness.methods.{name}.config"
    text = textwrap.dedent((root.parent / "config" / "sections.py").read_text())
    in_core = [s.config.__name__ for s in registry.specs().values() if s.config and f"class {s.config.__name__}" in text]
    in_core += [tp.__name__ for tp in registry.shared_sections().values() if f"class {tp.__name__}" in text]
    assert not in_core  # no method's settings, and no section only methods share, in the core config
    assert {"model", "lora", "quant", "generative"} <= set(registry.shared_sections())


def test_a_finished_plugin_run_is_read_after_its_plugin_is_gone(toy_installed, tmp_path, monkeypatch, capsys):
    run, base = tmp_path / "toy", tmp_path / "tfidf"
    assert cli.main(["cv", "demo_cpu", *SMALL, "method=toy", f"run_dir={run}"]) == 0
    assert cli.main(["cv", "demo_cpu", *SMALL, "method=tfidf", f"run_dir={base}"]) == 0
    monkeypatch.undo()  # the plugin uninstalled
    registry.specs(refresh=True)
    assert "toy" not in registry.specs()
    assert RunDir(run).read_config().method == "toy"
    assert cli.main(["report", str(run), str(base), "--out", str(tmp_path / "r.html")]) == 0
    assert cli.main(["compare", str(base), str(run), "--no-track", "--n-boot", "200",
                     "--out", str(tmp_path / "c.html")]) == 0
    capsys.readouterr()
    test = tmp_path / "new.json"
    from harness.data.synthetic import make_psydefconv, write_psydefconv

    write_psydefconv(test, make_psydefconv(n_groups=3, seed=4), with_labels=False)
    assert cli.main(["predict", str(run), "--test", str(test), "--out", str(tmp_path / "s.json")]) == 2
    assert "'toy' is not an installed method" in capsys.readouterr().err and not (tmp_path / "s.json").exists()
