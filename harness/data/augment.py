"""Minority-class lexical augmentation, applied inside a fold's training part only.

Round-robin over three mutation modes, k variants per source row, only on the
target utterance. Deterministic (seeded by the source id), deduplicated, and each
variant carries `source_id`, so the fold assignment sends it wherever its source
goes: a variant of a validation row can never reach training.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Callable, Sequence

from harness.config import AugmentConfig
from harness.data.load import Example

CONTRACTIONS = [("I am", "I'm"), ("i am", "i'm"), ("do not", "don't"), ("does not", "doesn't"), ("is not", "isn't"),
                ("it is", "it's"), ("cannot", "can't"), ("I have", "I've"), ("will not", "won't"),
                ("they are", "they're"), ("you are", "you're"), ("did not", "didn't"), ("was not", "wasn't")]
HEDGES = ["I guess", "maybe", "honestly I think", "kind of feels like", "I suppose", "not sure but"]
STYLE = {"really": "truly", "very": "super", "sad": "down", "angry": "mad", "happy": "glad", "hard": "tough",
         "big": "huge", "bad": "awful", "good": "decent", "always": "constantly", "everyone": "everybody",
         "nothing": "nothing at all", "scared": "afraid", "tired": "exhausted", "help": "support", "just": "simply",
         "think": "feel", "job": "work", "friend": "buddy", "mom": "mother", "dad": "father"}
FILLERS = ["you know", "I suppose", "or whatever", "to be honest", "I don't know", "anyway"]
HESITATIONS = ["um,", "uh,", "like,", "well,", "hmm,", "I mean,"]


def _contract_hedge(text: str, rng: random.Random) -> str:
    out = text
    for full, short in CONTRACTIONS:
        out = re.sub(rf"\b{re.escape(full)}\b", short, out)
    first = out[:1].lower() + out[1:] if out[:2] != "I " and out[:2] != "I'" else out
    return f"{rng.choice(HEDGES)} {first}"


def _style_filler(text: str, rng: random.Random) -> str:
    words = [STYLE.get(w.lower(), w) if w.lower() in STYLE and rng.random() < 0.8 else w for w in text.split(" ")]
    body = " ".join(words).rstrip(" .!?")
    end = text.rstrip()[-1:] if text.rstrip()[-1:] in ".!?" else ""
    return f"{body}, {rng.choice(FILLERS)}{end}"


def _hesitate(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    n = max(1, len(words) // 6)
    for _ in range(n):
        words.insert(rng.randrange(0, len(words) + 1), rng.choice(HESITATIONS))
    return " ".join(words)


MODES: list[Callable[[str, random.Random], str]] = [_contract_hedge, _style_filler, _hesitate]


def _rng(seed: int, source_id: str, j: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{source_id}:{j}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def variants(ex: Example, k: int, seed: int) -> list[Example]:
    """Up to k distinct variants of one row, modes taken round-robin."""
    seen = {ex.target}
    out = []
    for j in range(k):
        for attempt in range(5):  # a mode may produce a duplicate: retry with another draw
            text = MODES[j % len(MODES)](ex.target, _rng(seed, ex.id, j * 5 + attempt))
            if text not in seen:
                seen.add(text)
                out.append(ex.with_target(text, f"{ex.id}#aug{j}"))
                break
    return out


def augment(train_part: Sequence[Example], cfg: AugmentConfig) -> list[Example]:
    """The training part plus variants of its rows in the configured classes."""
    if not cfg.enabled or not cfg.classes:
        return list(train_part)
    wanted = set(cfg.classes)
    extra = [v for ex in train_part if ex.label in wanted and ex.source_id is None for v in variants(ex, cfg.k, cfg.seed)]
    return list(train_part) + extra
