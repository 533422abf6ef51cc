#!/usr/bin/env bash
# Set up rollrec in ./.venv (idempotent). `--test` also installs what the tests need: pytest,
# tensordict (the Isaac Lab play.py doubles), playwright (python), a headless Chromium from the
# system's packages for the browser test, unzip (archives are checked with `unzip -t` too), and
# the frameworks the adapter tests run for real (extras mjlab, mujoco, mjx, newton: CPU builds,
# about 1.3 GB installed), the camera extra (PyAV and zstandard, for camera images), the
# exporters' packages (extras lerobot, hdf5, rerun: pyarrow, PyAV, h5py, rerun-sdk), with a pip
# constraint file pinning the venv's torch so that mjlab's
# torchvision and tensordict do not pull another (CUDA) torch.
#
# torch: if the venv has none, a CPU-only machine gets a CPU build (about 200 MB) instead of
# PyPI's default CUDA build (several GB): from a local wheel where pip's find-links has one,
# else from PyTorch's CPU index, else (say so) from PyPI. A machine with an NVIDIA GPU gets
# PyPI's default build. Set ROLLREC_TORCH_SPEC to choose yourself (e.g. "torch==2.5.1").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "rollrec needs Python 3.10+"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
pip_install() { "$VPY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$VPY" -c 'import torch' 2>/dev/null; then
  if [ -n "${ROLLREC_TORCH_SPEC:-}" ]; then
    pip_install "$ROLLREC_TORCH_SPEC"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found: installing torch with CUDA from PyPI (large download)"
    pip_install "torch>=2.3"
  else
    tag=$("$VPY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    arch=$(uname -m)
    local_wheel=""
    links="${PIP_FIND_LINKS:-$("$VPY" -m pip config get global.find-links 2>/dev/null || true)}"
    for dir in $links; do
      dir=${dir#file://}
      [ -d "$dir" ] || continue
      w=$(ls "$dir"/torch-*+cpu-"$tag"-"$tag"-*"$arch".whl 2>/dev/null | sort -V | tail -n 1 || true)
      [ -n "$w" ] && local_wheel=$w
    done
    if [ -n "$local_wheel" ]; then
      echo "setup: no GPU: installing the local CPU build $(basename "$local_wheel")"
      pip_install "$local_wheel"
    elif pip_install --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1 "torch>=2.3"; then
      echo "setup: no GPU: installed torch's CPU build from download.pytorch.org"
    else
      echo "setup: no GPU, and PyTorch's CPU index is unreachable: installing torch from PyPI (a CUDA build, several GB; this takes minutes)"
      pip_install "torch>=2.3"
    fi
  fi
fi

if [ $want_tests = 1 ]; then
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  "$VPY" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > "$constraints"
  pip_install -c "$constraints" -e ".[test,camera,mjlab,mujoco,mjx,newton,lerobot,hdf5,rerun]"
  if [ ! -x /usr/bin/chromium ] && [ ! -x /usr/bin/chromium-browser ]; then
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
      echo "setup: installing chromium (Debian package) for the browser test"
      $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
        || echo "setup: could not install chromium: the browser test will be skipped"
    else
      echo "setup: no apt-get: install Chromium yourself, or the browser test is skipped"
    fi
  fi
  if ! command -v unzip >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    echo "setup: installing unzip (the tests check written archives with unzip -t)"
    $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq unzip >/dev/null \
      || echo "setup: could not install unzip: the archives are checked with Python's zipfile only"
  fi
else
  pip_install -e .
fi
echo "setup: ready ($("$VPY" -c 'import torch, rollrec; print(f"rollrec {rollrec.__version__}, torch {torch.__version__}")'))"
