"""Prompt building with a token budget that never loses the target.

The published reference code right-truncates, which on long dialogues trains on
prompts whose target utterance was cut away.  Here the guide, the marked target and
the instruction are fixed; the context absorbs the budget: the oldest turns go
first, then the earliest kept turn is trimmed from the left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.config import PromptConfig
from harness.data.load import Example, Turn
from harness.config.presets import Preset, named_guides

TARGET_OPEN = ">>> TARGET "
ELLIPSIS = "... "


def guide_text(cfg: PromptConfig, facts: Preset | None = None) -> str:
    """auto: the data preset's guide (none without one); a named guide; none; or the literal text."""
    if cfg.guide == "none":
        return ""
    if cfg.guide == "auto":
        return facts.guide if facts else ""
    return named_guides().get(cfg.guide, cfg.guide)


def instruction_text(cfg: PromptConfig, facts: Preset | None = None) -> str:
    """auto: the data preset's question after the target (none without one); none; or the literal text."""
    if cfg.instruction == "auto":
        return facts.target_instruction if facts else ""
    return "" if cfg.instruction == "none" else cfg.instruction


def _turn_line(t: Turn) -> str:
    return f"[{t.speaker}] {t.text}\n"


def _line(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


@dataclass
class Prompt:
    text: str
    text_pair: str | None
    turns_kept: int
    turns_available: int
    trimmed: bool  # the earliest kept turn was cut from the left

    @property
    def truncated(self) -> bool:
        return self.trimmed or self.turns_kept < self.turns_available


@dataclass
class PromptStats:
    n: int = 0
    truncated: int = 0
    over_budget: int = 0  # guide + target alone exceed the budget (kept whole anyway)
    lengths: list[int] | None = None


class PromptBuilder:
    """Builds token-budgeted prompts for any HF tokenizer (decoder layout or encoder pair layout)."""

    def __init__(self, cfg: PromptConfig, tokenizer: Any, label_names: Sequence[str], facts: Preset | None = None):
        self.cfg = cfg
        self.tok = tokenizer
        self.guide = guide_text(cfg, facts)
        self.instruction = instruction_text(cfg, facts)
        self.pair = cfg.layout == "pair"
        # special tokens the tokenizer adds (CLS/SEP, BOS, ...), counted once
        self.n_special = tokenizer.num_special_tokens_to_add(pair=self.pair)

    def _ntok(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tok(texts, add_special_tokens=False)["input_ids"]
        return [len(x) for x in enc]

    def _fixed_parts(self, ex: Example) -> tuple[str, str]:
        target_line = f"{TARGET_OPEN}[{ex.dialogue[-1].speaker if ex.dialogue else 'seeker'}] {ex.target}\n"
        if self.pair:
            return "", ex.target
        head = f"{self.guide}\n\nDialogue:\n" if self.guide else "Dialogue:\n"
        return head, target_line + self.instruction

    def _assemble(self, head: str, context: str, tail: str) -> tuple[str, str | None]:
        if self.pair:
            return tail, context or None
        return head + context + tail, None

    def _length(self, text: str, pair: str | None) -> int:
        return len(self.tok(text, pair, add_special_tokens=True)["input_ids"])

    def build(self, ex: Example) -> Prompt:
        turns = list(ex.context)[-self.cfg.context_turns:] if self.cfg.context_turns else []
        available = len(turns)
        head, tail = self._fixed_parts(ex)
        budget = self.cfg.max_length - self.n_special - sum(self._ntok([s for s in (head, tail) if s]))
        lines = [_turn_line(t) for t in turns]
        sizes = self._ntok(lines)
        kept: list[str] = []
        used = 0
        trimmed = False
        for line, size in zip(reversed(lines), reversed(sizes)):
            if used + size <= budget:
                kept.insert(0, line)
                used += size
                continue
            room = budget - used - self._ntok([ELLIPSIS])[0]
            if room > 0:
                ids = self.tok(line, add_special_tokens=False)["input_ids"][-room:]
                kept.insert(0, _line(ELLIPSIS + self.tok.decode(ids).lstrip()))
                trimmed = True
            break
        context = "".join(kept)
        text, pair = self._assemble(head, context, tail)
        # token boundaries can shift by a token or two when pieces are joined: shrink until it fits
        length = self._length(text, pair)
        while kept and length > self.cfg.max_length:
            first = kept[0].removeprefix(ELLIPSIS)
            ids = self.tok(first, add_special_tokens=False)["input_ids"]
            cut = length - self.cfg.max_length + 2
            if cut >= len(ids):
                kept.pop(0)
            else:
                kept[0] = _line(ELLIPSIS + self.tok.decode(ids[cut:]).lstrip())
            trimmed = True
            text, pair = self._assemble(head, "".join(kept), tail)
            length = self._length(text, pair)
        n_full = sum(1 for k in kept if not k.startswith(ELLIPSIS))
        return Prompt(text=text, text_pair=pair, turns_kept=n_full, turns_available=available, trimmed=trimmed)

    def encode(self, examples: Sequence[Example], progress: bool = False) -> tuple[list[list[int]], PromptStats]:
        """Token ids per example (no truncation needed: every prompt fits the budget) and stats."""
        from harness.core.progress import progress_bar

        ids: list[list[int]] = []
        stats = PromptStats(lengths=[])
        for ex in progress_bar(examples, desc="prompts", enable=progress):
            p = self.build(ex)
            enc = self.tok(p.text, p.text_pair, add_special_tokens=True, truncation=self.cfg.truncate_target,
                           max_length=self.cfg.max_length if self.cfg.truncate_target else None)["input_ids"]
            ids.append(enc)
            stats.n += 1
            cut = self.cfg.truncate_target and len(enc) >= self.cfg.max_length and \
                self._length(p.text, p.text_pair) > self.cfg.max_length
            stats.truncated += int(p.truncated or cut)
            stats.over_budget += int(len(enc) > self.cfg.max_length)
            stats.lengths.append(len(enc))  # type: ignore[union-attr]
        return ids, stats
