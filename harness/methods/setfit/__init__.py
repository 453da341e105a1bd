"""`method: setfit`: SetFit for a few hundred rows: the sentence-embedding body fine-tuned contrastively on
class-balanced pairs of the fold's training part, then the class-weighted logistic head of `embed`.

The spec only: the method's code (harness.methods.setfit.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.setfit.config import SetFitConfig

METHOD = MethodSpec(name="setfit", method="harness.methods.setfit.method:SetFitMethod",
                    help="SetFit: contrastive fine-tuning of a sentence-embedding body on class-weighted pairs, "
                         "then a logistic head", uses_model=True, section="setfit", config=SetFitConfig,
                    test_settings=("model.name_or_path=tiny-qwen3", "prompt.max_length=64",
                                   "prompt.context_turns=1", "prompt.layout=pair", "prompt.guide=none",
                                   "setfit.pairs_per_row=2"))
