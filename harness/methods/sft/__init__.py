"""`method: sft`: instruction fine-tuning with a class-weighted TRL SFTTrainer, scored on the label texts.

The spec only: the method's code (harness.methods.sft.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.sft.config import SftConfig

METHOD = MethodSpec(name="sft", uses_model=True, method="harness.methods.sft.method:SftMethod",
                    help='instruction fine-tuning of a generative model with a class-weighted TRL SFTTrainer',
                    section="sft", config=SftConfig)
