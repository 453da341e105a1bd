"""Facts about public data sets, kept out of the core config: a config selects one with `data.preset`.

A preset gives a data set's label names, the label ids of its official score, the label guide a prompt
may carry, the instructions and the answer texts (verbalizers) of its generative prompts. The core never
guesses them from the number of labels: a two-label table is not a stress task unless its config says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DMRS_GUIDE = """Defense levels (DMRS):
0 No Defense: plain facts or feelings, no defensive distortion.
1 Action: acting out, passive aggression, help-rejecting complaining.
2 Major Image-Distorting: splitting, projective identification; people all good or all bad.
3 Disavowal: denial, projection, rationalisation; the problem is not mine or not real.
4 Minor Image-Distorting: omnipotence, idealisation, devaluation.
5 Neurotic: repression, dissociation, reaction formation, displacement.
6 Obsessional: isolation of affect, intellectualisation, undoing.
7 High-Adaptive: affiliation, humour, anticipation, self-observation, sublimation, suppression.
8 Needs More Information: too little said to judge."""

DMRS_LABELS = ("No Defense", "Action", "Major Image-Distorting", "Disavowal", "Minor Image-Distorting",
               "Neurotic", "Obsessional", "High-Adaptive", "Needs More Information")


@dataclass(frozen=True)
class Preset:
    """One public data set's facts."""
    name: str
    labels: tuple[str, ...]
    verbalizers: tuple[str, ...]  # the answer text of each label for generative methods
    instruction: str  # the name (in `instructions`) of the default generative instruction
    instructions: dict[str, str] = field(default_factory=dict)
    guide: str = ""  # the label guide a decoder prompt may carry (`prompt.guide: auto`)
    target_instruction: str = ""  # what a decoder classifier's prompt asks after the target (`prompt.instruction`)
    about: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="psydefdetect",
        labels=DMRS_LABELS,
        verbalizers=DMRS_LABELS,
        instruction="dmrs",
        instructions={"dmrs": "You rate psychological defense levels (DMRS) in support conversations. Read the "
                              "dialogue and name the defense level of the TARGET utterance. Answer with the level "
                              "name only."},
        guide=DMRS_GUIDE,
        target_instruction="Classify the defense level of the TARGET utterance.",
        about="PsyDefDetect 2026 / PsyDefConv: 9 DMRS defense levels of a target utterance in a support dialogue",
    ),
    Preset(
        name="dreaddit",
        labels=("not_stress", "stress"),
        verbalizers=("not stressed", "stressed"),
        instruction="stress",
        target_instruction="Is the author of this post under stress?",
        instructions={
            "stress": "Read the post and decide whether its author is under stress. Answer 'stressed' or "
                      "'not stressed' only.",
            "stress_expert": "You are a clinical psychologist screening social-media posts for signs of stress. "
                             "Read the post and answer 'stressed' or 'not stressed' only."},
        about="Dreaddit (Turcan & McKeown 2019): binary stress in Reddit post segments",
    ),
)}


def named_instructions() -> dict[str, str]:
    """Every preset's named instructions (a config may name one from another preset, e.g. `stress_expert`)."""
    return {k: v for p in PRESETS.values() for k, v in p.instructions.items()}


def named_guides() -> dict[str, str]:
    return {"dmrs": DMRS_GUIDE}
