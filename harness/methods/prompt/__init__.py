"""`method: prompt`: zero-/few-shot prompting of a generative model, scored on the label texts.

The spec only: the method's code (harness.methods.prompt.method) is imported when the method is chosen."""

from harness.methods.prompt.config import PromptingConfig
from harness.methods.spec import MethodSpec

METHOD = MethodSpec(name="prompt", method="harness.methods.prompt.method:PromptMethod",
                    help='zero-/few-shot prompting of a generative model.name_or_path, scored on the label texts',
                    uses_model=True, token_prompts=True, config=PromptingConfig, test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=128",
                                                    "prompt.context_turns=1", "generative.shots_per_class=1",
                                                    "generative.calibration=contextual"))
