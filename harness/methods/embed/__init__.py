"""`method: embed`: frozen embeddings of model.name_or_path + a class-weighted logistic regression.

The spec only: the method's code (harness.methods.embed.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.embed.config import EmbedConfig

METHOD = MethodSpec(name="embed", uses_model=True, method="harness.methods.embed.method:EmbedMethod",
                    help='frozen model.name_or_path embeddings + logistic regression',
                    section="embed", config=EmbedConfig)
