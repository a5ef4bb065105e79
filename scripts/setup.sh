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

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torchaudio/torchcodec releases are built against one torch release each: pin the known-good set.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.0" "torchcodec==0.17.0"
.venv/bin/python -m pip install -q -e ".${extras}"
echo "Environment ready in .venv/"
