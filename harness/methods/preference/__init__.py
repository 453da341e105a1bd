"""`method: preference`: DPO / KTO from an sft run's fold adapters, or ORPO, on class-rebalanced pairs.

The spec only: the method's code (harness.methods.preference.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec
from harness.methods.preference.config import PreferenceConfig

METHOD = MethodSpec(name="preference", uses_model=True, method="harness.methods.preference.method:PreferenceMethod",
                    help="DPO / KTO from an sft run's fold adapters, or ORPO, with class-rebalanced label pairs",
                    section="preference", config=PreferenceConfig)
