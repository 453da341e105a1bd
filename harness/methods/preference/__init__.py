"""`method: preference`: DPO / KTO from an sft run's fold adapters, or ORPO, on class-rebalanced pairs.

The spec only: the method's code (harness.methods.preference.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.preference.config import PreferenceConfig

METHOD = MethodSpec(name="preference", method="harness.methods.preference.method:PreferenceMethod",
                    help="DPO / KTO from an sft run's fold adapters, or ORPO, with class-rebalanced label pairs",
                    uses_model=True, token_prompts=True, section="preference", config=PreferenceConfig,
                    test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=128",
                                   "prompt.context_turns=1", "lora.r=4", "lora.alpha=8", "train.max_steps=2",
                                   "train.batch_size=4", "train.learning_rate=1e-3", "preference.algorithm=orpo",
                                   "preference.negatives=hard"))
