"""Deterministic synthetic data shaped like PsyDefConv and Dreaddit.

Used by the tests and the demo (the real train set is not shipped). Each label has
its own cue phrases in the *target* utterance, with 12% of targets carrying another
label's cue instead, so a small pretrained model can learn it well but not perfectly,
while the context turns are label-independent noise (as on the real data, the
target carries the signal).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.data.schema import SEEKER, Example, Turn

# Class counts of the official PsyDefDetect train set (1,864 items, 200 dialogues).
OFFICIAL_COUNTS = [296, 108, 61, 99, 84, 48, 172, 968, 28]
OFFICIAL_DIALOGUES = 200

CUES: list[list[str]] = [
    # 0 No Defense
    ["I work as a cashier at the mall", "my sister lives in another state", "I have a meeting on tuesday",
     "we moved here last spring", "I usually take the bus to work", "my exam is next month"],
    # 1 Action
    ["so I just stormed out and slammed the door", "I started drinking every night to forget it",
     "I smashed my phone against the wall", "I quit on the spot and walked away",
     "I keep picking fights with everyone", "I binge eat whenever it happens"],
    # 2 Major Image-Distorting
    ["everyone in my life is completely evil", "they are all monsters and I am the only good one",
     "the whole world is plotting against me", "nobody has ever done anything good for me",
     "my boss is pure evil, a total demon", "every single person betrays me eventually"],
    # 3 Disavowal
    ["honestly it is not a big deal at all", "I do not really care about any of that",
     "it is entirely their fault, not mine", "whatever, nothing is actually wrong with me",
     "I am totally fine, it does not bother me", "it never really happened the way they say"],
    # 4 Minor Image-Distorting
    ["I am smarter than all of them anyway", "I was always the best one on my team",
     "they are just jealous of how talented I am", "honestly I am too good for that job",
     "I know I am more impressive than my friends", "I deserve way better than those people"],
    # 5 Neurotic
    ["I keep worrying about it over and over", "I try to just push it out of my mind",
     "I feel sick with dread every single morning", "I cannot stop replaying it in my head",
     "I pretend to be happy so nobody notices", "I get headaches whenever I think of it"],
    # 6 Obsessional
    ["logically I analysed every possible detail", "I made a spreadsheet of all the pros and cons",
     "rationally speaking it should not affect me", "I need to keep everything under control",
     "I keep my feelings out of it and think it through", "I undo and redo my plans constantly"],
    # 7 High-Adaptive
    ["I talked it through with a friend and felt better", "I can laugh about it a little now",
     "I am planning ahead so I can handle it", "I went for a run and it helped me cope",
     "I accept that it happened and I am learning from it", "I asked my family for support and they helped",
     "I am writing in my journal to sort out my feelings", "I set a small goal for this week"],
    # 8 Needs More Information
    ["ok", "yes", "hmm maybe", "I guess", "not sure", "hi"],
]

OPENERS = ["", "well,", "yeah,", "to be honest,", "i mean,", "so", "right now", "lately"]
TOPICS = ["about my job", "with my partner", "because of the pandemic", "at school", "with money",
          "with my family", "", "", ""]
SUPPORTER = ["How does that make you feel?", "I hear you, that sounds really hard.",
             "Can you tell me more about that?", "What happened next?", "That must be difficult for you.",
             "Have you talked to anyone about this?", "I understand. What would help you right now?"]
SEEKER_FILLER = ["i have been feeling off lately", "it is a long story", "thanks for listening",
                 "i do not know where to start", "things have been busy", "my week was rough"]

NOISE = 0.12


def _scaled_counts(n_groups: int) -> list[int]:
    return [max(2, round(c * n_groups / OFFICIAL_DIALOGUES)) for c in OFFICIAL_COUNTS]


def _target(rng: random.Random, label: int) -> str:
    cue_label = rng.randrange(len(CUES)) if rng.random() < NOISE else label
    cue = rng.choice(CUES[cue_label])
    if cue_label == 8:
        return cue
    text = f"{rng.choice(OPENERS)} {cue} {rng.choice(TOPICS)}".strip()
    return " ".join(text.split())


def make_psydefconv(n_groups: int = 200, seed: int = 0) -> list[Example]:
    """PsyDefConv-shaped items: dialogues whose labelled seeker turns follow the official class mix."""
    rng = random.Random(seed)
    labels = [lab for lab, c in enumerate(_scaled_counts(n_groups)) for _ in range(c)]
    rng.shuffle(labels)
    # split the labelled items over the dialogues: every dialogue gets at least one
    cuts = sorted(rng.sample(range(1, len(labels)), n_groups - 1))
    chunks = [labels[a:b] for a, b in zip([0, *cuts], [*cuts, len(labels)])]
    examples: list[Example] = []
    for d, chunk in enumerate(chunks):
        did = f"SYN_{d + 1:03d}"
        turns: list[Turn] = []
        for label in chunk:
            for _ in range(rng.choice([0, 0, 1, 2])):  # unlabelled seeker/supporter exchanges
                turns.append(Turn(SEEKER, rng.choice(SEEKER_FILLER + [rng.choice(rng.choice(CUES))])))
                turns.append(Turn("supporter", rng.choice(SUPPORTER)))
            text = _target(rng, label)
            turns.append(Turn(SEEKER, text))
            examples.append(Example(id=f"syn_{len(examples) + 1:05d}", group=did, target=text,
                                    dialogue=tuple(turns), label=label))
            turns.append(Turn("supporter", rng.choice(SUPPORTER)))
    return examples


STRESS = ["i can't sleep and my chest feels tight", "i am terrified i will lose my apartment",
          "i feel like i am falling apart", "my anxiety is through the roof", "i am so overwhelmed i cry every day",
          "i panic every time my phone rings"]
CALM = ["things have been going pretty well", "i finally feel settled in", "we had a nice weekend together",
        "i am looking for advice on a gift", "just wanted to share an update", "i am grateful for this community"]


def make_dreaddit(n_groups: int = 200, seed: int = 0) -> list[Example]:
    """Dreaddit-shaped rows: posts of 1-3 segments, binary stress label, grouped by post_id."""
    rng = random.Random(seed)
    examples = []
    for p in range(n_groups):
        post = f"p{p:04x}"
        for _ in range(rng.choice([1, 1, 2, 3])):
            label = int(rng.random() < 0.52)
            pool = STRESS if (label == 1) != (rng.random() < NOISE) else CALM
            text = f"{rng.choice(pool)} {rng.choice(TOPICS)}".strip()
            examples.append(Example(id=str(len(examples) + 1), group=post, target=text,
                                    dialogue=(Turn(SEEKER, text),), label=label))
    return examples


def to_psydefconv_records(examples: list[Example], with_labels: bool = True) -> list[dict]:
    out = []
    for e in examples:
        rec = {"id": e.id, "dialogue_id": e.group, "dialogue": [{"speaker": t.speaker, "text": t.text} for t in e.dialogue],
               "current_text": e.target}
        if with_labels:
            rec["label"] = e.label
        out.append(rec)
    return out


def write_psydefconv(path: Path, examples: list[Example], with_labels: bool = True) -> None:
    Path(path).write_text(json.dumps(to_psydefconv_records(examples, with_labels), indent=1), encoding="utf-8")


def write_dreaddit_csv(path: Path, examples: list[Example]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label", "post_id"])
        for e in examples:
            w.writerow([e.id, e.target, e.label, e.group])
