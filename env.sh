# Source after scripts/setup.sh:  source ./env.sh
# Gives a shell where the venv is a ROS 2 Jazzy prefix and the fer_ros package (messages, node) is built and found.
# DDS discovery is kept on this machine unless the caller already chose otherwise.
_fer_repo=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
if [ ! -f "$_fer_repo/install/fer_ros/share/fer_ros/package.xml" ]; then
  echo "env.sh: run scripts/setup.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# colcon's and venv's setup scripts read unset variables: relax `set -u` while sourcing them, restore it after.
case $- in *u*) _fer_nounset=1; set +u ;; *) _fer_nounset= ;; esac
. "$(readlink -f "$_fer_repo/.venv")/bin/activate"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export COLCON_CURRENT_PREFIX="$_fer_repo/install"  # silences colcon's setup script
. "$_fer_repo/install/setup.sh"
# The source tree first: fer_ros/__init__.py extends its __path__ to the built fer_ros/msg in install/.
export PYTHONPATH="$_fer_repo:$_fer_repo/training${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_LOCALHOST_ONLY=${ROS_LOCALHOST_ONLY:-1}
# Shared memory large enough for 640x480 frames, UDP on loopback only (see the file for why).
export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$_fer_repo/config/fastdds_localhost.xml}
export FER_ROS_REPO="$_fer_repo"
[ -n "$_fer_nounset" ] && set -u
unset _fer_repo _fer_nounset
