"""W&B sweeps: load and check a sweep YAML, and run one on a machine without a W&B server (`harness sweep-local`).

sweep-local is an agent and a controller in one process, built from W&B's own pieces:
- proposals come from wandb's scheduler optimizers (`wandb.sdk.sweeps.scheduler`): the `wandb` engine is the
  open-source `sweeps` package (grid, random, bayes, hyperband), the `optuna` engine is W&B's Optuna bridge;
- each run is the command line `wandb agent` would build (wandb's own macro expansion), with the agent's
  environment (WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_SWEEP_PARAM_PATH), logging offline;
- results are read back from the offline run (summary and per-fold history), so early termination works;
- the state file is rewritten atomically after every change; a restart replays finished runs into the
  optimizer and relaunches the interrupted one with its run id (its finished folds are kept).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import warnings

import yaml

from harness.config import ConfigError, field_help, mask_secrets, parse_overrides, parse_yaml
from harness.run.rundir import RunDir
from harness.core.store import atomic_write_json, read_json

warnings.filterwarnings("ignore", message=".*allow_population_by_field_name.*")  # from the sweeps package


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML and list every problem at once: schema, parameter names, scheduler, command."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: not found"])
    cfg = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    problems = [f"{path}: {p}" for p in sweep_problems(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg


def sweeps_engine() -> Any:
    """W&B's open-source `sweeps` package, or None. Without it, `import sweeps` run from the repository root
    finds the project's own sweeps/ folder (a namespace package with no code): that counts as missing."""
    import warnings

    try:
        with warnings.catch_warnings():  # its pydantic-1 style models warn under pydantic 2: nothing a user can act on
            warnings.filterwarnings("ignore", message="Valid config keys have changed in V2", category=UserWarning)
            import sweeps
    except ImportError:
        return None
    return sweeps if hasattr(sweeps, "schema_violations_from_proposed_config") else None


def sweep_problems(cfg: Any) -> list[str]:
    if not isinstance(cfg, dict):
        return ["top level must be a mapping"]
    problems: list[str] = []
    engine = sweeps_engine()
    if engine is None:
        problems.append("the `sweeps` package is missing: pip install --no-deps sweeps==0.2.0 jsonref")
    else:
        core = {k: v for k, v in cfg.items() if k != "scheduler"}  # wandb 0.31's extension, checked below
        problems += [f"sweeps schema: {v}" for v in engine.schema_violations_from_proposed_config(core)]
    keys = field_help()
    for name in cfg.get("parameters", {}) or {}:
        if name not in keys and name != "config":  # `config`: an experiment YAML per run (a ladder of recipes)
            problems.append(f"parameters.{name}: not a harness config key (see `harness config --keys`)")
    metric = (cfg.get("metric") or {}).get("name")
    if not metric:
        problems.append("metric.name: missing; use a summary key such as cv/macro_f1_official")
    sched = cfg.get("scheduler")
    if cfg.get("method") == "custom":
        if not isinstance(sched, dict) or sched.get("engine") not in ("wandb", "optuna", "ax"):
            problems.append("scheduler.engine: method custom needs scheduler: {engine: wandb|optuna|ax, ...}")
        elif sched.get("source") and not Path(sched["source"]).exists():
            problems.append(f"scheduler.source: {sched['source']} not found (paths are relative to where the "
                            "scheduler runs: the repository root)")
    command = cfg.get("command")
    if not isinstance(command, list) or not any(c in ("${args}", "${args_no_hyphens}") for c in command):
        problems.append("command: must be a list that passes the parameters with ${args} or ${args_no_hyphens}")
    return problems


