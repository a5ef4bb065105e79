#!/usr/bin/env bash
# Set up the project's environment in .venv/ at the repository root, on a fresh machine.
#   bash scripts/setup.sh         runtime dependencies
#   bash scripts/setup.sh --dev   plus the test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

# torchcodec decodes through the system's FFmpeg shared libraries.
if ! ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so'; then
    echo "Installing FFmpeg shared libraries (Debian package ffmpeg)..."
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi

# The Space's browser test (tests/test_space.py) drives Debian's Chromium with a fake camera and microphone.
if [ -n "$extras" ] && [ ! -x /usr/bin/chromium ]; then
    echo "Installing Chromium for the browser test (Debian package chromium)..."
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip_install() {
    # Quiet, but keep real errors; drop the notes pip prints for configured package folders that do not exist.
    .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
pip_install --upgrade pip
# torchaudio/torchcodec releases are built against one torch release each: pin the known-good set.
# PyPI's torch for Linux x86-64 bundles CUDA libraries (about 4 GB of the environment's 7); TORCH_INDEX_URL picks
# another build of the same release, e.g. https://download.pytorch.org/whl/cpu (CPU only) or a ROCm index.
torch_index=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    torch_index=(--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple)
    echo "Installing torch 2.14.1 from $TORCH_INDEX_URL..."
else
    echo "Installing torch 2.14.1 from PyPI (with CUDA libraries on Linux x86-64: about 4 GB; for a CPU-only build set"
    echo "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu)..."
fi
pip_install "${torch_index[@]}" "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.0" "torchcodec==0.17.0"
pip_install -e ".${extras}"
if [ -n "$extras" ]; then
    # transformers' own common model tests (ModelTesterMixin) come from the released sdist of the installed version;
    # tests/test_modeling_common.py runs them against our classes when this folder exists.
    V=$(.venv/bin/python -c "import transformers; print(transformers.__version__)")
    D=.venv/transformers-tests/$V
    if [ ! -f "$D/tests/test_modeling_common.py" ]; then
        mkdir -p "$D"
        .venv/bin/python -m pip download -q --no-binary :all: --no-deps "transformers==$V" -d "$D"
        tar xzf "$D/transformers-$V.tar.gz" -C "$D" --strip-components=1 "transformers-$V/tests" "transformers-$V/PKG-INFO"
        pip_install --no-deps --target "$D/deps" parameterized==0.9.0
    fi
fi
echo "Environment ready in .venv/"
