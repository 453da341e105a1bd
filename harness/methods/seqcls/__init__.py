"""`method: seqcls`: a Hugging Face model fine-tuned as a sequence classifier (LoRA, QLoRA or full).

The spec only: the method's code (harness.methods.seqcls.method) is imported when the method is chosen."""

from harness.methods.seqcls.config import SeqclsConfig
from harness.methods.spec import MethodSpec

METHOD = MethodSpec(name="seqcls", method="harness.methods.seqcls.method:SeqClsMethod",
                    help='fine-tuned HF sequence classifier: LoRA/QLoRA/full, class-weighted loss',
                    uses_model=True, token_prompts=True, config=SeqclsConfig, test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=128",
                                                    "prompt.context_turns=2", "lora.r=4", "lora.alpha=8",
                                                    "train.epochs=1", "train.batch_size=8",
                                                    "train.learning_rate=1e-3"))
