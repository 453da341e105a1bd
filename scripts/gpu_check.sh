#!/usr/bin/env bash
# GPU readiness in one command, for a CUDA box lent for minutes and without hub access:
#   1. the `gpu`-marked tests, on `qwen3-8b-shape` (Qwen3-8B's real architecture, random weights built on the GPU;
#      no weights are downloaded), and
#   2. benchmarks/gpu_memory.py: peak memory and tokens/s of the published recipes (seqcls QLoRA, sft QLoRA,
#      embed 4-bit), appended to benchmarks/RESULTS.md with the GPU's name.
# Usage:
#   bash scripts/gpu_check.sh                 # the harness installed as the README says (CUDA torch first)
#   bash scripts/gpu_check.sh --wheels DIR    # first install what is missing from a local wheel folder (no index)
# Exit 0 when both parts pass; it says what it could not check and why. Under 10 minutes on one recent GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=""
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) [ $# -ge 2 ] || { echo "error: --wheels needs a folder" >&2; exit 2; }; wheels="$2"; shift 2 ;;
    --wheels=*) wheels="${1#*=}"; shift ;;
    -h|--help) sed -n 2,11p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$wheels" ]; then
  [ -d "$wheels" ] || { echo "error: --wheels $wheels is not a folder" >&2; exit 2; }
  # only what is missing: an installed CUDA torch is kept (pip keeps what satisfies the requirements)
  python -m pip install -q --no-index --find-links "$wheels" -e ".[dev]" \
    || echo "note: not every package could be installed from $wheels; the checks below say what is missing" >&2
fi
python - <<'PY' || exit 3
import importlib.util, sys
missing = [m for m in ("torch", "transformers", "peft", "bitsandbytes", "trl", "optuna", "wandb", "pytest", "harness")
           if importlib.util.find_spec(m) is None]
if missing:
    print(f"error: missing packages: {', '.join(missing)}; install them (or pass --wheels DIR); nothing was checked",
          file=sys.stderr)
    sys.exit(1)
import torch
if not torch.cuda.is_available():
    print(f"error: scripts/gpu_check.sh needs CUDA: torch {torch.__version__} sees no GPU "
          f"(torch.cuda.is_available() is False; CUDA build: {torch.version.cuda or 'none'}); nothing was checked",
          file=sys.stderr)
    sys.exit(1)
print(f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.1f} GiB, "
      f"torch {torch.__version__} (CUDA {torch.version.cuda})")
PY
export HARNESS_GPU_MODEL="${HARNESS_GPU_MODEL:-qwen3-8b-shape}" WANDB_MODE=disabled
start=$(date +%s)
python -m pytest -q -p no:cacheprovider -m gpu tests/
tests_rc=$?
python benchmarks/gpu_memory.py --results
bench_rc=$?
echo "gpu_check: $(( $(date +%s) - start )) s on $HARNESS_GPU_MODEL"
not_checked=()
[ $tests_rc -eq 0 ] || not_checked+=("gpu tests (pytest exit $tests_rc: see the failures above)")
[ $bench_rc -eq 0 ] || not_checked+=("the memory benchmark (exit $bench_rc: see above)")
if [ ${#not_checked[@]} -gt 0 ]; then
  printf 'not checked: %s\n' "${not_checked[@]}"
  exit 1
fi
echo "gpu_check: passed (table appended to benchmarks/RESULTS.md)"
