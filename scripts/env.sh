# Source this file to work in DePAI's environment after scripts/setup.sh has run:
#   source scripts/env.sh
# It activates the venv, makes the ROS 2 prefix visible to ament/colcon, and sources the
# colcon overlay (install/setup.bash) so `depai.msg` and `depai_nodes` import.
# `--no-overlay` skips the overlay (used by setup.sh before the first build).

# ROS setup scripts read unset variables: relax `set -u` while sourcing them.
case $- in *u*) _depai_nounset=1; set +u;; *) _depai_nounset=;; esac
_depai_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_depai_root/.depai/env" ]; then
  echo "[depai] run scripts/setup.sh (or ./depai) first" >&2
  return 1 2>/dev/null || exit 1
fi
{ read -r _depai_venv; read -r _depai_ros_mode; } <"$_depai_root/.depai/env"

if [ "$_depai_ros_mode" = stock ]; then
  # shellcheck disable=SC1091
  source /opt/ros/jazzy/setup.bash
fi
# shellcheck disable=SC1091
source "$_depai_venv/bin/activate"
if [ "$_depai_ros_mode" = pip ]; then
  # The wheels install ROS 2 into the venv prefix itself; ament and CMake must search it.
  case ":${AMENT_PREFIX_PATH:-}:" in *":$_depai_venv:"*) ;; *)
    export AMENT_PREFIX_PATH="$_depai_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
  case ":${CMAKE_PREFIX_PATH:-}:" in *":$_depai_venv:"*) ;; *)
    export CMAKE_PREFIX_PATH="$_depai_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}";; esac
  # Libraries of the ROS wheels; the wheels' own bootstrapper re-execs Python to set this,
  # setting it here avoids that extra exec for every node process.
  _depai_ld="$_depai_venv/lib"
  for _d in "$_depai_venv"/lib/python*/site-packages/ros_*.libs; do
    [ -d "$_d" ] && _depai_ld="$_depai_ld:$_d"
  done
  export LD_LIBRARY_PATH="$_depai_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
fi
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Fast DDS with a shared-memory segment that holds a LiDAR sweep (config/fastdds.xml says why);
# a profile the user chose is kept.
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_depai_root/config/fastdds.xml}"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$FASTRTPS_DEFAULT_PROFILES_FILE}"
export DEPAI_ROOT="$_depai_root"
if [ "${1:-}" != --no-overlay ] && [ -f "$_depai_root/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$_depai_root/install/setup.bash"
fi
[ -n "$_depai_nounset" ] && set -u
unset _depai_root _depai_venv _depai_ros_mode _depai_ld _d _depai_nounset
