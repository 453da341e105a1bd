from harness.config import PromptConfig, load_config
from harness.data.load import SEEKER, Example, Turn
from harness.data.prompt import TARGET_OPEN, PromptBuilder

import pytest

_DATA = load_config(None, ["data.synthetic=psydefconv"]).data
LABELS, FACTS = _DATA.label_names(), _DATA.facts()  # the psydefdetect preset: DMRS labels and guide
TARGET = "i keep telling myself it doesn't matter, but honestly i haven't slept properly in three weeks"


def long_dialogue(turns: int = 54) -> Example:
    ds = []
    for i in range(turns - 1):
        who = SEEKER if i % 2 == 0 else "supporter"
        ds.append(Turn(who, f"turn {i}: " + "this is a fairly long utterance with plenty of words in it " * 3))
    ds.append(Turn(SEEKER, TARGET))
    return Example(id="x", group="D", target=TARGET, dialogue=tuple(ds), label=3)


@pytest.mark.parametrize("layout", ["decoder", "pair"])
@pytest.mark.parametrize("budget", [1024, 256])
def test_target_survives_budget_minilm(minilm_tokenizer, layout, budget):
    tok = minilm_tokenizer
    ex = long_dialogue(54)
    cfg = PromptConfig(layout=layout, max_length=budget, context_turns=30)
    pb = PromptBuilder(cfg, tok, LABELS, FACTS)
    p = pb.build(ex)
    ids = tok(p.text, p.text_pair)["input_ids"]
    assert len(ids) <= budget
    decoded = tok.decode(ids, skip_special_tokens=True)
    assert tok.decode(tok(TARGET, add_special_tokens=False)["input_ids"]) in decoded  # intact target
    if layout == "decoder":
        assert "Needs More Information" in p.text  # the guide is never cut
        assert pb.instruction and p.text.rstrip().endswith(pb.instruction)  # the preset's question, never cut
    assert p.truncated  # 30 long turns do not fit either budget
    assert p.turns_kept < 30
    # the newest context survives, the oldest goes first
    assert "turn 52" in (p.text_pair or p.text)
    assert "turn 0:" not in (p.text_pair or p.text)


def test_tight_budget_trims_earliest_kept_turn_from_the_left(minilm_tokenizer):
    pb = PromptBuilder(PromptConfig(layout="pair", max_length=60, context_turns=30), minilm_tokenizer, LABELS, FACTS)
    p = pb.build(long_dialogue(10))
    assert p.trimmed and p.text_pair.startswith("...")
    assert len(minilm_tokenizer(p.text, p.text_pair)["input_ids"]) <= 60


def test_short_dialogue_untouched(minilm_tokenizer):
    ex = Example(id="s", group="D", target="ok", dialogue=(Turn(SEEKER, "hello"), Turn("supporter", "hi"),
                                                           Turn(SEEKER, "ok")))
    p = PromptBuilder(PromptConfig(max_length=1024), minilm_tokenizer, LABELS, FACTS).build(ex)
    assert not p.truncated and p.turns_kept == 2
    assert f"{TARGET_OPEN}[seeker] ok" in p.text


def test_any_hf_tokenizer_tiny_qwen3_and_stats():
    from harness.methods.hf.settings import ModelConfig
    from harness.methods.hf.model import load_tokenizer

    tok = load_tokenizer(ModelConfig(name_or_path="tiny-qwen3"))
    pb = PromptBuilder(PromptConfig(max_length=1200, context_turns=30), tok, LABELS, FACTS)
    ids, stats = pb.encode([long_dialogue(54), long_dialogue(3)])
    assert stats.n == 2 and stats.truncated == 1 and stats.over_budget == 0
    assert max(stats.lengths) <= 1200
    assert tok.decode(ids[0]).find(TARGET) > 0
