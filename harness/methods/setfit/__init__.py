"""`method: setfit`: SetFit for a few hundred rows: the sentence-embedding body fine-tuned contrastively on
class-balanced pairs of the fold's training part, then the class-weighted logistic head of `embed`.

The spec only: the method's code (harness.methods.setfit.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.setfit.config import SetFitConfig

METHOD = MethodSpec(name="setfit", uses_model=True, method="harness.methods.setfit.method:SetFitMethod",
                    help="SetFit: contrastive fine-tuning of a sentence-embedding body on class-weighted pairs, "
                         "then a logistic head", section="setfit", config=SetFitConfig)
