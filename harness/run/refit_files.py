"""What `harness export --from refit` adds to a run directory: one model per seed trained on every training row,
its metrics written in the same commit (their presence means done), and its claim. A part of RunDir."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ContextManager

from harness.core.store import read_json
from harness.run.layout import FOLD_CLAIM, FOLD_METRICS, MODEL, REFIT_ROOT
from harness.run.manifest import Transaction


class RefitFiles:
    """RunDir's refit files (it provides `path` and the commit and verified-read primitives)."""

    path: Path
    recorded: Callable[[str], bool]
    verified: Callable[[str], Path]
    writing: Callable[..., ContextManager[Transaction]]

    def _refit_file(self, seed: int, name: str) -> str:
        return f"{REFIT_ROOT}/seed{seed}/{name}"

    def refit_dir(self, seed: int) -> Path:
        return self.path / REFIT_ROOT / f"seed{seed}"

    def refit_claim_path(self, seed: int) -> Path:
        return self.path / self._refit_file(seed, FOLD_CLAIM)

    def refit_done(self, seed: int) -> bool:
        return self.recorded(self._refit_file(seed, FOLD_METRICS))

    def read_refit(self, seed: int) -> tuple[dict[str, Any], Path] | None:
        """The finished refit of this seed (its metrics and verified model folder), or None."""
        if not self.refit_done(seed):
            return None
        return read_json(self.verified(self._refit_file(seed, FOLD_METRICS))), self.verified(
            self._refit_file(seed, MODEL))

    def write_refit(self, seed: int, metrics: dict[str, Any], save_model: Callable[[Path], None]) -> None:
        """The refit model and its metrics in one commit."""
        with self.writing("refit", exclusive=False) as tx:
            save_model(tx.path(self._refit_file(seed, MODEL)))
            tx.write_json(self._refit_file(seed, FOLD_METRICS), metrics)

    def forget_refit(self, seed: int) -> None:
        """Drop a refit whose files failed their check: it is trained again."""
        with self.writing("refit", exclusive=False) as tx:
            for name in (FOLD_METRICS, MODEL):
                tx.remove(self._refit_file(seed, name))
