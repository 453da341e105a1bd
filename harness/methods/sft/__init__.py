"""`method: sft`: instruction fine-tuning with a class-weighted TRL SFTTrainer, scored on the label texts.

The spec only: the method's code (harness.methods.sft.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.sft.config import SftConfig

METHOD = MethodSpec(name="sft", method="harness.methods.sft.method:SftMethod",
                    help='instruction fine-tuning of a generative model with a class-weighted TRL SFTTrainer',
                    uses_model=True, token_prompts=True, section="sft", config=SftConfig,
                    test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=128",
                                   "prompt.context_turns=1", "lora.r=4", "lora.alpha=8", "train.max_steps=2",
                                   "train.batch_size=4", "train.learning_rate=1e-3"))
