#!/usr/bin/env bash
# README command 2: set everything up, then run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# System tools only the tests need: a virtual screen and key presses for the annotation window.
if ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "[test] installing xvfb and xdotool (annotation window tests)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xvfb xdotool x11-apps >/dev/null \
    || echo "[test] could not install xvfb/xdotool: the window tests will skip"
fi
source ./env.sh
exec python -m pytest "$@"
