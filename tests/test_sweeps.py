"""W&B sweep YAMLs (schema, parameters, the agent's command line) and `harness sweep-local` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from harness.cli import parse_args
from harness.cli.common import experiment_config
from harness.config import ConfigError, load_config
from harness.search.sweep import LocalSweep, agent_command, load_sweep
import harness.run.layout as run_files
from helpers import wandb_env

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
CPU = ["model.name_or_path=tiny-qwen3", "data.synthetic=psydefconv", "data.synthetic_groups=12", "data.test_path=null",
       "prompt.max_length=192", "prompt.context_turns=2", "cv.n_folds=2", "train.epochs=1", "train.max_steps=1",
       "train.seeds=[42]", "train.batch_size=8", "train.grad_accum=1", "train.eval_batch_size=64",
       "augment.enabled=false", "decide.enabled=false", "quant.load_in_4bit=false", "train.precision=fp32"]


@pytest.fixture(autouse=True)
def _at_the_repository_root(monkeypatch, tmp_path):
    """A sweep runs from the repository root, as `wandb sweep sweeps/X.yaml` does (its paths are relative to it);
    conftest still fails a test that writes there. W&B's own folder is the test's: with a ./wandb left by the
    user's runs (`harness demo` makes one), the wandb CLI would log into it."""
    monkeypatch.chdir(ROOT)
    (tmp_path / "wandb-dir").mkdir(exist_ok=True)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))


def optimizer_for(path: Path, tmp_path: Path, monkeypatch) -> LocalSweep:
    monkeypatch.chdir(ROOT)  # scheduler.source paths are relative to the repository root, as for wandb
    monkeypatch.setenv("HARNESS_SWEEP_STORAGE", f"sqlite:///{tmp_path / 'sweeps.db'}")
    params = set(load_sweep(path).get("parameters", {}))
    return LocalSweep(path.relative_to(ROOT), tmp_path / "state", [o for o in CPU if o.split("=")[0] not in params],
                      verbose=False)


def test_there_are_the_six_sweeps():
    assert {p.name for p in SWEEPS} == {"rank.yaml", "lr_loss.yaml", "optuna_tpe.yaml", "methods.yaml", "ladder.yaml",
                                        "ladder_qwen3_8b.yaml"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_is_valid_and_its_agent_command_line_parses(path, tmp_path, monkeypatch):
    sweep = load_sweep(path)  # the sweeps schema, config keys, scheduler and command checks
    assert sweep["metric"] == {"name": "cv/macro_f1_official", "goal": "maximize"}
    assert path.read_text().startswith("#") and "wandb sweep sweeps/" + path.name in path.read_text()
    local = optimizer_for(path, tmp_path, monkeypatch)
    for s in local.optimizer.ask_n_runs(3):
        params = s.config.flat_dict()
        assert set(params) == set(sweep["parameters"])
        cmd = agent_command(sweep, params)
        assert cmd[:2] == ["/usr/bin/env", "harness"]
        assert all(f"--{k}={v}" in cmd for k, v in params.items())  # exactly what `wandb agent` passes
        args = parse_args(cmd[2:])
        assert args.command == "cv" and Path(args.config or args.config_option).exists()
        cfg = experiment_config(args)
        flat = cfg.to_flat_dict()
        for k, v in params.items():
            if k == "config":  # a ladder: one experiment YAML per run
                assert args.config_option == v and cfg.name == yaml.safe_load(Path(v).read_text())["name"]
                continue
            assert flat[k] == pytest.approx(v) if isinstance(v, float) else flat[k] == v, k


def test_rank_grid_is_five_ranks_with_alpha_twice_rank(tmp_path, monkeypatch):
    local = optimizer_for(ROOT / "sweeps" / "rank.yaml", tmp_path, monkeypatch)
    runs = local.optimizer.ask_n_runs(10)
    assert len(runs) == 5  # the grid is exhausted after 5
    cfgs = [experiment_config(parse_args(agent_command(local.sweep, r.config.flat_dict())[2:])) for r in runs]
    assert sorted(c.lora.r for c in cfgs) == [16, 32, 64, 128, 256]
    assert all(c.lora.effective_alpha() == 2 * c.lora.r for c in cfgs)


def test_lr_loss_stops_weak_runs_by_fold():
    sweep = load_sweep(ROOT / "sweeps" / "lr_loss.yaml")
    assert sweep["method"] == "bayes"
    assert sweep["early_terminate"] == {"type": "hyperband", "min_iter": 2, "eta": 2}
    assert set(sweep["parameters"]) == {"train.learning_rate", "loss.class_weights", "loss.label_smoothing",
                                        "loss.focal_gamma"}


def test_optuna_sweep_searches_the_experiment_space_on_a_study_that_survives_restarts(tmp_path, monkeypatch):
    sweep = load_sweep(ROOT / "sweeps" / "optuna_tpe.yaml")
    space = load_config(ROOT / "experiments" / "psydefdetect_qwen3_8b.yaml").tune.space
    assert set(sweep["parameters"]) == set(space)
    local = optimizer_for(ROOT / "sweeps" / "optuna_tpe.yaml", tmp_path, monkeypatch)
    study_name = f"wandb-sweep-{local.state['sweep_id']}"
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    first = local.optimizer.ask_n_runs(2)
    assert len(optuna.load_study(study_name=study_name, storage=storage).trials) == 2  # on disk
    # a restart: the scheduler replays the one finished run; the stored study must not count it twice
    from wandb.sdk.sweeps.run_state import RunState
    from wandb.sdk.sweeps.scheduler.optimizer import RunConfig, RunWithMetrics

    restarted = optimizer_for(ROOT / "sweeps" / "optuna_tpe.yaml", tmp_path, monkeypatch).optimizer
    restarted.tell_existing_finished_run(RunWithMetrics(
        config=RunConfig.from_values(first[0].config.flat_dict()), state=RunState.FINISHED, wandb_run_id="x",
        summary_metrics={"cv/macro_f1_official": 0.4}, history_metrics=[]))
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    assert [(t.state.name, t.value) for t in trials] == [("COMPLETE", 0.4)]


def test_bad_sweep_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"method": "grid", "parameters": {"lora.rank": {"values": [1]}},
                                   "command": ["harness", "cv"]}))
    with pytest.raises(ConfigError) as e:
        load_sweep(bad)
    text = str(e.value)
    assert "parameters.lora.rank: not a harness config key" in text
    assert "metric.name: missing" in text and "${args}" in text


