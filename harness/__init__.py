"""harness: grouped-CV sweeps of imbalance-aware text classifiers, every experiment tracked."""

import logging


class _DropOptionalKernelNotice(logging.Filter):
    """bitsandbytes 0.50 logs a warning at import on AVX512-BF16 CPUs when the optional `kernels` package
    (a hub download) is absent, even where nothing is quantised; it falls back to its own kernel, and
    users read the line as an error. Only that message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "from kernels-community" not in str(record.msg)


class _DropOfflineTrustNotice(logging.Filter):
    """`kernels` (pulled in by transformers 5.25) warns, when bitsandbytes looks for its optional hub kernel
    with the hub offline, that it skips a publisher check for a download that never happens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Skipping publisher trust check" not in str(record.msg)


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_DropOptionalKernelNotice())
logging.getLogger("kernels._internals.hf_hub").addFilter(_DropOfflineTrustNotice())


def load(path: "str | object", verify: bool = True) -> "object":
    """An export folder (`harness export RUN --out DIR`) as a classifier: `.predict_proba(rows)`, `.predict(rows)`
    (decided labels) and `.predict_names(rows)`; every file is checked against its export.json first."""
    from harness.export.loaded import load as load_export

    return load_export(path, verify)
