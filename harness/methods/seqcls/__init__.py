"""`method: seqcls`: a Hugging Face model fine-tuned as a sequence classifier (LoRA, QLoRA or full).

The spec only: the method's code (harness.methods.seqcls.method) is imported when the method is chosen."""

from harness.methods.spec import MethodSpec

METHOD = MethodSpec(name="seqcls", uses_model=True, method="harness.methods.seqcls.method:SeqClsMethod",
                    help='fine-tuned HF sequence classifier: LoRA/QLoRA/full, class-weighted loss')