def agent_command(sweep: dict[str, Any], params: dict[str, Any], extra: list[str] = ()) -> list[str]:
    """The command line `wandb agent` runs for these parameters (wandb's own macro expansion), plus `extra`."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    template = sweep_utils.create_sweep_command(sweep.get("command"))
    args = sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    args["interpreter"] = [sys.executable]
    args["program"] = [sweep.get("program", "")]
    args["env"] = ["/usr/bin/env"]
    out: list[str] = []
    for c in map(str, template):
        out += list(args.get(c[2:-1]) or []) if c.startswith("${") and c.endswith("}") else [c]
    return out + list(extra)


class LocalSweep:
    """Drive one sweep YAML locally; `state.json` holds every run (config, state, metrics) for resumption."""

    def __init__(self, path: str | Path, state_dir: str | Path | None = None, extra: list[str] = (),
                 poll_seconds: float = 30.0, verbose: bool = True):
        self.path = Path(path)
        self.sweep = load_sweep(self.path)
        self.extra = list(extra)
        parse_overrides(self.extra)  # a malformed override fails here, not in every run
        clash = {e.lstrip("-").split("=", 1)[0] for e in self.extra} & set(self.sweep.get("parameters", {}))
        if clash:
            raise ConfigError([f"override {k}: it is a parameter of {self.path}; the sweep sets it" for k in sorted(clash)])
        self.state_dir = Path(state_dir or Path("runs") / "sweeps-local" / self.path.stem)
        self.state_path = self.state_dir / "state.json"
        self.poll_seconds, self.verbose = poll_seconds, verbose
        self.state = read_json(self.state_path) if self.state_path.exists() else {
            "sweep_id": f"local-{self.path.stem}-{secrets.token_hex(3)}", "sweep_file": str(self.path), "runs": []}
        if self.state["sweep_file"] != str(self.path):
            raise ConfigError([f"{self.state_path}: belongs to {self.state['sweep_file']}, not {self.path}"])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._save()  # the sweep id is fixed from the first invocation on (the Optuna study is named after it)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optimizer = self._make_optimizer()
        self.ids: dict[str, Any] = {}  # wandb run id -> optimizer run id

    # -- optimizer ----------------------------------------------------------------
    def _make_optimizer(self) -> Any:
        from wandb.sdk.sweeps.scheduler.optimizer import make_optimizer
        from wandb.sdk.sweeps.sweep_info import SweepInfo

        config = dict(self.sweep)
        config.setdefault("scheduler", {"engine": "wandb"})  # grid/random/bayes: the open-source sweeps engine
        info = SweepInfo(id=self.state["sweep_id"], name=config.get("name", self.path.stem), entity="",
                         project=config.get("project", "harness"), config=config, controller_run_name="")
        return make_optimizer(info)

    def _run_data(self, run: dict[str, Any], state: str) -> Any:
        from wandb.sdk.sweeps.run_state import RunState
        from wandb.sdk.sweeps.scheduler.optimizer import RunConfig, RunWithMetrics

        return RunWithMetrics(config=RunConfig.from_values(run["params"]), state=RunState(state),
                              wandb_run_id=run["id"], summary_metrics=run.get("summary", {}),
                              history_metrics=run.get("history", []))

    def _replay(self) -> list[dict[str, Any]]:
        """Teach a fresh optimizer the finished runs; return the interrupted ones to relaunch."""
        interrupted = []
        for run in self.state["runs"]:
            if run["state"] in ("running", "pending"):
                interrupted.append(run)
            else:
                self.optimizer.tell_existing_finished_run(self._run_data(run, run["state"]))
        return interrupted

    # -- running ----------------------------------------------------------------
    def _save(self) -> None:
        atomic_write_json(self.state_path, self.state)

    def _wandb_dir(self) -> Path:
        return Path(os.environ.get("WANDB_DIR") or self.state_dir)

    def _read_back(self, run: dict[str, Any]) -> None:
        """Summary and the metric's history from the run's offline W&B files (what a server would have)."""
        from harness.track import offline_runs, read_offline_run

        metric = self.sweep["metric"]["name"]
        dirs = [d for d in offline_runs(self._wandb_dir()) if d.name.endswith("-" + run["id"])]
        run_dir = self._run_dir(run)
        if run_dir is not None and run_dir.exists():
            run["run_dir"] = str(run_dir)
        if not dirs or not list(dirs[-1].glob("*.wandb")):
            self._read_run_dir(run)  # W&B off (track.backend none/disk): the run directory is the source of truth
            return
        data = read_offline_run(dirs[-1])
        run["summary"] = {k: v for k, v in data["summary"].items() if isinstance(v, (int, float))}
        run["history"] = [{"_step": h["_step"], metric: h[metric]} for h in data["history"] if metric in h]
        run["wandb_dir"] = str(dirs[-1])

    def _run_dir(self, run: dict[str, Any]) -> Path | None:
        """Where `harness cv` put this sweep run (its own command line, read as `harness cv` reads it)."""
        from harness.config import load_config

        cmd = run.get("command") or agent_command(self.sweep, run["params"], self.extra)
        if "cv" not in cmd:
            return None
        rest = cmd[cmd.index("cv") + 1:]  # `harness cv [CONFIG | --config=CONFIG] overrides…`
        path = next((a.split("=", 1)[1] for a in rest if a.startswith("--config=")), None) or next(
            (a for a in rest if "=" not in a and not a.startswith("-")), None)
        try:
            cfg = load_config(path, [a for a in rest if "=" in a and not a.startswith("--config=")])
        except ConfigError:
            return None
        return RunDir.of_sweep_run(cfg, self.state["sweep_id"], run["id"]).path

    def _read_run_dir(self, run: dict[str, Any]) -> None:
        """Summary from the run directory's metrics.json (W&B off: the run directory is the source of truth)."""
        run_dir = self._run_dir(run)
        metrics = RunDir(run_dir).read_metrics() if run_dir is not None else None
        if metrics is not None:
            summary = metrics.get("summary", {})
            run["summary"] = {k: v for k, v in summary.items() if isinstance(v, (int, float))}

    def _launch(self, run: dict[str, Any]) -> int:
        env = dict(os.environ)
        env.setdefault("WANDB_MODE", "offline")  # no server here: an agent's runs, logged offline
        env["WANDB_DIR"] = str(self._wandb_dir())
        Path(env["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
        param_path = self.state_dir / f"config-{run['id']}.yaml"
        param_path.write_text(yaml.safe_dump({k: {"value": v} for k, v in run["params"].items()}))
        env.update(WANDB_SWEEP_ID=self.state["sweep_id"], WANDB_RUN_ID=run["id"],
                   WANDB_SWEEP_PARAM_PATH=str(param_path), WANDB_PROJECT=self.sweep.get("project", "harness"))
        cmd = agent_command(self.sweep, run["params"], self.extra)
        run["command"] = [mask_secrets(a) for a in cmd]  # state.json is a file: no password in it
        if self.verbose:
            print(f"\n== sweep run {run['id']}: {run['params']}\n   {' '.join(run['command'])}", flush=True)
        proc = subprocess.Popen(cmd, env=env)
        pruned = False
        while True:
            try:
                rc = proc.wait(timeout=self.poll_seconds)
                break
            except subprocess.TimeoutExpired:
                if not pruned and self._should_prune(run):
                    pruned = True
                    if self.verbose:
                        print(f"   early termination: stopping {run['id']} ({len(run.get('history', []))} folds)")
                    proc.terminate()
        run["pruned"] = pruned
        return rc

    def _should_prune(self, run: dict[str, Any]) -> bool:
        """Early termination while the run trains: hyperband (wandb engine) or the study's pruner (optuna)."""
        try:
            self._read_back(run)
            data = self._run_data(run, "running")
            oid = self.ids[run["id"]]
            self.optimizer.tell_run(oid, data)
            return oid in set(self.optimizer.prune_runs([oid], [data]))
        except Exception as e:  # noqa: BLE001 - a failed poll must not kill the run
            if self.verbose:
                print(f"   (poll skipped: {type(e).__name__}: {e})")
            return False

    def _finish(self, run: dict[str, Any], rc: int) -> None:
        self._read_back(run)
        metric = self.sweep["metric"]["name"]
        run["state"] = "killed" if run.get("pruned") else ("finished" if rc == 0 and metric in run.get("summary", {})
                                                            else "failed")
        run["returncode"] = rc
        self._save()
        self.optimizer.tell_run(self.ids[run["id"]], self._run_data(run, run["state"]))
        if self.verbose:
            print(f"   {run['state']}: {metric} = {run.get('summary', {}).get(metric)}", flush=True)

    def run(self, count: int | None = None) -> list[dict[str, Any]]:
        """Run up to `count` sweep runs (None: until the search space is exhausted)."""
        from wandb.sdk.sweeps.run_state import RunState
        from wandb.sdk.sweeps.scheduler.optimizer import Run, RunConfig

        self.state_dir.mkdir(parents=True, exist_ok=True)
        started = 0
        for run in self._replay():  # relaunch what a crash interrupted, under the same W&B run id
            if count is not None and started >= count:
                break
            self.ids[run["id"]] = self.optimizer.tell_existing_active_run(
                Run(config=RunConfig.from_values(run["params"]), state=RunState.RUNNING, wandb_run_id=run["id"]))
            started += 1
            self._finish(run, self._launch(run))
        while count is None or started < count:
            suggestions = self.optimizer.ask_n_runs(1)
            if not suggestions:
                if self.verbose:
                    print("sweep finished: the search space is exhausted")
                break
            s = suggestions[0]
            run = {"id": secrets.token_hex(4), "params": s.config.flat_dict(), "state": "running",
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            self.ids[run["id"]] = s.run_id
            self.state["runs"].append(run)
            self._save()  # before launching: a crash now leaves a run to relaunch, never a lost one
            started += 1
            self._finish(run, self._launch(run))
        if self.verbose:
            print(self.format_table())
        return self.state["runs"]

    def finished_run_dirs(self) -> list[str]:
        """Run directories of the finished runs, in launch order (a ladder's rungs, bottom first)."""
        dirs = [self._run_dir(r) for r in self.state["runs"] if r.get("state") == "finished"]
        return [str(d) for d in dirs if d is not None and RunDir(d).is_finished()]

    def compare(self, n_boot: int = 2000) -> dict[str, Any] | None:
        """`harness compare` over the finished runs, each against the previous one: printed, written next to
        the sweep state (compare.html, compare.json) and logged as W&B tables (offline here)."""
        from harness.posthoc.compare import run_compare

        dirs = self.finished_run_dirs()
        if len(dirs) < 2:
            print(f"compare: {len(dirs)} finished run(s); nothing to compare")
            return None
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(self._wandb_dir()))
        return run_compare(dirs, "previous", self.state_dir / "compare.html", n_boot=n_boot)

    def format_table(self) -> str:
        metric = self.sweep["metric"]["name"]
        lines = [f"sweep {self.state['sweep_id']} ({self.path}): {len(self.state['runs'])} run(s); state in "
                 f"{self.state_path}", f"{'run':<9} {'state':<9} {metric:>22}  params"]
        for r in self.state["runs"]:
            v = r.get("summary", {}).get(metric)
            lines.append(f"{r['id']:<9} {r['state']:<9} {('%.4f' % v) if v is not None else '-':>22}  {r['params']}")
        return "\n".join(lines)
