"""What every benchmark's results file needs: the machine it ran on, and appending to RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    cpu = platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        extra = f", {gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        extra = ""
    return f"{os.cpu_count()} CPU cores ({cpu}){extra}, Python {platform.python_version()}"


def append_results(text: str) -> None:
    with open(RESULTS, "a") as f:
        f.write("\n" + text.rstrip() + "\n")


def publish(lines: list[str], to_results: bool) -> None:
    """Print a results section; with `to_results`, append it to RESULTS.md too."""
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if to_results:
        append_results(text)
