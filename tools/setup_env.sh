#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in ./.venv and
# installs everything mmseg_maskformer needs, in the order that works on a
# CPU-only machine:
#   1. build tools (setuptools<70, wheel, ninja)
#   2. torch==2.13.0 (before anything that depends on torch)
#   3. mmengine, then mmcv 2.1.0 built from source with its compiled ops
#   4. mmdet, mmsegmentation and the rest of requirements/runtime.txt
#   5. test requirements (with --tests) and the package itself (editable)
# Idempotent: a stamp file records the hash of the requirement files, and a
# second run with nothing changed returns in about a second.
#
# Usage: bash tools/setup_env.sh [--tests]
# Env:   PYTHON (default python3), VENV_DIR (default .venv)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV_DIR=${VENV_DIR:-$ROOT/.venv}
WITH_TESTS=0
[[ "${1:-}" == "--tests" ]] && WITH_TESTS=1

say() { printf '[setup] %s\n' "$*"; }
fail() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}

hash_inputs() {
    cat requirements/*.txt setup.cfg pyproject.toml tools/setup_env.sh \
        | sha256sum | cut -c1-16
}
STAMP="$VENV_DIR/.mmseg_maskformer_setup_$(hash_inputs)_tests$WITH_TESTS"
if [[ -f "$STAMP" ]]; then
    say "environment $VENV_DIR is up to date"
    exit 0
fi

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    say "creating virtual environment $VENV_DIR with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV_DIR" || fail "could not create a venv with $PYTHON (is python3-venv installed?)"
fi
PY="$VENV_DIR/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
export PIP_PROGRESS_BAR=off

say "step 1/5: torch (CPU wheel)"
"${PIP[@]}" install -q -r requirements/torch.txt || fail "installing torch failed"

# After torch: torch pulls a recent setuptools, but mmcv 2.1.0's setup.py needs
# pkg_resources (setuptools<70). pip reports the version conflict with torch's
# metadata; torch itself runs fine with it.
say "step 2/5: build tools (setuptools<70, wheel, ninja)"
"${PIP[@]}" install -q -r requirements/build.txt 2>&1 | grep -v "dependency conflicts\|requires setuptools\|dependency resolver" || true
"$PY" -c "import pkg_resources" 2>/dev/null || fail "setuptools<70 (pkg_resources) is required to build mmcv"

say "step 3/5: mmengine and mmcv with compiled ops"
"${PIP[@]}" install -q mmengine==0.10.7 || fail "installing mmengine failed"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'; from mmcv.ops import MultiScaleDeformableAttention" 2>/dev/null; then
    say "mmcv 2.1.0 with ops already installed"
else
    say "building mmcv 2.1.0 from source (MMCV_WITH_OPS=1; ~13 min on 2 cores the first time, cached afterwards)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "${PIP[@]}" install --no-build-isolation mmcv==2.1.0 \
        || fail "building mmcv 2.1.0 failed; it needs gcc/g++, the Python headers, setuptools<70 and torch installed first (see README 'Installation')"
    "$PY" -c "import mmcv.ops" || fail "mmcv installed without its compiled ops (mmcv._ext missing)"
fi

say "step 4/5: mmdet, mmsegmentation and runtime requirements"
"${PIP[@]}" install -q -r requirements/runtime.txt || fail "installing runtime requirements failed"

say "step 5/5: mmseg_maskformer (editable)"
if [[ $WITH_TESTS == 1 ]]; then
    "${PIP[@]}" install -q -r requirements/tests.txt -r requirements/optional.txt \
        || fail "installing test requirements failed"
fi
"${PIP[@]}" install -q --no-deps --no-build-isolation -e . || fail "installing the package failed"
"$PY" -c "import mmseg_maskformer, mmdet, mmseg; print('[setup] mmseg_maskformer', mmseg_maskformer.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__)" \
    || fail "import check failed"

rm -f "$VENV_DIR"/.mmseg_maskformer_setup_*
touch "$STAMP"
say "environment ready: $VENV_DIR"
