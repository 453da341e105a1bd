"""`method: embed`: frozen embeddings of model.name_or_path + a class-weighted logistic regression.

The spec only: the method's code (harness.methods.embed.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.embed.config import EmbedConfig

METHOD = MethodSpec(name="embed", method="harness.methods.embed.method:EmbedMethod",
                    help='frozen model.name_or_path embeddings + logistic regression',
                    uses_model=True, section="embed", config=EmbedConfig,
                    test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=128",
                                   "prompt.context_turns=2", "prompt.layout=pair", "prompt.guide=none"))
