#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: the built-in datasets' Debian packages (airliners, cars, furniture), Chromium
# and its driver (the viewer's browser test), a virtual environment, the CPU build of torch, and latentscenes with its dependencies.
# Safe to run again (it skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -d /usr/share/games/flightgear/AI/Aircraft ] || need_apt+=(flightgear-data-ai)
# The held-out category (`latentscenes data build torcs`): TORCS's textured cars.
[ -d /usr/share/games/torcs/cars ] || need_apt+=(torcs-data)
# A second unseen category (`latentscenes data build sweethome3d`): Sweet Home 3D's furniture (CC0 / CC-BY).
ls /usr/share/sweethome3d/furniture/*.sh3f >/dev/null 2>&1 || need_apt+=(sweethome3d-furniture)
# pyassimp (PyPI) is a ctypes binding: it needs the libassimp shared library from Debian.
ldconfig -p 2>/dev/null | grep -q 'libassimp\.so' || need_apt+=(libassimp5)
# The viewer's browser test (tests/viewer/test_browser.py) drives Debian's headless Chromium through its driver.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, pinned: the CPU wheel (a bare 'torch' requirement would pull a multi-GB CUDA build).
.venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import latentscenes, torch, diffusers; print('latentscenes set up: torch', torch.__version__)"
