from pathlib import Path

import pytest
import yaml

from harness.config import (ConfigError, ExperimentConfig, apply_overrides, load_config, mask_secrets,
                            parse_overrides)
import harness.run.layout as run_files

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml")) + sorted((ROOT / "harness" / "recipes").glob("*.yaml"))


def test_defaults_are_valid():
    cfg = load_config(None, ["data.synthetic=psydefconv"])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.loss.class_weights == "inverse_sqrt"
    assert cfg.data.label_names()[7] == "High-Adaptive"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_every_shipped_experiment_loads(path: Path):
    cfg = load_config(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# harness "), f"{path.name} must open with the command that runs it"
    assert cfg.name


def test_override_forms_agree():
    """`--a.b=v` (W&B ${args}), `a.b=v` (${args_no_hyphens}) and a dict (Optuna/wandb.config) give one config."""
    a = load_config(None, ["--lora.r=64", "--train.seeds=[1,2]", "--data.synthetic=psydefconv",
                           "--train.learning_rate=1.2e-4", "--quant.load_in_4bit=true"])
    b = load_config(None, ["lora.r=64", "train.seeds=[1,2]", "data.synthetic=psydefconv",
                           "train.learning_rate=1.2e-4", "quant.load_in_4bit=True"])
    c = load_config(None, {"lora.r": 64, "train.seeds": [1, 2], "data.synthetic": "psydefconv",
                           "train.learning_rate": 1.2e-4, "quant.load_in_4bit": True})
    assert a == b == c
    assert a.lora.r == 64 and a.train.seeds == [1, 2] and a.quant.load_in_4bit is True


def test_yaml_then_overrides_win(tmp_path: Path):
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump({"data": {"synthetic": "psydefconv"}, "lora": {"r": 8}}))
    assert load_config(p, ["lora.r=32"]).lora.r == 32
    assert load_config(p).lora.r == 8


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["lora.rr=3", "train.learning_rate=abc", "cv.n_folds=1", "data.synthetic=psydefconv",
                           "quant.quant_type=int8", "nosuch.key=1", "train.warmup_ratio=2"])
    msg = str(e.value)
    for needle in ["lora.rr: unknown key; allowed here: alpha, alpha_per_rank, dropout", "train.learning_rate: expected float",
                   "cv.n_folds: must be >= 2", "quant.quant_type: expected one of 'nf4', 'fp4'",
                   "nosuch: unknown key", "train.warmup_ratio: must be in [0, 1)"]:
        assert needle in msg, msg
    assert len(e.value.problems) == 6


def test_impossible_cross_field_values():
    with pytest.raises(ConfigError, match="augment.classes: 12 is outside 0..8"):
        load_config(None, ["data.synthetic=psydefconv", "augment.classes=[2,12]"])
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        load_config(None, ["data.synthetic=psydefconv", "train.early_stopping_patience=2"])
    with pytest.raises(ConfigError, match="decide.gate"):
        load_config(None, ["data.synthetic=psydefconv", "decide.gate=9"])


def test_flat_dict_round_trip_and_apply():
    cfg = load_config(None, ["data.synthetic=psydefconv"])
    flat = cfg.to_flat_dict()
    assert flat["lora.r"] == cfg.lora.r and flat["name"] == cfg.name
    assert all(not isinstance(v, dict) or k == "tune.space" for k, v in flat.items())
    again = apply_overrides(load_config(None, ["data.synthetic=psydefconv"]), flat)
    assert again == cfg
    assert apply_overrides(cfg, {"lora": {"r": 4}}).lora.r == 4


def test_resolved_config_written(tmp_path: Path):
    cfg = load_config(None, ["data.synthetic=psydefconv", "lora.r=7"])
    cfg.save(tmp_path / run_files.CONFIG)
    assert load_config(tmp_path / run_files.CONFIG) == cfg


def test_bad_yaml_names_the_file(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(p)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["lora.r"])


def test_secrets_masked(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    text = "storage: postgresql://alice:s3cret@db:5432/optuna key=" + "k" * 40 + " " + "ab12" * 10
    out = mask_secrets(text)
    assert "s3cret" not in out and "k" * 40 not in out and "ab12" * 10 not in out
    assert "postgresql://alice:***@db:5432/optuna" in out


def test_arcan_knobs_are_validated_together():
    """Optimiser, adapter variant and quantisation are config keys, checked before any work."""
    from harness.config import from_dict

    cfg = from_dict({"train": {"optim": "paged_adamw_8bit"}, "lora": {"variant": "rslora"},
                     "quant": {"load_in_8bit": True}})
    assert cfg.quant.quantized() and cfg.lora.variant == "rslora"
    with pytest.raises(ConfigError) as e:
        from_dict({"train": {"optim": "adamw_typo"}, "lora": {"variant": "lora+"},
                   "quant": {"load_in_4bit": True, "load_in_8bit": True}})
    msg = str(e.value)
    assert "train.optim" in msg and "lora.variant" in msg and "exclusive" in msg


def test_search_space_bounds_written_like_1e_4_are_numbers():
    """YAML 1.1 reads `1e-4` (no dot) as a string; a space bound written that way must still work."""
    cfg = load_config(None, ["tune.space={train.learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}}"])
    assert cfg.tune.space["train.learning_rate"]["low"] == 1e-4
