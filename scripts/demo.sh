#!/usr/bin/env bash
# README command 1: set everything up, then run fer_node in a real ROS 2 graph on the bundled sample clip and print
# the emotions it publishes. Extra arguments go to `fer-ros demo` (e.g. --seconds 30 --faces 3 --compressed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source ./env.sh
exec fer-ros demo "$@"