@pytest.mark.slow
def test_sweep_local_runs_rank_yaml_offline_and_resumes(tmp_path, monkeypatch):
    from harness.track import offline_runs, read_offline_run

    wdir = wandb_env(monkeypatch, tmp_path / "wandb")
    monkeypatch.chdir(ROOT)
    def sweep_local(count: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", "sweep-local", "sweeps/rank.yaml", "--count",
                               str(count), "--state-dir", str(tmp_path / "state"), *CPU,
                               f"output_dir={tmp_path / 'runs'}"], capture_output=True, text=True, cwd=ROOT)

    r = sweep_local(2)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert [(x["state"], x["params"]["lora.r"]) for x in state["runs"]] == [("finished", 16), ("finished", 32)]
    runs = {w["id"]: w for w in (read_offline_run(p) for p in offline_runs(wdir))}
    for x in state["runs"]:
        w = runs[x["id"]]  # the sweep run is the experiment run, logged offline under the agent's run id
        assert w["job_type"] == "cv" and w["config"]["lora.r"] == x["params"]["lora.r"]
        assert w["summary"]["cv/macro_f1_official"] == pytest.approx(x["summary"]["cv/macro_f1_official"])
        assert [h["_step"] for h in x["history"]] == [0, 1]  # one row per fold: what hyperband reads
        assert "fold/s42_f0/confusion_matrix_table" in w["tables"]
        run_dir = tmp_path / "runs" / "sweeps" / state["sweep_id"] / x["id"]
        assert (run_dir / run_files.METRICS).exists()
    # a crash during the second run: it is relaunched under its run id and its finished folds are kept
    second = state["runs"][1]
    second["state"] = "running"
    (tmp_path / "state" / "state.json").write_text(json.dumps(state))
    probs = tmp_path / "runs" / "sweeps" / state["sweep_id"] / second["id"] / "folds" / "seed42" / "fold0" / run_files.FOLD_DONE
    stamp = probs.stat().st_mtime_ns
    r = sweep_local(1)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert [x["state"] for x in state["runs"]] == ["finished", "finished"]
    assert probs.stat().st_mtime_ns == stamp
    assert "resumed" in r.stdout


