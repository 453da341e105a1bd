"""Offline W&B runs read back from disk (tests, and `harness sweep-local`, which has no server to ask)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any



def _leet(path: Path, *flags: str) -> str:
    import subprocess
    import sys

    # cwd: the run's own folder, so the wandb CLI's debug log never lands in a ./wandb of the caller's project
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", *flags, str(path.resolve())],
                         capture_output=True, text=True, timeout=120, cwd=path)
    if out.returncode != 0:
        raise RuntimeError(f"wandb leet inspect {path} failed: {out.stderr.strip()[-500:]}")
    return out.stdout

def read_offline_run(path: str | Path) -> dict[str, Any]:
    """An offline run directory as W&B would show it: id, group, job_type, state, config, summary, history, tables."""
    path = Path(path)
    top = json.loads(_leet(path, "--summary", "--json"))
    records = [json.loads(line) for line in _leet(path, "--json").splitlines() if line.strip()]
    run = next(r["run"] for r in records if r.get("type") == "run")
    tables: dict[str, Any] = {}
    for f in sorted((path / "files" / "media" / "table").rglob("*.table.json")):
        key = "/".join(f.relative_to(path / "files" / "media" / "table").parts[:-1] +
                       (f.name.rsplit("_", 2)[0],))
        tables[key] = json.loads(f.read_text())
    return {"dir": path, "id": run.get("run_id"), "name": run.get("display_name"), "group": run.get("run_group"),
            "job_type": run.get("job_type"), "state": top.get("state"), "config": top.get("config", {}),
            "summary": top.get("summary", {}), "tables": tables,
            "history": [r["history"]["item"] for r in records if r.get("type") == "history"],
            "artifacts": [{"name": r["artifact"].get("name"), "type": r["artifact"].get("type"),
                           "aliases": r["artifact"].get("aliases", []),
                           "files": [c["path"] for c in r["artifact"]["manifest"]["contents"]]}
                          for r in records if r.get("type") == "artifact"]}

def offline_runs(wandb_dir: str | Path) -> list[Path]:
    """Offline run directories under WANDB_DIR (or its wandb/ subfolder), oldest first."""
    root = Path(wandb_dir)
    root = root / "wandb" if (root / "wandb").is_dir() else root
    return sorted(root.glob("offline-run-*"))
