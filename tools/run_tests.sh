#!/usr/bin/env bash
# The test command of the README: sets up ./.venv (tools/setup_env.sh --tests),
# then runs the whole pytest suite on CPU with 2 worker processes.
# Extra arguments go to pytest (e.g. `bash tools/run_tests.sh -k matcher`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash tools/setup_env.sh --tests
echo "[tests] running pytest (CPU, 2 workers)"
export CUDA_VISIBLE_DEVICES=""
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" -q "$@"