def test_sweep_local_runs_every_method_of_methods_yaml(tmp_path, monkeypatch):
    """The method grid through `harness sweep-local`: tfidf, embed and seqcls each finish a run (synthetic
    Dreaddit-shaped rows and tiny-qwen3 so that it is quick; the sweep file itself is unchanged)."""
    wandb_env(monkeypatch, tmp_path / "wandb", mode="disabled")
    monkeypatch.chdir(ROOT)
    cpu = ["data.synthetic=dreaddit", "data.synthetic_groups=16", "data.train_path=null", "cv.n_folds=2",
           "model.name_or_path=tiny-qwen3", "lora.enabled=true", "lora.r=4", "train.max_steps=1",
           "prompt.max_length=64", "cv.group_by=auto"]
    r = subprocess.run([sys.executable, "-m", "harness.cli", "sweep-local", "sweeps/methods.yaml", "--state-dir",
                        str(tmp_path / "state"), *cpu, f"output_dir={tmp_path / 'runs'}"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert sorted(x["params"]["method"] for x in state["runs"]) == ["embed", "seqcls", "tfidf"]
    for x in state["runs"]:
        assert x["state"] == "finished"
        run_dir = tmp_path / "runs" / "sweeps" / state["sweep_id"] / x["id"]
        assert json.loads((run_dir / "folds" / "seed42" / "fold0" / run_files.METRICS).read_text())["method"] == \
            x["params"]["method"]


def test_ladder_runs_every_rung_and_compares_each_with_the_previous(tmp_path, monkeypatch):
    """sweeps/ladder.yaml in one command (`harness sweep-local --compare`), unchanged: seven rungs from TF-IDF to
    DPO on the same folds (the dpo rung finds the sft rung's run by name among the sweep's runs and starts
    each fold from its adapter), then one comparison: terminal, compare.html/json and a W&B table (offline).
    Synthetic Dreaddit-shaped rows and tiny-qwen3 keep it quick; the real run is in benchmarks/RESULTS.md."""
    from harness.track import offline_runs, read_offline_run

    wdir = wandb_env(monkeypatch, tmp_path / "wandb", mode="offline")
    monkeypatch.chdir(ROOT)
    cpu = ["data.synthetic=dreaddit", "data.synthetic_groups=16", "cv.n_folds=2", "model.name_or_path=tiny-qwen3",
           "train.max_steps=2", "prompt.max_length=64", "cv.group_by=auto", "track.fold_runs=false",
           "decide.n_trials=30", "train.precision=fp32", "setfit.pairs_per_row=2"]
    r = subprocess.run([sys.executable, "-m", "harness.cli", "sweep-local", "sweeps/ladder.yaml", "--compare",
                        "--state-dir", str(tmp_path / "state"), *cpu, f"output_dir={tmp_path / 'runs'}"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert [x["state"] for x in state["runs"]] == ["finished"] * 7
    result = json.loads((tmp_path / "state" / "compare.json").read_text())
    names = [x["run"] for x in result["runs"]]
    assert names == ["dreaddit_tfidf", "dreaddit_embed", "dreaddit_setfit", "dreaddit_minilm", "dreaddit_zeroshot",
                     "dreaddit_sft", "dreaddit_dpo"]
    for prev, row in zip(names, result["runs"][1:]):  # each rung against the previous one, with a paired CI
        assert row["reference"] == prev
        lo, hi = row["delta_macro_f1_ci"]
        assert lo <= row["delta_macro_f1"] <= hi
    assert "paired differences" in r.stdout and (tmp_path / "state" / "compare.html").exists()
    dpo_dir = Path(result["runs"][-1]["path"])
    sft_dir = Path(result["runs"][-2]["path"])
    started = json.loads((dpo_dir / "folds" / "seed42" / "fold1" / run_files.METRICS).read_text())["started_from"]
    assert started == str(sft_dir / "folds" / "seed42" / "fold1" / "model" / "adapter")
    (cmp,) = [x for x in map(read_offline_run, offline_runs(wdir)) if x["job_type"] == "compare"]
    assert {"compare/runs", "compare/per_class_f1_delta"} <= set(cmp["tables"])
