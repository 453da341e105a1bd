"""One typed experiment config, built from YAML, dotted overrides or plain dicts.

- fields.py: the field helper and ConfigError (a leaf: method plugins declare their sections with it);
- sections.py: the core sections; experiment.py: ExperimentConfig (core + the installed methods' sections,
  and the sections a family of methods shares, such as the HF methods' model/lora/quant/generative);
- types.py: typed building and coercion; loader.py: YAML, overrides, recipes; secrets.py: masking.

Data-set facts (DMRS levels, Dreaddit labels, instructions, verbalizers) are presets (harness.config.presets) that a
config selects with `data.preset`. Imports no torch, numpy, wandb or optuna: every command imports it.
"""

from harness.config.experiment import ExperimentConfig, field_help, key_types
from harness.config.fields import ConfigError, setting
from harness.config.loader import (RECIPES, apply_overrides, demo_config, flat_to_nested, from_dict, load_config,
                                   load_run_config, parse_overrides, parse_yaml, read_yaml, recipe_path)
from harness.config.secrets import mask_secrets, masked, redact
from harness.config.sections import (AugmentConfig, CVConfig, DataConfig, DecideConfig, LossConfig,
                                     PromptConfig, TrackConfig, TrainConfig, TuneConfig)

__all__ = ["RECIPES", "AugmentConfig", "CVConfig", "ConfigError", "DataConfig", "DecideConfig", "ExperimentConfig",
           "LossConfig", "PromptConfig",
           "TrackConfig", "TrainConfig", "TuneConfig", "apply_overrides", "demo_config", "field_help", "flat_to_nested",
           "from_dict", "key_types", "load_config", "load_run_config", "mask_secrets", "masked", "parse_overrides", "parse_yaml",
           "read_yaml", "recipe_path", "redact", "setting"]
